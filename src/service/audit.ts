/**
 * The audit trail: one JSON line per exchange and per revocation, success or
 * failure, to stdout or a file. Tokens appear only as SHA-256; the reason for
 * a refusal is recorded here and never sent to the caller.
 */
import pino from 'pino';
import { sha256Hex } from '../util/hash.ts';

/**
 * Token-shaped text in a free-text field (a caller can put a token anywhere: a
 * resource path, a policy name): GitLab token prefixes (doc/security/tokens,
 * "Token prefixes") and JWT-shaped runs, in any case, since messages may
 * lowercase what they quote.
 */
const TOKEN_SHAPED =
  /\b(?:gl(?:pat|oas|dt|rt|rtr|cbt|ptt|ft|imt|agent|ffct|soat|wt)-[a-z0-9_-]{8,}|eyj[a-z0-9_-]{8,}\.[a-z0-9_-]*\.?[a-z0-9_-]*)/gi;

/** Replaces each token-shaped run by the first 16 hex digits of its SHA-256. */
export function redactTokens(text: string): string {
  return text.replace(TOKEN_SHAPED, (m) => `[redacted sha256:${sha256Hex(m).slice(0, 16)}]`);
}

export interface AuditEvent {
  event: 'exchange' | 'revoke' | 'reap' | 'reconcile' | 'recover';
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
  policy?: string;
  target?: string;
  targetKind?: string;
  scopes?: string[];
  role?: string;
  ttlSeconds?: number;
  grantId?: string;
  gitlabTokenId?: number;
  tokenSha256?: string;
  durationMs?: number;
}

export interface AuditSink {
  write(event: AuditEvent): void;
  close(): Promise<void>;
}

export function createAuditSink(options: { file?: string; destination?: NodeJS.WritableStream }): AuditSink {
  const dest =
    options.destination ??
    (options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination(1));
  const logger = pino(
    { base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg', name: 'tanuki-sts.audit' },
    dest,
  );
  return {
    write(event) {
      logger.info({ audit: true, ...redactFreeText(event) });
    },
    close: () =>
      new Promise((resolve) => {
        logger.flush(() => resolve());
      }),
  };
}

/** The fields that may quote caller input, redacted; everything else is ours or a hash. */
function redactFreeText(event: AuditEvent): AuditEvent {
  const out = { ...event };
  if (out.reason !== undefined) out.reason = redactTokens(out.reason);
  if (out.target !== undefined) out.target = redactTokens(out.target);
  return out;
}

/** An in-memory sink for tests; it redacts exactly as the real one does. */
export function createMemoryAuditSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, write: (e) => void events.push(redactFreeText(e)), close: async () => {} };
}
