/**
 * The subject-token validator: the checks of this folder composed in a fixed,
 * cheap-first order (RFC 8725 §3):
 *
 *   1. size, structure, strict JSON          compact.ts
 *   2. header allow-list                     header.ts
 *   3. issuer from a fixed table (no fetch)  this file
 *   4. issuer-specific header rules          header.ts
 *   5. key by kid + alg (bounded refetch)    jwks-cache.ts, keyset.ts
 *   6. signature (jose, alg pinned)
 *   7. claims → Identity                     claims.ts
 *
 * The issuer table maps exact `iss` strings to configured sources. Generic
 * OIDC issuers are in it from the start; Entra's v1/v2 issuer strings come
 * from the tenant's discovery documents, loaded by `init()`. A token whose
 * `iss` is not in the table costs no request, with one exception: when the
 * token's unverified `tid` is a configured Entra tenant whose discovery has
 * not loaded yet, that tenant's discovery (a configured URL, single flight,
 * at most once per cooldown) is loaded first.
 */
import { entraIdentity, oidcIdentity } from './claims.ts';
import { decodeCompact } from './compact.ts';
import { readDiscovery, type SourceSpec, sourcesFor } from './discovery.ts';
import { SubjectTokenCodes as C, quote, refuse, SubjectTokenError, unavailable } from './errors.ts';
import { createJsonFetcher, DEFAULT_FETCH_TIMEOUT_MS, type FetchJson } from './fetch-json.ts';
import { checkHeader, checkHeaderForIssuer } from './header.ts';
import type { IssuerConfig } from './issuer-config.ts';
import { JwksCache } from './jwks-cache.ts';
import type { Verifier } from './keyset.ts';
import { verifyCompactSignature } from './signature.ts';
import type { Identity } from './types.ts';

export interface ValidatorOptions {
  issuers: Record<string, IssuerConfig>;
  /** Allowed clock skew for exp/nbf/iat, seconds (config `tokens.clockSkew`, default 300). */
  clockSkewSeconds: number;
  /** Epoch milliseconds; injectable for tests. */
  now?: () => number;
  /** Injectable; default: undici, per-issuer CA, 5 s timeout, 256 KiB cap, https only except loopback. */
  fetchJson?: FetchJson;
  /** Least time between two fetches of one JWKS for unknown kids (and of a failed discovery). Default 5 min. */
  jwksRefetchCooldownMs?: number;
  /** Background key refresh period; 0 disables the timer. Default 1 h. */
  backgroundRefreshMs?: number;
  /** Per-request deadline for discovery and JWKS fetches. Default 5 s. */
  fetchTimeoutMs?: number;
}

export interface TokenValidator {
  /** The identity a valid token stands for; throws SubjectTokenError otherwise. */
  validate(token: string): Promise<Identity>;
  /** Load discovery and JWKS of every issuer. Failures are recorded (see `ready`), never thrown. */
  init(): Promise<void>;
  /** True when every issuer has signing keys loaded. */
  ready(): boolean;
  /** Stop background timers (and close the default fetcher's connections). */
  close(): void;
  stats(): { jwksFetches: Record<string, number> };
}

/** What `createTokenValidator` returns: the contract plus a hook for tests and operators. */
export interface TokenValidatorHandle extends TokenValidator {
  /** Run one background refresh pass now (what the timer does). */
  refreshNow(): Promise<void>;
}

export const DEFAULT_COOLDOWN_MS = 5 * 60_000;
export const DEFAULT_BACKGROUND_REFRESH_MS = 60 * 60_000;

interface Source {
  spec: SourceSpec;
  /** The exact `iss` of this source's tokens, once known. */
  issuer?: string;
  jwks?: JwksCache;
  lastAttemptAt?: number;
  lastError?: string;
  inflight?: Promise<void>;
}

