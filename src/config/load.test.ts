import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, defaultServerId, loadConfigFile, parseConfig } from './index.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function base(): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:8600', publicUrl: 'https://sts.example.com' },
    gitlab: { url: 'https://gitlab.example.com', token: { env: 'TANUKI_GITLAB_TOKEN' } },
    issuers: {
      contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}/tanuki-sts`] },
      'gitlab-ci': { oidc: { issuer: 'https://gitlab.example.com' }, audiences: ['https://sts.example.com'] },
    },
    policies: [
      {
        name: 'image-build',
        issuer: 'contoso',
        match: { appid: '11111111-2222-3333-4444-555555555555', roles: { contains: 'GitLab.Read' } },
        grant: {
          projects: ['platform/internal-lib', 4242],
          scopes: ['read_repository'],
          role: 'reporter',
          ttl: { default: '15m', max: '1h' },
        },
      },
    ],
  };
}
const env = { TANUKI_GITLAB_TOKEN: 'glpat-test' };

function issuesOf(input: unknown, e: NodeJS.ProcessEnv = env): string[] {
  try {
    parseConfig(input, { env: e });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it('parses the documented shape with defaults', () => {
    const c = parseConfig(base(), { env });
    assert.deepEqual(c.server.listen, { host: '127.0.0.1', port: 8600 });
    assert.equal(c.server.id, defaultServerId('https://sts.example.com'));
    assert.equal(c.gitlab.token, 'glpat-test');
    assert.equal(c.server.rateLimit.perIdentity, 60);
    assert.equal(c.server.maxActiveGrantsPerIdentity, 20);
    assert.equal(c.server.bodyLimit, 65536);
    const contoso = c.issuers.contoso;
    assert.equal(contoso?.kind, 'entra');
    assert.equal(contoso?.kind === 'entra' && contoso.authorityHost, 'https://login.microsoftonline.com');
    assert.equal(contoso?.maxTokenLifetime, 86700);
    assert.deepEqual(c.policies[0]?.grant.ttl, { default: 900, max: 3600 });
  });

  it('server.metricsListen: 127.0.0.1:9464 by default, host:port or [::1]:port, false turns metrics off', () => {
    assert.deepEqual(parseConfig(base(), { env }).server.metricsListen, { host: '127.0.0.1', port: 9464 });
    const withListen = (metricsListen: unknown) => {
      const c = base();
      (c.server as Record<string, unknown>).metricsListen = metricsListen;
      return c;
    };
    assert.deepEqual(parseConfig(withListen('[::1]:9100'), { env }).server.metricsListen, {
      host: '::1',
      port: 9100,
    });
    assert.deepEqual(parseConfig(withListen('0.0.0.0:0'), { env }).server.metricsListen, {
      host: '0.0.0.0',
      port: 0,
    });
    assert.equal(parseConfig(withListen(false), { env }).server.metricsListen, false);
    for (const bad of [true, '9464', 'localhost', '127.0.0.1:70000', 'http://127.0.0.1:9464']) {
      assert.ok(
        issuesOf(withListen(bad)).some((i) => i.startsWith('server.metricsListen:')),
        JSON.stringify(bad),
      );
    }
    assert.deepEqual(issuesOf(withListen('127.0.0.1:8600')), [
      'server.metricsListen: must differ from server.listen',
    ]);
  });

  it('default server id differs by port', () => {
    assert.notEqual(
      defaultServerId('https://sts.example.com'),
      defaultServerId('https://sts.example.com:8443'),
    );
  });

  it('names each wrong key', () => {
    const bad = base();
    (bad.server as Record<string, unknown>).publicUrl = 'http://sts.example.com';
    (bad.gitlab as Record<string, unknown>).url = 'ftp://x';
    const p = (bad.policies as Record<string, unknown>[])[0] as { grant: Record<string, unknown> };
    p.grant.role = 'admin';
    p.grant.scopes = ['sudo'];
    const issues = issuesOf(bad);
    assert.ok(
      issues.some((i) => i.startsWith('server.publicUrl:')),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => i.startsWith('gitlab.url:')),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => i.startsWith('policies[0].grant.role:')),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => i.startsWith('policies[0].grant.scopes[0]:')),
      issues.join('\n'),
    );
  });

  it('refuses unknown keys, an empty audience list and unknown issuers in policies', () => {
    const bad = base();
    (bad.server as Record<string, unknown>).lisen = 'x';
    (bad.issuers as Record<string, Record<string, unknown>>).contoso!.audiences = [];
    assert.ok(issuesOf(bad).some((i) => i.includes('lisen')));
    assert.ok(issuesOf(bad).some((i) => i.startsWith('issuers.contoso.audiences:')));
    const bad2 = base();
    (bad2.policies as Record<string, unknown>[])[0]!.issuer = 'nope';
    assert.deepEqual(issuesOf(bad2), ['policies[0].issuer: "nope" is not a configured issuer']);
  });

  it('allows http only for loopback hosts (src/util/url.ts)', () => {
    const withUrl = (url: string) => {
      const c = base();
      (c.gitlab as Record<string, unknown>).url = url;
      return c;
    };
    for (const ok of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:1']) {
      assert.equal(parseConfig(withUrl(ok), { env }).gitlab.url, ok, ok);
    }
    for (const bad of [
      'http://10.0.0.1',
      'http://localhost.attacker.example',
      'https://user:pw@gitlab.example.com',
    ]) {
      assert.ok(
        issuesOf(withUrl(bad)).some((i) => i.startsWith('gitlab.url:')),
        bad,
      );
    }
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
  it('expands ${ENV} and reports a missing variable', () => {
    const c = base();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
    (c.gitlab as Record<string, unknown>).token = '${MY_TOKEN}';
    assert.equal(parseConfig(c, { env: { MY_TOKEN: 'glpat-x' } }).gitlab.token, 'glpat-x');
    assert.deepEqual(issuesOf(c, {}), ['gitlab.token: environment variable MY_TOKEN is not set']);
  });

  it('checks the shape of a policy; what it means is left to the policy compiler', () => {
    const c = base();
    const p = (c.policies as Record<string, unknown>[])[0] as Record<string, Record<string, unknown>>;
    p.match!.sub = { pattern: '' };
    (p.grant as Record<string, unknown>).ttl = { default: '2h', max: 'soon' };
    const issues = issuesOf(c);
    assert.ok(
      issues.some((i) => i.startsWith('policies[0].match.sub.pattern:')),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => i.startsWith('policies[0].grant.ttl.max:')),
      issues.join('\n'),
    );
    // An invalid regex, a TTL default above the max, no target, a duplicate name: checked once,
    // by compilePolicies, which serve, check-config and policy test all run
    // (src/cli/commands/serve.test.ts).
    const meaning = base();
    const q = (meaning.policies as Record<string, unknown>[])[0] as Record<string, Record<string, unknown>>;
    q.match!.sub = { pattern: '(' };
    (q.grant as Record<string, unknown>).ttl = { default: '2h', max: '1h' };
    (meaning.policies as unknown[]).push(structuredClone(q));
    assert.equal(parseConfig(meaning, { env }).policies.length, 2);
  });

  it('refuses self_rotate in a grant, naming the rule; gitlab.targetCacheTtl defaults to 10 s, 0 turns it off', () => {
    const c = base();
    const p = (c.policies as Record<string, unknown>[])[0] as Record<string, Record<string, unknown>>;
    (p.grant as Record<string, unknown>).scopes = ['read_repository', 'self_rotate'];
    const issues = issuesOf(c);
    assert.ok(
      issues.some(
        (i) => i.startsWith('policies[0].grant.scopes[1]:') && i.includes('self_rotate is never granted'),
      ),
      issues.join('\n'),
    );
    assert.equal(parseConfig(base(), { env }).gitlab.targetCacheTtl, 10);
    const off = base();
    (off.gitlab as Record<string, unknown>).targetCacheTtl = 0;
    assert.equal(parseConfig(off, { env }).gitlab.targetCacheTtl, 0);
    (off.gitlab as Record<string, unknown>).targetCacheTtl = '1m';
    assert.equal(parseConfig(off, { env }).gitlab.targetCacheTtl, 60);
  });

  describe('every problem names its key and what was expected', () => {
    const contoso = (c: Record<string, unknown>) =>
      (c.issuers as Record<string, Record<string, unknown>>).contoso!;
    const policy = (c: Record<string, unknown>) =>
      (c.policies as Record<string, unknown>[])[0] as { match: Record<string, unknown> };

    it('a typo in a key: unknown key, with the known key nearest to it', () => {
      const c = base();
      contoso(c).entra = { tennant: TENANT };
      const issues = issuesOf(c);
      assert.ok(
        issues.includes(
          'issuers.contoso.entra: unknown key `tennant` (did you mean `tenant`?); allowed: `tenant`, `authorityHost`, `allowDelegated`',
        ),
        issues.join('\n'),
      );
      assert.ok(
        issues.includes('issuers.contoso.entra.tenant: required (the tenant ID, a GUID)'),
        issues.join('\n'),
      );
      // The issuer is an Entra one: nothing is said about the OIDC shape it is not.
      assert.ok(!issues.some((i) => i.includes('oidc')), issues.join('\n'));
      const server = base();
      (server.server as Record<string, unknown>).lisen = '127.0.0.1:1';
      assert.ok(
        issuesOf(server).includes('server: unknown key `lisen` (did you mean `listen`?)'),
        issuesOf(server).join('\n'),
      );
    });

    it('a missing key: required, and what it takes', () => {
      const c = base();
      delete contoso(c).audiences;
      assert.deepEqual(issuesOf(c), [
        'issuers.contoso.audiences: required (a list of accepted `aud` values, at least one: the App ID URI and/or the client ID)',
      ]);
    });

    it('a union none of whose shapes fits: every shape it accepts, and the unknown key', () => {
      const c = base();
      policy(c).match.roles = { contain: 'GitLab.Read' };
      assert.deepEqual(issuesOf(c), [
        'policies[0].match.roles: expected a string, a number, `true` or `false`, a list of values (the claim ' +
          'equals one of them), `{ contains: … }` or `{ pattern: … }`; unknown key `contain` (did you mean ' +
          '`contains`?); allowed: `contains`, `pattern`',
      ]);
      const kind = base();
      contoso(kind).entrra = contoso(kind).entra;
      delete contoso(kind).entra;
      const [line] = issuesOf(kind);
      assert.match(
        String(line),
        /^issuers\.contoso: expected Entra ID issuer `\{ entra: …, audiences: …, … \}` or /,
      );
      assert.match(String(line), /unknown key `entrra` \(did you mean `entra`\?\)/);
      const token = base();
      (token.gitlab as Record<string, unknown>).token = { evn: 'TANUKI_GITLAB_TOKEN' };
      assert.deepEqual(issuesOf(token), [
        'gitlab.token: expected a string, `{ env: … }`, `{ file: … }` or `{ keyVault: … }`; unknown key `evn` (did you mean `env`?); allowed: `env`, `file`, `keyVault`',
      ]);
    });

    it('a wrong value of a list of names says which names, and the nearest one', () => {
      const c = base();
      (policy(c) as unknown as { grant: Record<string, unknown> }).grant.scopes = ['read_repositry'];
      const [line] = issuesOf(c);
      assert.match(String(line), /^policies\[0\]\.grant\.scopes\[0\]: expected one of `api`, `read_api`, /);
      assert.match(String(line), /got `read_repositry` \(did you mean `read_repository`\?\)$/);
    });

    it('says "Invalid input" nowhere', () => {
      const c = base();
      contoso(c).entra = { tennant: TENANT };
      delete (c.issuers as Record<string, Record<string, unknown>>)['gitlab-ci']!.audiences;
      policy(c).match.roles = { contain: 'x' };
      policy(c).match.sub = null;
      (c.gitlab as Record<string, unknown>).timeout = [];
      (c.server as Record<string, unknown>).metricsListen = true;
      const issues = issuesOf(c);
      assert.equal(issues.length, 7, issues.join('\n'));
      assert.ok(!issues.some((i) => /Invalid input|Unrecognized key/.test(i)), issues.join('\n'));
    });

    it('a configuration with no issuers or no policies is refused', () => {
      const c = base();
      c.issuers = {};
      c.policies = [];
      assert.deepEqual(issuesOf(c), [
        'issuers: at least one issuer is required: without one, no subject token is accepted',
        'policies: at least one policy is required: without one, every exchange is refused',
      ]);
    });

    it('an unset variable or an unreadable secret file is reported with the schema errors, in one pass', () => {
      const c = base();
      contoso(c).entra = { tennant: TENANT };
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
      (c.server as Record<string, unknown>).publicUrl = '${STS_URL}';
      assert.deepEqual(issuesOf(c, {}), [
        // Reported as unset, not again as an empty URL.
        'server.publicUrl: environment variable STS_URL is not set',
        'issuers.contoso.entra.tenant: required (the tenant ID, a GUID)',
        'issuers.contoso.entra: unknown key `tennant` (did you mean `tenant`?); allowed: `tenant`, `authorityHost`, `allowDelegated`',
        'gitlab.token: environment variable TANUKI_GITLAB_TOKEN is not set',
      ]);
      const f = base();
      (f.gitlab as Record<string, unknown>).token = { file: '/nonexistent/tanuki-token' };
      (f.policies as Record<string, unknown>[])[0]!.issuer = 'nope';
      assert.deepEqual(issuesOf(f), [
        'policies[0].issuer: "nope" is not a configured issuer',
        'gitlab.token: cannot read file /nonexistent/tanuki-token',
      ]);
    });

    it('secrets: false validates everything but reads no secret', () => {
      const opts = { env: {}, secrets: false };
      assert.equal(parseConfig(base(), opts).gitlab.token, '');
      const f = base();
      (f.gitlab as Record<string, unknown>).token = { file: '/nonexistent/tanuki-token' };
      assert.equal(parseConfig(f, opts).gitlab.token, '');
      const v = base();
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
      (v.gitlab as Record<string, unknown>).token = '${GITLAB_TOKEN}';
      assert.equal(parseConfig(v, opts).gitlab.token, '');
      // A password inside a secret-bearing key is not expanded either.
      const pg = base();
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
      pg.store = { postgres: { url: 'postgres://sts:${PGPASSWORD}@db.example.com:5432/sts' } };
      assert.deepEqual(issuesOf(pg), ['store.postgres.url: environment variable PGPASSWORD is not set']);
      assert.equal(
        parseConfig(pg, opts).store.postgres?.url,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
        'postgres://sts:${PGPASSWORD}@db.example.com:5432/sts',
      );
      // Everything else is still checked, variables outside secret-bearing keys included.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
      (v.server as Record<string, unknown>).publicUrl = '${STS_URL}';
      (v.gitlab as Record<string, unknown>).token = { evn: 'X' };
      try {
        parseConfig(v, opts);
        assert.fail('expected a ConfigError');
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.issues, [
          'server.publicUrl: environment variable STS_URL is not set',
          'gitlab.token: expected a string, `{ env: … }`, `{ file: … }` or `{ keyVault: … }`; unknown key `evn` (did you mean `env`?); allowed: `env`, `file`, `keyVault`',
        ]);
      }
    });
  });

  describe('files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-config-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    it('reads YAML, resolves paths against the file, and refuses duplicate keys', () => {
      writeFileSync(join(dir, 'token'), 'glpat-from-file\n');
      const yaml = `server: { publicUrl: "https://sts.example.com" }
gitlab: { url: "https://gitlab.example.com", token: { file: token } }
store: { sqlite: ./data/l.db }
issuers: { ci: { oidc: { issuer: "https://gitlab.example.com" }, audiences: [x] } }
policies:
  - { name: p, issuer: ci, match: { sub: s }, grant: { projects: [a/b], scopes: [read_api], role: reporter } }
`;
      writeFileSync(join(dir, 'ok.yaml'), yaml);
      const c = loadConfigFile(join(dir, 'ok.yaml'), { env: {} });
      assert.equal(c.gitlab.token, 'glpat-from-file');
      assert.equal(c.store.sqlite, join(dir, 'data/l.db'));
      writeFileSync(join(dir, 'dup.yaml'), `${yaml}tokens: {}\ntokens: {}\n`);
      assert.throws(() => loadConfigFile(join(dir, 'dup.yaml'), { env: {} }), ConfigError);
    });
  });
});
