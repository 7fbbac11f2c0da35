/**
 * `tanuki-sts exec` as a real process against the fake STS: SIGTERM to the
 * client is forwarded to the command, the token is revoked, the exit status
 * is 128+15; a failing command's status passes through, revoked too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeSts, okToken, startFakeSts } from '../../test/helpers/fake-sts.ts';

const ENTRY = fileURLToPath(new URL('../../test/helpers/cli-entry.ts', import.meta.url));

describe('exec as a process', () => {
  let fake: FakeSts;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    fake = await startFakeSts();
    fake.tokenAnswers = [okToken('glpat-exec-process-token')];
    dir = mkdtempSync(join(tmpdir(), 'tanuki-exec-'));
    env = {
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_RESOURCE: 'platform/lib',
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig',
      TANUKI_RETRIES: '0',
    };
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const runExec = (script: string, onStart?: (kill: () => void) => void) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', ENTRY, 'exec', '--', '/bin/sh', '-c', script],
        { env },
      );
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      onStart?.(() => child.kill('SIGTERM'));
      child.on('close', (code) => resolve({ code, out }));
    });

  it('SIGTERM: forwarded, revoked, exit 143', async () => {
    const marker = join(dir, 'started');
    const r = await runExec(`touch '${marker}'; exec sleep 30`, (kill) => {
      const poll = setInterval(() => {
        if (existsSync(marker)) {
          clearInterval(poll);
          kill();
        }
      }, 25);
    });
    assert.equal(r.code, 143, r.out);
    assert.equal(fake.requests.at(-1)?.path, '/revoke');
    assert.equal(fake.requests.at(-1)?.form.token, 'glpat-exec-process-token');
    assert.doesNotMatch(r.out, /glpat-|eyJ/);
  });

  it('a failing command: its status, revoked', async () => {
    fake.requests.length = 0;
    const r = await runExec('exit 42');
    assert.equal(r.code, 42, r.out);
    assert.deepEqual(
      fake.requests.map((q) => q.path),
      ['/.well-known/oauth-authorization-server', '/token', '/revoke'],
    );
  });
});
