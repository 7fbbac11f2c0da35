/**
 * The STS's own GitLab credential, wired: the configured source (`gitlab.token`:
 * Key Vault, a file, a variable, inline) read at start-up, the holder the GitLab
 * client takes its token from, the ledger's rotation records, and what a
 * rotation leaves behind (the audit event, the metric). Used by `startSts` and by
 * `tanuki-sts credential status|rotate` (src/cli/commands/credential.ts).
 */
import { existsSync } from 'node:fs';
import type { StsConfig } from '../config/index.ts';
import {
  type CredentialHolder,
  type CredentialSource,
  CredentialSourceError,
  createCredentialHolder,
  type LogLike,
  openCredentialSource,
  openSealedToken,
  type PendingLookup,
  type RotationResult,
  rotateCredential,
  rotationOwner,
  stopHookFromEnv,
} from '../credential/index.ts';
import { createGitlabClient, GitlabRejectedError, type PersonalTokenInfo } from '../gitlab/index.ts';
import {
  type CredentialRotation,
  type CredentialRotationStore,
  openPostgresCredentialRotations,
  openSqliteCredentialRotations,
} from '../ledger/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { type AuditEvent, createAuditSink } from './audit.ts';
import { migrateLedger } from './ledger-backend.ts';

/** Raised when the credential cannot be read at start-up: the message is the whole story, no stack. */
export class CredentialStartError extends Error {
  readonly code = 'ERR_CREDENTIAL_START';
  constructor(message: string) {
    super(message);
    this.name = 'CredentialStartError';
  }
}

export interface StsCredential {
  source: CredentialSource;
  holder: CredentialHolder;
  close(): Promise<void>;
}

/** The ledger's pending rotation of `old`, opened with `old` (holder.ts, `unauthorized`). */
export function pendingLookup(rotations: () => CredentialRotationStore | undefined): PendingLookup {
  return async (old) => {
    const store = rotations();
    const p = store ? await store.pending() : undefined;
    if (!p || p.oldSha256 !== sha256Hex(old)) return { state: 'none' };
    if (p.sealed === undefined) return { state: 'waiting' };
    const value = openSealedToken(p.sealed, old, p.id);
    return value === undefined ? { state: 'none' } : { state: 'ready', value };
  };
}

/**
 * Open the source and read the token: a source that cannot be read stops the start with a
 * CredentialStartError naming it and Azure's (or the file system's) error, never the value.
 */
export async function openStsCredential(
  config: StsConfig,
  o: { log: LogLike; rotations?: () => CredentialRotationStore | undefined },
): Promise<StsCredential> {
  const source = openCredentialSource(config.gitlab.tokenSource, {
    value: config.gitlab.token,
    timeoutMs: Math.max(30_000, config.gitlab.timeout * 1000),
  });
  let initial: string;
  try {
    initial = await source.read();
  } catch (err) {
    await source.close().catch(() => {});
    if (err instanceof CredentialSourceError) throw new CredentialStartError(`gitlab.token: ${err.message}`);
    throw err;
  }
  const holder = createCredentialHolder({
    source,
    initial,
    ...(o.rotations ? { pending: pendingLookup(o.rotations) } : {}),
    log: o.log,
  });
  holder.onChange((c) =>
    o.log.info(
      { from: c.from.slice(0, 16), to: c.to.slice(0, 16), why: c.why },
      'GitLab credential replaced',
    ),
  );
  return { source, holder, close: () => source.close() };
}

/** How long a pending rotation without GitLab's answer may still be waiting for it (rotation.ts). */
export function rotationStaleAfterMs(config: StsConfig): number {
  return Math.max(120_000, 3 * config.gitlab.timeout * 1000);
}

