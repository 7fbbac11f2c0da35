/**
 * The admin socket (`server.adminSocket`): private (0600 in a 0700 folder it
 * creates), refuses to take over a file or a live socket, clears a stale one,
 * answers `reload` with the reload's result and anything else with an error,
 * and `requestReload` (what `tanuki-sts reload` runs) says what went wrong.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { requestReload, startAdminSocket } from './admin-socket.ts';
import type { ReloadResult } from './reload.ts';

const OK: ReloadResult = {
  outcome: 'success',
  applied: ['policies'],
  restartRequired: ['store'],
  errors: [],
};

/** Send raw bytes and read the whole answer (until the server closes). */
function raw(path: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      out += d;
    });
    c.once('error', reject);
    c.once('close', () => resolve(out));
    c.once('connect', () => c.write(data));
  });
}

describe('admin socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-sock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is 0600 in a 0700 folder it creates; answers reload with the result', async () => {
    const path = join(dir, 'run', 'admin.sock');
    let calls = 0;
    const sock = await startAdminSocket(path, {
      reload: async () => {
        calls++;
        return OK;
      },
    });
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700);
      assert.deepEqual(await requestReload(path), OK);
      assert.equal(calls, 1);
    } finally {
      await sock.close();
    }
  });

  it('anything but `reload` is an error, an over-long command closes the connection; no reload runs', async () => {
    const path = join(dir, 'cmd.sock');
    let calls = 0;
    const sock = await startAdminSocket(path, {
      reload: async () => {
        calls++;
        return OK;
      },
    });
    try {
      assert.deepEqual(JSON.parse(await raw(path, 'shutdown\n')), {
        outcome: 'error',
        applied: [],
        restartRequired: [],
        errors: ['unknown command'],
      });
      assert.equal(await raw(path, `${'x'.repeat(100)}\n`), '');
      assert.equal(calls, 0);
    } finally {
      await sock.close();
    }
  });

  it('clears a stale socket; refuses a live one and a file that is not a socket', async () => {
    // A stale socket: left by a process killed while it listened (SIGKILL removes nothing).
    const stale = join(dir, 'stale.sock');
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.ok(statSync(stale).isSocket(), 'a stale socket is there');
    await assert.rejects(requestReload(stale), /nothing answers on/);
    const s1 = await startAdminSocket(stale, { reload: async () => OK });
    assert.deepEqual(await requestReload(stale), OK);

    await assert.rejects(startAdminSocket(stale, { reload: async () => OK }), /another process answers on/);
    await s1.close();

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(startAdminSocket(file, { reload: async () => OK }), /exists and is not a socket/);
    assert.equal(statSync(file).size, 7, 'left as it is');
  });

  it('requestReload: nothing listening, or a folder it may not enter, says so', async () => {
    await assert.rejects(
      requestReload(join(dir, 'nothing.sock')),
      /nothing answers on .*is tanuki-sts serve running/,
    );
    mkdirSync(join(dir, 'closed'), { mode: 0o000 });
    if (process.getuid?.() !== 0) {
      await assert.rejects(requestReload(join(dir, 'closed', 'admin.sock')), /permission denied on/);
    }
  });
});
