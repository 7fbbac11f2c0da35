/**
 * A small fake GitLab for tests (fastify on 127.0.0.1:0): project/group access
 * tokens in memory, every request recorded so a test can assert exactly what
 * was asked (like octo-sts's fake GitHub). Faults are injected per request
 * with `intercept`; rate-limit headers with `extraHeaders`.
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { TargetKind } from '../util/target-kind.ts';

export interface RecordedRequest {
  method: string;
  /** Raw URL as sent (path still percent-encoded). */
  url: string;
  kind?: TargetKind;
  ref?: string;
  tokenId?: number;
  query: Record<string, string>;
  body: unknown;
  privateToken: string | undefined;
}

export interface FakeToken {
  id: number;
  name: string;
  description: string;
  scopes: string[];
  access_level: number;
  expires_at: string | null;
  created_at: string;
  active: boolean;
  revoked: boolean;
  user_id: number;
  token: string;
}

export interface FakeDeployToken {
  id: number;
  name: string;
  username: string;
  scopes: string[];
  expires_at: string | null;
  revoked: boolean;
  expired: boolean;
  token: string;
  /** DELETE destroys a deploy token (GitLab): kept here, flagged, for the tests' eyes only. */
  deleted: boolean;
}

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Delay before answering (ms). */
  delayMs?: number;
}

export interface FakeGitlab {
  url: string;
  requests: RecordedRequest[];
  /** Tokens per target, keyed `project:<ref>` / `group:<ref>` (ref as decoded from the URL). */
  tokens: Map<string, FakeToken[]>;
  /** Return a reply to override the normal handling of a request (faults, 429 …). */
  intercept?: (r: RecordedRequest) => FakeReply | undefined;
  /** Headers added to every answer (e.g. RateLimit-Remaining). */
  extraHeaders?: () => Record<string, string>;
  /** Latency added to every answer (ms). */
  latencyMs: number;
  /** The most requests that were waiting out `latencyMs` at the same time. */
  maxConcurrent: number;
  /** Seed a token directly (as if created earlier). */
  addToken(kind: TargetKind, ref: string, name: string, extra?: Partial<FakeToken>): FakeToken;
  /** Deploy tokens per target, keyed as `tokens`. */
  deployTokens: Map<string, FakeDeployToken[]>;
  addDeployToken(
    kind: TargetKind,
    ref: string,
    name: string,
    extra?: Partial<FakeDeployToken>,
  ): FakeDeployToken;
  /** Requests matching method (and optional predicate). */
  count(method: string, pred?: (r: RecordedRequest) => boolean): number;
  close(): Promise<void>;
}

export const FAKE_ADMIN_TOKEN = 'glpat-fake-admin-token-0123456789';

