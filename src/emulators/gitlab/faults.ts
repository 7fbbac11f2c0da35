/**
 * Fault injection for tests (`POST /_emulator/faults`) and GitLab's
 * authenticated API rate limit. Faults hit `/api/v4` (and git, with
 * `git: true`) before any work is done, so a failed request changes nothing.
 *
 * Rate-limit headers follow `doc/administration/settings/user_and_ip_rate_limits.md`
 * ("Response headers"): `RateLimit-Name`, `RateLimit-Limit` (the quota per
 * minute, rounded up), `RateLimit-Observed`, `RateLimit-Remaining`,
 * `RateLimit-Reset` (Unix time of the window end); a throttled request gets
 * `429` with the plain-text body `Retry later`, plus `Retry-After` (seconds)
 * and `RateLimit-ResetTime` (HTTP date).
 */
import { z } from 'zod';

const rateLimitSchema = z.strictObject({
  limit: z.number().int().positive(),
  periodSeconds: z.number().positive(),
});

export const faultSchema = z.strictObject({
  /** Delay before each affected request is handled. */
  latencyMs: z.number().int().min(0).max(60_000).optional(),
  /** Share of affected requests answered with one of `errorStatuses`. */
  errorRate: z.number().min(0).max(1).optional(),
  /** Statuses for `errorRate` (default [500]). */
  errorStatuses: z.array(z.number().int().min(400).max(599)).min(1).optional(),
  /** A per-token limit replacing the seed's; `null` turns rate limiting off. */
  rateLimit: rateLimitSchema.nullable().optional(),
  /** The next `count` affected requests get 429 with this `Retry-After`. */
  burst429: z
    .strictObject({ count: z.number().int().min(1), retryAfterSeconds: z.number().int().min(0) })
    .optional(),
  /** Share of affected requests whose connection is destroyed without an answer. */
  dropRate: z.number().min(0).max(1).optional(),
  /** Only requests whose path starts with this prefix (e.g. `/api/v4/projects`). */
  paths: z.string().optional(),
  /** Also apply to git smart HTTP (default: only `/api/v4`). */
  git: z.boolean().optional(),
});

export type FaultConfig = z.infer<typeof faultSchema>;
export type RateLimit = z.infer<typeof rateLimitSchema>;

export type FaultDecision =
  | { kind: 'none' }
  | { kind: 'drop' }
  | { kind: 'error'; status: number }
  | { kind: 'burst429'; retryAfterSeconds: number };

export class Faults {
  config: FaultConfig = {};
  private burstLeft = 0;

  set(config: FaultConfig): void {
    this.config = config;
    this.burstLeft = config.burst429?.count ?? 0;
  }

  clear(): void {
    this.set({});
  }

  /** The state for `GET /_emulator/faults`. */
  describe() {
    return { ...this.config, burst429Remaining: this.burstLeft };
  }

  applies(path: string, isGit: boolean): boolean {
    if (isGit && !this.config.git) return false;
    return this.config.paths === undefined || path.startsWith(this.config.paths);
  }

  latencyMs(): number {
    return this.config.latencyMs ?? 0;
  }

  decide(random: () => number = Math.random): FaultDecision {
    const c = this.config;
    if (c.dropRate !== undefined && c.dropRate > 0 && random() < c.dropRate) return { kind: 'drop' };
    if (this.burstLeft > 0 && c.burst429) {
      this.burstLeft--;
      return { kind: 'burst429', retryAfterSeconds: c.burst429.retryAfterSeconds };
    }
    if (c.errorRate !== undefined && c.errorRate > 0 && random() < c.errorRate) {
      const statuses = c.errorStatuses ?? [500];
      return { kind: 'error', status: statuses[Math.floor(random() * statuses.length)] ?? 500 };
    }
    return { kind: 'none' };
  }
}

export interface RateLimitOutcome {
  limited: boolean;
  headers: Record<string, string>;
  retryAfterSeconds: number;
}

/** Fixed windows per client key (the token's hash, or the address without a token). */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  check(key: string, name: string, limit: RateLimit, nowMs: number): RateLimitOutcome {
    const periodMs = limit.periodSeconds * 1000;
    let w = this.windows.get(key);
    if (!w || nowMs - w.start >= periodMs) {
      if (this.windows.size > 50_000) this.prune(nowMs, periodMs);
      w = { start: nowMs, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    const resetMs = w.start + periodMs;
    const limited = w.count > limit.limit;
    const retryAfterSeconds = Math.max(1, Math.ceil((resetMs - nowMs) / 1000));
    const headers: Record<string, string> = {
      'ratelimit-name': name,
      'ratelimit-limit': String(Math.ceil((limit.limit * 60) / limit.periodSeconds)),
      'ratelimit-observed': String(w.count),
      'ratelimit-remaining': String(Math.max(0, limit.limit - w.count)),
      'ratelimit-reset': String(Math.ceil(resetMs / 1000)),
    };
    if (limited) {
      headers['retry-after'] = String(retryAfterSeconds);
      headers['ratelimit-resettime'] = new Date(resetMs).toUTCString();
    }
    return { limited, headers, retryAfterSeconds };
  }

  reset(): void {
    this.windows.clear();
  }

  private prune(nowMs: number, periodMs: number): void {
    for (const [k, w] of this.windows) if (nowMs - w.start >= periodMs) this.windows.delete(k);
  }
}

/** Request counters for `GET /_emulator/stats`. */
export class Stats {
  apiRequests = 0;
  gitRequests = 0;
  byRoute: Record<string, number> = {};
  byStatus: Record<string, number> = {};
  git: Record<string, number> = {};

  countApi(routeKey: string): void {
    this.apiRequests++;
    this.byRoute[routeKey] = (this.byRoute[routeKey] ?? 0) + 1;
  }

  countStatus(status: number): void {
    this.byStatus[status] = (this.byStatus[status] ?? 0) + 1;
  }

  countGit(key: string): void {
    this.gitRequests++;
    this.git[key] = (this.git[key] ?? 0) + 1;
  }

  reset(): void {
    this.apiRequests = 0;
    this.gitRequests = 0;
    this.byRoute = {};
    this.byStatus = {};
    this.git = {};
  }

  /** `total` and `apiRequests` are the same number: /api/v4 requests since the last reset. */
  toJSON() {
    return {
      total: this.apiRequests,
      apiRequests: this.apiRequests,
      byRoute: this.byRoute,
      byStatus: this.byStatus,
      gitRequests: this.gitRequests,
      git: this.git,
    };
  }
}
