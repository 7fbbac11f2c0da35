/**
 * Chaos: a real `tanuki-sts serve` process under a steady stream of exchanges
 * is SIGKILLed and restarted 20+ times. Afterwards:
 *
 * - every GitLab token the STS ever created is revoked within its TTL plus one
 *   reconcile interval (plus start-up slack) after the last restart
 *   (left-active = 0). A grant killed mid-mint is failed by the next process
 *   at start-up (it holds the ledger lock, so no one else can be minting), and
 *   the reconciler's first pass revokes its token;
 * - every token a client received is recorded in the ledger (its SHA-256).
 *
 * One of the clients is hostile: it asks for `api` and rotates its token
 * itself every second (a new id, a year-long expiry), through every kill.
 * Its chains must be revoked too: left-active counts every token GitLab holds
 * under this deployment's names, rotated ones and deploy tokens (a loop on the
 * `chaos-deploy` policy) included.
 *
 * Takes over a minute (a process start per kill), hence `.chaos.ts`, not
 * `.test.ts`; `npm run test:chaos` runs it (CI too). CHAOS_CYCLES sets the kills.
 * The replica mode on PostgreSQL is replicas.chaos.ts; both share
 * test/helpers/chaos.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import {
  CHAOS_RECONCILE_SECONDS,
  CHAOS_TTL_SECONDS,
  type ChaosLoad,
  chaosConfig,
  chaosCycles,
  drainGitlab,
  entraSubject,
  startChaosLoad,
} from '../helpers/chaos.ts';
import { deadPort } from '../helpers/pg.ts';
import { type ServeProcess, spawnServe } from '../helpers/replicas.ts';

const CYCLES = chaosCycles();
/** Start-up, the reaper's tick and loaded-machine slack on top of TTL + one reconcile interval. */
const SLACK_SECONDS = 10;
const WORKERS = 4;
const SERVER_ID = 'chaos';

describe('SIGKILL chaos', () => {
  let dir: string;
  /** Stopped in after() too: a failed restart must not leave the loops running (the file would never end). */
  let load: ChaosLoad | undefined;
  let entra: EntraEmulatorHandle;
  let gitlab: GitlabEmulatorHandle;
  let child: ServeProcess | undefined;
  let port: number;
  let configFile: string;
  let dbFile: string;
  let starts = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-chaos-'));
    entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    gitlab = await startGitlabEmulator({ stateDir: join(dir, 'gitlab') });
    // One fixed port: every restarted process answers where the clients already send.
    port = await deadPort();
    dbFile = join(dir, 'ledger.db');
    configFile = join(dir, 'tanuki-sts.yaml');
    const config = chaosConfig({
      dir,
      serverId: SERVER_ID,
      listen: `127.0.0.1:${port}`,
      entra,
      gitlab,
      store: { sqlite: dbFile },
    });
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  });

  after(async () => {
    await load?.stop();
    await child?.kill('SIGKILL').catch(() => {});
    await gitlab?.close().catch(() => {});
    await entra?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // One log file per process (spawnServe reads its listening line).
  const startChild = () =>
    spawnServe(configFile, {
      logFile: join(dir, `sts-${starts++}.log`),
      env: { NODE_EXTRA_CA_CERTS: entra.caFile },
    });

  it(`${CYCLES} SIGKILL + restart cycles under load lose no token`, async () => {
    const subject = await entraSubject(entra);
    child = await startChild();
    load = startChaosLoad({
      target: () => `http://127.0.0.1:${port}`,
      subject,
      gitlabUrl: gitlab.url,
      workers: WORKERS,
    });
    const started = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      await sleep(300 + Math.floor(Math.random() * 700));
      await child.kill('SIGKILL');
      child = await startChild();
    }
    const { received, outcomes, rotations } = await load.stop();
    const loadSeconds = (Date.now() - started) / 1000;

    // The last process keeps running: its reaper and reconciler clean up.
    const drain = await drainGitlab({
      gitlabUrl: gitlab.url,
      serverId: SERVER_ID,
      deadline: Date.now() + (CHAOS_TTL_SECONDS + CHAOS_RECONCILE_SECONDS + SLACK_SECONDS) * 1000,
    });
    await child.kill('SIGKILL');

    const db = new Database(dbFile, { readonly: true });
    const recorded = new Set(
      (
        db.prepare('SELECT token_sha256 FROM grants WHERE token_sha256 IS NOT NULL').all() as Array<{
          token_sha256: string;
        }>
      ).map((r) => r.token_sha256),
    );
    const states = db.prepare('SELECT state, COUNT(*) AS n FROM grants GROUP BY state').all();
    db.close();
    const unrecorded = received.filter((t) => !recorded.has(createHash('sha256').update(t).digest('hex')));

    console.log(
      `# chaos: ${CYCLES} SIGKILLs in ${loadSeconds.toFixed(0)} s; requests ${JSON.stringify(outcomes)}; ` +
        `GitLab tokens created ${drain.created.length}, returned to clients ${received.length}, rotated by the holder ${rotations}, ` +
        `left active ${drain.leftActive} ` +
        `(drained in ${drain.seconds.toFixed(0)} s); ledger ${JSON.stringify(states)}; unrecorded ${unrecorded.length}`,
    );
    assert.ok(received.length > 0, 'the load got tokens');
    assert.ok(rotations > 0, 'the hostile holder did rotate tokens');
    assert.ok(
      drain.created.some((t) => t.kind === 'deploy'),
      'deploy tokens were minted (policy chaos-deploy), and are counted in left-active',
    );
    assert.equal(unrecorded.length, 0, 'every token a client received is in the ledger');
    assert.equal(drain.leftActive, 0, 'every token GitLab created is revoked');
  });
});