export function createTokenValidator(o: ValidatorOptions): TokenValidatorHandle {
  const now = o.now ?? Date.now;
  const cooldownMs = o.jwksRefetchCooldownMs ?? DEFAULT_COOLDOWN_MS;
  const backgroundMs = o.backgroundRefreshMs ?? DEFAULT_BACKGROUND_REFRESH_MS;
  const timeoutMs = o.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const ownFetcher = o.fetchJson ? undefined : createJsonFetcher();
  const fetchJson: FetchJson = o.fetchJson ?? ownFetcher!.fetchJson;

  const fetches: Record<string, number> = {};
  const sources: Source[] = [];
  const table = new Map<string, Source>();
  const caches = new Map<string, JwksCache>();

  for (const [name, config] of Object.entries(o.issuers)) {
    fetches[name] = 0;
    for (const spec of sourcesFor(name, config)) {
      const source: Source = { spec };
      sources.push(source);
      if (spec.issuer !== undefined) register(source, spec.issuer, true);
      if (spec.jwksUri !== undefined) attachJwks(source, spec.jwksUri);
    }
  }
  assertDistinctEntraTenants();

  function register(source: Source, issuer: string, atStart: boolean): void {
    const other = table.get(issuer);
    if (other && other !== source) {
      const msg = `issuer ${quote(issuer)} is claimed by both "${other.spec.issuerName}" and "${source.spec.issuerName}"`;
      if (atStart) throw new Error(`tanuki-sts identity: ${msg}`);
      throw new Error(msg);
    }
    source.issuer = issuer;
    table.set(issuer, source);
  }

  function assertDistinctEntraTenants(): void {
    const seen = new Map<string, string>();
    for (const [name, c] of Object.entries(o.issuers)) {
      if (c.kind !== 'entra') continue;
      const key = `${c.authorityHost.replace(/\/+$/, '')}|${c.tenant}`;
      const prev = seen.get(key);
      if (prev)
        throw new Error(`tanuki-sts identity: issuers "${prev}" and "${name}" name the same Entra tenant`);
      seen.set(key, name);
    }
  }

  function attachJwks(source: Source, url: string): void {
    const { issuerName, config } = source.spec;
    const key = `${issuerName}\n${url}`;
    let cache = caches.get(key);
    if (!cache) {
      cache = new JwksCache({
        url,
        caFile: config.caFile,
        fetchJson,
        timeoutMs,
        cooldownMs,
        now,
        onFetch: () => {
          fetches[issuerName] = (fetches[issuerName] ?? 0) + 1;
        },
      });
      caches.set(key, cache);
    }
    source.jwks = cache;
  }

  /** Fetch and check one source's discovery document (single flight). Never throws. */
  function discover(source: Source): Promise<void> {
    source.inflight ??= (async () => {
      source.lastAttemptAt = now();
      const { spec } = source;
      try {
        const doc = await fetchJson(spec.discoveryUrl!, { caFile: spec.config.caFile, timeoutMs });
        const { issuer, jwksUri } = readDiscovery(spec, doc);
        register(source, issuer, false);
        attachJwks(source, jwksUri);
        source.lastError = undefined;
      } catch (err) {
        source.lastError = (err as Error).message || 'discovery failed';
      }
    })().finally(() => {
      source.inflight = undefined;
    });
    return source.inflight;
  }

  const discoveryCooldownLeftMs = (s: Source) =>
    s.lastAttemptAt === undefined ? 0 : s.lastAttemptAt + cooldownMs - now();

  /** Discovery loaded, loading it if allowed (not cooling down after a failure). */
  async function ensureDiscovered(s: Source): Promise<boolean> {
    if (s.jwks) return true;
    if (s.inflight) await s.inflight;
    else if (discoveryCooldownLeftMs(s) <= 0) await discover(s);
    return s.jwks !== undefined;
  }

  function metadataUnavailable(s: Source[], what: string): SubjectTokenError {
    const detail = s.map((x) => `${x.spec.discoveryUrl}: ${x.lastError ?? 'not loaded'}`).join('; ');
    const left = Math.max(1_000, ...s.map(discoveryCooldownLeftMs));
    return unavailable(`${what}: issuer metadata unavailable (${detail})`, left / 1000);
  }

  async function lookup(payload: Record<string, unknown>): Promise<Source> {
    const { iss, tid } = payload;
    if (typeof iss !== 'string')
      throw refuse(C.ISSUER_UNKNOWN, `iss is missing or not a string: ${quote(iss)}`);
    const known = table.get(iss);
    if (known) return known;
    const pending =
      typeof tid === 'string'
        ? sources.filter((s) => s.spec.config.kind === 'entra' && s.spec.config.tenant === tid && !s.jwks)
        : [];
    if (pending.length === 0) throw refuse(C.ISSUER_UNKNOWN, `iss ${quote(iss)} is not a configured issuer`);
    await Promise.all(pending.map(ensureDiscovered));
    const found = table.get(iss);
    if (found) return found;
    const still = pending.filter((s) => !s.jwks);
    if (still.length > 0) throw metadataUnavailable(still, `iss ${quote(iss)} not yet known`);
    throw refuse(C.ISSUER_UNKNOWN, `iss ${quote(iss)} is not a configured issuer`);
  }

  async function verificationKey(source: Source, kid: string | undefined, alg: string): Promise<Verifier> {
    if (!(await ensureDiscovered(source)) || !source.jwks) {
      throw metadataUnavailable([source], `issuer "${source.spec.issuerName}"`);
    }
    try {
      return await source.jwks.key(kid, alg);
    } catch (err) {
      if (err instanceof SubjectTokenError) throw err;
      // importJWK refused the published key (malformed members).
      throw refuse(
        C.KEY_MISMATCH,
        `key ${quote(kid ?? null, 40)} cannot be imported for ${alg}: ${(err as Error).message}`,
      );
    }
  }

  async function validate(token: string): Promise<Identity> {
    const { header, payload } = decodeCompact(token);
    const h = checkHeader(header);
    const source = await lookup(payload);
    const { config, issuerName, version } = source.spec;
    checkHeaderForIssuer(h, config.kind);
    const key = await verificationKey(source, h.kid, h.alg);
    // The alg is pinned by the header allow-list and the key selection (RFC 8725 §3.1);
    // signature.ts says why this is node:crypto rather than jose's compactVerify.
    let valid: boolean;
    try {
      valid = verifyCompactSignature(token, h.alg, key);
    } catch {
      valid = false; // OpenSSL refused the signature's encoding: as good as a wrong signature
    }
    if (!valid) {
      throw refuse(C.SIGNATURE, `signature verification failed (${h.alg}, kid ${quote(h.kid ?? null, 40)})`);
    }
    const ctx = {
      issuerName,
      issuer: source.issuer!,
      nowSeconds: Math.floor(now() / 1000),
      clockSkewSeconds: o.clockSkewSeconds,
    };
    return config.kind === 'entra'
      ? entraIdentity(payload, config, version!, ctx)
      : oidcIdentity(payload, config, ctx);
  }

  /** One refresh pass: retry missing discovery and keys (after the cooldown), refresh keys older than the period. */
  async function refreshNow(): Promise<void> {
    await Promise.all(sources.filter((s) => !s.jwks && discoveryCooldownLeftMs(s) <= 0).map(discover));
    const due = new Set<JwksCache>();
    for (const s of sources) {
      const c = s.jwks;
      if (!c) continue;
      const stale = c.loadedAt === undefined || now() - c.loadedAt >= backgroundMs;
      const mayRetry =
        c.lastAttemptAt === undefined || now() - c.lastAttemptAt >= Math.min(cooldownMs, backgroundMs);
      if (stale && mayRetry) due.add(c);
    }
    await Promise.all([...due].map((c) => c.refresh()));
  }

  let timer: NodeJS.Timeout | undefined;
  if (backgroundMs > 0) {
    timer = setInterval(() => void refreshNow(), Math.min(backgroundMs, cooldownMs));
    timer.unref();
  }

  return {
    validate,
    async init() {
      await Promise.all(
        sources.map(async (s) => {
          if (!s.jwks) await (s.inflight ?? discover(s));
          if (s.jwks && !s.jwks.loaded) await s.jwks.refresh();
        }),
      );
    },
    ready: () => sources.every((s) => s.jwks?.loaded === true),
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      void ownFetcher?.close();
    },
    stats: () => ({ jwksFetches: { ...fetches } }),
    refreshNow,
  };
}