/** The audit event of a rotation attempt (SHA-256s only). */
export function rotationAuditEvent(r: RotationResult, via: 'leader' | 'cli'): AuditEvent {
  return {
    event: 'credential-rotation',
    outcome: r.outcome,
    via,
    ...(r.rotationId !== undefined ? { rotationId: r.rotationId } : {}),
    ...(r.oldTokenSha256 !== undefined ? { oldTokenSha256: r.oldTokenSha256 } : {}),
    ...(r.newTokenSha256 !== undefined ? { newTokenSha256: r.newTokenSha256 } : {}),
    ...(r.oldTokenId !== undefined ? { previousGitlabTokenId: r.oldTokenId } : {}),
    ...(r.newTokenId !== undefined ? { gitlabTokenId: r.newTokenId } : {}),
    ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
    ...(r.version !== undefined ? { version: r.version } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}

/** What `tanuki-sts credential status --json` prints (never the token). */
export interface CredentialStatus {
  /** `keyVault`, `file`, `env` or `inline`. */
  source: StsConfig['gitlab']['tokenSource']['kind'];
  /** Where: the vault and secret, the file, the variable. */
  location: string;
  /** GitLab's numeric id of the token, its name, scopes and expiry (`YYYY-MM-DD`, or null: none). */
  tokenId: number;
  name: string;
  scopes: string[];
  expiresAt: string | null;
  active: boolean;
  /** The last rotation that completed (the ledger's record), or null. */
  lastRotation: RotationSummary | null;
  /** A rotation left pending (a crash, a failing write-back), or null. */
  pendingRotation: RotationSummary | null;
  /** `gitlab.rotation` in seconds, or null when off. */
  rotation: { every: number; lifetime: number } | null;
}

export interface RotationSummary {
  rotationId: string;
  startedAt: string;
  finishedAt?: string;
  previousTokenId?: number;
  tokenId?: number;
  expiresAt?: string;
  /** pending only: whether GitLab's answer (the new token, sealed) is recorded, and written back. */
  answered?: boolean;
  writtenBack?: boolean;
}

function summary(r: CredentialRotation): RotationSummary {
  return {
    rotationId: r.id,
    startedAt: new Date(r.startedAt).toISOString(),
    ...(r.finishedAt !== undefined ? { finishedAt: new Date(r.finishedAt).toISOString() } : {}),
    ...(r.oldTokenId !== undefined ? { previousTokenId: r.oldTokenId } : {}),
    ...(r.newTokenId !== undefined ? { tokenId: r.newTokenId } : {}),
    ...(r.newExpiresAt !== undefined ? { expiresAt: r.newExpiresAt } : {}),
    ...(r.state === 'pending'
      ? { answered: r.newSha256 !== undefined, writtenBack: r.writtenAt !== undefined }
      : {}),
  };
}

/**
 * The ledger's rotation records for a command (`credential status|rotate`), in this process.
 * `migrate`: bring the schema up to date first (rotate); otherwise a SQLite ledger that does not
 * exist yet is not created (status), and answers undefined.
 */
export async function openRotationRecords(
  config: StsConfig,
  o: { migrate: boolean },
): Promise<CredentialRotationStore | undefined> {
  if (o.migrate) await migrateLedger(config);
  const pg = config.store.postgres;
  if (pg) return openPostgresCredentialRotations({ url: pg.url, caFile: pg.caFile, schema: pg.schema });
  const path = config.store.sqlite as string;
  if (!o.migrate && path !== ':memory:' && !existsSync(path)) return undefined;
  return openSqliteCredentialRotations(path);
}

/** `tanuki-sts credential status`: the source, GitLab's view of the token, the ledger's rotations. */
export async function credentialStatus(
  config: StsConfig,
  o: { log: LogLike; warn?: (line: string) => void },
): Promise<CredentialStatus> {
  const warn = (what: string, err: unknown) =>
    o.warn?.(
      `the ledger's rotation records cannot be read (${what}: ${(err as Error).message.split('\n')[0]})`,
    );
  let records: CredentialRotationStore | undefined;
  try {
    records = await openRotationRecords(config, { migrate: false });
  } catch (err) {
    warn('open', err);
  }
  try {
    // With the records, a token a pending rotation replaced (its write-back failing) is found too.
    const cred = await openStsCredential(config, { log: o.log, rotations: () => records });
    const gitlab = createGitlabClient({
      url: config.gitlab.url,
      token: cred.holder,
      caFile: config.gitlab.caFile,
      timeoutMs: config.gitlab.timeout * 1000,
    });
    try {
      let info: PersonalTokenInfo;
      try {
        info = await gitlab.getSelfToken();
      } catch (err) {
        if (err instanceof GitlabRejectedError && err.status === 401) {
          throw new CredentialStartError(
            `GitLab refuses the token in ${cred.source.description} (401): it was revoked, rotated elsewhere or has expired`,
          );
        }
        throw err;
      }
      let last: CredentialRotation | undefined;
      let pending: CredentialRotation | undefined;
      try {
        [last, pending] = records ? await Promise.all([records.lastDone(), records.pending()]) : [];
      } catch (err) {
        warn('read', err);
      }
      return {
        source: config.gitlab.tokenSource.kind,
        location: cred.source.description,
        tokenId: info.id,
        name: info.name,
        scopes: info.scopes,
        expiresAt: info.expiresAt,
        active: info.active,
        lastRotation: last ? summary(last) : null,
        pendingRotation: pending ? summary(pending) : null,
        rotation: config.gitlab.rotation ?? null,
      };
    } finally {
      await gitlab.close();
      await cred.close();
    }
  } finally {
    await records?.close();
  }
}

/**
 * `tanuki-sts credential rotate`: rotate now, in this process, with the same protocol and ledger
 * records as the leader (a rotation left pending is completed instead). The audit event goes to
 * `audit.file`, else to stderr. Throws RotationError-like errors with the outcome's reason.
 */
export async function rotateCredentialNow(
  config: StsConfig,
  o: { log: LogLike; now?: () => number },
): Promise<RotationResult & { location: string }> {
  const spec = config.gitlab.tokenSource;
  if (spec.kind === 'env' || spec.kind === 'inline') {
    throw new CredentialStartError(
      `gitlab.token is ${spec.kind === 'env' ? 'an environment variable' : 'inline'}: a rotated token has nowhere to go (use gitlab.token: { keyVault: … } or { file: … })`,
    );
  }
  const records = (await openRotationRecords(config, { migrate: true })) as CredentialRotationStore;
  const audit = createAuditSink(
    config.audit.file ? { file: config.audit.file } : { destination: process.stderr },
  );
  try {
    const cred = await openStsCredential(config, { log: o.log, rotations: () => records });
    const gitlab = createGitlabClient({
      url: config.gitlab.url,
      token: cred.holder,
      caFile: config.gitlab.caFile,
      timeoutMs: config.gitlab.timeout * 1000,
    });
    try {
      const r = await rotateCredential({
        source: cred.source,
        holder: cred.holder,
        gitlab,
        store: records,
        lifetimeSeconds: config.gitlab.rotation?.lifetime ?? 7 * 86_400,
        owner: rotationOwner('cli'),
        staleAfterMs: rotationStaleAfterMs(config),
        now: o.now ?? Date.now,
        log: o.log,
        stopAt: stopHookFromEnv(),
      });
      audit.write(rotationAuditEvent(r, 'cli'));
      return { ...r, location: cred.source.description };
    } finally {
      await gitlab.close();
      await cred.close();
    }
  } finally {
    await records.close();
    await audit.close();
  }
}
