/**
 * Tools for the security tests: build JWS by hand (jose would refuse most of
 * what we need to send), mint real tokens at the Entra emulator, count what
 * the STS did (GitLab calls, JWKS fetches, outbound requests) and assert that
 * an attack was refused the one generic way.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { assertNoSecrets, EXCHANGE, PROJECT, postForm, type Stack } from '../../helpers/stack.ts';

/** Decoded JSON of hostile tokens and emulator answers: any shape at all. */
export type Json = Record<string, any>;

/** What the caller sees for every refused subject token, whatever the reason (RFC 8693 §2.2.2). */
export const GENERIC = 'the subject token is invalid or not accepted';

// ---------------------------------------------------------------- JOSE by hand

export function b64u(x: string | Uint8Array | object): string {
  if (typeof x === 'string') return Buffer.from(x, 'utf8').toString('base64url');
  if (x instanceof Uint8Array) return Buffer.from(x).toString('base64url');
  return Buffer.from(JSON.stringify(x), 'utf8').toString('base64url');
}

/** A compact JWS from a header and payload (objects are JSON-encoded, strings taken as raw JSON text). */
export function compact(header: object | string, payload: object | string, signature = ''): string {
  const enc = (v: object | string) => (typeof v === 'string' ? b64u(v) : b64u(v));
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

export function decodeJson(part: string | undefined): Json {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
}

export function parts(token: string): { header: Json; payload: Json; sig: string } {
  const [h, p, sig] = token.split('.');
  return { header: decodeJson(h), payload: decodeJson(p), sig: sig ?? '' };
}

// ---------------------------------------------------------------- the Entra emulator

const agents = new WeakMap<Stack, Agent>();
function agentFor(s: Stack): Agent {
  let a = agents.get(s);
  if (!a) {
    a = new Agent({ connect: { ca: readFileSync(s.entra.caFile, 'utf8') } });
    agents.set(s, a);
  }
  return a;
}

/** A request to the Entra emulator (HTTPS with its own CA). */
export async function entraRequest(s: Stack, path: string, init: { method?: string; json?: unknown } = {}) {
  const res = await undiciFetch(`${s.entra.url}${path}`, {
    method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
    headers: init.json === undefined ? {} : { 'content-type': 'application/json' },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    dispatcher: agentFor(s),
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json: json ?? {}, text };
}

export async function closeEntraAgent(s: Stack): Promise<void> {
  await agents.get(s)?.close();
  agents.delete(s);
}

/** A token from the emulator's test OIDC issuer (the STS's `ci` issuer), signed with its real key. */
export async function mintOidc(
  s: Stack,
  body: {
    claims: Record<string, unknown>;
    header?: Record<string, unknown>;
    lifetimeSeconds?: number;
    [k: string]: unknown;
  },
): Promise<string> {
  const res = await entraRequest(s, '/_emulator/tokens', { json: body });
  assert.equal(res.status, 200, `minting a test-issuer token: ${res.text}`);
  return res.json.token;
}

export interface EntraMint {
  tenant?: string;
  clientId?: string;
  resource?: string;
  version?: 1 | 2 | '1.0' | '2.0';
  extraClaims?: Record<string, unknown>;
  [k: string]: unknown;
}

/** An Entra access token signed with the tenant's real key, defaults: the pipeline app for our resource. */
export async function mintEntra(s: Stack, opts: EntraMint = {}): Promise<string> {
  const entra = {
    tenant: s.seed.tenantId,
    clientId: s.seed.pipelineClientId,
    resource: s.seed.resourceUri,
    ...opts,
  };
  const res = await entraRequest(s, '/_emulator/tokens', { json: { entra } });
  assert.equal(res.status, 200, `minting an Entra token: ${res.text}`);
  return res.json.token;
}

/** The tenant's public signing keys, as any attacker can fetch them. */
export async function tenantJwks(s: Stack): Promise<Json[]> {
  const res = await entraRequest(s, `/${s.seed.tenantId}/discovery/v2.0/keys`);
  assert.equal(res.status, 200, res.text);
  return res.json.keys;
}

// ---------------------------------------------------------------- what the STS did

/** Total GitLab API requests the emulator has served (its `/_emulator/stats` counters). */
export async function gitlabApiCalls(s: Stack): Promise<number> {
  const res = await fetch(`${s.gitlab.url}/_emulator/stats`);
  assert.equal(res.status, 200);
  return countOf(await res.json());
}

/** The sum of a numeric counter, or of every number under an object of counters. */
export function countOf(v: unknown, key?: string): number {
  if (typeof v === 'number') return v;
  if (!v || typeof v !== 'object') return 0;
  const o = v as Record<string, unknown>;
  if (key !== undefined) return countOf(o[key]);
  if (typeof o.total === 'number') return o.total;
  if (typeof o.requests === 'number') return o.requests;
  if (o.requests && typeof o.requests === 'object') return countOf(o.requests);
  return Object.values(o).reduce<number>((n, x) => n + (typeof x === 'number' ? x : 0), 0);
}

/** JWKS fetches the validator made so far, over all issuers. */
export function jwksFetches(s: Stack): number {
  const stats = (s.sts.context.validator as unknown as { stats(): Record<string, unknown> }).stats();
  return countOf(stats.jwksFetches);
}

export interface Outbound {
  requests: string[];
  stop(): void;
}

/**
 * Records every outbound HTTP request and TCP connection this process starts
 * (undici, node:http and raw sockets), the STS's included: it runs in-process.
 */
export function watchOutbound(): Outbound {
  const requests: string[] = [];
  const onUndici = (m: unknown) => {
    const r = (m as { request?: { origin?: string; path?: string } }).request;
    requests.push(`undici ${r?.origin}${r?.path}`);
  };
  const onHttp = (m: unknown) => {
    const r = (m as { request?: { protocol?: string; host?: string; path?: string } }).request;
    requests.push(`http ${r?.protocol ?? ''}//${r?.host ?? '?'}${r?.path ?? ''}`);
  };
  const onSocket = (m: unknown) => {
    const sock = (m as { socket: Socket }).socket;
    sock.once('connect', () => requests.push(`tcp ${sock.remoteAddress}:${sock.remotePort}`));
  };
  dc.subscribe('undici:request:create', onUndici);
  dc.subscribe('http.client.request.start', onHttp);
  dc.subscribe('net.client.socket', onSocket);
  return {
    requests,
    stop() {
      dc.unsubscribe('undici:request:create', onUndici);
      dc.unsubscribe('http.client.request.start', onHttp);
      dc.unsubscribe('net.client.socket', onSocket);
    },
  };
}

// ---------------------------------------------------------------- attacker servers

export interface Attacker {
  url: string;
  port: number;
  hits: string[];
  close(): Promise<void>;
}

/** A loopback server that records every request and serves a JWKS / discovery document of the attacker's choosing. */
export async function startAttacker(
  serve: (req: IncomingMessage) => unknown = () => ({}),
): Promise<Attacker> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(serve(req)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------- exchange and verdicts

export type Response = Awaited<ReturnType<typeof postForm>>;

export function exchange(
  s: Stack,
  subjectToken: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  return postForm(`${s.sts.url}/token`, {
    ...EXCHANGE,
    subject_token: subjectToken,
    audience: PROJECT,
    ...extra,
  });
}

export function auditOf(s: Stack, requestId: string | undefined) {
  return s.audit.events.find((e) => e.requestId === requestId);
}

export interface RefusalOptions {
  attackers?: Attacker[];
  /** Extra form parameters (e.g. subject_token_type). */
  extra?: Record<string, string>;
  /** The refusal must not fetch any JWKS (default true: nothing a cheap check refuses may cost a fetch). */
  noJwksFetch?: boolean;
  /** Outbound requests other than to the STS itself are failures (default true). */
  noOutbound?: boolean;
}

/**
 * Sends the token and asserts the one refusal: 400 invalid_request with the
 * generic description, no GitLab call, no outbound request, no JWKS fetch,
 * attackers untouched, and an audit event carrying the detailed reason.
 * Returns the audited reason.
 */
export async function expectRefused(s: Stack, token: string, opts: RefusalOptions = {}): Promise<string> {
  const gitlabBefore = await gitlabApiCalls(s);
  const jwksBefore = jwksFetches(s);
  const watch = watchOutbound();
  let res: Response;
  try {
    res = await exchange(s, token, opts.extra);
  } finally {
    watch.stop();
  }
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json?.error, 'invalid_request', res.text);
  assert.equal(res.json.error_description, GENERIC, res.text);
  assert.match(String(res.json.request_id), /^[0-9a-f-]{36}$/);
  const own = [`:${new URL(s.sts.url).port}`];
  if (opts.noJwksFetch === false) own.push(`:${new URL(s.entra.url).port}`);
  const outbound = watch.requests.filter((r) => !own.some((o) => new RegExp(`${o}(/|$)`).test(r)));
  if (opts.noOutbound !== false) assert.deepEqual(outbound, [], 'the attack caused no outbound request');
  if (opts.noJwksFetch !== false) assert.equal(jwksFetches(s), jwksBefore, 'no JWKS fetch');
  assert.equal(await gitlabApiCalls(s), gitlabBefore, 'no GitLab call');
  for (const a of opts.attackers ?? []) assert.deepEqual(a.hits, [], `attacker ${a.url} got no request`);
  const event = auditOf(s, res.json.request_id);
  assert.ok(event, 'the refusal is audited');
  assert.equal(event.outcome, 'invalid_request');
  assert.ok(event.reason && event.reason.length > 0, 'the audit event says why');
  // Tokens over the exchange's 16 KiB cap are refused before they are even hashed.
  if (event.subjectTokenSha256 !== undefined) {
    assert.equal(event.subjectTokenSha256, createHash('sha256').update(token).digest('hex'));
  }
  return event.reason;
}

/** The audit stream holds no GitLab token, no JWT and none of the given secrets. */
export function assertAuditClean(
  s: Stack,
  secrets: string[] = [],
  skip: (e: Stack['audit']['events'][number]) => boolean = () => false,
): void {
  const lines = s.audit.events.filter((e) => !skip(e)).map((e) => JSON.stringify(e));
  assertNoSecrets(lines, 'audit stream');
  const all = [...secrets, ...seedSecrets(s)].filter((x) => x.length >= 6);
  for (const line of lines) {
    for (const secret of all)
      assert.ok(!line.includes(secret), `audit stream contains a client secret: ${line.slice(0, 120)}`);
  }
}

/** Every string under the seed whose key names a secret (the dev apps' client secrets). */
export function seedSecrets(s: Stack): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key: string) => {
    if (typeof v === 'string' && /secret|password/i.test(key)) out.push(v);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(s.seed, '');
  return out;
}
