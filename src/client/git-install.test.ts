/**
 * `git-credential --install` / `--uninstall`: the plans on their own, then
 * real git on a throwaway global config (GIT_CONFIG_GLOBAL in a temporary
 * HOME): `--uninstall` takes out exactly what `--install` put in, and the
 * `[credential "http://127.0.0.1:…"]` sections earlier versions left behind
 * for dev stacks whose ports changed on every start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { captureIo } from '../../test/helpers/fake-sts.ts';
import { helperCommand, runGitCredential } from './commands.ts';
import { parseGlobalList, parseInstalledHelper, planInstall, planUninstall } from './git-install.ts';

const GITLAB = 'https://gitlab.example.com';
const STS = 'https://sts.example.com';
/** As `helperCommand` writes it (and has since the first release). */
const installed = (sts?: string) =>
  `!'/usr/bin/node' '/opt/tanuki/bin/tanuki-sts.js' git-credential${sts ? ` --sts '${sts}'` : ''}`;
const entries = (list: Array<[string, string | undefined]>) => list.map(([key, value]) => ({ key, value }));

describe('git-install plans', () => {
  it('parses `git config --null --list`, keys with and without a value', () => {
    assert.deepEqual(parseGlobalList('user.name\nMe\0credential.https://h:1/x.y.helper\n\0core.bare\0'), [
      { key: 'user.name', value: 'Me' },
      { key: 'credential.https://h:1/x.y.helper', value: '' },
      { key: 'core.bare', value: undefined },
    ]);
  });

  it('recognises exactly the helper --install writes', () => {
    assert.deepEqual(parseInstalledHelper(installed(STS)), { sts: STS });
    assert.deepEqual(parseInstalledHelper(installed()), { sts: undefined });
    assert.deepEqual(parseInstalledHelper(helperCommand("https://s.example/it's", '/x/tanuki-sts.js')), {
      sts: "https://s.example/it's",
    });
    for (const other of [
      'store',
      '!tanuki-sts git-credential',
      `${installed(STS)}; rm -rf ~`,
      `!'/usr/bin/node' '/x.js' git-credential --sts 'https://a' --verbose`,
      '!f() { echo password=x; }; f',
    ])
      assert.equal(parseInstalledHelper(other), undefined, other);
  });

  it('install: appends the reset and the helper, replaces an earlier install, keeps the rest', () => {
    const fresh = planInstall([], GITLAB, installed(STS));
    assert.deepEqual(fresh, [
      ['--add', `credential.${GITLAB}.helper`, ''],
      ['--add', `credential.${GITLAB}.helper`, installed(STS)],
      [`credential.${GITLAB}.useHttpPath`, 'true'],
    ]);
    const again = planInstall(
      entries([
        [`credential.${GITLAB}.helper`, 'cache'],
        [`credential.${GITLAB}.helper`, ''],
        [`credential.${GITLAB}.helper`, installed('https://old.example.com')],
        [`credential.${GITLAB}.usehttppath`, 'true'],
      ]),
      GITLAB,
      installed(STS),
    );
    assert.deepEqual(again, [
      ['--unset-all', `credential.${GITLAB}.helper`],
      ['--add', `credential.${GITLAB}.helper`, 'cache'],
      ['--add', `credential.${GITLAB}.helper`, ''],
      ['--add', `credential.${GITLAB}.helper`, installed(STS)],
      [`credential.${GITLAB}.useHttpPath`, 'true'],
    ]);
  });

  const config = entries([
    ['user.name', 'Me'],
    [`credential.${GITLAB}.helper`, ''],
    [`credential.${GITLAB}.helper`, installed(STS)],
    [`credential.${GITLAB}.usehttppath`, 'true'],
    ['credential.http://127.0.0.1:41001.helper', ''],
    ['credential.http://127.0.0.1:41001.helper', installed('http://127.0.0.1:41003')],
    ['credential.http://127.0.0.1:41001.usehttppath', 'true'],
    ['credential.http://localhost:42001.helper', 'cache'],
    ['credential.http://localhost:42001.helper', ''],
    ['credential.http://localhost:42001.helper', installed('http://localhost:42003')],
    ['credential.http://localhost:42001.usehttppath', 'true'],
    ['credential.https://other.example.com.helper', '!tanuki-sts git-credential'],
  ]);

  it('uninstall --gitlab https://…: that section only; a section left empty is removed', () => {
    assert.deepEqual(planUninstall(config, { gitlab: GITLAB }), {
      steps: [['--remove-section', `credential.${GITLAB}`]],
      urls: [GITLAB],
    });
  });

  it("uninstall for a loopback dev stack: also the stale loopback sections; the user's own helper stays", () => {
    const plan = planUninstall(config, { gitlab: 'http://127.0.0.1:18602' });
    assert.deepEqual(plan.urls, ['http://127.0.0.1:41001', 'http://localhost:42001']);
    assert.deepEqual(plan.steps, [
      ['--remove-section', 'credential.http://127.0.0.1:41001'],
      ['--unset-all', 'credential.http://localhost:42001.helper'],
      ['--add', 'credential.http://localhost:42001.helper', 'cache'],
      ['--unset-all', 'credential.http://localhost:42001.useHttpPath'],
    ]);
  });

  it('uninstall --sts: the installs naming that STS; no target: every install; nothing hand-written', () => {
    assert.deepEqual(planUninstall(config, { sts: STS }).urls, [GITLAB]);
    assert.deepEqual(planUninstall(config, { sts: 'https://elsewhere.example.com' }).urls, []);
    assert.deepEqual(planUninstall(config, {}).urls, [
      GITLAB,
      'http://127.0.0.1:41001',
      'http://localhost:42001',
    ]);
  });
});

