import { createHash } from 'node:crypto';

/** Hex SHA-256: the only form in which a token may appear in logs, the ledger or audit events. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
