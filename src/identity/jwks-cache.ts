/**
 * One issuer JWKS URL and its cached keys (signing-key-rollover.md: cache,
 * refresh in the background, on an unknown kid refresh at most once per
 * 5 minutes; CVE-2024-34079: bounded refetches).
 *
 * - Single flight: concurrent callers share one fetch.
 * - An unknown kid refetches only when the last on-demand refetch and the last
 *   failed fetch (of any kind) are both at least `cooldownMs` old; otherwise
 *   it is refused without a fetch. A successful start-up or background fetch
 *   does not use up the budget, so a key rotated in just after start-up is
 *   still found.
 * - A failed fetch keeps the previous keys (an outage does not stop validation
 *   of tokens signed with known keys) and is remembered, so that an unknown
 *   kid during the cooldown after a failure is *retryable* (503 + Retry-After),
 *   while an unknown kid after a successful fetch is an invalid token.
 */
import { SubjectTokenCodes as C, quote, refuse, unavailable } from './errors.ts';
import type { FetchJson } from './fetch-json.ts';
import { KeySet, type Verifier } from './keyset.ts';

export interface JwksCacheOptions {
  url: string;
  caFile?: string;
  fetchJson: FetchJson;
  timeoutMs: number;
  cooldownMs: number;
  now: () => number;
  /** Called once per fetch attempt (stats). */
  onFetch?: () => void;
}

export class JwksCache {
  keys: KeySet | undefined;
  loadedAt: number | undefined;
  lastAttemptAt: number | undefined;
  lastFailedAt: number | undefined;
  lastOnDemandAt: number | undefined;
  lastError: string | undefined;
  private inflight: Promise<void> | undefined;

  constructor(private readonly o: JwksCacheOptions) {}

  get url(): string {
    return this.o.url;
  }

  /** True when some keys are loaded (perhaps stale). */
  get loaded(): boolean {
    return this.keys !== undefined && this.keys.size > 0;
  }

  /** Fetch now (single flight, no cooldown check). Never throws; the outcome is in `lastError`. */
  refresh(onDemand = false): Promise<void> {
    if (onDemand) this.lastOnDemandAt = this.o.now();
    this.inflight ??= this.fetchOnce().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchOnce(): Promise<void> {
    this.lastAttemptAt = this.o.now();
    this.o.onFetch?.();
    try {
      const doc = await this.o.fetchJson(this.o.url, { caFile: this.o.caFile, timeoutMs: this.o.timeoutMs });
      // A well-formed document replaces the set wholesale: removed keys stop working at once.
      this.keys = new KeySet(doc);
      this.loadedAt = this.o.now();
      this.lastError = undefined;
    } catch (err) {
      this.lastFailedAt = this.o.now();
      this.lastError = (err as Error).message || 'JWKS fetch failed';
    }
  }

  /** Time left before an unknown kid may cause another fetch. */
  private cooldownLeftMs(): number {
    const since = Math.max(this.lastOnDemandAt ?? -Infinity, this.lastFailedAt ?? -Infinity);
    return since + this.o.cooldownMs - this.o.now();
  }

  /** The verification key for kid/alg, refetching at most once per cooldown for an unknown kid. */
  async key(kid: string | undefined, alg: string): Promise<Verifier> {
    const first = this.keys?.select(kid, alg);
    if (first?.kind === 'found') return first.key;

    const label = kid === undefined ? 'a kid-less key' : `kid ${quote(kid, 40)}`;
    if (this.inflight) {
      await this.inflight;
    } else if (this.cooldownLeftMs() <= 0) {
      await this.refresh(true);
    } else if (this.lastError !== undefined) {
      throw unavailable(
        `${label} unknown and the last JWKS fetch from ${this.o.url} failed (${this.lastError}); cooling down`,
        this.cooldownLeftMs() / 1000,
      );
    } else {
      throw refuse(C.KID_UNKNOWN, `${label} not in the JWKS of ${this.o.url} (refetch cooling down)`);
    }

    const second = this.keys?.select(kid, alg);
    if (second?.kind === 'found') return second.key;
    if (this.lastError !== undefined) {
      throw unavailable(
        `${label} unknown and the JWKS refetch from ${this.o.url} failed (${this.lastError})`,
        Math.max(1, this.cooldownLeftMs() / 1000),
      );
    }
    throw refuse(C.KID_UNKNOWN, `${label} not in the JWKS of ${this.o.url}, even after a refetch`);
  }
}
