/**
 * A minimal OIDC issuer the bench hosts itself on loopback http: discovery
 * and a JWKS, nothing else. The STS fetches them at start-up like any other
 * issuer's; the bench signs the subject tokens (RS256) with the matching key.
 * The exchange itself is the STS's real one.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export const AUDIENCE = 'api://tanuki-bench';

export interface BenchIssuer {
  url: string;
  kid: string;
  /** A signed token with these claims over the defaults (iss, aud, sub, iat, nbf, exp, jti). */
  token(claims?: Record<string, unknown>): string;
  /** The same payload signed by a key the issuer never published, under its `kid`: a bad signature. */
  badSignatureToken(claims?: Record<string, unknown>): string;
  /** A well-formed token from an issuer the STS does not know. */
  unknownIssuerToken(): string;
  close(): Promise<void>;
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function jwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function rsaKey(): KeyObject {
  return createPrivateKey(
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }),
  );
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const key = rsaKey();
  const stranger = rsaKey();
  const kid = 'bench-key-1';
  const jwk = { ...key.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } as Record<string, unknown>;
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete jwk[k];
  let url = '';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          issuer: url,
          jwks_uri: `${url}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
        }),
      );
    } else if (path === '/jwks') {
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'max-age=3600');
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const payload = (claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: url,
      aud: AUDIENCE,
      sub: 'bench-workload',
      iat: now - 5,
      nbf: now - 5,
      exp: now + 3600,
      jti: randomUUID(),
      ...claims,
    };
  };
  return {
    url,
    kid,
    token: (claims = {}) => jwt({ alg: 'RS256', typ: 'JWT', kid }, payload(claims), key),
    badSignatureToken: (claims = {}) => jwt({ alg: 'RS256', typ: 'JWT', kid }, payload(claims), stranger),
    unknownIssuerToken: () =>
      jwt(
        { alg: 'RS256', typ: 'JWT', kid: 'someone-else' },
        payload({ iss: 'https://issuer.example.invalid/' }),
        stranger,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
