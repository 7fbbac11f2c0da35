/**
 * listGrants' WHERE clause, written once for both stores: each passes its
 * placeholder style and the two expressions that differ (ASCII lower-casing,
 * a byte-order comparison of ids). Every value is bound, never spliced.
 */
import { type GrantFilter, type GrantState, LedgerError } from './types.ts';

export interface FilterDialect {
  /** A placeholder for `value` (`?` / `$n`), recording the value. */
  bind(value: unknown): string;
  /** `col` lower-cased in ASCII only (what asciiLower does to the value). */
  asciiLower(col: string): string;
  /** The `id` column compared and ordered byte by byte (the same order on every store). */
  id: string;
}

const STATES: ReadonlySet<GrantState> = new Set(['minting', 'active', 'revoking', 'revoked', 'failed']);

/** Lower-cases A-Z only, as the stores' expressions do (GUIDs and GitLab paths are ASCII). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** `WHERE … ORDER BY … LIMIT …` for `f` (no WHERE when nothing narrows). */
export function grantFilterClause(f: GrantFilter, d: FilterDialect): string {
  if (!Number.isInteger(f.limit) || f.limit < 1)
    throw new LedgerError('listGrants: limit must be at least 1');
  const where: string[] = [];
  if (f.policy !== undefined) where.push(`policy = ${d.bind(f.policy)}`);
  if (f.clientId !== undefined) {
    where.push(`${d.asciiLower('client_id')} = ${d.bind(asciiLower(f.clientId))}`);
  }
  if (f.subject !== undefined) where.push(`subject = ${d.bind(f.subject)}`);
  if (f.target !== undefined) {
    const byPath = `${d.asciiLower('target_ref')} = ${d.bind(asciiLower(f.target))}`;
    where.push(
      /^[0-9]{1,19}$/.test(f.target)
        ? `(${byPath} OR CAST(target_id AS TEXT) = ${d.bind(String(BigInt(f.target)))})`
        : byPath,
    );
  }
  if (f.states !== undefined) {
    for (const s of f.states) if (!STATES.has(s)) throw new LedgerError(`listGrants: unknown state ${s}`);
    where.push(f.states.length === 0 ? '1 = 0' : `state IN (${f.states.map((s) => d.bind(s)).join(', ')})`);
  }
  if (f.ttl !== undefined) {
    if (f.now === undefined) throw new LedgerError('listGrants: ttl needs now');
    where.push(`expires_at ${f.ttl === 'ended' ? '<=' : '>'} ${d.bind(f.now)}`);
  }
  if (f.after !== undefined) {
    const t = d.bind(f.after.createdAt);
    where.push(
      `(created_at > ${t} OR (created_at = ${d.bind(f.after.createdAt)} AND ${d.id} > ${d.bind(f.after.id)}))`,
    );
  }
  return (
    `${where.length ? `WHERE ${where.join(' AND ')} ` : ''}` +
    `ORDER BY created_at, ${d.id} LIMIT ${d.bind(f.limit)}`
  );
}
