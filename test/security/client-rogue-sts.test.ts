/**
 * The pipeline client against a rogue or intercepted STS (a fake STS on
 * loopback that answers whatever an attacker wants). The client must only
 * ever send the STS a token meant for the STS, and only ever hand git (or a
 * shell) a single-line GitLab token:
 *   1. the metadata's azure_scope cannot make the pipeline sign in for Azure
 *      Resource Manager, Graph, Key Vault… (refused before any sign-in, exit 2);
 *      plain http is refused for the STS and GitLab unless on loopback;
 *   2. an issued token with a newline or shell syntax is revoked, never printed (exit 5),
 *      and `--format env` quotes the value;
 *   6. a git `path` that is itself a URL never names another origin to the STS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { TokenCache } from '../../src/client/cache.ts';
import { runExec, runGitCredential, runRevoke, runToken } from '../../src/client/commands.ts';
import { cacheKeyParts } from '../../src/client/git-credential.ts';
import { mint } from '../../src/client/mint.ts';
import { resolveSettings } from '../../src/client/settings.ts';
import { StsClient } from '../../src/client/sts.ts';
import { captureIo, FAKE_SUBJECT, type FakeSts, okToken, startFakeSts } from '../helpers/fake-sts.ts';

const SUBJECT = FAKE_SUBJECT;
const GOOD = 'glpat-rogue-test-token-0123';

const io = captureIo;

/** A TCP listener standing in for Entra ID: any connection means the client tried to sign in. */
async function connectionCounter(): Promise<{
  url: string;
  count: () => number;
  close: () => Promise<void>;
}> {
  let n = 0;
  const server: Server = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    count: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('client vs a rogue STS: 1. the metadata cannot choose the Azure resource', () => {
  let fake: FakeSts;
  let entra: Awaited<ReturnType<typeof connectionCounter>>;
  let env: Record<string, string | undefined>;
  before(async () => {
    fake = await startFakeSts();
    entra = await connectionCounter();
  });
  after(async () => {
    await fake.close();
    await entra.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.metadata = {};
    fake.tokenAnswers = [okToken(GOOD)];
    env = {
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_RESOURCE: 'platform/lib',
      TANUKI_RETRIES: '0',
      TANUKI_TIMEOUT: '3s',
      TANUKI_AZURE_AUTH: 'secret',
      AZURE_TENANT_ID: '11111111-2222-3333-4444-555555555555',
      AZURE_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
      AZURE_CLIENT_SECRET: 'not-a-real-secret-value',
      AZURE_AUTHORITY_HOST: entra.url,
    };
  });

  /** Which Entra scope the client asks for, through the real mint() with the sign-in replaced by a spy. */
  async function scopeAskedFor(
    extra: Record<string, string> = {},
  ): Promise<{ asked: string[]; error?: Error }> {
    const e = { ...env, ...extra };
    const settings = resolveSettings({}, e);
    const asked: string[] = [];
    try {
      await mint(settings, {
        sts: new StsClient({ baseUrl: settings.stsUrl, retries: 0 }),
        env: e,
        log: () => {},
        notice: () => {},
        azureToken: async (_plan, scope) => {
          asked.push(scope);
          return SUBJECT;
        },
      });
      return { asked };
    } catch (error) {
      return { asked, error: error as Error };
    }
  }

  const HOSTILE = [
    'https://management.azure.com/.default',
    'https://management.core.windows.net/.default',
    'https://graph.microsoft.com/.default',
    'https://vault.azure.net/.default',
    'https://storage.azure.com/.default',
    'https://database.windows.net/.default',
    '797f4846-ba00-4fd7-ba43-dac1f8f63013/.default', // Azure Resource Manager's app ID
    '00000003-0000-0000-c000-000000000000/.default', // Microsoft Graph
    'cfa8b339-82a2-471a-a3c9-0fc0be7a4093/.default', // Key Vault
    'e406a681-f3d4-42a8-90b6-c2b029497af1/.default', // Storage
    '499b84ac-1321-427f-aa17-267ca6975798/.default', // Azure DevOps
    'api://797f4846-ba00-4fd7-ba43-dac1f8f63013/.default',
    'api://management.azure.com/.default',
    'api://graph.microsoft.com/.default',
    'api://AzureADTokenExchange/.default', // a federated assertion for every app trusting this identity
    'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default api://other/.default',
    'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/user_impersonation',
    'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default\nx',
    'tanuki-sts/.default',
  ];

  for (const scope of HOSTILE) {
    it(`azure_scope ${JSON.stringify(scope)} from the metadata: refused before any sign-in (exit 2)`, async () => {
      fake.metadata = { azure_scope: scope };
      const r = await scopeAskedFor();
      assert.deepEqual(r.asked, [], 'Entra ID was never asked for that resource');
      assert.equal((r.error as { exitCode?: number } | undefined)?.exitCode, 2, String(r.error));
      assert.match(String(r.error?.message), /azure_scope/);
      assert.match(String(r.error?.message), /api:\/\/<App ID URI>\/\.default/);
      assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
    });
  }

  it('the whole `token` command: exit 2 naming the rule, no connection to Entra ID, nothing exchanged', async () => {
    fake.metadata = { azure_scope: 'https://management.azure.com/.default' };
    const o = io(env);
    assert.equal(await runToken({}, o), 2, o.err);
    assert.equal(entra.count(), 0, 'no sign-in attempted');
    assert.match(o.err, /azure_scope/);
    assert.match(o.err, /TANUKI_AZURE_SCOPE/);
    assert.equal(o.out, '');
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
  });

  for (const scope of [
    'api://72f988bf-86f1-41af-91ab-2d7cd011db47/tanuki-sts/.default',
    'api://contoso.onmicrosoft.com/tanuki-sts/.default',
    'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
    '2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
  ]) {
    it(`azure_scope ${scope} (the STS's own API) is accepted`, async () => {
      fake.metadata = { azure_scope: scope };
      const r = await scopeAskedFor();
      assert.equal(r.error, undefined, String(r.error));
      assert.deepEqual(r.asked, [scope]);
    });
  }

  it('a pinned TANUKI_AZURE_SCOPE wins over the metadata, whatever the metadata says', async () => {
    fake.metadata = { azure_scope: 'https://management.azure.com/.default' };
    const r = await scopeAskedFor({
      TANUKI_AZURE_SCOPE: 'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
    });
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.asked, ['api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default']);
  });

  it('plain http: refused for a remote STS, for a remote gitlab_url in the metadata and for a remote --resource', async () => {
    const remote = io({ ...env, TANUKI_STS_URL: 'http://sts.example.com' });
    assert.equal(await runToken({}, remote), 2);
    assert.match(remote.err, /https.*loopback/);

    fake.metadata = {
      gitlab_url: 'http://gitlab.example.com',
      azure_scope: 'api://2f5b4a0e-8c1d-4f8e-9a7b-3c2d1e0f9a8b/.default',
    };
    const viaMetadata = io({ ...env, TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT', CI_JWT: SUBJECT });
    assert.equal(await runToken({}, viaMetadata), 2, viaMetadata.err);
    assert.match(viaMetadata.err, /gitlab_url/);

    fake.metadata = {};
    const resource = io({ ...env, TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT', CI_JWT: SUBJECT });
    assert.equal(await runToken({ resource: 'http://gitlab.example.com/platform/lib' }, resource), 2);
    assert.match(resource.err, /https.*loopback/);

    const gitlab = io(
      { ...env, TANUKI_GITLAB_URL: 'http://gitlab.example.com', TANUKI_CACHE_DIR: '/nonexistent/never-used' },
      'protocol=http\nhost=x\n\n',
    );
    assert.equal(await runGitCredential('get', {}, gitlab), 2);
    assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0, 'nothing exchanged');
  });

  it('plain http to a remote STS: every client command refuses it, naming the rule — also one with nothing to send', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tanuki-rogue-http-'));
    after(() => rmSync(cacheDir, { recursive: true, force: true }));
    const remote = {
      ...env,
      TANUKI_STS_URL: 'http://sts.example.com',
      TANUKI_CACHE_DIR: join(cacheDir, 'cache'),
      HOME: cacheDir,
      GIT_CONFIG_GLOBAL: join(cacheDir, 'gitconfig'),
    };
    const rule =
      /--sts \/ TANUKI_STS_URL must be https \(plain http only on a loopback host, for development\), got http:\/\/sts\.example\.com/;
    const runs: Array<[string, (o: ReturnType<typeof io>) => Promise<number>, string]> = [
      ['token', (o) => runToken({}, o), ''],
      ['exec', (o) => runExec(['/bin/true'], {}, o), ''],
      ['revoke', (o) => runRevoke({}, o), `${GOOD}\n`],
      [
        'git-credential get',
        (o) => runGitCredential('get', {}, o),
        'protocol=https\nhost=gitlab.example.com\n\n',
      ],
      [
        'git-credential erase',
        (o) => runGitCredential('erase', {}, o),
        'protocol=https\nhost=gitlab.example.com\n\n',
      ],
      [
        'git-credential store',
        (o) => runGitCredential('store', {}, o),
        `protocol=https\nhost=h\npassword=${GOOD}\n\n`,
      ],
      ['git-credential revoke-all (empty cache)', (o) => runGitCredential('revoke-all', {}, o), ''],
      [
        'git-credential --install',
        (o) => runGitCredential(undefined, { install: true, gitlab: 'https://gitlab.example.com' }, o),
        '',
      ],
      ['git-credential --uninstall', (o) => runGitCredential(undefined, { uninstall: true }, o), ''],
    ];
    for (const [name, run, stdin] of runs) {
      const o = io(remote, stdin);
      assert.equal(await run(o), 2, `${name}: ${o.err}`);
      assert.match(o.err, rule, name);
      assert.equal(o.out, '', name);
    }
    // The flag, not only the variable.
    const flag = io({ ...env }, `${GOOD}\n`);
    assert.equal(await runRevoke({ sts: 'http://sts.example.com' }, flag), 2);
    assert.match(flag.err, rule);
    assert.equal(existsSync(join(cacheDir, 'gitconfig')), false, 'no git config written');
    assert.equal(fake.requests.length, 0);
  });

  it('plain http on loopback stays allowed (development, the dev stack)', () => {
    for (const sts of ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']) {
      assert.equal(resolveSettings({ sts }, {}).stsUrl, sts);
    }
  });
});

describe('client vs a rogue STS: 2. the issued token is checked, and quoted', () => {
  let fake: FakeSts;
  let dir: string;
  let env: Record<string, string | undefined>;
  const EVIL = (marker: string) => `glpat-abc$(touch ${marker})\nexport GIT_SSH_COMMAND=evil`;
  before(async () => {
    fake = await startFakeSts();
    dir = mkdtempSync(join(tmpdir(), 'tanuki-rogue-token-'));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.metadata = {};
    env = {
      PATH: process.env.PATH,
      TANUKI_STS_URL: fake.url,
      TANUKI_RESOURCE: 'platform/lib',
      TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
      CI_JWT: SUBJECT,
      TANUKI_RETRIES: '0',
      TANUKI_CACHE_DIR: join(dir, `cache-${Math.random().toString(36).slice(2)}`),
    };
  });

  const revoked = () => fake.requests.filter((q) => q.path === '/revoke').map((q) => q.form.token);

  for (const format of ['raw', 'env', 'netrc', 'git-credentials', 'json']) {
    it(`--format ${format}: a token with a newline and shell syntax is revoked, not printed (exit 5)`, async () => {
      const marker = join(dir, `pwned-${format}`);
      const evil = EVIL(marker);
      fake.tokenAnswers = [okToken(evil)];
      const o = io(env);
      assert.equal(await runToken({ format }, o), 5, o.err);
      assert.equal(o.out, '');
      assert.deepEqual(revoked(), [evil], 'what was issued is revoked');
      assert.match(o.err, /not a single line of token characters/);
      assert.doesNotMatch(o.err, /GIT_SSH_COMMAND|touch/);
      assert.equal(existsSync(marker), false);
    });
  }

  for (const [what, token] of [
    ['a space', 'glpat-abc def-0123456789'],
    ['a carriage return', 'glpat-abc\rdef-0123456789'],
    ['a NUL', 'glpat-abc\u0000def-0123456789'],
    ['a quote', "glpat-abc'def-0123456789"],
    ['600 characters', `glpat-${'a'.repeat(594)}`],
    ['3 characters', 'abc'],
    ['non-ASCII', 'glpat-abcdéf-0123456789'],
  ] as const) {
    it(`a token with ${what} is refused (exit 5, revoked)`, async () => {
      fake.tokenAnswers = [okToken(token)];
      const o = io(env);
      assert.equal(await runToken({}, o), 5, o.err);
      assert.equal(o.out, '');
      assert.deepEqual(revoked(), [token]);
    });
  }

  it("GitLab's token formats, old and new (with '.'), are accepted", async () => {
    for (const token of [
      'glpat-abcdefghij0123456789', // legacy: glpat- + 20
      `glpat-${'A1b2C3d4E5'.repeat(3)}x_y-z.01.abc123def`, // routable: payload + .01. + 9
      'gldt-0123456789abcdefghij', // other prefixes (deploy token, instance-specific)
    ]) {
      fake.tokenAnswers = [okToken(token)];
      const o = io(env);
      assert.equal(await runToken({}, o), 0, o.err);
      assert.equal(o.out, `${token}\n`);
    }
  });

  it('--format env quotes the value, so sourcing it sets exactly the token and runs nothing', async () => {
    const token = `glpat-${'x'.repeat(33)}.01.abcdefghi`;
    fake.tokenAnswers = [okToken(token)];
    const o = io(env);
    assert.equal(await runToken({ format: 'env' }, o), 0, o.err);
    assert.equal(o.out, `GITLAB_TOKEN='${token}'\nGITLAB_USERNAME='oauth2'\n`);
    const file = join(dir, 'token.env');
    writeFileSync(file, o.out, { mode: 0o600 });
    const value = execFileSync('/bin/sh', ['-c', '. "$1" && printf %s "$GITLAB_TOKEN"', 'sh', file], {
      encoding: 'utf8',
    });
    assert.equal(value, token);
  });

  it('git-credential get: an injected token never reaches git (no extra protocol lines), exit 5', async () => {
    const evil = 'glpat-abc\nusername=attacker\nquit=1';
    fake.tokenAnswers = [okToken(evil)];
    const o = io(env, 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n');
    assert.equal(await runGitCredential('get', {}, o), 5, o.err);
    assert.equal(o.out, '');
    assert.deepEqual(revoked(), [evil]);
  });

  it('exec: the command is not run with an injected token', async () => {
    const marker = join(dir, 'exec-ran');
    fake.tokenAnswers = [okToken(EVIL(join(dir, 'exec-pwned')))];
    const o = io(env);
    assert.equal(await runExec(['/bin/sh', '-c', `touch "${marker}"`], {}, o), 5, o.err);
    assert.equal(existsSync(marker), false);
  });

  it('a token read back from the cache is checked the same way: an injected one is not answered', async () => {
    const cacheDir = env.TANUKI_CACHE_DIR!;
    mkdirSync(cacheDir, { mode: 0o700 });
    chmodSync(cacheDir, 0o700);
    const settings = resolveSettings({}, env);
    const req = { gitlabUrl: 'https://gitlab.example.com', path: 'platform/lib' };
    const key = TokenCache.keyOf(cacheKeyParts(settings, env, req));
    const now = Date.now();
    writeFileSync(
      join(cacheDir, `${key}.json`),
      JSON.stringify({
        token: 'glpat-cached\nusername=attacker',
        issuedAt: now,
        expiresAt: now + 3_600_000,
        scopes: ['read_repository'],
        resource: 'https://gitlab.example.com/platform/lib',
        sts: fake.url,
      }),
      { mode: 0o600 },
    );
    fake.tokenAnswers = [okToken(GOOD)];
    const o = io(env, 'protocol=https\nhost=gitlab.example.com\npath=platform/lib.git\n\n');
    assert.equal(await runGitCredential('get', {}, o), 0, o.err);
    assert.doesNotMatch(o.out, /attacker/);
    assert.match(o.out, new RegExp(`^username=oauth2\\npassword=${GOOD}\\n`));
  });
});

describe('client vs a rogue request: 6. a git path that is a URL', () => {
  let fake: FakeSts;
  let dir: string;
  before(async () => {
    fake = await startFakeSts();
    dir = mkdtempSync(join(tmpdir(), 'tanuki-rogue-path-'));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const path of [
    'https://evil.example/platform/lib.git',
    'http://127.0.0.1:1/platform/lib.git',
    'platform/../../admin/x.git',
    'platform/lib?x=1',
  ]) {
    it(`path=${path}: no exchange names another origin, no password answered`, async () => {
      fake.requests.length = 0;
      const env = {
        PATH: process.env.PATH,
        TANUKI_STS_URL: fake.url,
        TANUKI_SUBJECT_TOKEN_VAR: 'CI_JWT',
        CI_JWT: SUBJECT,
        TANUKI_RETRIES: '0',
        TANUKI_CACHE_DIR: join(dir, 'cache'),
      };
      const o = io(env, `protocol=https\nhost=gitlab.example.com\npath=${path}\n\n`);
      await runGitCredential('get', {}, o);
      assert.doesNotMatch(o.out, /password=/);
      assert.equal(fake.requests.filter((q) => q.path === '/token').length, 0);
      assert.match(o.err, /not a repository path/);
    });
  }
});
