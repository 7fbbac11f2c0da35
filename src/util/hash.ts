import { hash } from 'node:crypto';

/**
 * Hex SHA-256: the only form in which a token may appear in logs, the ledger or
 * audit events. `crypto.hash` (Node 20.12+) is the one-shot form: no Hash
 * object per call, which matters on the refusal path where every subject token
 * is hashed for the audit line.
 */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}
