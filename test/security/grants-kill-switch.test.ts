/**
 * Attacks on (and accidents with) the kill switch, `tanuki-sts grants list` /
 * `grants revoke` (docs/security.md rows 165–169), against a serving STS and
 * its SQLite ledger: a token or its hash printed, a revoke of everything by
 * mistake, SQL and wildcards in filter values, a wrong configuration passing
 * for "nothing to revoke", terminal escapes from the ledger.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runGrantsList, runGrantsRevoke } from '../../src/cli/commands/grants.ts';
import { newGrant } from '../../src/ledger/contract.testutil.ts';
import { openSqliteLedger } from '../../src/ledger/index.ts';
import { sha256Hex } from '../../src/util/hash.ts';
import {
  DEV_SYSTEM_MI_CLIENT_ID,
  exchangeFor,
  gitlabStatus,
  type KillSwitchStack,
  startKillSwitchStack,
} from '../helpers/kill-switch.ts';
import { PG_URL, testSchema, withPg } from '../helpers/pg.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets, pipelineToken } from '../helpers/stack.ts';
import { closeEntraAgent, gitlabApiCalls, mintEntra } from './helpers/attack.ts';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(c, _e, cb) {
        chunks.push(String(c));
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

describe('kill switch: grants list / grants revoke (rows 165–169)', () => {
  let k: KillSwitchStack;
  let file: string;
  let tokensA: string[];
  let tokenB: string;

  /** A run in this process: exit code, stdout, stderr. */
  async function grants(command: 'list' | 'revoke', o: Record<string, unknown>, config = file) {
    const out = capture();
    const err = capture();
    const run = command === 'list' ? runGrantsList : runGrantsRevoke;
    const code = await run({ config, ...o }, { stdout: out.stream, stderr: err.stream, env: k.env() });
    return { code, stdout: out.text(), stderr: err.text() };
  }
  const aliveA = async () =>
    (await Promise.all(tokensA.map((t) => gitlabStatus(k.s, t)))).every((x) => x === 200);

  before(async () => {
    k = await startKillSwitchStack();
    file = k.configFile();
    const subjectA = await pipelineToken(k.s);
    tokensA = [await exchangeFor(k.s, subjectA), await exchangeFor(k.s, subjectA)];
    tokenB = await exchangeFor(k.s, await mintEntra(k.s, { clientId: DEV_SYSTEM_MI_CLIENT_ID }));
  });
  after(async () => {
    await closeEntraAgent(k.s);
    await k.s.close();
  });

  it('165: no token and no token SHA-256 in any output of list (table, --json, every status) or revoke, nor in its audit', async () => {
    const runs = [
      await grants('list', {}),
      await grants('list', { status: 'all', json: true }),
      await grants('revoke', { appId: DEV_SYSTEM_MI_CLIENT_ID }),
      await grants('list', { status: 'all' }),
      await grants('list', { status: 'revoked', json: true }),
    ];
    assert.deepEqual(
      runs.map((r) => r.code),
      [0, 0, 0, 0, 0],
    );
    assert.match(runs[2]?.stdout ?? '', /^revoked 1 of 1 grant /);
    assert.match(runs[2]?.stderr ?? '', /"reason":"operator"/, 'the audit event (stdout sink → stderr)');
    assert.equal(await gitlabStatus(k.s, tokenB), 401);
    const texts = runs.flatMap((r) => [r.stdout, r.stderr]);
    assertNoSecrets(texts, 'grants output');
    for (const t of [...tokensA, tokenB]) {
      for (const text of texts) {
        assert.ok(!text.includes(t), 'token printed');
        assert.ok(!text.includes(sha256Hex(t)), 'token SHA-256 printed');
      }
    }
  });

  it('166: no revoke of everything by mistake: no filter, an empty one, a filter given twice, --all-active with filters → exit 2, GitLab untouched', async () => {
    const calls = await gitlabApiCalls(k.s);
    const env = k.env();
    const cases = [
      [],
      ['--app-id', ''],
      ['--app-id', '   '],
      ['--app-id', k.s.seed.pipelineClientId, '--app-id', DEV_SYSTEM_MI_CLIENT_ID],
      ['--all-active', '--policy', 'image-build'],
      ['--policy', 'image-build', '--status', 'revoked'],
    ];
    for (const args of cases) {
      const r = await runCli(['grants', 'revoke', '--config', file, ...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    }
    assert.equal(await gitlabApiCalls(k.s), calls, 'no GitLab call');
    assert.ok(await aliveA());
  });

  it('167: SQL and wildcards in filter values match nothing and revoke nothing', async () => {
    const hostile = ["' OR '1'='1", "image-build' --", '%', '_', '*', '.*', "x'); DELETE FROM grants; --"];
    for (const v of hostile) {
      for (const key of ['policy', 'appId', 'subject', 'target']) {
        const r = await grants('revoke', { [key]: v });
        if (key === 'target' && /\s/.test(v)) {
          // Not a path at all: refused before the ledger is opened.
          assert.equal(r.code, 2, `${key}=${v}: ${r.stdout}${r.stderr}`);
          continue;
        }
        assert.equal(r.code, 0, `${key}=${v}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /^no live grant matches \(.*\): nothing to revoke\n$/, `${key}=${v}`);
      }
    }
    const listed = await grants('list', { status: 'all', json: true });
    assert.equal(listed.stdout.trim().split('\n').length, 3, 'every grant still there');
    assert.ok(await aliveA());
  });

  it('168: a configuration naming no ledger is an error (exit 1), never "nothing to revoke"; nothing is created', async () => {
    const missing = join(k.s.dir, 'typo', 'ledger.db');
    const sqliteFile = k.configFile((r) => {
      r.store = { sqlite: missing };
    });
    const { schema, drop } = await testSchema();
    try {
      const pgFile = k.configFile((r) => {
        r.store = { postgres: { url: PG_URL, schema } };
      });
      for (const [f, message] of [
        [sqliteFile, /^tanuki-sts: no ledger at .*typo\/ledger\.db \(store\.sqlite\): has the STS run/],
        [
          pgFile,
          new RegExp(
            `^tanuki-sts: no ledger in PostgreSQL schema "${schema}" \\(store\\.postgres\\.schema\\)`,
          ),
        ],
      ] as const) {
        for (const cmd of [
          ['grants', 'revoke', '--all-active'],
          ['grants', 'list'],
        ]) {
          const r = await runCli([...cmd, '--config', f], k.env());
          assert.equal(r.code, 1, `${cmd.join(' ')}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stdout, '');
          assert.match(r.stderr, message);
        }
      }
      assert.equal(existsSync(missing), false, 'no empty ledger file created');
      const n = await withPg(
        async (c) =>
          (await c.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [schema])).rows[0]
            .n,
      );
      assert.equal(n, 0, 'no empty schema created');
    } finally {
      await drop();
    }
    assert.ok(await aliveA());
  });

  it('169: terminal escapes: refused in filters; recorded in the ledger, escaped in the table and in --json', async () => {
    for (const v of ['\u001b[2J', 'a\u009b31m', 'x\u202ey', 'line\nbreak']) {
      const r = await grants('revoke', { subject: v });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^tanuki-sts grants revoke: --subject: holds a control character\n$/);
    }
    // A row an exchange could not have written (claims with control characters are refused), put
    // there directly: what the ledger holds is still shown safely.
    const side = openSqliteLedger(k.s.config.store.sqlite as string, { writerThread: false });
    try {
      await side.insertMinting(
        newGrant({
          subject: 'evil\u001b]0;owned\u0007\u009b2J',
          policy: 'p\u202eq',
          clientId: undefined,
          createdAt: Date.now(),
          expiresAt: Date.now() + 600_000,
        }),
      );
    } finally {
      await side.close();
    }
    for (const json of [false, true]) {
      const r = await grants('list', { json });
      assert.equal(r.code, 0);
      for (const c of ['\u001b', '\u0007', '\u009b', '\u202e'])
        assert.ok(!r.stdout.includes(c), JSON.stringify(c));
      assert.match(r.stdout, /evil\\u001b\]0;owned\\u0007\\u009b2J/);
      if (json) {
        const row = r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .find((g) => g.policy === 'p\u202eq');
        assert.equal(row?.subject, 'evil\u001b]0;owned\u0007\u009b2J', 'the JSON still parses to the value');
      }
    }
  });
});
