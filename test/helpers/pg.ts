/**
 * PostgreSQL for the tests: the server in TANUKI_TEST_PG_URL, or the one on
 * this machine (postgres://postgres@127.0.0.1:5432/test, trust auth). Each
 * test creates a schema of its own (random name) and drops it afterwards, so
 * runs never see each other. An unreachable server FAILS the tests that need
 * it (they are never skipped): see README.md, "Tests".
 *
 * Also: a TCP proxy in front of the server that a test can cut and restore
 * (the database "goes away" and comes back), a port where nothing listens,
 * and `pg_terminate_backend` of a replica's connections.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import pg from 'pg';

export const PG_URL = process.env.TANUKI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The test URL without its password, for messages. */
export function shownPgUrl(url = PG_URL): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/** A fresh schema name: `tanuki_test_<hex>`. */
export function randomSchema(): string {
  return `tanuki_test_${randomBytes(6).toString('hex')}`;
}

/** A direct connection to the test server (assertions, set-up), closed after `fn`. */
export async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL, application_name: 'tanuki-sts-tests' });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL for the tests is unreachable at ${shownPgUrl()} (${(err as Error).message}); ` +
        'start it or point TANUKI_TEST_PG_URL at another server (README.md, "Tests")',
    );
  }
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Drop a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^tanuki_test_[0-9a-f]+$/.test(schema)) throw new Error(`not a test schema: ${schema}`);
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** A new schema name for one test, and its cleanup. Fails at once when the server is unreachable. */
export async function testSchema(): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = randomSchema();
  await withPg(async () => {});
  return { schema, drop: () => dropSchema(schema) };
}

/** PG_URL with another host and port (a proxy, a dead port). */
export function pgUrlAt(port: number, host = '127.0.0.1'): string {
  const u = new URL(PG_URL);
  u.hostname = host;
  u.port = String(port);
  return u.toString();
}

/** Terminate every backend whose application_name starts with `prefix` (a replica's: `tanuki-sts/<instanceId>`). */
export async function terminateBackends(prefix: string): Promise<number> {
  return withPg(async (c) => {
    const r = await c.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE application_name LIKE $1 || '%' AND pid <> pg_backend_pid()`,
      [prefix],
    );
    return r.rows.filter((x) => x.ok).length;
  });
}

/** Backends (connections) whose application_name starts with `prefix`. */
export async function countBackends(prefix: string): Promise<number> {
  return withPg(async (c) => {
    const r = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1 || '%'`,
      [prefix],
    );
    return Number(r.rows[0]?.n ?? 0);
  });
}

/** A loopback port where nothing listens (bound, then released). */
export async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface PgProxy {
  /** PG_URL through the proxy. */
  url: string;
  /** The database "goes away": every connection is dropped, new ones are reset at once. */
  cut(): void;
  /** The database is back. */
  restore(): void;
  /** Connections accepted and forwarded so far. */
  readonly forwarded: number;
  close(): Promise<void>;
}

/** A TCP proxy on an ephemeral loopback port in front of the test server. */
export async function startPgProxy(): Promise<PgProxy> {
  const target = new URL(PG_URL);
  const targetHost = target.hostname.replace(/^\[|\]$/g, '');
  const targetPort = Number(target.port || 5432);
  const sockets = new Set<Socket>();
  let down = false;
  let forwarded = 0;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    forwarded++;
    const upstream = tcpConnect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: pgUrlAt(port),
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    get forwarded() {
      return forwarded;
    },
    close() {
      down = true;
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
