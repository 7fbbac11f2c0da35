/**
 * The pipeline client on a hostile host: another local user, odd files, a
 * build step that should not be able to mint tokens itself.
 *   3. a pre-created (another uid, or a symlink) default cache folder and
 *      planted entries are never read; the helper moves to a fresh private folder;
 *   5. the subject token file and variables are read with limits;
 *   A. `exec` does not pass the pipeline's own credentials to the command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TokenCache } from '../../src/client/cache.ts';
import { runExec, runGitCredential, runToken } from '../../src/client/commands.ts';
import { cacheKeyParts } from '../../src/client/git-credential.ts';
import { mint } from '../../src/client/mint.ts';
import { resolveSettings } from '../../src/client/settings.ts';
import { StsClient } from '../../src/client/sts.ts';
import { captureIo, FAKE_SUBJECT, type FakeSts, okToken, startFakeSts } from '../helpers/fake-sts.ts';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const SUBJECT = FAKE_SUBJECT;
const ISSUED = 'glpat-issued-by-the-sts-0123';
const PLANTED = 'glpat-planted-by-attacker-01';
const ME = process.getuid?.() ?? 0;
const OTHER_UID = 65534;
const ROOT = ME === 0;
const QUERY = 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n';

const io = captureIo;

function entryJson(token: string, sts: string): string {
  const now = Date.now();
  return JSON.stringify({
    token,
    issuedAt: now,
    expiresAt: now + 3_600_000,
    scopes: ['read_repository'],
    resource: 'https://gitlab.example.com/platform/lib',
    sts,
  });
}

describe('3. the git helper cache on a multi-user host', () => {
  let fake: FakeSts;
  let root: string;
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
    fake.tokenAnswers = [okToken(ISSUED)];
    root = mkdtempSync(join(tmpdir(), 'tanuki-hostile-cache-'));
    made.push(root);
    chmodSync(root, 0o755);
  });

  /** What a pipeline on a shared runner has: the default cache under TMPDIR, no XDG_RUNTIME_DIR. */
  const envFor = (tmp: string) => ({
    PATH: process.env.PATH,
    TMPDIR: tmp,
    TANUKI_STS_URL: fake.url,
    TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
    CI_JWT: SUBJECT,
    TANUKI_RETRIES: '0',
    CI_JOB_ID: '4242',
  });

  /** The key an attacker computes from public values (STS, GitLab, project, job ID…). */
  function plantedKey(env: Record<string, string | undefined>): string {
    const req = { gitlabUrl: 'https://gitlab.example.com', path: 'platform/lib' };
    return TokenCache.keyOf(cacheKeyParts(resolveSettings({}, env), env, req));
  }

  function fallbackDirs(tmp: string): string[] {
    return readdirSync(tmp).filter((n) => n.startsWith(`tanuki-sts-${ME}.`));
  }

  it('a default folder pre-created by another uid with a planted entry: not read; a fresh private folder is used', {
    skip: !ROOT && 'needs root to create a folder owned by another uid',
  }, async () => {
    const env = envFor(root);
    const hostile = join(root, `tanuki-sts-${ME}`);
    mkdirSync(hostile, { mode: 0o777 });
    chmodSync(hostile, 0o777);
    const planted = join(hostile, `${plantedKey(env)}.json`);
    writeFileSync(planted, entryJson(PLANTED, fake.url), { mode: 0o644 });
    chownSync(planted, OTHER_UID, OTHER_UID);
    chownSync(hostile, OTHER_UID, OTHER_UID);

    const first = io(env, QUERY);
    assert.equal(await runGitCredential('get', {}, first), 0, first.err);
    assert.doesNotMatch(first.out, /planted/);
    assert.match(first.out, new RegExp(`password=${ISSUED}\\n`));
    assert.match(first.err, /belongs to uid 65534/);

    const fresh = fallbackDirs(root);
    assert.equal(fresh.length, 1, 'one fresh private folder');
    const st = lstatSync(join(root, fresh[0]!));
    assert.ok(st.isDirectory());
    assert.equal(st.uid, ME);
    assert.equal(st.mode & 0o777, 0o700);

    // The next git command (another process) finds the same fresh folder: still one mint.
    const second = io(env, QUERY);
    assert.equal(await runGitCredential('get', {}, second), 0, second.err);
    assert.match(second.out, new RegExp(`password=${ISSUED}\\n`));
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 1);
    assert.equal(fallbackDirs(root).length, 1);
  });

  it('a default folder that is a symlink to an attacker folder: not followed, a fresh private folder is used', async () => {
    const env = envFor(root);
    const attacker = join(root, 'attacker');
    mkdirSync(attacker, { mode: 0o700 });
    writeFileSync(join(attacker, `${plantedKey(env)}.json`), entryJson(PLANTED, fake.url), { mode: 0o600 });
    symlinkSync(attacker, join(root, `tanuki-sts-${ME}`));

    const o = io(env, QUERY);
    assert.equal(await runGitCredential('get', {}, o), 0, o.err);
    assert.doesNotMatch(o.out, /planted/);
    assert.match(o.out, new RegExp(`password=${ISSUED}\\n`));
    assert.match(o.err, /symbolic link/);
    assert.equal(fallbackDirs(root).length, 1);
  });

  for (const [what, plant] of [
    [
      'a symlink to a file elsewhere',
      (dir: string, name: string, sts: string) => {
        const elsewhere = join(dir, '..', 'elsewhere.json');
        writeFileSync(elsewhere, entryJson(PLANTED, sts), { mode: 0o600 });
        symlinkSync(elsewhere, join(dir, name));
      },
    ],
    [
      'a file readable by others (0644)',
      (dir: string, name: string, sts: string) => {
        writeFileSync(join(dir, name), entryJson(PLANTED, sts), { mode: 0o644 });
        chmodSync(join(dir, name), 0o644);
      },
    ],
    [
      'a file owned by another uid',
      (dir: string, name: string, sts: string) => {
        writeFileSync(join(dir, name), entryJson(PLANTED, sts), { mode: 0o600 });
        if (ROOT) chownSync(join(dir, name), OTHER_UID, OTHER_UID);
        else chmodSync(join(dir, name), 0o666); // without root: at least not private
      },
    ],
  ] as const) {
    it(`inside our own private folder, ${what} is not read as a cache entry`, async () => {
      const cache = join(root, 'own');
      const env = { ...envFor(root), TANUKI_CACHE_DIR: cache };
      mkdirSync(cache, { mode: 0o700 });
      plant(cache, `${plantedKey(env)}.json`, fake.url);
      const o = io(env, QUERY);
      assert.equal(await runGitCredential('get', {}, o), 0, o.err);
      assert.doesNotMatch(o.out, /planted/);
      assert.match(o.out, new RegExp(`password=${ISSUED}\\n`));
    });
  }

  it('an explicit TANUKI_CACHE_DIR owned by another uid is refused (no silent move), nothing read', {
    skip: !ROOT && 'needs root',
  }, async () => {
    const cache = join(root, 'explicit');
    const env = { ...envFor(root), TANUKI_CACHE_DIR: cache };
    mkdirSync(cache, { mode: 0o700 });
    writeFileSync(join(cache, `${plantedKey(env)}.json`), entryJson(PLANTED, fake.url), { mode: 0o600 });
    chownSync(join(cache, `${plantedKey(env)}.json`), OTHER_UID, OTHER_UID);
    chownSync(cache, OTHER_UID, OTHER_UID);
    const o = io(env, QUERY);
    assert.equal(await runGitCredential('get', {}, o), 1);
    assert.equal(o.out, '');
    assert.match(o.err, /belongs to uid 65534/);
  });
});

