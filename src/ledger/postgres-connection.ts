/**
 * How the PostgreSQL ledger connects: the `pg` client settings built from
 * `store.postgres` (URL → host, port, user, TLS; see src/util/postgres-url.ts),
 * and which errors mean "the database cannot be reached" (the store then
 * reports itself unavailable and probes until it answers again) rather than
 * "this statement failed".
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { rootCertificates } from 'node:tls';
import pg from 'pg';
import { parsePostgresUrl } from '../util/postgres-url.ts';

export interface PostgresConnectionOptions {
  /** `postgres://user[:password]@host[:port][/database][?sslmode=…]`; never logged. */
  url: string;
  /** Extra CA (PEM file) for the server's certificate; turns TLS on. */
  caFile?: string;
  /** Give up connecting after this long (default 5 s): a request then fails fast with 503. */
  connectTimeoutMs?: number;
  /** Server-side limit of one statement (default 15 s). */
  statementTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema name, checked again here (it is spliced into SQL as a quoted identifier). */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error('the ledger schema must be a lower-case SQL identifier');
  return schema;
}

/**
 * This process's name in the ledger: the owner of its `minting` rows, its
 * heartbeat row and the `application_name` of its connections (so an operator,
 * or a test, can find a replica's backends in `pg_stat_activity`).
 */
export function newInstanceId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9.-]/g, '_')
    .slice(0, 24);
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** int8 (counts, epoch milliseconds, GitLab ids) as numbers: every value the ledger stores fits in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** `pg` client settings for one connection (pool or leader). */
export function pgClientConfig(
  o: PostgresConnectionOptions,
  applicationName: string,
  extra: {
    /** Startup `options` (`-c name=value …`). */
    serverOptions?: string;
    /** No statement or read timeout (migrations: an index on a large table may take a while). */
    noTimeouts?: boolean;
  } = {},
): pg.ClientConfig {
  const u = parsePostgresUrl(o.url, o.caFile !== undefined);
  let ssl: pg.ClientConfig['ssl'] = false;
  if (u.tls) {
    ssl = {
      rejectUnauthorized: true,
      ...(o.caFile ? { ca: [...rootCertificates, readFileSync(o.caFile, 'utf8')] } : {}),
      // The host name is checked against the certificate (verify-full); SNI only for names.
      ...(isIP(u.host) === 0 ? { servername: u.host } : {}),
    };
  }
  const statementTimeout = o.statementTimeoutMs ?? 15_000;
  return {
    host: u.host,
    port: u.port,
    ...(u.user !== undefined ? { user: u.user } : {}),
    ...(u.password !== undefined ? { password: u.password } : {}),
    ...(u.database !== undefined ? { database: u.database } : {}),
    ssl,
    application_name: applicationName.slice(0, 63),
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
    ...(extra.noTimeouts
      ? {}
      : {
          statement_timeout: statementTimeout,
          // A query whose answer never comes (a silently dropped connection) fails on this side too.
          query_timeout: statementTimeout + 5000,
          idle_in_transaction_session_timeout: statementTimeout + 5000,
        }),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types,
    ...(extra.serverOptions ? { options: extra.serverOptions } : {}),
  };
}

const CONNECTION_CODES = new Set([
  // Node socket errors.
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // SQLSTATE class 08 (connection exception) and the server going away.
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01', // admin_shutdown: pg_terminate_backend, a fast shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, in recovery
  '53300', // too_many_connections
]);

const CONNECTION_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|connection timeout|Client was closed|server closed the connection/i;

/** The database cannot be reached (or dropped us), as opposed to a statement that failed. */
export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message);
}

/** Drop a client's socket at once (`end()` can wait forever on a dead connection). */
export function destroyClient(client: pg.Client | pg.PoolClient): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  try {
    stream?.destroy();
  } catch {
    // already gone
  }
}
