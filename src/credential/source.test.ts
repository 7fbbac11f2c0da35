import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CredentialSourceError } from './errors.ts';
import { openCredentialSource } from './source.ts';

describe('credential sources', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-cred-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('file: read again each time (trimmed); written by replacing it, 0600 whatever it was', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'glpat-first-value-xxxxxxxxxx\n', { mode: 0o644 });
    chmodSync(path, 0o644);
    const s = openCredentialSource({ kind: 'file', path }, { value: 'ignored' });
    assert.equal(s.writable, true);
    assert.equal(await s.read(), 'glpat-first-value-xxxxxxxxxx');
    const old = umaskSet(0o022);
    try {
      assert.deepEqual(await s.write('glpat-second-value-xxxxxxxxx'), {});
    } finally {
      umaskSet(old);
    }
    assert.equal(readFileSync(path, 'utf8'), 'glpat-second-value-xxxxxxxxx\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(await s.read(), 'glpat-second-value-xxxxxxxxx');
    assert.deepEqual(readdirSync(dir), ['token'], 'no temporary file left');
  });

  it('file: missing, empty, unwritable folder → CredentialSourceError naming the file, not its content', async () => {
    const missing = openCredentialSource({ kind: 'file', path: join(dir, 'nope') }, { value: '' });
    await assert.rejects(missing.read(), (e: Error) => {
      assert.ok(e instanceof CredentialSourceError);
      assert.equal(e.message, `cannot read file ${join(dir, 'nope')} (ENOENT)`);
      return true;
    });
    writeFileSync(join(dir, 'empty'), '  \n');
    await assert.rejects(
      openCredentialSource({ kind: 'file', path: join(dir, 'empty') }, { value: '' }).read(),
      /is empty/,
    );
    const ro = join(dir, 'ro');
    rmSync(ro, { recursive: true, force: true });
    mkdirSync(ro, { mode: 0o700 });
    const s = openCredentialSource({ kind: 'file', path: join(ro, 'token') }, { value: '' });
    chmodSync(ro, 0o500);
    try {
      if (process.getuid?.() === 0) return; // root writes anyway
      await assert.rejects(s.write('glpat-xxxxxxxxxxxxxxxxxxxxxxxx'), /cannot write file .* \(EACCES\)/);
    } finally {
      chmodSync(ro, 0o700);
    }
  });

  it('env and inline: the value read at load time; nothing can be written back', async () => {
    for (const spec of [{ kind: 'env' as const, name: 'GITLAB_TOKEN' }, { kind: 'inline' as const }]) {
      const s = openCredentialSource(spec, { value: 'glpat-from-config-xxxxxxxxx' });
      assert.equal(s.writable, false);
      assert.equal(await s.read(), 'glpat-from-config-xxxxxxxxx');
      await assert.rejects(s.write('x'), /cannot be written: a rotated token has nowhere to go/);
    }
  });
});

function umaskSet(mask: number): number {
  return process.umask(mask);
}
