/**
 * The credential helper driven by real git (git credential fill/approve/reject)
 * against the fake STS: quoting of the helper command, useHttpPath, one mint
 * for several requests, `store` ignored, `erase` revoking.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeSts, okToken, startFakeSts } from '../../test/helpers/fake-sts.ts';

const ENTRY = fileURLToPath(new URL('../../test/helpers/cli-entry.ts', import.meta.url));

function git(
  args: string[],
  env: NodeJS.ProcessEnv,
  input: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('git', args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

describe('git credential helper with real git', () => {
  let fake: FakeSts;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const query = 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n';

  before(async () => {
    fake = await startFakeSts();
    fake.tokenAnswers = [okToken('glpat-helper-token-one'), okToken('glpat-helper-token-two')];
    dir = mkdtempSync(join(tmpdir(), 'tanuki-git-helper-'));
    const helper = `!'${process.execPath}' --import tsx '${ENTRY}' git-credential`;
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      TANUKI_STS_URL: fake.url,
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig',
      TANUKI_CACHE_DIR: join(dir, 'cache'),
      TANUKI_RETRIES: '0',
      GIT_CONFIG_COUNT: '4',
      // A `store` helper first, reset by the empty value: it must never see our token.
      GIT_CONFIG_KEY_0: 'credential.helper',
      GIT_CONFIG_VALUE_0: `store --file=${join(dir, 'stored')}`,
      GIT_CONFIG_KEY_1: 'credential.https://gitlab.example.com.helper',
      GIT_CONFIG_VALUE_1: '',
      GIT_CONFIG_KEY_2: 'credential.https://gitlab.example.com.helper',
      GIT_CONFIG_VALUE_2: helper,
      GIT_CONFIG_KEY_3: 'credential.https://gitlab.example.com.useHttpPath',
      GIT_CONFIG_VALUE_3: 'true',
    };
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fill mints once for repeated requests; approve stores nothing; reject revokes', async () => {
    const first = await git(['credential', 'fill'], env, query);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /username=oauth2\npassword=glpat-helper-token-one\n/);
    const second = await git(['credential', 'fill'], env, query);
    assert.match(second.stdout, /password=glpat-helper-token-one\n/);
    assert.equal(fake.requests.filter((r) => r.path === '/token').length, 1);
    assert.equal(
      fake.requests.find((r) => r.path === '/token')?.form.resource,
      'https://gitlab.example.com/platform/lib',
    );

    const approve = await git(['credential', 'approve'], env, first.stdout);
    assert.equal(approve.code, 0, approve.stderr);
    assert.throws(() => rmSync(join(dir, 'stored')), /ENOENT/, 'the reset store helper never ran');

    const reject = await git(['credential', 'reject'], env, first.stdout);
    assert.equal(reject.code, 0, reject.stderr);
    assert.equal(fake.requests.at(-1)?.path, '/revoke');
    assert.equal(fake.requests.at(-1)?.form.token, 'glpat-helper-token-one');

    const third = await git(['credential', 'fill'], env, query);
    assert.match(third.stdout, /password=glpat-helper-token-two\n/);
    for (const r of [first, second, approve, reject, third]) assert.doesNotMatch(r.stderr, /glpat-|eyJ/);
  });

  it('other hosts get no answer from the helper', async () => {
    const other = await git(['credential', 'fill'], env, 'protocol=https\nhost=github.com\npath=a/b.git\n\n');
    assert.notEqual(other.code, 0, 'git cannot fill: no helper answered and prompting is off');
    assert.doesNotMatch(other.stdout, /password=/);
  });
});
