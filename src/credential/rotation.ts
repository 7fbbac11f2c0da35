/**
 * Rotating the STS's own GitLab token without ever losing the only working
 * credential. GitLab revokes the old token the moment it rotates it, and a
 * rotate call made again with the old value makes GitLab revoke the whole
 * token family (doc/api/personal_access_tokens.md, "Automatic reuse
 * detection"), so the new value must never exist only in a process that can die.
 *
 * The protocol (a row of the ledger's `credential_rotations`, ledger/credential-rotations.ts):
 *
 * 1. A rotation still pending from an earlier attempt is completed first (below).
 * 2. The value in the source is checked with `GET /personal_access_tokens/self`:
 *    it must be active (never rotate a revoked token).
 * 3. `begin`: a pending row with the old token's SHA-256, written before GitLab
 *    is called. It is also the lock: one rotation at a time across replicas and
 *    the `credential rotate` command.
 * 4. `POST /personal_access_tokens/self/rotate` with `expires_at`, exactly once.
 * 5. The moment GitLab answers: the new value becomes this process's, and the
 *    ledger row gets it sealed under the old value (seal.ts) — before anything else.
 * 6. The write-back: a new Key Vault version, or the file replaced atomically.
 * 7. The new token checked at GitLab, the row finished (`done`), its seal erased.
 *
 * Completing a pending row (at start-up on the leader, on every later pass, and
 * before `credential rotate`): the source holds the new token → finish it; the
 * source holds the old token and the row has the sealed new one → open it with
 * the old token, write it back, finish; the row has no new token (the process
 * died before GitLab answered, or in the instant between GitLab's answer and
 * step 5) → ask GitLab about the old token: still active → GitLab did not rotate,
 * the row is abandoned; refused → the new value is lost (`lost`: the residual
 * window, docs/operations.md), never retried with the old value.
 *
 * Test hook: with TANUKI_TEST=1, TANUKI_TEST_CREDENTIAL_STOP=<step> SIGKILLs the
 * process at that step (the fault tests); nothing else reads it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { GitlabRejectedError, GitlabUnavailableError } from '../gitlab/errors.ts';
import type { GitlabClient } from '../gitlab/types.ts';
import {
  type CredentialRotation,
  CredentialRotationBusyError,
  type CredentialRotationStore,
  MAX_ROTATION_REASON_CHARS,
} from '../ledger/credential-rotations.ts';
import { sha256Hex } from '../util/hash.ts';
import { utcDate } from '../util/utc-date.ts';
import { CredentialSourceError } from './errors.ts';
import type { CredentialHolder } from './holder.ts';
import { openSealedToken, sealToken } from './seal.ts';
import type { CredentialSource } from './source.ts';

/** Where the fault tests stop a rotation (TANUKI_TEST_CREDENTIAL_STOP). */
export const ROTATION_STEPS = [
  'before-gitlab',
  // The residual window: GitLab answered, nothing recorded yet (tests of the `lost` outcome only).
  'gitlab-answered',
  'after-gitlab',
  'after-writeback',
  'writeback-failed',
] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/**
 * How a rotation (or the completion of a pending one) ended; the label of
 * `tanuki_sts_credential_rotations_total`.
 *
 * - `success`: rotated, written back, checked.
 * - `recovered`: a pending rotation of an earlier attempt completed.
 * - `failed`: nothing rotated (GitLab refused, the source or ledger could not be read), or a pending
 *   rotation could not be settled yet (GitLab unreachable); tried again later.
 * - `writeback_failed`: rotated, but the source could not be written: this process uses the new
 *   token, the ledger holds it sealed, the write-back is retried.
 * - `abandoned`: a pending rotation GitLab never performed, closed.
 * - `lost`: GitLab rotated and the new value is gone (the residual window): see docs/operations.md.
 * - `busy`: another process is rotating.
 */
export const ROTATION_OUTCOMES = [
  'success',
  'recovered',
  'failed',
  'writeback_failed',
  'abandoned',
  'lost',
  'busy',
] as const;
export type RotationOutcome = (typeof ROTATION_OUTCOMES)[number];

export interface RotationResult {
  outcome: RotationOutcome;
  rotationId?: string;
  oldTokenSha256?: string;
  newTokenSha256?: string;
  oldTokenId?: number;
  newTokenId?: number;
  /** The new token's `expires_at`. */
  expiresAt?: string;
  /** The Key Vault version written. */
  version?: string;
  /** Why it failed, or what was settled; never a token. */
  reason?: string;
}

