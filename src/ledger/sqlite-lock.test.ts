import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { acquireLedgerLock } from './sqlite-lock.ts';
import { LedgerLockedError } from './types.ts';

describe('ledger lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-lock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is held by one owner at a time and free again after release', () => {
    const path = join(dir, 'a.db');
    const first = acquireLedgerLock(path);
    assert.throws(() => acquireLedgerLock(path), LedgerLockedError);
    first.release();
    first.release(); // idempotent
    acquireLedgerLock(path).release();
  });

  it('a SIGKILLed holder leaves no stale lock behind', async () => {
    const path = join(dir, 'b.db');
    const lockModule = fileURLToPath(new URL('./sqlite-lock.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { acquireLedgerLock } = await import(${JSON.stringify(lockModule)});
         acquireLedgerLock(${JSON.stringify(path)}); console.log('held'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      child.on('exit', (code) => reject(new Error(`the child exited (${code}) before it held the lock`)));
    });
    assert.throws(() => acquireLedgerLock(path), LedgerLockedError, 'held by the live child');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    acquireLedgerLock(path).release();
  });

  it('creates the ledger folder, and one lock serves every spelling of the path', () => {
    const path = join(dir, 'new', 'folder', 'c.db');
    const lock = acquireLedgerLock(path);
    assert.throws(
      () => acquireLedgerLock(join(dir, 'new', 'folder', '..', 'folder', 'c.db')),
      LedgerLockedError,
    );
    lock.release();
  });

  it('an in-memory ledger needs no lock', () => {
    acquireLedgerLock(':memory:').release();
  });
});
