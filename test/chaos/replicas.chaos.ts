/**
 * Chaos, replica mode: three real `tanuki-sts serve` processes on one fresh
 * PostgreSQL schema, behind a round-robin client (the next replica that is
 * up, as a load balancer with health checks would pick), under a steady
 * stream of exchanges with 60-second grants (and the hostile holder that
 * rotates its `api` token every second, as in sigkill.chaos.ts). 20+ times a
 * random replica is SIGKILLed and restarted; every third kill is the leader's
 * (whoever `tanuki_sts_leader` says leads), so the leader dies at least 5
 * times. Once, half-way, every PostgreSQL backend of the leader is terminated
 * (`pg_terminate_backend`): it must serve exchanges again by itself.
 *
 * Afterwards, once the last grants' TTL has passed:
 * - 0 tokens active in GitLab that the ledger says are revoked or expired;
 * - 0 tokens GitLab holds under this deployment's names that the ledger does
 *   not know (the grant id in the name; rotated copies keep the name);
 * - every token a client received is in the ledger (its SHA-256);
 * - no `minting` row left: the leader settled the dead replicas' ones.
 * It prints one summary line: the leader hand-over times (min, median, max:
 * from the SIGKILL to the `elected leader` log line of the next leader) and
 * the counts.
 *
 * `npm run test:chaos` runs it after sigkill.chaos.ts (CI too; CHAOS_CYCLES
 * sets the kills). Timing of the defaults it runs with: a follower tries the
 * lead every 2 s, a killed replica's minting rows are settled once its
 * heartbeat is 30 s old (src/ledger/postgres.ts; docs/deployment.md).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import {
  CHAOS_RECONCILE_SECONDS,
  CHAOS_TTL_SECONDS,
  type ChaosLoad,
  chaosConfig,
  chaosCycles,
  drainGitlab,
  entraSubject,
  grantIdOf,
  isActiveAtGitlab,
  startChaosLoad,
} from '../helpers/chaos.ts';
import { PG_URL, terminateBackends, testSchema, withPg } from '../helpers/pg.ts';
import { type ServeProcess, spawnServe } from '../helpers/replicas.ts';
import { EXCHANGE, PROJECT } from '../helpers/stack.ts';

const CYCLES = chaosCycles();
const REPLICAS = 3;
/** Every LEADER_EVERY-th kill is the leader's (at least 5 of 20). */
const LEADER_EVERY = 3;
/** A dead replica's minting rows wait for its heartbeat to be this old (the default lease). */
const LEASE_SECONDS = 30;
/** Start-up, the reaper's tick and loaded-machine slack on top of TTL + one reconcile interval. */
const SLACK_SECONDS = 15;
const WORKERS = 4;
const SERVER_ID = 'chaos-replicas';

interface Slot {
  proc: ServeProcess;
  up: boolean;
}

/** `time` of each log line with this message (pino, ISO time), in every log file given. */
function logTimes(files: string[], msg: string): number[] {
  const times: number[] = [];
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.includes(msg)) continue;
      try {
        const entry = JSON.parse(line) as { msg?: string; time?: string };
        if (entry.msg?.startsWith(msg) && entry.time) times.push(Date.parse(entry.time));
      } catch {}
    }
  }
  return times.sort((a, b) => a - b);
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

