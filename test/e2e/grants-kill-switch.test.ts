/**
 * The kill switch end to end, as issue 18's "Done when" reads: an STS serving
 * (its reaper and reconciler running) mints grants for two Entra identities;
 * `tanuki-sts grants revoke --app-id <one>` runs as a separate process, the
 * real binary, while the STS keeps serving the other identity; the revoked
 * identity's tokens answer 401 at GitLab within 10 s, the other's still work.
 * On SQLite (the file the STS holds open, with its serving lock) and on
 * PostgreSQL (a schema of this run). `grants list` reads the same ledger
 * before and after, and prints no token.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEV_SYSTEM_MI_CLIENT_ID,
  exchangeFor as exchange,
  gitlabStatus,
  startKillSwitchStack,
} from '../helpers/kill-switch.ts';
import { PG_URL, testSchema } from '../helpers/pg.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets, PROJECT, pipelineToken } from '../helpers/stack.ts';
import { closeEntraAgent, mintEntra } from '../security/helpers/attack.ts';

async function waitFor(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`not within ${ms / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function scenario(store?: Record<string, unknown>): Promise<void> {
  // The STS serving: its reaper and reconciler run beside the command.
  const k = await startKillSwitchStack({ store, background: true });
  const { s } = k;
  const audit = join(s.dir, 'operator-audit.jsonl');
  const file = k.configFile((r) => {
    r.audit = { file: audit };
  });
  const env = k.env();
  try {
    const appA = s.seed.pipelineClientId;
    const subjectA = await pipelineToken(s); // real @azure/identity, client secret
    const subjectB = await mintEntra(s, { clientId: DEV_SYSTEM_MI_CLIENT_ID });
    const tokensA = [await exchange(s, subjectA), await exchange(s, subjectA)];
    const tokensB = [await exchange(s, subjectB), await exchange(s, subjectB)];
    for (const t of [...tokensA, ...tokensB]) assert.equal(await gitlabStatus(s, t), 200);

    const before = await runCli(['grants', 'list', '--config', file, '--app-id', appA, '--json'], env);
    assert.equal(before.code, 0, before.stderr);
    const listed = before.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      listed.map((g) => [g.status, g.appId, g.policy, g.target]),
      [
        ['active', appA, 'image-build', PROJECT],
        ['active', appA, 'image-build', PROJECT],
      ],
    );

    // The kill switch, as a process of its own, while the STS keeps serving identity B.
    let serving = true;
    let servedMeanwhile = 0;
    const traffic = (async () => {
      while (serving) {
        tokensB.push(await exchange(s, subjectB));
        servedMeanwhile++;
      }
    })();
    const killed = await runCli(['grants', 'revoke', '--config', file, '--app-id', appA], env);
    serving = false;
    await traffic;
    assert.equal(killed.code, 0, `${killed.stdout}${killed.stderr}`);
    assert.equal(killed.stdout, `revoked 2 of 2 grants (app-id ${appA}; status all)\n`);
    assert.ok(servedMeanwhile > 0, 'the STS served exchanges while the command ran');

    await waitFor(
      async () => (await Promise.all(tokensA.map((t) => gitlabStatus(s, t)))).every((st) => st === 401),
      10_000,
      "identity A's tokens answer 401 at GitLab",
    );
    for (const t of tokensB) assert.equal(await gitlabStatus(s, t), 200, "identity B's tokens still work");
    assert.equal(await gitlabStatus(s, await exchange(s, subjectB)), 200, 'and B still gets new ones');

    const events = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => [e.event, e.outcome, e.reason, e.appId]),
      [
        ['revoke', 'revoked', 'operator', appA],
        ['revoke', 'revoked', 'operator', appA],
      ],
    );
    assert.deepEqual(events.map((e) => e.grantId).sort(), listed.map((g) => g.id).sort());

    const after = await runCli(['grants', 'list', '--config', file, '--status', 'all'], env);
    assert.equal(after.code, 0, after.stderr);
    for (const g of listed)
      assert.match(after.stdout, new RegExp(`^${g.id} +revoked +image-build +${appA} `, 'm'));
    assert.match(after.stdout, new RegExp(`^\\S+ +active +mi-build +${DEV_SYSTEM_MI_CLIENT_ID} `, 'm'));
    const outputs = [before, killed, after].flatMap((r) => [r.stdout, r.stderr]);
    assertNoSecrets([...outputs, readFileSync(audit, 'utf8')], 'grants output and audit');
    for (const t of [...tokensA, ...tokensB]) assert.ok(!outputs.some((o) => o.includes(t)));
  } finally {
    await closeEntraAgent(s);
    await s.close();
  }
}

describe('kill switch: grants revoke --app-id while the STS serves (e2e)', () => {
  it('SQLite: the ledger the STS holds open (and locked)', () => scenario());

  it('PostgreSQL: the ledger the STS shares', async () => {
    const { schema, drop } = await testSchema();
    try {
      await scenario({ postgres: { url: PG_URL, schema, poolSize: 4 } });
    } finally {
      await drop();
    }
  });
});
