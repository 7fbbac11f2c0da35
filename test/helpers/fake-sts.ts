/**
 * A fake STS for unit tests (fastify on loopback). It records every request
 * so a test can assert exactly what the client sent, and answers from a
 * script of responses.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { ClientIo } from '../../src/client/commands.ts';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN } from '../../src/util/oauth-urns.ts';

export interface FakeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface FakeSts {
  url: string;
  requests: Array<{ method: string; path: string; form: Record<string, string> }>;
  /** Answers for POST /token, used in order; the last one repeats. */
  tokenAnswers: FakeAnswer[];
  revokeAnswers: FakeAnswer[];
  metadata: Record<string, unknown>;
  close(): Promise<void>;
}

export function okToken(
  token = 'glpat-FAKEtoken1234567890',
  scope = 'read_repository read_api',
  expiresIn = 900,
): FakeAnswer {
  return {
    status: 200,
    body: {
      access_token: token,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: expiresIn,
      scope,
    },
  };
}

export async function startFakeSts(): Promise<FakeSts> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );
  const fake = {
    url: '',
    requests: [] as FakeSts['requests'],
    tokenAnswers: [okToken()],
    revokeAnswers: [{ status: 200, body: {} }] as FakeAnswer[],
    metadata: {} as Record<string, unknown>,
    close: () => app.close(),
  };
  const send = (answers: FakeAnswer[], reply: import('fastify').FastifyReply) => {
    const a = answers.length > 1 ? answers.shift()! : answers[0]!;
    for (const [k, v] of Object.entries(a.headers ?? {})) reply.header(k, v);
    return reply
      .code(a.status)
      .type('application/json')
      .send(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
  };
  app.get('/.well-known/oauth-authorization-server', async (req, reply) => {
    fake.requests.push({ method: 'GET', path: req.url, form: {} });
    return reply.send({
      issuer: fake.url,
      token_endpoint: `${fake.url}/token`,
      revocation_endpoint: `${fake.url}/revoke`,
      grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
      azure_scope: 'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
      gitlab_url: 'https://gitlab.example.com',
      ...fake.metadata,
    });
  });
  app.post('/token', async (req, reply) => {
    fake.requests.push({ method: 'POST', path: '/token', form: req.body as Record<string, string> });
    return send(fake.tokenAnswers, reply);
  });
  app.post('/revoke', async (req, reply) => {
    fake.requests.push({ method: 'POST', path: '/revoke', form: req.body as Record<string, string> });
    return send(fake.revokeAnswers, reply);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  fake.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return fake;
}

/** A well-formed (unsigned) subject JWT: the fake STS does not verify it. */
export const FAKE_SUBJECT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlc2ln';

/** The client commands' I/O, captured: what they printed to stdout and stderr, with a fixed stdin. */
export function captureIo(
  env: Record<string, string | undefined>,
  stdin = '',
): ClientIo & { out: string; err: string } {
  const o = {
    env,
    out: '',
    err: '',
    stdout: (t: string) => {
      o.out += t;
    },
    stderr: (t: string) => {
      o.err += t;
    },
    readStdin: async () => stdin,
  };
  return o;
}