describe('SIGKILL chaos, three replicas on PostgreSQL', () => {
  let dir: string;
  /** Stopped in after() too: a failed restart must not leave the loops running (the file would never end). */
  let load: ChaosLoad | undefined;
  let entra: EntraEmulatorHandle;
  let gitlab: GitlabEmulatorHandle;
  let schema: string;
  let drop: (() => Promise<void>) | undefined;
  let configFile: string;
  const slots: Slot[] = [];
  const logFiles: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-chaos-replicas-'));
    ({ schema, drop } = await testSchema());
    entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    gitlab = await startGitlabEmulator({ stateDir: join(dir, 'gitlab') });
    configFile = join(dir, 'tanuki-sts.yaml');
    // Port 0: only the listeners differ between the replicas.
    const config = chaosConfig({
      dir,
      serverId: SERVER_ID,
      listen: '127.0.0.1:0',
      entra,
      gitlab,
      store: { postgres: { url: PG_URL, schema, poolSize: 4 } },
    });
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  });

  after(async () => {
    await load?.stop();
    await Promise.all(slots.map((s) => s.proc.kill('SIGKILL').catch(() => {})));
    await gitlab?.close().catch(() => {});
    await entra?.close().catch(() => {});
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One log file per process (spawnServe reads its listening line; the hand-over times come from them all). */
  async function start(): Promise<ServeProcess> {
    const logFile = join(dir, `sts-${logFiles.length}.log`);
    logFiles.push(logFile);
    return spawnServe(configFile, { logFile });
  }

  /** The slot that leads (its gauge says 1), waiting up to `ms` for one; -1 if none. */
  async function leaderSlot(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const gauges = await Promise.all(slots.map(async (s) => (s.up ? await s.proc.leader() : undefined)));
      const i = gauges.indexOf(1);
      if (i >= 0 || Date.now() > deadline) return i;
      await sleep(100);
    }
  }

  /**
   * Whether the replica answers an exchange with a token again within `ms` (after its backends were
   * terminated: the pool has to reconnect by itself). The tokens it hands out go to `into`.
   */
  async function servesAgain(s: ServeProcess, subject: string, into: string[], ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const res = await fetch(`${s.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...EXCHANGE, subject_token: subject, audience: PROJECT }).toString(),
      }).catch(() => undefined);
      const token =
        res?.status === 200 ? ((await res.json()) as { access_token?: string }).access_token : undefined;
      if (token) {
        into.push(token);
        return true;
      }
      await sleep(200);
    }
    return false;
  }

  /** This process's `instanceId` (its backends' application_name is `tanuki-sts/<instanceId>`). */
  function instanceId(s: ServeProcess): string {
    const line = s
      .log()
      .split('\n')
      .find((l) => l.includes('"ledger: PostgreSQL"'));
    const id = line ? (JSON.parse(line) as { instanceId?: string }).instanceId : undefined;
    assert.ok(id, 'the replica logged its instance id');
    return id;
  }

  it(`${CYCLES} SIGKILLs of random replicas (every ${LEADER_EVERY}rd the leader's) lose no token`, async () => {
    // The first replica alone (it creates the schema), then the others.
    slots.push({ proc: await start(), up: true });
    for (let i = 1; i < REPLICAS; i++) slots.push({ proc: await start(), up: true });
    assert.ok((await leaderSlot(15_000)) >= 0, 'one of the replicas leads');

    const subject = await entraSubject(entra);
    let next = 0;
    load = startChaosLoad({
      target: () => {
        for (let k = 0; k < slots.length; k++) {
          const s = slots[next++ % slots.length] as Slot;
          if (s.up) return s.proc.url;
        }
        return (slots[0] as Slot).proc.url;
      },
      subject,
      gitlabUrl: gitlab.url,
      workers: WORKERS,
    });

    const started = Date.now();
    const leaderKills: number[] = [];
    /** Tokens this test got itself (the check after the terminated backends). */
    const ownTokens: string[] = [];
    let terminated: { at: number; backends: number; wasLeader: boolean; recovered: boolean } | undefined;
    for (let i = 0; i < CYCLES; i++) {
      await sleep(300 + Math.floor(Math.random() * 700));
      if (i === Math.floor(CYCLES / 2)) {
        // Once: every backend of the leader (pool, heartbeat, election connection) terminated.
        const li = await leaderSlot(15_000);
        const victim = slots[Math.max(li, 0)] as Slot;
        const at = Date.now();
        const backends = await terminateBackends(`tanuki-sts/${instanceId(victim.proc)}`);
        const recovered = await servesAgain(victim.proc, subject, ownTokens, 30_000);
        terminated = { at, backends, wasLeader: li >= 0, recovered };
      }
      let v = Math.floor(Math.random() * slots.length);
      if (i % LEADER_EVERY === 0) {
        const li = await leaderSlot(15_000);
        if (li >= 0) v = li;
      }
      const victim = slots[v] as Slot;
      const wasLeader = (await victim.proc.leader()) === 1;
      const at = Date.now();
      victim.up = false;
      await victim.proc.kill('SIGKILL');
      if (wasLeader) leaderKills.push(at);
      victim.proc = await start();
      victim.up = true;
    }
    const { received, outcomes, rotations } = await load.stop();
    const loadSeconds = (Date.now() - started) / 1000;

    // The replicas keep running: the leader's reaper and reconciler clean up.
    const drain = await drainGitlab({
      gitlabUrl: gitlab.url,
      serverId: SERVER_ID,
      deadline: Date.now() + (CHAOS_TTL_SECONDS + CHAOS_RECONCILE_SECONDS + SLACK_SECONDS) * 1000,
    });
    // The last killed replica's minting rows are settled once its lease ran out (long before, as a rule).
    const q = (sql: string) => withPg(async (c) => (await c.query(sql)).rows);
    const mintingDeadline = Date.now() + (LEASE_SECONDS + SLACK_SECONDS) * 1000;
    let minting = Number.POSITIVE_INFINITY;
    while (Date.now() < mintingDeadline) {
      minting = (await q(`SELECT count(*)::int AS n FROM "${schema}".grants WHERE state = 'minting'`))[0].n;
      if (minting === 0) break;
      await sleep(1000);
    }
    await Promise.all(slots.map((s) => s.proc.kill('SIGKILL')));

    const now = Date.now();
    const rows = (await q(
      `SELECT id, state, token_sha256, expires_at::float8 AS expires_at, revoked_at::float8 AS revoked_at
       FROM "${schema}".grants`,
    )) as Array<{
      id: string;
      state: string;
      token_sha256: string | null;
      expires_at: number;
      revoked_at: number | null;
    }>;
    const grants = new Map(rows.map((r) => [r.id, r]));
    const recorded = new Set(rows.flatMap((r) => (r.token_sha256 ? [r.token_sha256] : [])));
    const states: Record<string, number> = {};
    for (const r of rows) states[r.state] = (states[r.state] ?? 0) + 1;
    // How late the reaper was: the latest revocation after its grant's expiry (revocations asked for earlier count 0).
    const lateness = Math.max(0, ...rows.map((r) => (r.revoked_at ?? r.expires_at) - r.expires_at));
    const unrecorded = [...received, ...ownTokens].filter((t) => !recorded.has(sha256Hex(t))).length;
    const unknown = drain.created.filter((t) => {
      const id = grantIdOf(t, SERVER_ID);
      return id === undefined || !grants.has(id);
    }).length;
    const activeButEnded = drain.created.filter((t) => {
      const g = grants.get(grantIdOf(t, SERVER_ID) ?? '');
      return (
        isActiveAtGitlab(t) && g && (g.state === 'revoked' || g.state === 'failed' || g.expires_at <= now)
      );
    }).length;

    // Hand-over: from each SIGKILL of the leader to the next `elected leader` line of any replica.
    const elected = logTimes(logFiles, 'elected leader');
    const handovers = leaderKills
      .map((at) => (elected.find((t) => t >= at) ?? Number.NaN) - at)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const median = handovers.length
      ? ((handovers[(handovers.length - 1) >> 1] as number) + (handovers[handovers.length >> 1] as number)) /
        2
      : Number.NaN;
    const reElected = terminated && (elected.find((t) => t >= terminated.at) ?? Number.NaN) - terminated.at;

    console.log(
      `# chaos replicas: ${CYCLES} SIGKILLs (${leaderKills.length} of the leader) of ${REPLICAS} replicas in ${loadSeconds.toFixed(0)} s; ` +
        `leader hand-over s min ${seconds(handovers[0] ?? Number.NaN)} median ${seconds(median)} max ${seconds(handovers.at(-1) ?? Number.NaN)} (${handovers.length} measured); ` +
        `backends of the ${terminated?.wasLeader ? 'leader' : 'a replica'} terminated once: ${terminated?.backends}, it served again ${terminated?.recovered}, ` +
        `a leader elected after ${seconds(reElected ?? Number.NaN)} s; ` +
        `requests ${JSON.stringify(outcomes)}; GitLab tokens created ${drain.created.length}, returned to clients ${received.length}, ` +
        `rotated by the holder ${rotations}; active but revoked or expired in the ledger ${activeButEnded}, ` +
        `unknown to the ledger ${unknown}, unrecorded ${unrecorded}, left active ${drain.leftActive} (drained in ${drain.seconds.toFixed(0)} s, ` +
        `latest revocation ${seconds(lateness)} s after its grant expired); ` +
        `ledger ${JSON.stringify(states)}`,
    );
    assert.ok(received.length > 0, 'the load got tokens');
    assert.ok(rotations > 0, 'the hostile holder did rotate tokens');
    assert.ok(
      leaderKills.length >= Math.min(5, Math.ceil(CYCLES / LEADER_EVERY)),
      `the leader was killed ${leaderKills.length} times`,
    );
    assert.equal(handovers.length, leaderKills.length, 'another leader was elected after every leader kill');
    assert.ok(terminated && terminated.backends > 0, 'backends were terminated');
    assert.equal(terminated.recovered, true, 'the replica whose backends were terminated serves again');
    assert.equal(unrecorded, 0, 'every token a client received is in the ledger');
    assert.equal(unknown, 0, 'every token GitLab created is known to the ledger');
    assert.equal(activeButEnded, 0, 'no token active in GitLab that the ledger says is revoked or expired');
    assert.equal(drain.leftActive, 0, 'every token GitLab created is revoked once its TTL passed');
    assert.equal(minting, 0, "the leader settled the dead replicas' minting rows");
  });
});
