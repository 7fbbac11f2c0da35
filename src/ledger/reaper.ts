/**
 * The reaper: revokes every grant in GitLab when its TTL ends (or when a
 * client's POST /revoke could not reach GitLab), within seconds, without any
 * help from the client. GitLab's own expiry has day granularity, so this loop
 * is what makes a 15-minute token last 15 minutes.
 *
 * One pass: fail grants stuck in `minting` (crash mid-call; the reconciler
 * finds their tokens by name); settle the minting grants of processes that are
 * gone (a replica that died mid-exchange: failed, then whatever GitLab created
 * for them revoked, found by name); then claim due grants in batches (leased
 * in the store, so replicas do not double up) and revoke them with bounded
 * concurrency, writing the results in batched transactions. With replicas, only
 * the leader runs a reaper (leader.ts).
 *
 * Being a good GitLab citizen:
 * - `RateLimit-Remaining` at or below a reserve → pause until `RateLimit-Reset`;
 * - 429 → pause everything until `Retry-After` has passed;
 * - 5xx / network errors → back off this grant (exponential, jittered) and
 *   pause the pass briefly, so a backlog does not hammer a GitLab that is down.
 *
 * A grant is revoked when no token carrying its name is active in GitLab any
 * more, not when the DELETE of its recorded id succeeds or answers 404: the
 * holder may have rotated it (revoke-grant.ts).
 */
import {
  backoffDelay,
  type GitlabClient,
  GitlabRejectedError,
  GitlabUnavailableError,
} from '../gitlab/index.ts';
import { createPassLoop } from './pass-loop.ts';
import {
  type GrantRevocation,
  GrantStillActiveError,
  type RevokingGitlab,
  revokeGrantTokens,
} from './revoke-grant.ts';
import type { Grant, LedgerLog, LedgerStore } from './types.ts';

export type ReapOutcome = GrantRevocation;

export interface ReaperOptions {
  store: LedgerStore;
  gitlab: RevokingGitlab & Pick<GitlabClient, 'rateLimit'>;
  /** This deployment's `server.id`: token names carry it (names.ts). */
  serverId: string;
  /** Revocations in flight at once (default 32). */
  concurrency?: number;
  /** How often to look for due grants (default 5 s); the reaper also wakes for the next due grant. */
  intervalMs?: number;
  now?: () => number;
  log?: LedgerLog;
  /** After a grant's revocation is recorded (audit, metrics); `descendants`: rotated copies also revoked. */
  onRevoked?: (grant: Grant, outcome: ReapOutcome, descendants: number) => void;
  /** After a failed attempt (metrics). */
  onFailed?: (grant: Grant, error: Error) => void;
  /**
   * After a minting grant of a process that is gone was settled: `failed` when GitLab could not be
   * asked (the grant stays failed; the reconciler revokes any token named for it).
   */
  onRecovered?: (grant: Grant, outcome: ReapOutcome | 'failed') => void;
  /** Grants claimed per store call (default 256). */
  batchSize?: number;
  /** How long a claimed grant stays reserved for this reaper (default 60 s). */
  leaseMs?: number;
  /** A grant still minting after this long is presumed orphaned (default 2 min; GitLab's timeout is far shorter). */
  staleMintingMs?: number;
  /** First retry delay after a failed revocation (default 1 s), doubling with jitter … */
  retryBaseMs?: number;
  /** … up to this (default 60 s). */
  retryMaxMs?: number;
  /** Pause when GitLab's RateLimit-Remaining is at or below this (default 5). */
  rateLimitReserve?: number;
  /** Longest pause for a rate limit (guards against a bogus reset time; default 2 min). */
  maxPauseMs?: number;
  /** Successful revocations written per transaction (default 64). */
  flushSize?: number;
  random?: () => number;
}

export interface ReapResult {
  revoked: number;
  failed: number;
}

export interface Reaper {
  /** Run a first pass (everything that fell due while the STS was down), then keep going in the background. */
  start(): Promise<void>;
  /** Stop the loop; in-flight revocations finish, claimed but unstarted grants are released. */
  stop(): Promise<void>;
  /** One pass now (waits for a running pass first). */
  runOnce(): Promise<ReapResult>;
  /** Until when the reaper holds off GitLab (epoch ms), if it does. */
  pausedUntil(): number | undefined;
}

const noopLog: LedgerLog = { info() {}, warn() {}, error() {}, debug() {} };

