/**
 * `startDevStack` in this process: a start that fails after it claimed the
 * state dir leaves no dev.json (not even the stale one it found) and no
 * dev.pid, and releases the state dir; a second start while a stack runs is
 * refused with the pid and changes nothing; `close()` removes dev.json.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireLedgerLock } from '../ledger/index.ts';
import { startDevStack } from './dev-stack.ts';
import { DevStackError } from './dev-state.ts';

/** Whether startDevStack's process `exit` listener (it removes dev.json) is registered. */
const removesDevJsonAtExit = () => process.listeners('exit').some((f) => f.name === 'removeDevJson');

describe('startDevStack', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-dev-stack-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('an error during the start: no dev.json, no dev.pid, the state dir free again', async () => {
    const state = join(dir, 'broken');
    mkdirSync(state, { mode: 0o700 });
    // A stale dev.json (its stack was SIGKILLed) and a file where the GitLab emulator wants its folder.
    writeFileSync(join(state, 'dev.json'), JSON.stringify({ pid: 2 ** 22 + 1 }), { mode: 0o600 });
    writeFileSync(join(state, 'gitlab'), 'not a folder');
    const notices: string[] = [];
    await assert.rejects(startDevStack({ stateDir: state, notice: (l) => notices.push(l) }));
    assert.deepEqual(notices, [
      `ignoring a stale ${join(state, 'dev.json')} (pid ${2 ** 22 + 1} is not running)`,
    ]);
    assert.equal(existsSync(join(state, 'dev.json')), false);
    assert.equal(existsSync(join(state, 'dev.pid')), false);
    assert.equal(removesDevJsonAtExit(), false, 'no exit listener left behind');

    rmSync(join(state, 'gitlab'));
    const stack = await startDevStack({ stateDir: state });
    try {
      assert.equal(stack.devJson.pid, process.pid);
      assert.equal(removesDevJsonAtExit(), true, 'dev.json goes when the process exits');
      assert.equal(readFileSync(join(state, 'dev.pid'), 'utf8'), `${process.pid}\n`);
      const devJson = readFileSync(stack.devJsonPath, 'utf8');
      const config = readFileSync(join(state, 'tanuki-sts.yaml'), 'utf8');
      // A second start from the same dir, in the same process: refused, nothing changed.
      const err = await startDevStack({ stateDir: state }).catch((e: unknown) => e);
      assert.ok(err instanceof DevStackError);
      assert.equal(err.code, 'ERR_DEV_RUNNING');
      assert.equal(
        err.message,
        `a dev stack already runs from ${state} (pid ${process.pid}); stop it or use --state-dir`,
      );
      assert.equal(readFileSync(stack.devJsonPath, 'utf8'), devJson);
      assert.equal(readFileSync(join(state, 'tanuki-sts.yaml'), 'utf8'), config);
      assert.equal((await fetch(`${stack.devJson.sts.url}/healthz`)).status, 200);
    } finally {
      await stack.close();
    }
    assert.equal(existsSync(join(state, 'dev.json')), false);
    assert.equal(existsSync(join(state, 'dev.pid')), false);
    assert.equal(removesDevJsonAtExit(), false);
  });

  it('a ledger another tanuki-sts process serves (an older dev stack, `serve` on the dev config): refused', async () => {
    const state = join(dir, 'served');
    const ledger = acquireLedgerLock(join(state, 'tanuki-sts.db'));
    try {
      const err = await startDevStack({ stateDir: state }).catch((e: unknown) => e);
      assert.ok(err instanceof DevStackError);
      assert.equal(
        err.message,
        `a tanuki-sts process already serves the ledger in ${state} (tanuki-sts.db); stop it or use --state-dir`,
      );
      assert.equal(existsSync(join(state, 'dev.pid')), false);
      assert.equal(existsSync(join(state, 'tanuki-sts.yaml')), false);
    } finally {
      ledger.release();
    }
  });

  it('a port base that cannot fit its ports is refused before anything is created', async () => {
    const state = join(dir, 'range');
    const err = await startDevStack({ stateDir: state, portBase: 65534 }).catch((e: unknown) => e);
    assert.ok(err instanceof DevStackError);
    assert.equal(err.code, 'ERR_DEV_PORT_BASE');
    assert.match(err.message, /^port base 65534 cannot hold the dev stack's 5 ports/);
    assert.equal(existsSync(state), false);
  });
});