/** Runs the client CLI as its own process (a runaway read must not take the test runner down). */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; signal: string | null; stderr: string; ms: number; killedAtMb?: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let killedAtMb: number | undefined;
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // A watchdog instead of ulimit -v (which breaks WebAssembly): an unbounded read is killed at 1 GB resident.
    const watchdog = setInterval(() => {
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        if (kb > 1024 * 1024) {
          killedAtMb = Math.round(kb / 1024);
          child.kill('SIGKILL');
        }
      } catch {}
    }, 100);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      resolve({ code, signal, stderr, ms: Date.now() - started, killedAtMb });
    });
  });
}

describe('5. the subject token is read with limits', () => {
  let fake: FakeSts;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    fake = await startFakeSts();
    dir = mkdtempSync(join(tmpdir(), 'tanuki-subject-limits-'));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    env = { PATH: process.env.PATH, TANUKI_STS_URL: fake.url, TANUKI_RETRIES: '0', TANUKI_RESOURCE: 'g/p' };
  });

  it('--subject-token-file /dev/zero: exit 2 at once (not a regular file), bounded memory', async () => {
    const r = await cli(['token', '--subject-token-file', '/dev/zero'], env);
    assert.equal(r.killedAtMb, undefined, `killed at ${r.killedAtMb} MB resident`);
    assert.equal(r.code, 2, `code ${r.code} signal ${r.signal}: ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, /not a regular file/);
    assert.ok(r.ms < 15_000);
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
  });

  it('a named pipe: exit 2 without blocking on it', async () => {
    const fifo = join(dir, 'fifo');
    const made = await new Promise<number | null>((r) => spawn('mkfifo', [fifo]).once('close', (c) => r(c)));
    assert.equal(made, 0);
    const r = await cli(['token', '--subject-token-file', fifo], env);
    assert.equal(r.code, 2, `code ${r.code} signal ${r.signal}: ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, /not a regular file/);
  });

  it('a 50 MB file: exit 2 before anything is uploaded', async () => {
    const big = join(dir, 'big.jwt');
    writeFileSync(big, 'eyJ');
    truncateSync(big, 50 * 1024 * 1024);
    const o = io(env as Record<string, string>);
    assert.equal(await runToken({ subjectTokenFile: big }, o), 2, o.err);
    assert.match(o.err, /64 KiB/);
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
  });

  it('a file of exactly 64 KiB is still read', async () => {
    const edge = join(dir, 'edge.jwt');
    writeFileSync(edge, `eyJ${'a'.repeat(64 * 1024 - 3)}`);
    const o = io(env as Record<string, string>);
    assert.equal(await runToken({ subjectTokenFile: edge }, o), 0, o.err);
  });

  it('--subject-token-var over 64 KiB: exit 2, nothing uploaded', async () => {
    const o = io({ ...env, TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT', CI_JWT: `eyJ${'a'.repeat(70_000)}` });
    assert.equal(await runToken({}, o), 2, o.err);
    assert.match(o.err, /64 KiB/);
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
  });

  it('TANUKI_ID_TOKEN over 64 KiB (gitlab-oidc): exit 2 before any sign-in', async () => {
    const e = {
      ...env,
      TANUKI_AZURE_AUTH: 'gitlab-oidc',
      AZURE_TENANT_ID: 't',
      AZURE_CLIENT_ID: 'c',
      TANUKI_ID_TOKEN: `eyJ${'a'.repeat(70_000)}`,
    } as Record<string, string>;
    const settings = resolveSettings({}, e);
    let signedIn = false;
    await assert.rejects(
      mint(settings, {
        sts: new StsClient({ baseUrl: fake.url, retries: 0 }),
        env: e,
        log: () => {},
        notice: () => {},
        azureToken: async () => {
          signedIn = true;
          return SUBJECT;
        },
      }),
      (err: Error & { exitCode?: number }) => err.exitCode === 2 && /64 KiB/.test(err.message),
    );
    assert.equal(signedIn, false);
  });
});

