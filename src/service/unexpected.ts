/**
 * Bugs, not answers: anything thrown that is not an `StsError` (nor a client
 * error Fastify itself raised). The caller gets the generic `server_error`
 * (`ServerError`, no detail); the operational log gets the error with its
 * stack; the audit records the outcome `error`. An error message may quote
 * input, so token-shaped text is redacted from message and stack alike.
 */
import type { Logger } from 'pino';
import { redactTokens } from './audit.ts';
import { ServerError } from './errors.ts';

/** The audit outcome of a request that ended in a bug. */
export const UNEXPECTED_OUTCOME = 'error';

/** Logs `err` (with its stack) and returns the ServerError to answer with. */
export function unexpectedError(
  log: Pick<Logger, 'error'>,
  err: unknown,
  where: { requestId?: string; during: string },
): ServerError {
  const e = err instanceof Error ? err : undefined;
  const message = redactTokens(e ? e.message : describe(err)).slice(0, 500);
  log.error(
    {
      requestId: where.requestId,
      // Not under `err`: pino's error serializer would rewrite `type` of this plain object.
      error: { type: e?.name ?? typeof err, message, stack: e?.stack ? redactTokens(e.stack) : undefined },
    },
    `unexpected error during ${where.during}`,
  );
  return new ServerError(`unexpected: ${message}`);
}

function describe(value: unknown): string {
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