export interface LogLike {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface RotationDeps {
  source: CredentialSource;
  holder: CredentialHolder;
  gitlab: Pick<GitlabClient, 'getSelfToken' | 'rotateSelfToken'>;
  store: CredentialRotationStore;
  /** The new token's `expires_at` horizon, seconds (`gitlab.rotation.lifetime`). */
  lifetimeSeconds: number;
  /** Who rotates (recorded in the row). */
  owner: string;
  now: () => number;
  log: LogLike;
  /** Write-back attempts before `writeback_failed` (default 3), and the first delay between them. */
  writeAttempts?: number;
  writeRetryDelayMs?: number;
  /** The fault tests' stop (stopHookFromEnv). */
  stopAt?: (step: RotationStep) => void;
  /**
   * A pending record without GitLab's answer, begun by another process that may still be waiting
   * for that answer, is left alone (`busy`) until this old (default 2 min; the service passes at
   * least 3 × `gitlab.timeout`), unless its process is known to be gone (rotationOwner).
   */
  staleAfterMs?: number;
}

/** Who rotates, as the record says: `<via>:<host>:<pid>` (`serve`, `cli`). */
export function rotationOwner(via: string): string {
  return `${via}:${hostname().slice(0, 64)}:${process.pid}`;
}

/** The record's process ran on this host and runs no more (a SIGKILLed `serve`, a finished CLI run). */
export function ownerIsGone(owner: string): boolean {
  const m = /^[a-z]+:(.*):(\d+)$/.exec(owner);
  if (!m || m[1] !== hostname().slice(0, 64)) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

const DAY_MS = 86_400_000;

/**
 * The new token's `expires_at`: the date `lifetime` from now (the token stops working at 00:00
 * UTC that day, so it lives between `lifetime` − 1 day and `lifetime`), never earlier than the
 * day after tomorrow (a token born dead, or dying before the next pass, helps nobody).
 */
export function rotationExpiryDate(nowMs: number, lifetimeSeconds: number): string {
  return utcDate(Math.max(nowMs + lifetimeSeconds * 1000, nowMs + 2 * DAY_MS));
}

/** TANUKI_TEST=1 and TANUKI_TEST_CREDENTIAL_STOP=<step>: SIGKILL this process at that step. */
export function stopHookFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): ((step: RotationStep) => void) | undefined {
  const at = env.TANUKI_TEST_CREDENTIAL_STOP;
  if (env.TANUKI_TEST !== '1' || !at || !(ROTATION_STEPS as readonly string[]).includes(at)) return undefined;
  return (step) => {
    if (step === at) process.kill(process.pid, 'SIGKILL');
  };
}

const short = (text: string) => text.slice(0, MAX_ROTATION_REASON_CHARS);
const errText = (err: unknown) => short(err instanceof Error ? err.message : String(err));

/** Rotate now (steps 1-7 above). Never throws for an expected failure: the outcome says it. */
export async function rotateCredential(d: RotationDeps): Promise<RotationResult> {
  let pending: CredentialRotation | undefined;
  try {
    pending = await d.store.pending();
  } catch (err) {
    return { outcome: 'failed', reason: `the ledger cannot be read: ${errText(err)}` };
  }
  if (pending) {
    const settled = await settlePending(d, pending);
    // An attempt GitLab never performed is closed: go on. Anything else is this pass's result.
    if (settled.outcome !== 'abandoned') return settled;
  }

  let old: string;
  try {
    old = await d.source.read();
  } catch (err) {
    return { outcome: 'failed', reason: errText(err) };
  }
  d.holder.set(old, 'source');
  const oldSha = sha256Hex(old);
  let info: Awaited<ReturnType<typeof d.gitlab.getSelfToken>>;
  try {
    info = await d.gitlab.getSelfToken(old);
  } catch (err) {
    const why =
      err instanceof GitlabRejectedError && err.status === 401
        ? `GitLab refuses the token in ${d.source.description} (401): nothing was rotated`
        : errText(err);
    return { outcome: 'failed', oldTokenSha256: oldSha, reason: why };
  }
  if (!info.active || info.revoked) {
    return {
      outcome: 'failed',
      oldTokenSha256: oldSha,
      oldTokenId: info.id,
      reason: 'GitLab says the token is not active: nothing was rotated',
    };
  }

  const id = randomUUID();
  try {
    await d.store.begin({ id, startedAt: d.now(), owner: d.owner, oldSha256: oldSha, oldTokenId: info.id });
  } catch (err) {
    if (err instanceof CredentialRotationBusyError) {
      return { outcome: 'busy', oldTokenSha256: oldSha, reason: 'another rotation is pending' };
    }
    return {
      outcome: 'failed',
      oldTokenSha256: oldSha,
      reason: `the ledger cannot be written: ${errText(err)}`,
    };
  }
  d.stopAt?.('before-gitlab');

  const expiresAt = rotationExpiryDate(d.now(), d.lifetimeSeconds);
  const base = { rotationId: id, oldTokenSha256: oldSha, oldTokenId: info.id };
  let rotated: Awaited<ReturnType<typeof d.gitlab.rotateSelfToken>>;
  try {
    rotated = await d.gitlab.rotateSelfToken({ token: old, expiresAt });
  } catch (err) {
    if (err instanceof GitlabUnavailableError) {
      // GitLab may have rotated and the answer been lost: settle it as a restart would.
      d.log.warn({ rotationId: id, err: errText(err) }, 'GitLab credential rotation: no usable answer');
      const settled = await settleWithoutAnswer(d, id, old, base);
      return settled.outcome === 'abandoned'
        ? { ...settled, outcome: 'failed', reason: `GitLab did not rotate: ${errText(err)}` }
        : settled;
    }
    // A refusal (4xx): GitLab changed nothing.
    await finish(d, id, 'abandoned', errText(err));
    return { ...base, outcome: 'failed', reason: errText(err) };
  }

  d.stopAt?.('gitlab-answered');
  // Kept before anything else: this process uses it at once, the ledger holds it sealed.
  d.holder.set(rotated.token);
  const result: RotationResult = {
    ...base,
    outcome: 'success',
    newTokenSha256: sha256Hex(rotated.token),
    newTokenId: rotated.id,
    expiresAt: rotated.expiresAt ?? expiresAt,
  };
  try {
    await d.store.recordNewToken(id, {
      newSha256: result.newTokenSha256 as string,
      newTokenId: rotated.id,
      newExpiresAt: result.expiresAt,
      sealed: sealToken(rotated.token, old, id),
    });
  } catch (err) {
    // The write-back below is now the only durable copy: go on with it at once.
    d.log.error(
      { rotationId: id, err: errText(err) },
      'GitLab credential rotation: the ledger did not take the new token; writing it back now',
    );
  }
  d.stopAt?.('after-gitlab');
  return writeBackAndFinish(d, rotated.token, result);
}

/** Complete the pending rotation, if any (see the module comment); undefined when none is pending. */
export async function completePendingRotation(d: RotationDeps): Promise<RotationResult | undefined> {
  let p: CredentialRotation | undefined;
  try {
    p = await d.store.pending();
  } catch (err) {
    return { outcome: 'failed', reason: `the ledger cannot be read: ${errText(err)}` };
  }
  return p ? settlePending(d, p) : undefined;
}

async function settlePending(d: RotationDeps, p: CredentialRotation): Promise<RotationResult> {
  const base: RotationResult = {
    outcome: 'recovered',
    rotationId: p.id,
    oldTokenSha256: p.oldSha256,
    oldTokenId: p.oldTokenId,
    newTokenSha256: p.newSha256,
    newTokenId: p.newTokenId,
    expiresAt: p.newExpiresAt,
  };
  let inSource: string | undefined;
  try {
    inSource = await d.source.read();
  } catch (err) {
    d.log.warn({ rotationId: p.id, err: errText(err) }, 'GitLab credential: cannot read its source');
  }
  if (inSource !== undefined && p.newSha256 !== undefined && sha256Hex(inSource) === p.newSha256) {
    // Written back before the process stopped: check it and close the row.
    d.holder.set(inSource, 'source');
    return verifyAndFinish(d, inSource, base);
  }
  // The old token, from the source or still in this process (a write-back that keeps failing).
  const old = [inSource, d.holder.current()].find((v) => v !== undefined && sha256Hex(v) === p.oldSha256);
  if (old === undefined) {
    if (inSource === undefined) {
      return { ...base, outcome: 'failed', reason: 'the source cannot be read; the rotation stays pending' };
    }
    if (p.newSha256 !== undefined && d.holder.currentSha256() === p.newSha256) {
      // This process holds the new token, the source a third value someone put there since.
      d.log.warn({ rotationId: p.id }, 'GitLab credential: the source changed during a rotation; keeping it');
    }
    d.holder.set(inSource, 'source');
    await finish(d, p.id, 'abandoned', 'the source holds another token now');
    return { ...base, outcome: 'abandoned', reason: 'the source holds another token now' };
  }
  if (p.sealed !== undefined) {
    const value = openSealedToken(p.sealed, old, p.id);
    if (value === undefined || sha256Hex(value) !== p.newSha256) {
      await finish(d, p.id, 'lost', 'the sealed new token does not open with the old one');
      d.log.error({ rotationId: p.id }, 'GitLab credential rotation: the sealed new token does not open');
      return { ...base, outcome: 'lost', reason: 'the sealed new token does not open with the old one' };
    }
    d.holder.set(value);
    return writeBackAndFinish(d, value, base);
  }
  // GitLab may be answering the process that began it right now: settling it with a GET could
  // close a rotation about to succeed, and a rotation of our own would rotate the same token twice.
  const age = d.now() - p.startedAt;
  if (p.owner !== d.owner && !ownerIsGone(p.owner) && age < (d.staleAfterMs ?? 120_000)) {
    return { ...base, outcome: 'busy', reason: `a rotation by ${p.owner} is in progress` };
  }
  return settleWithoutAnswer(d, p.id, old, base);
}

/** A pending row without GitLab's answer: did GitLab rotate? Asked with a GET, never a rotate. */
async function settleWithoutAnswer(
  d: RotationDeps,
  id: string,
  old: string,
  base: Omit<RotationResult, 'outcome'>,
): Promise<RotationResult> {
  try {
    const info = await d.gitlab.getSelfToken(old);
    if (info.active && !info.revoked) {
      await finish(d, id, 'abandoned', 'GitLab did not rotate: the old token is still active');
      return {
        ...base,
        outcome: 'abandoned',
        reason: 'GitLab did not rotate: the old token is still active',
      };
    }
  } catch (err) {
    if (!(err instanceof GitlabRejectedError && err.status === 401)) {
      return {
        ...base,
        outcome: 'failed',
        reason: `cannot tell whether GitLab rotated (${errText(err)}); the rotation stays pending`,
      };
    }
  }
  const reason =
    'GitLab rotated the token but the new value was not recorded: the credential is lost; ' +
    'store a new token in the source (docs/operations.md, "If the credential is lost")';
  await finish(d, id, 'lost', reason);
  d.log.error({ rotationId: id }, reason);
  return { ...base, outcome: 'lost', reason };
}

async function writeBackAndFinish(
  d: RotationDeps,
  value: string,
  r: RotationResult,
): Promise<RotationResult> {
  const attempts = d.writeAttempts ?? 3;
  let delay = d.writeRetryDelayMs ?? 500;
  let version: string | undefined;
  for (let n = 1; ; n++) {
    try {
      version = (await d.source.write(value)).version;
      break;
    } catch (err) {
      const transient = !(err instanceof CredentialSourceError) || err.transient;
      if (!transient || n >= attempts) {
        d.log.error(
          { rotationId: r.rotationId, err: errText(err) },
          'GitLab credential rotation: the new token could not be written back; this process uses it and retries',
        );
        d.stopAt?.('writeback-failed');
        return { ...r, outcome: 'writeback_failed', reason: errText(err) };
      }
      await new Promise((res) => setTimeout(res, delay));
      delay *= 2;
    }
  }
  if (r.rotationId !== undefined) {
    await d.store.markWritten(r.rotationId, d.now()).catch((err) => {
      d.log.warn({ rotationId: r.rotationId, err: errText(err) }, 'GitLab credential: ledger not updated');
    });
  }
  d.stopAt?.('after-writeback');
  return verifyAndFinish(d, value, { ...r, ...(version !== undefined ? { version } : {}) });
}

async function verifyAndFinish(d: RotationDeps, value: string, r: RotationResult): Promise<RotationResult> {
  try {
    const info = await d.gitlab.getSelfToken(value);
    if (!info.active)
      d.log.error({ rotationId: r.rotationId }, 'GitLab credential: the new token is not active');
  } catch (err) {
    // Not a reason to keep the row: the value is in the source, which is what a restart reads.
    d.log.warn(
      { rotationId: r.rotationId, err: errText(err) },
      'GitLab credential: the new token not checked',
    );
  }
  if (r.rotationId !== undefined) await finish(d, r.rotationId, 'done');
  return r;
}

async function finish(
  d: RotationDeps,
  id: string,
  state: 'done' | 'abandoned' | 'lost',
  reason?: string,
): Promise<void> {
  try {
    await d.store.finish(id, {
      state,
      at: d.now(),
      ...(reason !== undefined ? { reason: short(reason) } : {}),
    });
  } catch (err) {
    // Left pending: the next pass settles it again (every branch above is safe to repeat).
    d.log.warn(
      { rotationId: id, err: errText(err) },
      'GitLab credential: the rotation record was not closed',
    );
  }
}