describe("A. exec keeps the pipeline's own credentials from the command", () => {
  let fake: FakeSts;
  let dir: string;
  before(async () => {
    fake = await startFakeSts();
    dir = mkdtempSync(join(tmpdir(), 'tanuki-exec-env-'));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const CREDENTIALS: Record<string, string> = {
    AZURE_CLIENT_SECRET: 'secret-value-aaaa',
    AZURE_CLIENT_CERTIFICATE_PATH: '/secrets/cert.pem',
    AZURE_CLIENT_CERTIFICATE_PASSWORD: 'cert-password-bbbb',
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
    AZURE_USERNAME: 'user@example.com',
    AZURE_PASSWORD: 'user-password-cccc',
    TANUKI_ID_TOKEN: 'eyJkZWZhdWx0LWlkLXRva2Vu.eyJ4IjoxfQ.sig-dddd',
    MY_ID_TOKEN: 'eyJjb25maWd1cmVkLWlk.eyJ4IjoxfQ.sig-eeee',
    SYSTEM_ACCESSTOKEN: 'azure-pipelines-access-token-ffff',
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'github-request-token-gggg',
    ACTIONS_ID_TOKEN_REQUEST_URL: 'https://pipelines.actions.githubusercontent.com/x',
    IDENTITY_ENDPOINT: 'http://127.0.0.1:41741/msi/token',
    IDENTITY_HEADER: 'identity-header-hhhh',
    MSI_ENDPOINT: 'http://127.0.0.1:41741/msi/token',
    MSI_SECRET: 'msi-secret-iiii',
    IMDS_ENDPOINT: 'http://localhost:40342',
    TANUKI_SUBJECT_TOKEN_FILE: '',
    CI_JWT: SUBJECT,
  };

  async function childEnv(keepEnv?: string[], extra: Record<string, string> = {}) {
    const file = join(dir, `env-${Math.random().toString(36).slice(2)}`);
    const o = io({
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_RETRIES: '0',
      TANUKI_RESOURCE: 'g/p',
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      TANUKI_ID_TOKEN_VAR: 'MY_ID_TOKEN',
      UNRELATED: 'kept',
      ...CREDENTIALS,
      ...extra,
    });
    const code = await runExec(['/bin/sh', '-c', `env > "${file}"`], { keepEnv }, o);
    assert.equal(code, 0, o.err);
    const text = readFileSync(file, 'utf8');
    return { text, names: new Set(text.split('\n').map((l) => l.split('=')[0])) };
  }

  it('the child sees none of them (names and values), but GITLAB_TOKEN and the rest of the job', async () => {
    const { text, names } = await childEnv();
    for (const name of Object.keys(CREDENTIALS)) {
      if (CREDENTIALS[name] === '') continue;
      assert.equal(names.has(name), false, `${name} was passed to the command`);
    }
    for (const value of Object.values(CREDENTIALS)) if (value) assert.equal(text.includes(value), false);
    assert.ok(names.has('GITLAB_TOKEN'));
    assert.ok(names.has('UNRELATED'));
    assert.ok(names.has('PATH'));
  });

  it('the subject token file variable is stripped (the file itself stays readable: documented)', async () => {
    const f = join(dir, 'subject.jwt');
    writeFileSync(f, SUBJECT);
    const { names } = await childEnv(undefined, {
      TANUKI_SUBJECT_TOKEN_VAR: '',
      TANUKI_SUBJECT_TOKEN_FILE: f,
    });
    assert.equal(names.has('TANUKI_SUBJECT_TOKEN_FILE'), false);
  });

  it('--keep-env X (repeatable) passes exactly X through', async () => {
    const { names, text } = await childEnv(['AZURE_CLIENT_SECRET', 'IDENTITY_ENDPOINT']);
    assert.ok(names.has('AZURE_CLIENT_SECRET'));
    assert.ok(text.includes('AZURE_CLIENT_SECRET=secret-value-aaaa'));
    assert.ok(names.has('IDENTITY_ENDPOINT'));
    assert.equal(names.has('IDENTITY_HEADER'), false);
    assert.equal(names.has('SYSTEM_ACCESSTOKEN'), false);
  });

  it('TANUKI_KEEP_ENV does the same for templates; a bad name is a usage error', async () => {
    const { names } = await childEnv(undefined, { TANUKI_KEEP_ENV: 'SYSTEM_ACCESSTOKEN, MSI_SECRET' });
    assert.ok(names.has('SYSTEM_ACCESSTOKEN'));
    assert.ok(names.has('MSI_SECRET'));
    assert.equal(names.has('AZURE_CLIENT_SECRET'), false);
    const o = io({ PATH: process.env.PATH, TANUKI_STS_URL: fake.url, CI_JWT: SUBJECT });
    assert.equal(await runExec(['true'], { keepEnv: ['A=B'], subjectTokenVar: 'CI_JWT' }, o), 2);
  });
});
