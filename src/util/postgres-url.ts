/**
 * The PostgreSQL URL of `store.postgres.url`, shared by the configuration
 * (validation) and the ledger (connection): `postgres://user[:password]@host[:port][/database][?sslmode=…]`.
 *
 * The parser never puts the URL, or any part of it, in an error message: the
 * URL may carry a password (after `${VAR}` expansion).
 *
 * TLS is decided here, once, stricter than libpq:
 * - a loopback host without `sslmode` (or with `sslmode=disable`): plain TCP;
 * - any other host: TLS, the server's certificate verified against the system
 *   CAs (or `store.postgres.caFile`) and its host name checked, unless the URL
 *   says `sslmode=disable` (an explicit, documented opt-out);
 * - `sslmode=require` and `verify-ca` verify like `verify-full` (libpq's
 *   `require` does not verify: a man in the middle would see the ledger);
 * - `allow` and `prefer` are refused: they fall back to plain text silently.
 */
import { isLoopbackHost } from './url.ts';

export type PostgresSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface PostgresUrl {
  host: string;
  port: number;
  user?: string;
  password?: string;
  database?: string;
  /** TLS on (verified) or off, as decided above. */
  tls: boolean;
  sslmode?: PostgresSslMode;
}

const SSL_MODES = new Set<string>(['disable', 'require', 'verify-ca', 'verify-full']);

export class PostgresUrlError extends Error {
  readonly code = 'ERR_POSTGRES_URL';
}

/** A percent-encoded URL part, or undefined when empty. */
function decoded(part: string): string | undefined {
  if (part === '') return undefined;
  try {
    return decodeURIComponent(part);
  } catch {
    throw new PostgresUrlError('the user, password or database is not valid percent-encoding');
  }
}

/**
 * Parse and check a PostgreSQL URL. `hasCaFile`: `store.postgres.caFile` is
 * set (TLS then, whatever the host; `sslmode=disable` contradicts it).
 * Throws PostgresUrlError with a message that quotes nothing of the URL.
 */
export function parsePostgresUrl(value: string, hasCaFile = false): PostgresUrl {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new PostgresUrlError('expected a URL like postgres://user@host:5432/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PostgresUrlError('expected a postgres:// or postgresql:// URL');
  }
  if (u.hash) throw new PostgresUrlError('a fragment (#…) is not allowed');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new PostgresUrlError('a host is required (Unix sockets are not supported)');
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) throw new PostgresUrlError('the host is not a valid host name');
  const port = u.port === '' ? 5432 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PostgresUrlError('port out of range');
  const path = u.pathname.replace(/^\//, '');
  const database = decoded(path);
  const user = decoded(u.username);
  const password = decoded(u.password);
  if (database !== undefined && (database.includes('/') || database.length > 63)) {
    throw new PostgresUrlError('the database name is not valid');
  }
  let sslmode: PostgresSslMode | undefined;
  for (const [key, v] of u.searchParams) {
    if (key !== 'sslmode') {
      // Named only when it looks like a parameter name: the query is part of a secret-bearing URL.
      const shown = /^[a-z_]{1,32}$/.test(key) ? ` "${key}"` : '';
      throw new PostgresUrlError(`unsupported URL parameter${shown} (only sslmode is allowed)`);
    }
    if (sslmode !== undefined) throw new PostgresUrlError('sslmode is given twice');
    if (!SSL_MODES.has(v)) {
      throw new PostgresUrlError(
        'sslmode must be disable, require, verify-ca or verify-full (allow and prefer fall back to plain text)',
      );
    }
    sslmode = v as PostgresSslMode;
  }
  if (hasCaFile && sslmode === 'disable') {
    throw new PostgresUrlError('sslmode=disable contradicts caFile');
  }
  const tls = hasCaFile || (sslmode !== undefined ? sslmode !== 'disable' : !isLoopbackHost(host));
  return {
    host,
    port,
    tls,
    ...(user !== undefined ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(database !== undefined ? { database } : {}),
    ...(sslmode !== undefined ? { sslmode } : {}),
  };
}
