/**
 * `tanuki-sts migrate --config F`, as an operator runs it (the real binary):
 * it migrates the configured ledger and exits, says what it did, and refuses a
 * ledger newer than itself with a clear message (exit 1, no stack trace).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PG_URL, testSchema, withPg } from '../../../test/helpers/pg.ts';
import { runCli } from '../../../test/helpers/run-cli.ts';
import { PG_MIGRATIONS } from '../../ledger/postgres-migrations.ts';
import { MIGRATIONS } from '../../ledger/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'tanuki-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, store: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `server: { publicUrl: "https://sts.example.com" }
gitlab: { url: "https://gitlab.example.com", token: glpat-placeholder }
store: ${store}
issuers: { ci: { oidc: { issuer: "https://gitlab.example.com" }, audiences: [x] } }
policies:
  - name: reader
    issuer: ci
    match: { project_id: "42" }
    grant: { projects: [platform/app], scopes: [read_repository], role: reporter }
`,
  );
  return file;
}

describe('tanuki-sts migrate', () => {
  it('PostgreSQL: migrates once, then has nothing to do; a newer schema is refused', async () => {
    const { schema, drop } = await testSchema();
    try {
      const file = configFile('pg', `{ postgres: { url: "${PG_URL}", schema: ${schema} } }`);
      const first = await runCli(['migrate', '--config', file]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(
        first.stdout,
        `ledger PostgreSQL schema "${schema}": migrated from schema version 0 to ${PG_MIGRATIONS.length}\n`,
      );
      const again = await runCli(['migrate', '--config', file]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`at schema version ${PG_MIGRATIONS.length}, nothing to migrate`));
      await withPg((c) => c.query(`INSERT INTO "${schema}".schema_version (version) VALUES (42)`));
      const newer = await runCli(['migrate', '--config', file]);
      assert.equal(newer.code, 1);
      assert.equal(newer.stdout, '');
      assert.match(
        newer.stderr,
        /^tanuki-sts: the ledger schema "tanuki_test_[0-9a-f]+" is at schema version 42, newer/,
      );
      assert.ok(!/\n\s+at /.test(newer.stderr), 'no stack trace');
    } finally {
      await drop();
    }
  });

  it('SQLite: creates and migrates the file', async () => {
    const file = configFile('sqlite', `{ sqlite: ${join(dir, 'l.db')} }`);
    const r = await runCli(['migrate', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `ledger SQLite file ${join(dir, 'l.db')}: migrated from schema version 0 to ${MIGRATIONS.length}\n`,
    );
  });

  it('an unreachable database: exit 1, one line, the URL not shown', async () => {
    const file = configFile('down', '{ postgres: { url: "postgres://sts:pw-not-shown@127.0.0.1:1/x" } }');
    const r = await runCli(['migrate', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tanuki-sts: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    assert.ok(!r.stderr.includes('pw-not-shown'));
  });
});
