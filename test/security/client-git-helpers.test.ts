/**
 * 4. Other credential helpers must not keep a token tanuki-sts issued. Git
 * calls every configured helper on `approve` (`store`); a `store` helper
 * configured after the install section (later in the global file, in the
 * repository config, or in GIT_CONFIG_*) would write the token in clear to
 * ~/.git-credentials. Real git, a fake STS on loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runGitCredential } from '../../src/client/commands.ts';
import { captureIo, type FakeSts, okToken, startFakeSts } from '../helpers/fake-sts.ts';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const GITLAB = 'https://gitlab.example.com';
const QUERY = 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n';

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

const io = captureIo;

describe('4. another helper after tanuki-sts', () => {
  let fake: FakeSts;
  let dir: string;
  let base: NodeJS.ProcessEnv;
  const helper = `!'${process.execPath}' --import tsx '${ENTRY}' git-credential`;

  const made: string[] = [];
  before(async () => {
    fake = await startFakeSts();
  });
  after(async () => {
    await fake.close();
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.tokenAnswers = [okToken('glpat-helper-token-one0'), okToken('glpat-helper-token-two0')];
    dir = mkdtempSync(join(tmpdir(), 'tanuki-git-helpers-'));
    made.push(dir);
    base = {
      PATH: process.env.PATH,
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      TANUKI_STS_URL: fake.url,
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig',
      TANUKI_CACHE_DIR: join(dir, 'cache'),
      TANUKI_RETRIES: '0',
    };
  });

  /** The installed section (reset + ours + useHttpPath), then whatever comes later. */
  function withLater(later: Array<[string, string]>): NodeJS.ProcessEnv {
    const entries: Array<[string, string]> = [
      [`credential.${GITLAB}.helper`, ''],
      [`credential.${GITLAB}.helper`, helper],
      [`credential.${GITLAB}.useHttpPath`, 'true'],
      ...later,
    ];
    const env: NodeJS.ProcessEnv = { ...base, GIT_CONFIG_COUNT: String(entries.length) };
    entries.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return env;
  }

  it('a later `store` helper: approve revokes the token it would keep, and says why', async () => {
    const stored = join(dir, 'git-credentials');
    const env = withLater([['credential.helper', `store --file=${stored}`]]);
    const fill = await git(['credential', 'fill'], env, QUERY);
    assert.equal(fill.code, 0, fill.stderr);
    assert.match(fill.stdout, /password=glpat-helper-token-one0\n/);

    const approve = await git(['credential', 'approve'], env, fill.stdout);
    assert.equal(approve.code, 0, approve.stderr);
    const revoked = fake.requests.filter((r) => r.path === '/revoke').map((r) => r.form.token);
    assert.deepEqual(revoked, ['glpat-helper-token-one0'], 'the copy `store` keeps is dead');
    assert.match(approve.stderr, /store --file=/);
    assert.match(approve.stderr, /revoked/);
    assert.doesNotMatch(approve.stderr, /glpat-/);
    // git's store helper did write it (it is git's doing), but what it holds no longer works.
    assert.ok(existsSync(stored) && readFileSync(stored, 'utf8').includes('glpat-helper-token-one0'));

    // The revoked token is forgotten: the next git command gets a fresh one.
    const again = await git(['credential', 'fill'], env, QUERY);
    assert.match(again.stdout, /password=glpat-helper-token-two0\n/);
  });

  it('a later helper for a path under the GitLab URL counts too', async () => {
    const other = join(dir, 'other-credentials');
    const env = withLater([[`credential.${GITLAB}/platform.helper`, `store --file=${other}`]]);
    const fill = await git(['credential', 'fill'], env, QUERY);
    assert.equal(fill.code, 0, fill.stderr);
    const approve = await git(['credential', 'approve'], env, fill.stdout);
    assert.equal(approve.code, 0, approve.stderr);
    assert.equal(fake.requests.filter((r) => r.path === '/revoke').length, 1);
  });

  it('tanuki-sts alone (a store helper before the installed reset): approve keeps the token', async () => {
    const stored = join(dir, 'stored');
    const env: NodeJS.ProcessEnv = { ...base, GIT_CONFIG_COUNT: '4' };
    const entries: Array<[string, string]> = [
      ['credential.helper', `store --file=${stored}`],
      [`credential.${GITLAB}.helper`, ''],
      [`credential.${GITLAB}.helper`, helper],
      [`credential.${GITLAB}.useHttpPath`, 'true'],
    ];
    entries.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    const fill = await git(['credential', 'fill'], env, QUERY);
    assert.equal(fill.code, 0, fill.stderr);
    const approve = await git(['credential', 'approve'], env, fill.stdout);
    assert.equal(approve.code, 0, approve.stderr);
    assert.equal(fake.requests.filter((r) => r.path === '/revoke').length, 0);
    assert.equal(existsSync(stored), false);
    const again = await git(['credential', 'fill'], env, QUERY);
    assert.match(again.stdout, /password=glpat-helper-token-one0\n/, 'still cached');
  });

  it('--install warns when tanuki-sts is not the only helper git will use for the GitLab URL', async () => {
    const env = {
      ...base,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'credential.helper',
      GIT_CONFIG_VALUE_0: 'store',
    } as Record<string, string>;
    const o = io(env);
    assert.equal(
      await runGitCredential(undefined, { install: true, gitlab: GITLAB, sts: fake.url }, o),
      0,
      o.err,
    );
    assert.match(o.err, /not the only credential helper/);
    assert.match(o.err, /store \(command/);
  });

  it('--install alone: no warning', async () => {
    const o = io(base as Record<string, string>);
    assert.equal(
      await runGitCredential(undefined, { install: true, gitlab: GITLAB, sts: fake.url }, o),
      0,
      o.err,
    );
    assert.doesNotMatch(o.err, /not the only credential helper/);
    assert.match(readFileSync(join(dir, '.gitconfig'), 'utf8'), /useHttpPath = true/);
  });
});
