/**
 * The running STS's side of its GitLab credential, one per process:
 *
 * - every `gitlab.credentialRefresh` (and once at start): read the source again
 *   (a replica picks up a token rotated elsewhere), and ask GitLab about the
 *   current token (`GET /personal_access_tokens/self`: id, scopes, expiry) for
 *   the expiry gauge and readiness;
 * - on the leader only, with a ledger: complete a pending rotation (at start-up
 *   that is the crash recovery), else rotate when `gitlab.rotation` says it is
 *   due — the token is `every` old, or expires within `every`. A failed attempt
 *   is tried again after 30 s, doubling up to the refresh interval.
 * - `ready()`: false when the token has expired, or has under 24 h left while
 *   its rotation fails.
 */
import type { GitlabClient, PersonalTokenInfo } from '../gitlab/types.ts';
import type { CredentialRotationStore } from '../ledger/credential-rotations.ts';
import type { CredentialHolder } from './holder.ts';
import {
  completePendingRotation,
  type LogLike,
  type RotationDeps,
  type RotationResult,
  type RotationStep,
  rotateCredential,
} from './rotation.ts';
import type { CredentialSource } from './source.ts';
import type { RotationSettings } from './types.ts';

const DAY_MS = 86_400_000;
const FIRST_RETRY_MS = 30_000;
/** Outcomes after which the credential counts as "rotation failing" for readiness. */
const FAILING = new Set(['failed', 'writeback_failed', 'lost']);

export interface CredentialManagerOptions {
  source: CredentialSource;
  holder: CredentialHolder;
  gitlab: Pick<GitlabClient, 'getSelfToken' | 'rotateSelfToken'>;
  /** The ledger's rotation records; without it nothing is rotated or recovered here. */
  store?: CredentialRotationStore;
  rotation?: RotationSettings;
  refreshSeconds: number;
  isLeader: () => boolean;
  owner: string;
  now?: () => number;
  log: LogLike;
  /** Every rotation attempt and completion (audit, metrics). */
  onRotation?: (r: RotationResult) => void;
  stopAt?: (step: RotationStep) => void;
  /** See RotationDeps.staleAfterMs. */
  staleAfterMs?: number;
}

export interface CredentialState {
  /** The last answer of `GET /personal_access_tokens/self` for the current token. */
  token?: PersonalTokenInfo;
  checkedAt?: number;
  /** The last rotation attempt or completion made by this process. */
  lastAttempt?: RotationResult & { at: number };
}

export interface CredentialManager {
  /** The first pass now (in the background), then every refresh interval. */
  start(): void;
  /** Stop the timer and wait for a pass in flight. */
  stop(): Promise<void>;
  /** One pass now (tests). */
  tick(): Promise<void>;
  /** Rotate now, whatever `due` says (a pending rotation is completed instead). Needs the ledger. */
  rotateNow(): Promise<RotationResult>;
  state(): CredentialState;
  /** Seconds until the token expires: +Inf without expiry, NaN while unknown. */
  expirySeconds(): number;
  ready(): boolean;
}

/** `expires_at` (a date) as the instant the token stops working: 00:00 UTC that day. */
export function expiryInstant(expiresAt: string | null): number {
  return expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(`${expiresAt}T00:00:00Z`);
}

/** Whether the token should be rotated now: `every` old, or expiring within `every`. */
export function rotationDue(token: PersonalTokenInfo, every: number, nowMs: number): boolean {
  const created = Date.parse(token.createdAt);
  const age = Number.isFinite(created) ? nowMs - created : Number.POSITIVE_INFINITY;
  return age >= every * 1000 || expiryInstant(token.expiresAt) - nowMs <= every * 1000;
}

export function createCredentialManager(o: CredentialManagerOptions): CredentialManager {
  const now = o.now ?? Date.now;
  const state: CredentialState = {};
  let timer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let failures = 0;
  let notBefore = 0;

  const deps = (): RotationDeps | undefined =>
    o.store
      ? {
          source: o.source,
          holder: o.holder,
          gitlab: o.gitlab,
          store: o.store,
          lifetimeSeconds: o.rotation?.lifetime ?? 7 * 86_400,
          owner: o.owner,
          now,
          log: o.log,
          stopAt: o.stopAt,
          ...(o.staleAfterMs !== undefined ? { staleAfterMs: o.staleAfterMs } : {}),
        }
      : undefined;

  function record(r: RotationResult): RotationResult {
    state.lastAttempt = { ...r, at: now() };
    if (r.outcome !== 'busy') {
      if (FAILING.has(r.outcome)) {
        failures++;
        const delay = Math.min(FIRST_RETRY_MS * 2 ** (failures - 1), o.refreshSeconds * 1000);
        notBefore = now() + delay;
        if (!stopped) {
          clearTimeout(retryTimer);
          retryTimer = setTimeout(() => void queue(), delay);
          retryTimer.unref();
        }
      } else {
        failures = 0;
        notBefore = 0;
      }
    }
    try {
      o.onRotation?.(r);
    } catch {
      // audit and metrics never break a rotation
    }
    return r;
  }

  async function checkToken(): Promise<void> {
    try {
      await o.holder.refresh();
    } catch (err) {
      o.log.warn(
        { err: (err as Error).message },
        'GitLab credential: cannot read its source; keeping the current token',
      );
    }
    try {
      state.token = await o.gitlab.getSelfToken();
      state.checkedAt = now();
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'GitLab credential: cannot check the current token');
    }
  }

  async function pass(): Promise<void> {
    await checkToken();
    const d = deps();
    if (!d || !o.isLeader() || stopped) return;
    if (now() < notBefore) return;
    const pending = await completePendingRotation(d);
    if (pending) {
      record(pending);
      if (pending.outcome !== 'abandoned') {
        if (pending.outcome === 'recovered') await checkToken();
        return;
      }
    }
    if (o.rotation && state.token && rotationDue(state.token, o.rotation.every, now())) {
      const r = record(await rotateCredential(d));
      if (r.outcome === 'success' || r.outcome === 'writeback_failed') await checkToken();
    }
  }

  function queue<T>(fn: () => Promise<T> = pass as () => Promise<T>): Promise<T> {
    const next = running.then(fn);
    running = next.then(
      () => {},
      () => {},
    );
    return next;
  }

  return {
    start() {
      stopped = false;
      void queue().catch((err: Error) => o.log.warn({ err: err.message }, 'GitLab credential pass failed'));
      timer = setInterval(
        () =>
          void queue().catch((err: Error) =>
            o.log.warn({ err: err.message }, 'GitLab credential pass failed'),
          ),
        o.refreshSeconds * 1000,
      );
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(retryTimer);
      await running;
    },
    tick: () => queue(),
    rotateNow() {
      return queue(async () => {
        const d = deps();
        if (!d) return { outcome: 'failed', reason: 'no ledger to record the rotation in' } as RotationResult;
        const r = record(await rotateCredential(d));
        await checkToken();
        return r;
      });
    },
    state: () => ({ ...state }),
    expirySeconds() {
      if (!state.token) return Number.NaN;
      const at = expiryInstant(state.token.expiresAt);
      return at === Number.POSITIVE_INFINITY ? at : (at - now()) / 1000;
    },
    ready() {
      if (!state.token) return true;
      const left = expiryInstant(state.token.expiresAt) - now();
      if (left <= 0) return false;
      const failing = state.lastAttempt !== undefined && FAILING.has(state.lastAttempt.outcome);
      return !(left < DAY_MS && o.rotation !== undefined && failing);
    },
  };
}
