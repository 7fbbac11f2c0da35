/**
 * PostgreSQL for the bench's PostgreSQL windows: the server in
 * TANUKI_BENCH_PG_URL, else TANUKI_TEST_PG_URL, else the one on this machine
 * (postgres://postgres@127.0.0.1:5432/test, as the tests use). Each STS gets a
 * fresh schema (`tanuki_bench_<hex>`, created by the STS's own migrations,
 * dropped at the end), and the bench reads the CPU time of the PostgreSQL
 * backends serving one STS process (their `application_name` is
 * `tanuki-sts/<instanceId>`) from /proc, as it does for its own processes:
 * so the server must run on this machine (a loopback URL) for that column;
 * otherwise it is left out.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { cpuSeconds } from './procs.ts';

export const BENCH_PG_URL =
  process.env.TANUKI_BENCH_PG_URL ??
  process.env.TANUKI_TEST_PG_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

/** The URL without its password, for messages. */
function shown(url = BENCH_PG_URL): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export const benchSchema = () => `tanuki_bench_${randomBytes(6).toString('hex')}`;

async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: BENCH_PG_URL, application_name: 'tanuki-sts-bench' });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL for the bench is unreachable at ${shown()} (${(err as Error).message}); ` +
        'start it or set TANUKI_BENCH_PG_URL (docs/performance.md)',
    );
  }
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Fails at once (with the URL to fix) when the server cannot be reached. */
export const checkPostgres = () => withPg(async () => {});

export async function dropBenchSchema(schema: string): Promise<void> {
  if (!/^tanuki_bench_[0-9a-f]+$/.test(schema)) throw new Error(`not a bench schema: ${schema}`);
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** The server runs on this machine (a loopback host): its backends' pids are ours to read in /proc. */
const local = ['localhost', '127.0.0.1', '::1', '[::1]'].includes(new URL(BENCH_PG_URL).hostname);

/** CPU seconds used so far by each backend of one STS process; undefined for a server elsewhere. */
export async function backendCpu(instanceId: string): Promise<Map<number, number> | undefined> {
  if (!local) return undefined;
  const pids = await withPg(
    async (c) =>
      (
        await c.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 OR application_name LIKE $1 || '/%'",
          [`tanuki-sts/${instanceId}`],
        )
      ).rows,
  );
  const cpu = new Map<number, number>();
  for (const { pid } of pids) {
    try {
      cpu.set(pid, cpuSeconds(pid));
    } catch {
      // Gone meanwhile (an idle connection closed).
    }
  }
  return cpu;
}

/** CPU seconds the backends used between two readings (a backend opened meanwhile counts whole). */
export function backendCpuDelta(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): number | undefined {
  if (!before || !after) return undefined;
  let sum = 0;
  for (const [pid, t] of after) sum += t - (before.get(pid) ?? 0);
  return sum;
}
