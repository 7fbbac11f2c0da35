/**
 * Three real `tanuki-sts serve` processes on one PostgreSQL schema (ephemeral
 * ports), with the Entra ID and GitLab emulators: a token minted by one is
 * revoked through another; 60 simultaneous exchanges of one identity, cap 20,
 * spread over the three, grant exactly 20 (the rest 429); SIGKILL the leader
 * and another takes over (its `tanuki_sts_leader` gauge) within
 * `reaper.interval` + 10 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_RESOURCE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_TENANT_ID,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import { PG_URL, testSchema, withPg } from '../helpers/pg.ts';
import { type ServeProcess, spawnServe } from '../helpers/replicas.ts';
import { EXCHANGE, gitlabTokens, PROJECT, postForm } from '../helpers/stack.ts';

const REAPER_INTERVAL_SECONDS = 1;
const CAP = 20;

describe('three serve processes on one PostgreSQL ledger', () => {
  let dir: string;
  let entra: EntraEmulatorHandle;
  let gitlab: GitlabEmulatorHandle;
  let schema: string;
  let drop: () => Promise<void>;
  const replicas: ServeProcess[] = [];
  let subject: string;
  /** The tokens the burst was granted. */
  let granted: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-replicas-'));
    ({ schema, drop } = await testSchema());
    entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    gitlab = await startGitlabEmulator({ stateDir: join(dir, 'gitlab') });
    const configFile = join(dir, 'tanuki-sts.yaml');
    // JSON is YAML. Only the listeners would differ between replicas; port 0 makes them differ.
    const config = {
      server: {
        listen: '127.0.0.1:0',
        metricsListen: '127.0.0.1:0',
        publicUrl: 'http://127.0.0.1:8600',
        id: 'replicas',
        rateLimit: { perIdentity: 0, perIp: 0 },
        maxActiveGrantsPerIdentity: CAP,
      },
      gitlab: { url: gitlab.url, token: gitlab.adminToken, timeout: '5s', healthInterval: '30s' },
      store: { postgres: { url: PG_URL, schema, poolSize: 4 } },
      issuers: {
        contoso: {
          entra: { tenant: DEV_TENANT_ID, authorityHost: entra.url },
          caFile: entra.caFile,
          audiences: [DEV_RESOURCE_URI, DEV_RESOURCE_CLIENT_ID],
        },
      },
      policies: [
        {
          name: 'replicas',
          issuer: 'contoso',
          match: { appid: DEV_PIPELINE_CLIENT_ID },
          grant: {
            projects: [PROJECT],
            scopes: ['read_repository'],
            role: 'reporter',
            ttl: { default: '10m', max: '10m' },
          },
        },
      ],
      reaper: { interval: `${REAPER_INTERVAL_SECONDS}s`, reconcileInterval: '60s' },
      audit: { file: join(dir, 'audit.jsonl') },
    };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    // The first one alone (it migrates and leads), then two more at once.
    replicas.push(await spawnServe(configFile, { logFile: join(dir, 'sts-0.log') }));
    replicas.push(
      ...(await Promise.all(
        [1, 2].map((i) => spawnServe(configFile, { logFile: join(dir, `sts-${i}.log`) })),
      )),
    );
    subject = await mintSubject();
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.kill().catch(() => {})));
    await gitlab?.close().catch(() => {});
    await entra?.close().catch(() => {});
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function mintSubject(): Promise<string> {
    const dispatcher = new Agent({ connect: { ca: readFileSync(entra.caFile, 'utf8') } });
    try {
      const res = await undiciFetch(`${entra.url}/_emulator/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ entra: {} }),
        dispatcher,
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { token: string }).token;
    } finally {
      await dispatcher.close();
    }
  }

  async function leaders(list = replicas): Promise<number[]> {
    return Promise.all(list.map(async (r) => (await r.leader()) ?? -1));
  }

  it('exactly one of them leads', async () => {
    const deadline = Date.now() + 10_000;
    let got = await leaders();
    while (got.filter((x) => x === 1).length !== 1 && Date.now() < deadline) {
      await sleep(200);
      got = await leaders();
    }
    assert.deepEqual([...got].sort(), [0, 0, 1], `leader gauges ${got.join(',')}`);
  });

  it('a token minted by one replica is revoked through another', async () => {
    const [a, b] = replicas as [ServeProcess, ServeProcess];
    const res = await postForm(`${a.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT });
    assert.equal(res.status, 200, res.text);
    const sha = sha256Hex(res.json.access_token);
    assert.equal((await gitlabTokens(gitlab.url)).find((t) => t.sha256 === sha)?.active, true);
    const revoked = await postForm(`${b.url}/revoke`, { token: res.json.access_token });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal((await gitlabTokens(gitlab.url)).find((t) => t.sha256 === sha)?.revoked, true);
    const state = await withPg(
      async (c) =>
        (await c.query(`SELECT state FROM "${schema}".grants WHERE token_sha256 = $1`, [sha])).rows[0],
    );
    assert.equal(state?.state, 'revoked');
  });

  it(`60 simultaneous exchanges of one identity over the three, cap ${CAP}: exactly ${CAP} granted, the rest 429`, async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        postForm(`${replicas[i % 3]?.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT }),
      ),
    );
    const statuses = results.map((r) => r.status);
    granted = results.flatMap((r) => (r.status === 200 ? [r.json.access_token as string] : []));
    assert.equal(statuses.filter((s) => s === 200).length, CAP, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 60 - CAP, statuses.join(' '));
    const live = await withPg(
      async (c) =>
        (
          await c.query(
            `SELECT count(*)::int AS n FROM "${schema}".grants WHERE state IN ('minting','active','revoking')`,
          )
        ).rows[0].n,
    );
    assert.equal(live, CAP);
  });

  it(`SIGKILL of the leader: another leads within reaper.interval + 10 s`, async () => {
    const got = await leaders();
    const i = got.indexOf(1);
    assert.ok(i >= 0, `a leader among ${got.join(',')}`);
    const leader = replicas[i] as ServeProcess;
    const others = replicas.filter((_, j) => j !== i);
    await leader.kill('SIGKILL');
    const bound = (REAPER_INTERVAL_SECONDS + 10) * 1000;
    const deadline = Date.now() + bound;
    let now = await leaders(others);
    while (now.filter((x) => x === 1).length !== 1 && Date.now() < deadline) {
      await sleep(100);
      now = await leaders(others);
    }
    assert.deepEqual([...now].sort(), [0, 1], `gauges of the survivors after ${bound} ms: ${now.join(',')}`);
    // The survivors serve on: a slot freed through one is taken through the other.
    const [x, y] = others as [ServeProcess, ServeProcess];
    assert.equal((await postForm(`${x.url}/revoke`, { token: granted[0] as string })).status, 200);
    const res = await postForm(`${y.url}/token`, { ...EXCHANGE, subject_token: subject, audience: PROJECT });
    assert.equal(res.status, 200, res.text);
  });
});
