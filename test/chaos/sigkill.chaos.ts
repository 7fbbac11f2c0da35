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
 * under this deployment's names, rotated ones included.
 *
 * Takes over a minute (a process start per kill), hence `.chaos.ts`, not
 * `.test.ts`; `npm run test:chaos` runs it (CI too). CHAOS_CYCLES sets the kills.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_RESOURCE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_TENANT_ID,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN } from '../../src/util/oauth-urns.ts';
import { utcDate } from '../../src/util/utc-date.ts';

const PROJECT = 'platform/internal-lib';
const EXCHANGE = {
  grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
  subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
};

async function gitlabTokens(url: string): Promise<Array<Record<string, unknown>>> {
  const body = (await (await fetch(`${url}/_emulator/tokens`)).json()) as unknown;
  return Array.isArray(body) ? body : (body as { tokens: Array<Record<string, unknown>> }).tokens;
}

const CYCLES = Number(process.env.CHAOS_CYCLES ?? 20);
const TTL_SECONDS = 8;
const RECONCILE_SECONDS = 5;
/** Start-up, the reaper's tick and loaded-machine slack on top of TTL + one reconcile interval. */
const SLACK_SECONDS = 10;
const WORKERS = 4;
const BIN = fileURLToPath(new URL('../../bin/tanuki-sts.js', import.meta.url));
const SERVER_ID = 'chaos';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

