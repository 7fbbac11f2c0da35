/** The `store` section: exactly one backend; `store.postgres` with its defaults and checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './index.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function withStore(store: unknown): Record<string, unknown> {
  return {
    server: { publicUrl: 'https://sts.example.com' },
    gitlab: { url: 'https://gitlab.example.com', token: 'glpat-test' },
    ...(store === undefined ? {} : { store }),
    issuers: { contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}/x`] } },
    policies: [
      {
        name: 'p',
        issuer: 'contoso',
        match: { appid: '11111111-2222-3333-4444-555555555555' },
        grant: { projects: ['a/b'], scopes: ['read_api'], role: 'reporter' },
      },
    ],
  };
}

function issues(store: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(withStore(store), { env, baseDir: '/etc/tanuki-sts' });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('config: store', () => {
  it('absent: the SQLite default; sqlite: a path resolved against the config folder', () => {
    const c = parseConfig(withStore(undefined), { env: {}, baseDir: '/etc/tanuki-sts' });
    assert.deepEqual(c.store, { sqlite: '/etc/tanuki-sts/data/tanuki-sts.db' });
    const m = parseConfig(withStore({ sqlite: ':memory:' }), { env: {} });
    assert.deepEqual(m.store, { sqlite: ':memory:' });
  });

  it('postgres: defaults, variable expansion, caFile resolved', () => {
    const c = parseConfig(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${ENV} is the config syntax under test
      withStore({ postgres: { url: 'postgres://sts:${PGPW}@db.example.com:5432/sts', caFile: 'ca.pem' } }),
      { env: { PGPW: 's3cret' }, baseDir: '/etc/tanuki-sts' },
    );
    assert.deepEqual(c.store, {
      postgres: {
        url: 'postgres://sts:s3cret@db.example.com:5432/sts',
        caFile: '/etc/tanuki-sts/ca.pem',
        schema: 'tanuki_sts',
        poolSize: 10,
      },
    });
  });

  it('both or neither is an error naming the key', () => {
    assert.deepEqual(issues({ sqlite: 'l.db', postgres: { url: 'postgres://u@127.0.0.1/d' } }), [
      'store: set exactly one of store.sqlite and store.postgres (both is set)',
    ]);
    assert.deepEqual(issues({}), [
      'store: set exactly one of store.sqlite and store.postgres (neither is set)',
    ]);
  });

  it('refuses a bad URL, schema or pool size, and never echoes the URL', () => {
    const got = issues({
      postgres: {
        url: 'postgres://u:topsecret@db/d?sslmode=prefer',
        schema: 'x"; DROP TABLE grants; --',
        poolSize: 0,
      },
    });
    assert.equal(got.length, 3, got.join('\n'));
    assert.match(got.find((i) => i.startsWith('store.postgres.url:')) ?? '', /allow and prefer fall back/);
    assert.match(got.find((i) => i.startsWith('store.postgres.schema:')) ?? '', /lower-case SQL identifier/);
    assert.match(got.find((i) => i.startsWith('store.postgres.poolSize:')) ?? '', /./);
    assert.ok(!got.join('\n').includes('topsecret'));
    assert.deepEqual(issues({ postgres: { url: 'postgres://u@db/d?sslmode=disable', caFile: 'ca.pem' } }), [
      'store.postgres.url: sslmode=disable contradicts caFile',
    ]);
    assert.match(issues({ postgres: { url: 'postgres://u@db/d', extra: 1 } }).join('\n'), /store\.postgres/);
  });
});
