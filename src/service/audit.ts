/**
 * The audit trail: one JSON line per exchange and per revocation, success or
 * failure, to stdout or a file. Tokens appear only as SHA-256; the reason for
 * a refusal is recorded here and never sent to the caller.
 */
import pino from 'pino';

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
      logger.info({ audit: true, ...event });
    },
    close: () =>
      new Promise((resolve) => {
        logger.flush(() => resolve());
      }),
  };
}

/** An in-memory sink for tests. */
export function createMemoryAuditSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, write: (e) => void events.push({ ...e }), close: async () => {} };
}