describe('SIGKILL chaos', () => {
  let dir: string;
  let entra: EntraEmulatorHandle;
  let gitlab: GitlabEmulatorHandle;
  let child: ChildProcess | undefined;
  let port: number;
  let configFile: string;
  let dbFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-chaos-'));
    entra = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    gitlab = await startGitlabEmulator({ stateDir: join(dir, 'gitlab') });
    port = await freePort();
    dbFile = join(dir, 'ledger.db');
    configFile = join(dir, 'tanuki-sts.yaml');
    // JSON is YAML.
    const config = {
      server: {
        listen: `127.0.0.1:${port}`,
        metricsListen: '127.0.0.1:0',
        publicUrl: 'http://127.0.0.1:8600',
        id: SERVER_ID,
        rateLimit: { perIdentity: 0, perIp: 0 },
        maxActiveGrantsPerIdentity: 0,
      },
      gitlab: { url: gitlab.url, token: gitlab.adminToken, timeout: '3s', healthInterval: '30s' },
      store: { sqlite: dbFile },
      issuers: {
        contoso: {
          entra: { tenant: DEV_TENANT_ID, authorityHost: entra.url },
          caFile: entra.caFile,
          audiences: [DEV_RESOURCE_URI, DEV_RESOURCE_CLIENT_ID],
        },
      },
      policies: [
        {
          name: 'chaos',
          issuer: 'contoso',
          match: { appid: DEV_PIPELINE_CLIENT_ID },
          grant: {
            projects: [PROJECT],
            scopes: ['read_repository'],
            role: 'reporter',
            ttl: { default: `${TTL_SECONDS}s`, max: `${TTL_SECONDS}s` },
          },
        },
        {
          name: 'chaos-rotator',
          issuer: 'contoso',
          match: { appid: DEV_PIPELINE_CLIENT_ID },
          grant: {
            projects: [PROJECT],
            scopes: ['api'],
            role: 'developer',
            ttl: { default: `${TTL_SECONDS}s`, max: `${TTL_SECONDS}s` },
          },
        },
      ],
      reaper: { interval: '1s', reconcileInterval: `${RECONCILE_SECONDS}s` },
      audit: { file: join(dir, 'audit.jsonl') },
    };
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  });

  after(async () => {
    child?.kill('SIGKILL');
    await gitlab?.close().catch(() => {});
    await entra?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function startChild(): Promise<ChildProcess> {
    const log = openSync(join(dir, 'sts.log'), 'a');
    const c = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
      stdio: ['ignore', log, log],
      env: { ...process.env, NODE_EXTRA_CA_CERTS: entra.caFile },
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null)
        throw new Error(
          `tanuki-sts exited with ${c.exitCode}: ${readFileSync(join(dir, 'sts.log'), 'utf8').slice(-2000)}`,
        );
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.status === 200) return c;
      } catch {}
      await sleep(50);
    }
    throw new Error('tanuki-sts did not start in 20 s');
  }

  async function kill(c: ChildProcess): Promise<void> {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await exited;
  }

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

  const ours = (t: Record<string, unknown>) => String(t.name ?? '').startsWith(`tanuki-sts/${SERVER_ID}/`);
  const isActive = (t: Record<string, unknown>) => t.active === true && t.revoked !== true;

  it(`${CYCLES} SIGKILL + restart cycles under load lose no token`, async () => {
    const subject = await mintSubject();
    const received: string[] = [];
    const outcomes = new Map<string, number>();
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ ...EXCHANGE, subject_token: subject, audience: PROJECT }).toString(),
          });
          const body = (await res.json()) as { access_token?: string };
          outcomes.set(String(res.status), (outcomes.get(String(res.status)) ?? 0) + 1);
          if (res.status === 200 && body.access_token) received.push(body.access_token);
        } catch {
          outcomes.set('connection error', (outcomes.get('connection error') ?? 0) + 1);
          await sleep(20);
        }
      }
    };

    // The hostile holder: exchange for `api`, then rotate the token every second until GitLab refuses.
    let rotations = 0;
    const rotator = async () => {
      while (running) {
        let token: string | undefined;
        try {
          const res = await fetch(`http://127.0.0.1:${port}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({
              ...EXCHANGE,
              subject_token: subject,
              audience: PROJECT,
              policy: 'chaos-rotator',
            }).toString(),
          });
          const body = (await res.json()) as { access_token?: string };
          if (res.status === 200 && body.access_token) {
            received.push(body.access_token);
            token = body.access_token;
          }
        } catch {}
        while (running && token) {
          await sleep(1000);
          const r = await fetch(`${gitlab.url}/api/v4/projects/1000/access_tokens/self/rotate`, {
            method: 'POST',
            headers: { 'private-token': token, 'content-type': 'application/json' },
            body: JSON.stringify({
              expires_at: utcDate(Date.now() + 300 * 86_400_000),
            }),
          }).catch(() => undefined);
          const next = r?.status === 200 ? ((await r.json()) as { token?: string }).token : undefined;
          if (next) rotations++;
          token = next;
        }
        if (!token) await sleep(200);
      }
    };

    child = await startChild();
    const load = Promise.all([...Array.from({ length: WORKERS }, worker), rotator()]);
    const started = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      await sleep(300 + Math.floor(Math.random() * 700));
      await kill(child);
      child = await startChild();
    }
    running = false;
    await load;
    const loadSeconds = (Date.now() - started) / 1000;

    // The last process keeps running: its reaper and reconciler clean up.
    const drainStarted = Date.now();
    const deadline = drainStarted + (TTL_SECONDS + RECONCILE_SECONDS + SLACK_SECONDS) * 1000;
    let created: Array<Record<string, unknown>> = [];
    let leftActive = Number.POSITIVE_INFINITY;
    while (Date.now() < deadline) {
      created = (await gitlabTokens(gitlab.url)).filter(ours);
      leftActive = created.filter(isActive).length;
      if (leftActive === 0) break;
      await sleep(1000);
    }
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    await kill(child);

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
      `# chaos: ${CYCLES} SIGKILLs in ${loadSeconds.toFixed(0)} s; requests ${JSON.stringify(Object.fromEntries(outcomes))}; ` +
        `GitLab tokens created ${created.length}, returned to clients ${received.length}, rotated by the holder ${rotations}, ` +
        `left active ${leftActive} ` +
        `(drained in ${drainSeconds.toFixed(0)} s); ledger ${JSON.stringify(states)}; unrecorded ${unrecorded.length}`,
    );
    assert.ok(received.length > 0, 'the load got tokens');
    assert.ok(rotations > 0, 'the hostile holder did rotate tokens');
    assert.equal(unrecorded.length, 0, 'every token a client received is in the ledger');
    assert.equal(leftActive, 0, 'every token GitLab created is revoked');
  });
});
