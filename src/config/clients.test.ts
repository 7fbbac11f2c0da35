/**
 * The keys of issue 18 in the configuration: `clients` (secrets read like
 * `gitlab.token`'s, never printed), a policy's `client`, `server.deny` and
 * `server.adminSocket`, and `adminSocketOf` (what `tanuki-sts reload` reads).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { adminSocketOf } from './admin-socket.ts';
import { ConfigError, loadConfigFile, parseConfig } from './index.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SECRET = 'a-client-secret-of-some-length';

function base(extra: Record<string, unknown> = {}): Record<string, any> {
  return {
    server: { publicUrl: 'https://sts.example.com' },
    gitlab: { url: 'https://gitlab.example.com', token: 'glpat-test' },
    issuers: { contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}`] } },
    policies: [
      {
        name: 'p',
        issuer: 'contoso',
        match: { appid: '11111111-2222-3333-4444-555555555555' },
        grant: { projects: ['a/b'], scopes: ['read_api'], role: 'reporter' },
      },
    ],
    ...extra,
  };
}

function issuesOf(input: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(input, { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('config: clients', () => {
  it('absent: no clients; given: each secret read from its source', () => {
    assert.deepEqual(parseConfig(base(), { env: {} }).clients, {});
    const c = parseConfig(
      base({ clients: { ci: { secret: { env: 'CI_SECRET' } }, 'gitlab-app-1': { secret: SECRET } } }),
      { env: { CI_SECRET: `  ${SECRET}-env\n` } },
    );
    assert.deepEqual(c.clients, {
      ci: { secret: `${SECRET}-env`, source: { kind: 'env', name: 'CI_SECRET' } },
      'gitlab-app-1': { secret: SECRET, source: { kind: 'inline' } },
    });
  });

  it('Key Vault, as for gitlab.token: not read by the loader (the service reads it), the source kept', () => {
    const vault = { keyVault: { vaultUrl: 'https://tanuki.vault.azure.net', secret: 'sts-client-ci' } };
    const c = parseConfig(base({ clients: { ci: { secret: vault } } }), { env: {} });
    assert.deepEqual(c.clients.ci, {
      secret: '',
      source: { kind: 'keyVault', vaultUrl: 'https://tanuki.vault.azure.net', secret: 'sts-client-ci' },
    });
    const bad = { keyVault: { vaultUrl: 'http://tanuki.vault.azure.net/x', secret: 'a b' } };
    const issues = issuesOf(base({ clients: { ci: { secret: bad } } }));
    assert.ok(
      issues.length >= 1 && issues.every((i) => i.startsWith('clients.ci.secret')),
      issues.join('\n'),
    );
  });

  it('a policy may name a configured client; an unknown one is a config error', () => {
    const ok = base({ clients: { ci: { secret: SECRET } } });
    ok.policies[0].client = 'ci';
    assert.equal(parseConfig(ok, { env: {} }).policies[0]?.client, 'ci');
    const bad = base();
    bad.policies[0].client = 'ci';
    assert.deepEqual(issuesOf(bad), [
      'policies[0].client: "ci" is not a configured client (under `clients`)',
    ]);
  });

  it('a missing or short secret is an error naming the key, never the value', () => {
    const short = 'short-secret';
    assert.deepEqual(
      issuesOf(base({ clients: { ci: { secret: { env: 'NOPE' } }, dev: { secret: short } } })),
      [
        'clients.dev.secret: shorter than 16 characters',
        'clients.ci.secret: environment variable NOPE is not set',
      ],
    );
    for (const line of issuesOf(base({ clients: { dev: { secret: short } } })))
      assert.ok(!line.includes(short));
    assert.deepEqual(issuesOf(base({ clients: { 'bad name': { secret: SECRET } } })).length, 1);
    // A dot would make `clients.NAME.secret` ambiguous.
    assert.deepEqual(issuesOf(base({ clients: { 'gitlab.app': { secret: SECRET } } })).length, 1);
    assert.match(
      issuesOf(base({ clients: { ci: { secret: SECRET, extra: 1 } } }))[0] ?? '',
      /unknown key `extra`/,
    );
  });

  it('secrets: false reads no client secret and expands no variable inside one', () => {
    const c = parseConfig(
      base({
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
        clients: { a: { secret: { file: '/nonexistent/secret' } }, b: { secret: '${UNSET_SECRET}' } },
      }),
      { env: {}, secrets: false },
    );
    assert.deepEqual(
      Object.values(c.clients).map((x) => x.secret),
      ['', ''],
    );
  });

  it('a client named __proto__ is no client (and pollutes nothing)', () => {
    const c = parseConfig(base({ clients: JSON.parse(`{"__proto__":{"secret":"${SECRET}"}}`) }), { env: {} });
    assert.deepEqual(Object.keys(c.clients), []);
    assert.equal(Object.getPrototypeOf(c.clients), Object.prototype);
  });
});

describe('config: server.deny and server.adminSocket', () => {
  it('deny: default empty; entries as policy matchers, issuer checked against issuers', () => {
    assert.deepEqual(parseConfig(base(), { env: {} }).server.deny, []);
    const c = base();
    c.server.deny = [{ issuer: 'contoso', match: { appid: 'x' } }, { match: { sub: { pattern: 'a.*' } } }];
    assert.deepEqual(parseConfig(c, { env: {} }).server.deny, c.server.deny);
    const unknown = base();
    unknown.server.deny = [{ issuer: 'nope', match: { appid: 'x' } }];
    assert.deepEqual(issuesOf(unknown), ['server.deny[0].issuer: "nope" is not a configured issuer']);
    const bad = base();
    bad.server.deny = [{ match: { sub: { contain: 1 } } }, { appid: 'x' }];
    const issues = issuesOf(bad);
    assert.equal(issues.length, 3, issues.join('\n'));
    assert.match(
      issues[0] ?? '',
      /^server\.deny\[0\]\.match\.sub: .*unknown key `contain` \(did you mean `contains`\?\)/,
    );
    assert.deepEqual(
      issues.slice(1).map((i) => i.slice(0, i.indexOf(':'))),
      ['server.deny[1].match', 'server.deny[1]'],
    );
  });

  it('adminSocket: relative to the config file, and not longer than a socket path may be', () => {
    const c = base();
    c.server.adminSocket = 'run/admin.sock';
    assert.equal(
      parseConfig(c, { env: {}, baseDir: '/srv/sts' }).server.adminSocket,
      '/srv/sts/run/admin.sock',
    );
    c.server.adminSocket = `/${'x'.repeat(120)}`;
    assert.deepEqual(issuesOf(c), [
      'server.adminSocket: the path is 121 bytes; a Unix socket path may have at most 100',
    ]);
  });
});

describe('adminSocketOf (tanuki-sts reload)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-admin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads server.adminSocket alone: relative to the file, variables expanded, nothing else validated', () => {
    const f = join(dir, 'a.yaml');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
    writeFileSync(f, 'server: { adminSocket: "${RUN}/admin.sock", publicUrl: "${UNSET}" }\ngitlab: 1\n');
    assert.equal(adminSocketOf(f, { RUN: 'run' }), join(dir, 'run/admin.sock'));
    assert.throws(() => loadConfigFile(f, { env: { RUN: 'run' } }), ConfigError);
  });

  it('says what to do when the key is not set, or the file cannot be read', () => {
    const f = join(dir, 'b.yaml');
    writeFileSync(f, 'server: { publicUrl: https://sts.example.com }\n');
    assert.throws(() => adminSocketOf(f, {}), /server\.adminSocket is not set in .*send SIGHUP/);
    assert.throws(() => adminSocketOf(join(dir, 'missing.yaml'), {}), /cannot read config file/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
    writeFileSync(f, 'server: { adminSocket: "${NOPE}" }\n');
    assert.throws(() => adminSocketOf(f, {}), /server\.adminSocket: environment variable NOPE is not set/);
  });
});