export async function startFakeGitlab(
  opts: { perPageMax?: number; linkOnly?: boolean } = {},
): Promise<FakeGitlab> {
  const app = Fastify({ logger: false });
  let nextId = 1000;
  const perPageMax = opts.perPageMax ?? 100;
  const fake: FakeGitlab = {
    url: '',
    requests: [],
    tokens: new Map(),
    latencyMs: 0,
    maxConcurrent: 0,
    addToken(kind, ref, name, extra = {}) {
      const t: FakeToken = {
        id: nextId++,
        name,
        description: '',
        scopes: ['read_api'],
        access_level: 30,
        expires_at: '2099-01-01',
        created_at: new Date().toISOString(),
        active: true,
        revoked: false,
        user_id: 5000 + nextId,
        token: `glpat-fake-${nextId}-${Math.random().toString(36).slice(2)}`,
        ...extra,
      };
      const key = `${kind}:${ref}`;
      fake.tokens.set(key, [...(fake.tokens.get(key) ?? []), t]);
      return t;
    },
    deployTokens: new Map(),
    addDeployToken(kind, ref, name, extra = {}) {
      const id = nextId++;
      const t: FakeDeployToken = {
        id,
        name,
        username: `gitlab+deploy-token-${id}`,
        scopes: ['read_repository'],
        expires_at: null,
        revoked: false,
        expired: false,
        token: `gldt-fake${id}${Math.random().toString(36).slice(2, 10)}`,
        deleted: false,
        ...extra,
      };
      const key = `${kind}:${ref}`;
      fake.deployTokens.set(key, [...(fake.deployTokens.get(key) ?? []), t]);
      return t;
    },
    count(method, pred) {
      return fake.requests.filter((r) => r.method === method && (!pred || pred(r))).length;
    },
    close: () => app.close(),
  };

  const record = (req: FastifyRequest): RecordedRequest => {
    const p = req.params as { id?: string; tokenId?: string };
    const kind = /^\/api\/v4\/(projects|groups)\//.exec(req.url)?.[1];
    const r: RecordedRequest = {
      method: req.method,
      url: req.url,
      query: { ...(req.query as Record<string, string>) },
      body: req.body,
      privateToken: req.headers['private-token'] as string | undefined,
    };
    if (kind) r.kind = kind === 'groups' ? 'group' : 'project';
    if (p.id !== undefined) r.ref = p.id;
    if (p.tokenId !== undefined) r.tokenId = Number(p.tokenId);
    fake.requests.push(r);
    return r;
  };

  let waiting = 0;
  /** Common preamble: record, auth, latency, faults. Returns true when the reply was already sent. */
  const pre = async (req: FastifyRequest, reply: FastifyReply): Promise<RecordedRequest | undefined> => {
    const r = record(req);
    const delay = fake.latencyMs;
    if (delay > 0) {
      waiting++;
      fake.maxConcurrent = Math.max(fake.maxConcurrent, waiting);
      await new Promise((res) => setTimeout(res, delay));
      waiting--;
    }
    for (const [k, v] of Object.entries(fake.extraHeaders?.() ?? {})) reply.header(k, v);
    const fault = fake.intercept?.(r);
    if (fault) {
      if (fault.delayMs) await new Promise((res) => setTimeout(res, fault.delayMs));
      for (const [k, v] of Object.entries(fault.headers ?? {})) reply.header(k, v);
      reply.code(fault.status);
      await reply.send(fault.body ?? '');
      return undefined;
    }
    if (r.privateToken !== FAKE_ADMIN_TOKEN) {
      reply.code(401);
      await reply.send({ message: '401 Unauthorized' });
      return undefined;
    }
    return r;
  };

  for (const seg of ['projects', 'groups']) {
    app.post(`/api/v4/${seg}/:id/access_tokens`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      const b = req.body as Record<string, unknown>;
      if (!b || typeof b.name !== 'string' || !Array.isArray(b.scopes)) {
        return reply.code(400).send({ message: '400 Bad request - name is missing' });
      }
      if (r.ref?.startsWith('missing')) return reply.code(404).send({ message: '404 Project Not Found' });
      const t = fake.addToken(r.kind ?? 'project', r.ref ?? '', b.name, {
        description: String(b.description ?? ''),
        scopes: b.scopes as string[],
        access_level: Number(b.access_level ?? 40),
        expires_at: (b.expires_at as string) ?? null,
      });
      // GitLab answers with the id of the project or group it minted on: the numeric ref
      // when minted by id (as the STS does), a fixed one for a path.
      const resourceId = /^[0-9]+$/.test(r.ref ?? '') ? Number(r.ref) : 77;
      return reply.code(201).send({ ...t, resource_id: resourceId });
    });

    // GET /projects/:id, /groups/:id: the ref is its own canonical path (a numeric ref gets `id-path/<n>`).
    app.get(`/api/v4/${seg}/:id`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      const ref = r.ref ?? '';
      if (ref.startsWith('missing'))
        return reply.code(404).send({ message: `404 ${seg === 'projects' ? 'Project' : 'Group'} Not Found` });
      const id = /^[0-9]+$/.test(ref) ? Number(ref) : 4242;
      const path = /^[0-9]+$/.test(ref) ? `id-path/${ref}` : ref;
      return reply.send(seg === 'projects' ? { id, path_with_namespace: path } : { id, full_path: path });
    });

    app.get(`/api/v4/${seg}/:id/access_tokens`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      let list = fake.tokens.get(`${r.kind}:${r.ref}`) ?? [];
      if (r.query.state === 'active') list = list.filter((t) => t.active && !t.revoked);
      if (r.query.state === 'inactive') list = list.filter((t) => !t.active || t.revoked);
      const search = r.query.search;
      if (search) list = list.filter((t) => t.name.toLowerCase().includes(search.toLowerCase()));
      const perPage = Math.min(perPageMax, Number(r.query.per_page ?? 20));
      const page = Number(r.query.page ?? 1);
      const slice = list.slice((page - 1) * perPage, page * perPage);
      const more = page * perPage < list.length;
      if (more) {
        if (opts.linkOnly) {
          const q = new URLSearchParams(r.query);
          q.set('page', String(page + 1));
          const path = req.url.split('?')[0];
          reply.header(
            'link',
            `<${fake.url}${path}?${q}>; rel="next", <${fake.url}${path}?page=1>; rel="first"`,
          );
        } else {
          reply.header('x-next-page', String(page + 1));
        }
      } else if (!opts.linkOnly) {
        reply.header('x-next-page', '');
      }
      return reply.send(slice.map(({ token: _t, ...rest }) => rest));
    });

    app.delete(`/api/v4/${seg}/:id/access_tokens/:tokenId`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      const t = (fake.tokens.get(`${r.kind}:${r.ref}`) ?? []).find((x) => x.id === r.tokenId);
      if (!t || t.revoked) return reply.code(404).send({ message: '404 Not found' });
      t.revoked = true;
      t.active = false;
      return reply.code(204).send();
    });
  }

  // Deploy tokens (doc/api/deploy_tokens.md): create → 201 with `token`, list (`active`), delete → 204.
  for (const seg of ['projects', 'groups']) {
    app.post(`/api/v4/${seg}/:id/deploy_tokens`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      const b = req.body as Record<string, unknown>;
      if (!b || typeof b.name !== 'string' || !Array.isArray(b.scopes)) {
        return reply.code(400).send({ error: 'name is missing' });
      }
      if (r.ref?.startsWith('missing')) return reply.code(404).send({ message: '404 Project Not Found' });
      const t = fake.addDeployToken(r.kind ?? 'project', r.ref ?? '', b.name, {
        scopes: b.scopes as string[],
        expires_at: typeof b.expires_at === 'string' ? b.expires_at : null,
        ...(typeof b.username === 'string' ? { username: b.username } : {}),
      });
      const { deleted: _d, ...shown } = t;
      return reply.code(201).send(shown);
    });

    app.get(`/api/v4/${seg}/:id/deploy_tokens`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      let list = (fake.deployTokens.get(`${r.kind}:${r.ref}`) ?? []).filter((t) => !t.deleted);
      if (r.query.active === 'true') list = list.filter((t) => !t.revoked && !t.expired);
      const perPage = Math.min(perPageMax, Number(r.query.per_page ?? 20));
      const page = Number(r.query.page ?? 1);
      const more = page * perPage < list.length;
      reply.header('x-next-page', more ? String(page + 1) : '');
      return reply.send(
        list.slice((page - 1) * perPage, page * perPage).map(({ token: _t, deleted: _d, ...rest }) => rest),
      );
    });

    app.delete(`/api/v4/${seg}/:id/deploy_tokens/:tokenId`, async (req, reply) => {
      const r = await pre(req, reply);
      if (!r) return reply;
      const t = (fake.deployTokens.get(`${r.kind}:${r.ref}`) ?? []).find((x) => x.id === r.tokenId);
      if (!t || t.deleted) return reply.code(404).send({ message: '404 Not found' });
      t.deleted = true;
      return reply.code(204).send();
    });
  }

  app.get('/api/v4/personal_access_tokens/self', async (req, reply) => {
    const r = await pre(req, reply);
    if (!r) return reply;
    return reply.send({ id: 1, name: 'sts', active: true, revoked: false, scopes: ['api'] });
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  fake.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return fake;
}