export function createReaper(o: ReaperOptions): Reaper {
  const now = o.now ?? Date.now;
  const log = o.log ?? noopLog;
  const concurrency = Math.max(1, o.concurrency ?? 32);
  const intervalMs = o.intervalMs ?? 5000;
  const batchSize = Math.max(1, o.batchSize ?? 256);
  const leaseMs = o.leaseMs ?? 60_000;
  const staleMintingMs = o.staleMintingMs ?? 120_000;
  const retryBaseMs = o.retryBaseMs ?? 1000;
  const retryMaxMs = o.retryMaxMs ?? 60_000;
  const reserve = o.rateLimitReserve ?? 5;
  const maxPauseMs = o.maxPauseMs ?? 120_000;
  const flushSize = Math.max(1, o.flushSize ?? 64);
  const random = o.random ?? Math.random;

  let pausedUntil = 0;
  let failureStreak = 0;

  const paused = (): boolean => now() < pausedUntil;
  const pauseUntil = (t: number, why: string): void => {
    const capped = Math.min(t, now() + maxPauseMs);
    if (capped > pausedUntil) {
      pausedUntil = capped;
      log.warn({ pausedUntil: new Date(capped).toISOString(), reason: why }, 'reaper pausing GitLab calls');
    }
  };

  /** Consecutive failures back the whole reaper off (1 s, 2 s, … jittered), not just the grant. */
  const pauseAfterFailure = (t: number, why: string): void => {
    failureStreak++;
    pauseUntil(t + backoffDelay(failureStreak - 1, retryBaseMs, retryMaxMs, random), why);
  };

  /** GitLab's rate-limit headers, as the client last saw them. */
  function honourRateLimit(): void {
    const rl = o.gitlab.rateLimit();
    const t = now();
    if (rl.retryAfterUntil !== undefined && rl.retryAfterUntil > t)
      pauseUntil(rl.retryAfterUntil, 'Retry-After');
    if (rl.remaining !== undefined && rl.remaining <= reserve && rl.resetAt !== undefined && rl.resetAt > t) {
      pauseUntil(rl.resetAt, `RateLimit-Remaining ${rl.remaining}`);
    }
  }

  /**
   * Minting grants whose process is gone (failOrphanedMinting: never this process's, never a
   * live replica's): failed, then every token named for them revoked and the grant marked revoked.
   */
  async function settleOrphans(): Promise<void> {
    let orphans: Grant[];
    try {
      orphans = await o.store.failOrphanedMinting();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reaper: orphan sweep failed');
      return;
    }
    if (orphans.length === 0) return;
    log.warn(
      { grants: orphans.slice(0, 20).map((g) => g.id), count: orphans.length },
      'grants left minting by a process that is gone marked failed; revoking what GitLab created for them',
    );
    const report = (g: Grant, outcome: ReapOutcome | 'failed'): void => {
      try {
        o.onRecovered?.(g, outcome);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reaper: onRecovered hook failed');
      }
    };
    let unavailable = false;
    for (const g of orphans) {
      if (unavailable || loop.stopping || paused()) {
        report(g, 'failed');
        continue;
      }
      try {
        const r = await revokeGrantTokens(o.gitlab, o.serverId, g);
        await o.store.markRevoked(g.id, now());
        report(g, r.outcome);
      } catch (err) {
        // Left failed: the reconciler revokes any token named for it on its next pass.
        log.warn({ grantId: g.id, err: (err as Error).message }, 'reaper: settling an orphaned grant failed');
        report(g, 'failed');
        if (err instanceof GitlabUnavailableError) unavailable = true;
      }
    }
  }

  async function pass(): Promise<ReapResult> {
    const result: ReapResult = { revoked: 0, failed: 0 };
    const t0 = now();
    try {
      const stale = await o.store.failStaleMinting(t0 - staleMintingMs);
      if (stale.length > 0) {
        log.warn(
          { grants: stale.slice(0, 20), count: stale.length },
          'grants stuck in minting marked failed',
        );
      }
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reaper: stale-minting sweep failed');
    }
    honourRateLimit();
    if (paused() || loop.stopping) return result;
    await settleOrphans();
    if (paused() || loop.stopping) return result;

    const queue: Grant[] = [];
    let exhausted = false;
    let claiming: Promise<void> | undefined;
    const done: Array<{ grant: Grant; outcome: ReapOutcome; descendants: number }> = [];

    const refill = (): Promise<void> => {
      claiming ??= (async () => {
        try {
          const got = await o.store.claimDue(now(), batchSize, leaseMs);
          if (got.length < batchSize) exhausted = true;
          queue.push(...got);
        } catch (err) {
          exhausted = true;
          log.error({ err: (err as Error).message }, 'reaper: claiming due grants failed');
        } finally {
          claiming = undefined;
        }
      })();
      return claiming;
    };

    const next = async (): Promise<Grant | undefined> => {
      for (;;) {
        if (loop.stopping) return undefined;
        honourRateLimit();
        if (paused()) return undefined;
        const g = queue.shift();
        if (g) return g;
        if (exhausted) return undefined;
        await refill();
      }
    };

    const flush = async (): Promise<void> => {
      const batch = done.splice(0);
      if (batch.length === 0) return;
      try {
        await o.store.markRevokedMany(
          batch.map((b) => b.grant.id),
          now(),
        );
      } catch (err) {
        // The leases expire and the next pass tries again: GitLab then answers 404 → revoked.
        log.error(
          { err: (err as Error).message, count: batch.length },
          'reaper: recording revocations failed',
        );
        return;
      }
      for (const b of batch) {
        result.revoked++;
        try {
          o.onRevoked?.(b.grant, b.outcome, b.descendants);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'reaper: onRevoked hook failed');
        }
      }
    };

    const handle = async (g: Grant): Promise<void> => {
      try {
        const r = await revokeGrantTokens(o.gitlab, o.serverId, g);
        failureStreak = 0;
        if (r.descendants > 0) {
          log.warn(
            { grantId: g.id, descendants: r.descendants },
            'reaper: the grant had rotated copies of its token; revoked them too',
          );
        }
        done.push({ grant: g, outcome: r.outcome, descendants: r.descendants });
        if (done.length >= flushSize) await flush();
      } catch (err) {
        await failed(g, err as Error);
        result.failed++;
      }
    };

    /** Record a failed attempt and when to try again. */
    const failed = async (g: Grant, err: Error): Promise<void> => {
      const t = now();
      let nextAt = t + backoffDelay(g.attempts, retryBaseMs, retryMaxMs, random);
      if (err instanceof GrantStillActiveError) {
        // A holder rotating as fast as we revoke: come back at once, without holding back other grants.
        nextAt = t + Math.min(retryBaseMs, 1000);
      } else if (err instanceof GitlabUnavailableError) {
        if (err.status === 429 || err.retryAfterFromServer) {
          pauseUntil(t + err.retryAfterSeconds * 1000, `HTTP ${err.status ?? ''} Retry-After`);
          nextAt = Math.max(nextAt, pausedUntil);
        } else {
          pauseAfterFailure(t, err.message);
        }
      } else if (err instanceof GitlabRejectedError && err.status !== 401) {
        // A refusal about this target (403: no rights there; 404: the STS cannot see it): this grant
        // backs off, the others go on. No shortcut for a token past its GitLab expiry date either: a
        // rotation may have given it a new one.
      } else {
        // 401: the STS's own token is refused, and every other grant will fail the same way.
        pauseAfterFailure(t, err.message);
      }
      if (err instanceof GrantStillActiveError) {
        // Someone keeps replacing the grant's token as fast as we revoke it: an operator should know.
        log.error(
          { grantId: g.id, gitlabUserId: g.gitlabUserId, attempts: g.attempts + 1 },
          'reaper: a grant keeps getting rotated while it is revoked; retrying',
        );
      }
      log.warn(
        { grantId: g.id, gitlabTokenId: g.gitlabTokenId, attempts: g.attempts + 1, err: err.message },
        'reaper: revocation failed, will retry',
      );
      try {
        o.onFailed?.(g, err);
        await o.store.recordRevokeFailure(g.id, err.message, nextAt);
      } catch (e) {
        log.error({ err: (e as Error).message }, 'reaper: recording a failure failed');
      }
    };

    const worker = async (): Promise<void> => {
      for (let g = await next(); g; g = await next()) await handle(g);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await flush();
    if (queue.length > 0) {
      // Claimed but not started (stopping, or paused for GitLab): give them back now, not after the lease.
      const ids = queue.splice(0).map((g) => g.id);
      await o.store
        .reschedule(ids, Math.max(now(), pausedUntil))
        .catch((err: Error) => log.error({ err: err.message }, 'reaper: releasing leases failed'));
    }
    if (result.revoked + result.failed > 0) log.info({ ...result }, 'reaper pass');
    return result;
  }

  // Triggers that arrive during a pass are coalesced into one more; a timer wakes the reaper
  // for the next due grant (or the end of a pause), so a 1-minute grant does not wait for the interval.
  const loop = createPassLoop({
    name: 'reaper',
    pass,
    intervalMs,
    log,
    now,
    whileBusy: 'coalesce',
    firstPass: 'await',
    nextWakeAt: async () => {
      const at = await o.store.nextDueAt();
      return paused() ? Math.max(at ?? pausedUntil, pausedUntil) : at;
    },
  });

  return {
    start: loop.start,
    stop: loop.stop,
    runOnce: loop.runOnce,
    pausedUntil() {
      return paused() ? pausedUntil : undefined;
    },
  };
}
