/**
 * Test fixtures: a loopback HTTP server standing for an Entra tenant (v1 and
 * v2 discovery + JWKS, public-cloud issuer strings) and a generic OIDC issuer
 * (RSA and EC keys), plus token minting helpers. Every request is counted by
 * path, and any path can be made to fail, so tests assert exact fetches.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { EntraIssuerConfig, OidcIssuerConfig } from './issuer-config.ts';

export const TENANT = '3f1e8a2c-5b7d-4c9e-a1f0-2b6d8e4c7a90';
export const CLIENT_ID = '11111111-2222-4333-8444-555555555555';
export const OBJECT_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
export const RESOURCE_CLIENT_ID = '99999999-8888-4777-8666-555555555555';
/** The STS API's Application ID URI: Entra's default, `api://<its client ID>`. */
export const APP_ID_URI = `api://${RESOURCE_CLIENT_ID}`;
export const V1_ISS = `https://sts.windows.net/${TENANT}/`;
export const V2_ISS = `https://login.microsoftonline.com/${TENANT}/v2.0`;
export const OIDC_AUD = 'https://sts.example.test';
/** Fixed test clock (epoch ms). */
export const T0 = 1_750_000_000_000;
export const T0S = T0 / 1000;

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
export interface TestKey {
  kid: string;
  alg: string;
  privateKey: Key;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: 'RS256' | 'ES256' | 'PS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid };
  return { kid, alg, privateKey, publicJwk };
}

export interface FakeIssuers {
  url: string;
  port: number;
  /** Request count per path. */
  hits: Map<string, number>;
  /** Paths answered with HTTP 500. */
  failing: Set<string>;
  /** Documents served per path (mutable). */
  docs: Map<string, unknown>;
  entraConfig(extra?: Partial<EntraIssuerConfig>): EntraIssuerConfig;
  oidcConfig(extra?: Partial<OidcIssuerConfig>): OidcIssuerConfig;
  oidcIssuer: string;
  paths: {
    v1Discovery: string;
    v2Discovery: string;
    v1Keys: string;
    v2Keys: string;
    oidcDiscovery: string;
    oidcKeys: string;
  };
  total(): number;
  close(): Promise<void>;
}

export async function startFakeIssuers(keys: { entra: TestKey[]; oidc: TestKey[] }): Promise<FakeIssuers> {
  const hits = new Map<string, number>();
  const failing = new Set<string>();
  const docs = new Map<string, unknown>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const doc = docs.get(path);
    if (failing.has(path) || doc === undefined) {
      res.writeHead(failing.has(path) ? 500 : 404).end();
      return;
    }
    const body = typeof doc === 'string' ? doc : JSON.stringify(doc);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const oidcIssuer = `${url}/oidc`;
  const paths = {
    v1Discovery: `/${TENANT}/.well-known/openid-configuration`,
    v2Discovery: `/${TENANT}/v2.0/.well-known/openid-configuration`,
    v1Keys: `/${TENANT}/discovery/keys`,
    v2Keys: `/${TENANT}/discovery/v2.0/keys`,
    oidcDiscovery: '/oidc/.well-known/openid-configuration',
    oidcKeys: '/oidc/jwks',
  };
  // Entra's JWKS entries carry no alg; x5t = kid.
  const entraJwks = { keys: keys.entra.map((k) => ({ ...k.publicJwk, use: 'sig', x5t: k.kid })) };
  docs.set(paths.v1Discovery, { issuer: V1_ISS, jwks_uri: `${url}${paths.v1Keys}`, token_endpoint: 'x' });
  docs.set(paths.v2Discovery, { issuer: V2_ISS, jwks_uri: `${url}${paths.v2Keys}` });
  docs.set(paths.v1Keys, entraJwks);
  docs.set(paths.v2Keys, entraJwks);
  docs.set(paths.oidcDiscovery, { issuer: oidcIssuer, jwks_uri: `${url}${paths.oidcKeys}` });
  docs.set(paths.oidcKeys, { keys: keys.oidc.map((k) => ({ ...k.publicJwk, use: 'sig', alg: k.alg })) });

  return {
    url,
    port,
    hits,
    failing,
    docs,
    paths,
    oidcIssuer,
    entraConfig: (extra = {}) => ({
      name: 'entra',
      kind: 'entra',
      tenant: TENANT,
      authorityHost: url,
      allowDelegated: false,
      audiences: [APP_ID_URI, RESOURCE_CLIENT_ID],
      maxTokenLifetime: 86_700,
      ...extra,
    }),
    oidcConfig: (extra = {}) => ({
      name: 'ci',
      kind: 'oidc',
      issuer: oidcIssuer,
      audiences: [OIDC_AUD],
      maxTokenLifetime: 3_900,
      ...extra,
    }),
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export const b64u = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : v instanceof Uint8Array ? v : JSON.stringify(v)).toString(
    'base64url',
  );

/** A compact JWS from parts: objects are JSON-encoded, strings taken as raw JSON text. */
export function compact(header: unknown, payload: unknown, sig: string): string {
  return `${b64u(header)}.${b64u(payload)}.${sig}`;
}

/** Sign exactly these header and claims (raw JSON strings allowed) with a key. */
export async function sign(header: Record<string, unknown>, payload: unknown, key: Key): Promise<string> {
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader(header as { alg: string }).sign(key);
}

export function entraClaims(version: 1 | 2, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = T0S - 300;
  const common = {
    iat,
    nbf: iat,
    exp: T0S + 3599,
    oid: OBJECT_ID,
    sub: OBJECT_ID,
    tid: TENANT,
    uti: 'uti-1',
    roles: ['GitLab.Read'],
  };
  const claims =
    version === 1
      ? { ...common, aud: APP_ID_URI, iss: V1_ISS, appid: CLIENT_ID, appidacr: '1', idp: V1_ISS, ver: '1.0' }
      : { ...common, aud: RESOURCE_CLIENT_ID, iss: V2_ISS, azp: CLIENT_ID, azpacr: '1', ver: '2.0' };
  const out: Record<string, unknown> = { ...claims, ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete out[k];
  return out;
}

export function oidcClaims(issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    iss: issuer,
    aud: OIDC_AUD,
    sub: 'project_path:platform/app:ref_type:branch:ref:main',
    iat: T0S - 10,
    nbf: T0S - 10,
    exp: T0S + 3590,
    jti: 'jti-1',
    ...extra,
  };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete out[k];
  return out;
}
