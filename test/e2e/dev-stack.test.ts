/**
 * `tanuki-sts dev` (what `npm start` runs) as a user runs it: one stack per
 * state dir, a second start refused before it touches anything, `dev.json`
 * present only while its stack runs (gone after SIGINT, SIGTERM, SIGHUP;
 * stale after SIGKILL and then ignored), fixed default ports, and clear
 * messages for a taken port or a port base that cannot fit its ports.
 * Every stack here runs on `--port-base 0` (any free ports): the tests never
 * depend on the default ports being free.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/client-dev-stack.ts';
import { refusedOrStarted, spawnDev } from '../helpers/dev-process.ts';
import { runCli } from '../helpers/run-cli.ts';

/** The documented default port base (README, `dev --help`): a contract, so spelt out here. */
const DEFAULT_PORT_BASE = 18600;

/** Every file of a stopped or running stack that a refused start must leave as it was. */
const KEPT = ['dev.json', 'tanuki-sts.yaml', 'walkthrough.sh', 'gitlab-admin-token', 'dev.pid'];

function snapshot(stateDir: string): Record<string, string | null> {
  const files: Record<string, string | null> = {};
  for (const f of KEPT) {
    const p = join(stateDir, f);
    files[f] = existsSync(p) ? readFileSync(p, 'utf8') : null;
  }
  files['(listing)'] = readdirSync(stateDir)
    .filter((f) => !f.startsWith('tanuki-sts.db'))
    .sort()
    .join(' ');
  return files;
}

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

async function ephemeralListener(): Promise<{ srv: Server; port: number }> {
  for (;;) {
    const srv = (await listen(0)) as Server;
    const addr = srv.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    if (port > 0 && port <= 65531) return { srv, port };
    srv.close();
  }
}

const close = (srv: Server | undefined) => new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));

