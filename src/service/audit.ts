/**
 * The audit trail: one JSON line per exchange and per revocation, success or
 * failure, to stdout or a file. Tokens appear only as SHA-256; the reason for
 * a refusal is recorded here and never sent to the caller.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { Grant } from '../ledger/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { TOKEN_PATTERN } from '../util/token-patterns.ts';

/**
 * Replaces each token-shaped run in a free-text field (a caller can put a token
 * anywhere: a resource path, a policy name) by the first 16 hex digits of its
 * SHA-256. What counts as token-shaped: util/token-patterns.ts.
 */
export function redactTokens(text: string): string {
  return text.replace(TOKEN_PATTERN, (m) => `[redacted sha256:${sha256Hex(m).slice(0, 16)}]`);
}

export interface AuditEvent {
  event: 'exchange' | 'revoke' | 'reap' | 'reconcile' | 'recover' | 'reload' | 'credential-rotation';
  requestId?: string;
  outcome: string;
  reason?: string;
  clientIp?: string;
  issuer?: string;
  tenant?: string;
  appId?: string;
  objectId?: string;
  subject?: string;
  subjectTokenId?: string;
  subjectTokenSha256?: string;
  /** How the client authenticated at the token endpoint: `client_secret_basic`, `client_secret_post`, `none`. */
  clientAuth?: string;
  /** The confidential client (`clients.NAME`) the request authenticated as. */
  client?: string;
  /** A public client's `client_id` (no secret): as sent when a plain name, else `sha256:…`. */
  clientId?: string;
  policy?: string;
  /** The target's canonical full path (as GitLab named it when the grant was minted). */
  target?: string;
  targetKind?: string;
  /** The target's numeric GitLab id: what the token was minted on. */
  targetId?: number;
  scopes?: string[];
  role?: string;
  ttlSeconds?: number;
  grantId?: string;
  gitlabTokenId?: number;
  /** The token's bot user in GitLab. */
  gitlabUserId?: number;
  /** `deploy-token` for a deploy token (`grant.via`); absent for an access token. */
  tokenKind?: string;
  /** A deploy token's username (`gitlab+deploy-token-N`): not a secret. */
  gitlabUsername?: string;
  /** Rotated copies of the grant's token found and revoked with it (a holder rotated it). */
  descendants?: number;
  tokenSha256?: string;
  durationMs?: number;
  /** `reload`: the configuration keys a reload applied, and those that need a restart (not applied). */
  applied?: string[];
  restartRequired?: string[];
  /**
   * `credential-rotation` (the STS's own GitLab token; `gitlabTokenId` is the new token's id):
   * the ledger's record, the SHA-256 of the old and the new token (never a value), the token
   * rotated, the new `expires_at`, the Key Vault version written, and who rotated (`leader`, `cli`).
   */
  rotationId?: string;
  oldTokenSha256?: string;
  newTokenSha256?: string;
  previousGitlabTokenId?: number;
  expiresAt?: string;
  version?: string;
  via?: string;
}

/** What an audit event says of the grant whose token it revokes (POST /revoke, the reaper). */
export function grantAuditFields(grant: Grant): Partial<AuditEvent> {
  return {
    grantId: grant.id,
    gitlabTokenId: grant.gitlabTokenId,
    policy: grant.policy,
    issuer: grant.issuer,
    subject: grant.subject,
    target: grant.targetRef,
    targetKind: grant.targetKind,
    targetId: grant.targetId,
    ...(grant.tokenKind === 'deploy-token' ? { tokenKind: grant.tokenKind } : {}),
  };
}

export interface AuditSink {
  write(event: AuditEvent): void;
  close(): Promise<void>;
}

export function createAuditSink(options: { file?: string; destination?: NodeJS.WritableStream }): AuditSink {
  if (!options.destination && options.file) createPrivateFile(options.file);
  const dest =
    options.destination ??
    (options.file
      ? pino.destination({ dest: options.file, mkdir: true, sync: false, mode: 0o600 })
      : pino.destination(1));
  const logger = pino(
    { base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg', name: 'tanuki-sts.audit' },
    dest,
  );
  return {
    write(event) {
      logger.info({ audit: true, ...redactFreeText(event) });
    },
    close: async () => {
      // A file opens asynchronously: wait for it, flush, then end it, so nothing is written
      // (or opened) after close() resolved, e.g. into a folder that is about to go away.
      const file = !options.destination && options.file ? (dest as unknown as SonicBoomLike) : undefined;
      if (file && file.fd < 0) await new Promise<void>((resolve) => file.once('ready', () => resolve()));
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
      if (file) {
        await new Promise<void>((resolve) => {
          file.once('close', () => resolve());
          file.end();
        });
      }
    },
  };
}

/** The parts of pino's file destination (sonic-boom) that close() uses. */
interface SonicBoomLike {
  fd: number;
  once(event: 'ready' | 'close', listener: () => void): unknown;
  end(): void;
}

/**
 * The audit file is private to the STS's user whatever the umask: its folder is
 * created 0700, the file 0600 before anything is written (an existing one loses
 * group and other access), as the ledger's (src/ledger/sqlite-files.ts).
 */
function createPrivateFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  closeSync(openSync(file, 'a', 0o600));
  const { mode } = statSync(file);
  if ((mode & 0o077) !== 0) chmodSync(file, mode & 0o700);
}

/** The fields that may quote caller input, redacted; everything else is ours or a hash. */
function redactFreeText(event: AuditEvent): AuditEvent {
  const out = { ...event };
  if (out.reason !== undefined) out.reason = redactTokens(out.reason);
  if (out.target !== undefined) out.target = redactTokens(out.target);
  if (out.clientId !== undefined) out.clientId = redactTokens(out.clientId);
  return out;
}

/** An in-memory sink for tests; it redacts exactly as the real one does. */
export function createMemoryAuditSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, write: (e) => void events.push(redactFreeText(e)), close: async () => {} };
}