describe('--install / --uninstall with real git (temporary GIT_CONFIG_GLOBAL)', () => {
  let dir: string;
  let env: Record<string, string | undefined>;
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      env: env as NodeJS.ProcessEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const list = () => git('config', '--global', '--list');
  const helpers = (url: string) =>
    git('config', '--global', '--null', '--get-all', `credential.${url}.helper`).split('\0').slice(0, -1);
  const cred = async (opts: Parameters<typeof runGitCredential>[1]) => {
    const o = captureIo(env);
    const code = await runGitCredential(undefined, opts, o);
    return { code, err: o.err, out: o.out };
  };
  let userConfig: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-git-install-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    const home = mkdtempSync(join(dir, 'home-'));
    env = {
      PATH: process.env.PATH,
      HOME: home,
      GIT_CONFIG_GLOBAL: join(home, 'gitconfig'),
      GIT_CONFIG_NOSYSTEM: '1',
    };
    // The user's own configuration, some of it in the section --install writes to.
    git('config', '--global', 'user.name', 'Tester');
    git('config', '--global', 'credential.helper', 'store');
    git('config', '--global', `credential.${GITLAB}.username`, 'me');
    git('config', '--global', '--add', `credential.${GITLAB}.helper`, 'cache --timeout=60');
    git('config', '--global', 'credential.https://other.example.com.helper', '!tanuki-sts git-credential');
    userConfig = list();
    // What earlier versions' --install left for dev stacks whose ports changed on every start.
    for (const port of [41001, 42001]) {
      const section = `credential.http://127.0.0.1:${port}`;
      git('config', '--global', '--add', `${section}.helper`, '');
      git('config', '--global', '--add', `${section}.helper`, installed(`http://127.0.0.1:${port + 2}`));
      git('config', '--global', `${section}.useHttpPath`, 'true');
    }
  });

  it("install twice, then uninstall: exactly the user's configuration again (stale dev sections untouched)", async () => {
    const withStale = list();
    for (let i = 0; i < 2; i++) {
      const r = await cred({ install: true, gitlab: GITLAB, sts: STS });
      assert.equal(r.code, 0, r.err);
    }
    const ours = helperCommand(STS);
    assert.deepEqual(helpers(GITLAB), ['cache --timeout=60', '', ours]);
    assert.equal(git('config', '--global', `credential.${GITLAB}.useHttpPath`).trim(), 'true');

    const r = await cred({ uninstall: true, gitlab: GITLAB });
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.err,
      new RegExp(`removed the tanuki-sts credential helper for ${GITLAB} from the global git config`),
    );
    assert.equal(list(), withStale);
  });

  it("uninstall for the dev stack: its install and every stale loopback section go; the file keeps the user's config", async () => {
    const dev = 'http://127.0.0.1:18602';
    const install = await cred({ install: true, gitlab: dev, sts: 'http://127.0.0.1:18603' });
    assert.equal(install.code, 0, install.err);
    const r = await cred({ uninstall: true, gitlab: dev });
    assert.equal(r.code, 0, r.err);
    assert.equal(list(), userConfig);
    assert.doesNotMatch(readFileSync(env.GIT_CONFIG_GLOBAL!, 'utf8'), /127\.0\.0\.1/);
  });

  it('--dry-run prints the git commands and changes nothing; nothing installed: says so, exit 0', async () => {
    const before = list();
    const dry = await cred({ uninstall: true, sts: 'http://127.0.0.1:41003', dryRun: true });
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.err, /^git config --global --remove-section credential\.http:\/\/127\.0\.0\.1:41001$/m);
    assert.match(
      dry.err,
      /would remove the tanuki-sts credential helper for http:\/\/127\.0\.0\.1:41001, http:\/\/127\.0\.0\.1:42001/,
    );
    assert.equal(list(), before);

    const none = await cred({ uninstall: true, gitlab: 'https://gitlab.other.example' });
    assert.equal(none.code, 0);
    assert.match(none.err, /nothing to remove/);
    assert.equal(list(), before);
  });

  it('--install and --uninstall together is a usage error; no global config file is not an error', async () => {
    assert.equal((await cred({ install: true, uninstall: true, gitlab: GITLAB })).code, 2);
    rmSync(env.GIT_CONFIG_GLOBAL!);
    const r = await cred({ uninstall: true });
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /nothing to remove/);
  });
});
