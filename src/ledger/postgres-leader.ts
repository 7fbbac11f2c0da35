/**
 * Leader election among the replicas sharing a PostgreSQL ledger: a
 * session-level advisory lock (`pg_try_advisory_lock`) held on a connection
 * of its own. PostgreSQL releases it when that session ends, however it ends:
 * the process was SIGKILLed (the kernel closes its socket), its backend was
 * terminated, or the network dropped it (the server's TCP keepalives and
 * `tcp_user_timeout`, set on this connection, notice within about 10 s).
 *
 * Timing (docs/deployment.md):
 * - every `intervalMs` (default 2 s) a follower tries the lock, and the leader
 *   checks its connection with a query (answer within 4 s);
 * - the leader steps down at once when its connection reports an error or
 *   closes, or the check fails: its loops stop before another replica can
 *   have taken over (the server needs ~10 s to drop a silent connection);
 * - a new leader is elected within `intervalMs` of the lock's release: at
 *   once for a SIGKILL or a terminated backend, ~10 s for a lost network.
 *
 * Two leaders at once (in the seconds of a network split) would only repeat
 * work: the reaper's claims are leased in the store and revocation is
 * idempotent.
 */
import pg from 'pg';
import type { LeaderChange, LeaderElection } from './leader.ts';
import { destroyClient } from './postgres-connection.ts';
import type { LedgerLog } from './types.ts';

export interface PostgresLeaderOptions {
  /** Connection settings for the election's own connection. */
  clientConfig: pg.ClientConfig;
  /** What is elected: one leader per ledger schema. */
  schema: string;
  onChange: LeaderChange;
  /** How often a follower tries to take the lead, and the leader checks its connection (default 2 s). */
  intervalMs?: number;
  log?: LedgerLog;
}

/** Server-side settings of the election connection: a dead peer is noticed within about 10 s. */
export const LEADER_SERVER_OPTIONS =
  '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=2 -c tcp_user_timeout=10000';

/** The leader's connection check must answer within this (well before the server drops a silent session, ~10 s). */
const CHECK_TIMEOUT_MS = 4000;

const noopLog: LedgerLog = { info() {}, warn() {}, error() {}, debug() {} };

export function createPostgresLeaderElection(o: PostgresLeaderOptions): LeaderElection {
  const log = o.log ?? noopLog;
  const intervalMs = o.intervalMs ?? 2000;
  const lockName = `tanuki-sts/leader/${o.schema}`;
  let client: pg.Client | undefined;
  let leader = false;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let attempting: Promise<void> | undefined;
  let transitions: Promise<void> = Promise.resolve();
  let lastRefusal: string | undefined;

  function setLeader(value: boolean): void {
    if (leader === value) return;
    leader = value;
    if (value) log.info({ schema: o.schema }, 'elected leader: running the reaper, reconciler and recovery');
    else log.warn({ schema: o.schema }, 'no longer the leader: background loops stopped');
    // A loss is reported at once, not after a start still in progress: the loops stop now.
    const call = () => Promise.resolve(o.onChange(value));
    const report = value ? transitions.then(call) : Promise.all([call(), transitions]).then(() => {});
    transitions = report.catch((err: Error) =>
      log.error({ err: err.message }, 'leader change handler failed'),
    );
  }

  /** The connection (and with it the lock) is gone: step down at once. */
  function lost(c: pg.Client, reason: string): void {
    if (client !== c) return;
    client = undefined;
    destroyClient(c);
    if (leader) log.warn({ reason }, 'leader election connection lost');
    setLeader(false);
  }

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client(o.clientConfig);
    c.on('error', (err) => lost(c, err.message));
    c.on('end', () => lost(c, 'connection closed'));
    try {
      await c.connect();
    } catch (err) {
      destroyClient(c);
      throw err;
    }
    client = c;
    lastRefusal = undefined;
    return c;
  }

  async function attempt(): Promise<void> {
    if (!running) return;
    let c = client;
    try {
      c ??= await connect();
      if (!leader) {
        const r = await c.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
          [lockName],
        );
        if (r.rows[0]?.ok && running && client === c) setLeader(true);
        else if (r.rows[0]?.ok)
          await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]);
      } else {
        // Still connected, so still holding the lock. A check that does not answer in time is a
        // lost connection: the leader steps down before the server can have dropped its session.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('leader check timed out')), CHECK_TIMEOUT_MS);
        });
        try {
          await Promise.race([c.query('SELECT 1'), late]);
        } finally {
          clearTimeout(timer);
        }
      }
    } catch (err) {
      const message = (err as Error).message;
      if (c) lost(c, message);
      else if (message !== lastRefusal) {
        // Once per distinct reason: an outage is logged by the store; anything else (a server
        // refusing the connection's settings, a revoked role) would leave the replicas leaderless.
        lastRefusal = message;
        log.warn({ err: message }, 'leader election: cannot connect; no leader on this replica');
      }
    }
  }

  function tick(): void {
    if (!running || attempting) return;
    attempting = attempt().finally(() => {
      attempting = undefined;
    });
  }

  return {
    async start() {
      if (running) return;
      running = true;
      tick();
      await attempting;
      await transitions;
      if (!running) return;
      timer = setInterval(tick, intervalMs);
      timer.unref();
    },
    async stop() {
      running = false;
      if (timer) clearInterval(timer);
      timer = undefined;
      await attempting;
      const c = client;
      client = undefined;
      setLeader(false);
      if (c) {
        // Ending the session releases the lock; another replica takes over at its next attempt.
        await Promise.race([c.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        destroyClient(c);
      }
      await transitions;
    },
    isLeader: () => leader,
  };
}