describe('tanuki-sts dev (e2e)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'tanuki-dev-e2e-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a second start from the same state dir is refused before it touches anything', async () => {
    const state = join(root, 'second');
    const first = spawnDev(state, ['--port-base', '0']);
    try {
      const dev = await first.ready();
      const kept = snapshot(state);
      const message = `tanuki-sts: a dev stack already runs from ${state} (pid ${first.pid}); stop it or use --state-dir\n`;
      // Any port base, the default one included: the running stack is found before any port is tried.
      for (const extra of [['--port-base', '0'], [], ['--port-base', String(DEFAULT_PORT_BASE + 100)]]) {
        const second = spawnDev(state, extra);
        const outcome = await refusedOrStarted(second);
        assert.deepEqual(outcome, { code: 1, signal: null }, `${extra.join(' ')}: ${second.stderr()}`);
        assert.equal(second.stderr(), message);
        assert.deepEqual(snapshot(state), kept, `${extra.join(' ')}: the running stack's files changed`);
      }
      // A start that fails at once (usage error) touches nothing either.
      const bad = await runCli(['dev', '--state-dir', state, '--port-base', '65534']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.deepEqual(snapshot(state), kept);
      // The first stack still serves what dev.json says.
      const health = await fetch(`${dev.sts.url}/healthz`);
      assert.equal(health.status, 200);
      const gitlab = await fetch(`${dev.gitlab.url}/api/v4/version`, {
        headers: { 'PRIVATE-TOKEN': dev.gitlab.adminToken },
      });
      assert.equal(gitlab.status, 200);
      assert.equal(dev.pid, first.pid, 'dev.json names the process that serves the stack');
    } finally {
      await first.stop();
    }
    assert.equal(existsSync(join(state, 'dev.json')), false);
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} stops the stack and removes dev.json (it never describes a stack that is not running)`, async () => {
      const state = join(root, `signal-${signal}`);
      const p = spawnDev(state, ['--port-base', '0']);
      const dev = await p.ready();
      assert.ok(existsSync(join(state, 'dev.json')));
      await p.stop(signal);
      assert.equal(existsSync(join(state, 'dev.json')), false, p.stderr());
      assert.equal(existsSync(join(state, 'dev.pid')), false);
      await assert.rejects(fetch(`${dev.sts.url}/healthz`), 'the STS is down');
      // The state dir is free again: a new stack starts from it.
      const again = spawnDev(state, ['--port-base', '0']);
      try {
        assert.equal((await again.ready()).pid, again.pid);
      } finally {
        await again.stop();
      }
    });
  }

  it('a dev.json left by SIGKILL is stale: the next start says so in one line and replaces it', async () => {
    const state = join(root, 'killed');
    const first = spawnDev(state, ['--port-base', '0']);
    await first.ready();
    await first.stop('SIGKILL');
    assert.ok(existsSync(join(state, 'dev.json')), 'SIGKILL leaves dev.json behind');
    const second = spawnDev(state, ['--port-base', '0']);
    try {
      const dev = await second.ready();
      const lines = second.stderr().split('\n').filter(Boolean);
      assert.deepEqual(lines, [
        `tanuki-sts: ignoring a stale ${join(state, 'dev.json')} (pid ${first.pid} is not running)`,
      ]);
      assert.equal(dev.pid, second.pid);
      assert.equal((await fetch(`${dev.sts.url}/healthz`)).status, 200);
    } finally {
      await second.stop();
    }
  });

  it('a taken port: named, with the --port-base hint; the start touches nothing', async () => {
    const state = join(root, 'taken');
    const stopped = spawnDev(state, ['--port-base', '0']);
    await stopped.ready();
    await stopped.stop();
    const kept = snapshot(state);
    const { srv, port } = await ephemeralListener();
    try {
      // The port is the managed identity endpoint's (base + 1).
      const p = spawnDev(state, ['--port-base', String(port - 1)]);
      assert.deepEqual(await refusedOrStarted(p), { code: 1, signal: null }, p.stderr());
      assert.equal(
        p.stderr(),
        `tanuki-sts: port ${port} (managed identity endpoint) on 127.0.0.1 is in use; ` +
          `choose other ports with --port-base N (the dev stack uses N to N+4)\n`,
      );
      assert.deepEqual(snapshot(state), kept);
      // A fresh state dir is not even created.
      const fresh = join(root, 'taken-fresh');
      const q = spawnDev(fresh, ['--port-base', String(port)]);
      assert.deepEqual(await refusedOrStarted(q), { code: 1, signal: null }, q.stderr());
      assert.match(q.stderr(), new RegExp(`port ${port} \\(Entra ID emulator\\).*--port-base`));
      assert.equal(existsSync(fresh), false);
    } finally {
      await close(srv);
    }
  });

  it('a port base that cannot fit its five ports is refused with a sentence, not a RangeError', async () => {
    const state = join(root, 'range');
    for (const base of ['65534', '65532', '70000', '-1', '1.5', 'abc']) {
      const r = await runCli(['dev', '--state-dir', state, '--port-base', base]);
      assert.equal(r.code, 2, `${base}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /RangeError|ERR_SOCKET|options\.port|\n\s+at /, base);
      assert.match(r.stderr, /--port-base/, base);
    }
    const r = await runCli(['dev', '--state-dir', state, '--port-base', '65534']);
    assert.match(
      r.stderr,
      /port base 65534 cannot hold the dev stack's 5 ports \(65534 to 65538; the highest port is 65535\): use 65531 or lower, or 0 for any free ports/,
    );
    assert.equal(existsSync(state), false, 'nothing created');
  });

  it('without --port-base: the fixed default base, documented in --help and the README', async () => {
    const help = await runCli(['dev', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`--port-base <n>[\\s\\S]*\\(default:\\s+${DEFAULT_PORT_BASE}\\)`));
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    assert.match(readme, new RegExp(`${DEFAULT_PORT_BASE} to ${DEFAULT_PORT_BASE + 4}`));
    // Whoever holds the default base port (this test, or anything else on this machine),
    // a start without --port-base reports it: proof that it tried exactly that port.
    const holder = await listen(DEFAULT_PORT_BASE);
    try {
      const state = join(root, 'default');
      mkdirSync(state, { mode: 0o700 });
      const p = spawnDev(state);
      assert.deepEqual(await refusedOrStarted(p), { code: 1, signal: null }, p.stderr());
      assert.match(
        p.stderr(),
        new RegExp(
          `^tanuki-sts: port ${DEFAULT_PORT_BASE} \\(Entra ID emulator\\) on 127\\.0\\.0\\.1 is in use; choose other ports with --port-base N`,
        ),
      );
    } finally {
      await close(holder);
    }
  });
});
