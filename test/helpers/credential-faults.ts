/**
 * The kill-at-each-step test of the rotation of the STS's own GitLab token
 * (test/integration/credential-kill-*.test.ts, two files so that each stays
 * well under the per-file time limit): `tanuki-sts serve` (a real process, its
 * GitLab token in the emulated Key Vault, `gitlab.rotation` due at once) is
 * SIGKILLed at a step of its rotation by the test hook (TANUKI_TEST=1,
 * TANUKI_TEST_CREDENTIAL_STOP), then restarted; the restart must end with the
 * vault holding the one working token, an exchange succeeding, at most one
 * extra active token of the STS's user, and the old token never used for a
 * second rotate (GitLab's reuse detection would revoke the family).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { azureToken } from './azure.ts';
import {
  gitlabAccepts,
  keyVaultStsConfig,
  startCredentialEmulators,
  stsUserTokens,
  vaultFaults,
  vaultHoldsTheLiveToken,
  vaultVersions,
} from './credential-stack.ts';
import { dayUtc } from './gitlab-http.ts';
import { spawnServe } from './replicas.ts';
import { assertNoSecrets, EXCHANGE, PROJECT, postForm } from './stack.ts';

const BIN = fileURLToPath(new URL('../../bin/tanuki-sts.js', import.meta.url));

/** `serve` with the stop hook: it must die of SIGKILL at that step (not start, not exit otherwise). */
async function killedAt(configFile: string, step: string): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, TANUKI_TEST: '1', TANUKI_TEST_CREDENTIAL_STOP: step },
  });
  const exit = await Promise.race([
    new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    ),
    sleep(60_000, undefined, { ref: false }).then(() => {
      child.kill('SIGKILL');
      return { code: null, signal: 'timeout' };
    }),
  ]);
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, `serve stopped at ${step}`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const auditEvents = (file: string): Array<Record<string, any>> => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};

export interface KillCase {
  step: 'before-gitlab' | 'after-gitlab' | 'after-writeback' | 'writeback-failed';
  /** The vault refuses every write until the restart. */
  failWrites?: true;
  /** The audit outcomes the restart must leave, in order. */
  outcomes: string[];
}

export const KILL_CASES: Record<KillCase['step'], KillCase> = {
  // GitLab never called: the record is closed (abandoned), then the due rotation runs.
  'before-gitlab': { step: 'before-gitlab', outcomes: ['abandoned', 'success'] },
  // The new token only in the ledger (sealed) and GitLab: opened with the old one, written back.
  'after-gitlab': { step: 'after-gitlab', outcomes: ['recovered'] },
  // Written back, not closed: closed.
  'after-writeback': { step: 'after-writeback', outcomes: ['recovered'] },
  // The vault refused every write: the sealed token is written back once it takes writes again.
  'writeback-failed': { step: 'writeback-failed', failWrites: true, outcomes: ['recovered'] },
};

/** Kill `serve` at `c.step`, restart it, check what the restart left. `root`: a temp folder. */
export async function killAndRestart(root: string, c: KillCase): Promise<void> {
  const dir = join(root, c.step);
  mkdirSync(dir);
  // Due at once: the token expires within `every` (2 days).
  const e = await startCredentialEmulators(dir, { stsTokenExpiresAt: dayUtc(2) });
  try {
    const original = e.gitlab.adminToken;
    const audit = join(dir, 'audit.log');
    const configFile = join(dir, 'tanuki-sts.yaml');
    writeFileSync(
      configFile,
      JSON.stringify(
        keyVaultStsConfig(e, {
          audit,
          gitlab: { rotation: { every: '2d', lifetime: '7d' }, healthInterval: '30s' },
        }),
      ),
    );
    if (c.failWrites) await vaultFaults(e, { status: 503, operations: ['setSecret'] });
    await killedAt(configFile, c.step);
    assert.equal(
      await gitlabAccepts(e, original),
      c.step === 'before-gitlab',
      'GitLab rotated (or not) before the kill',
    );
    if (c.failWrites) await vaultFaults(e, null);

    const serve = await spawnServe(configFile, { logFile: join(dir, 'serve.log') });
    try {
      await waitFor('the rotation to be settled', async () => {
        const outcomes = auditEvents(audit)
          .filter((x) => x.event === 'credential-rotation')
          .map((x) => x.outcome);
        return c.outcomes.every((o) => outcomes.includes(o));
      });
      assert.deepEqual(
        auditEvents(audit)
          .filter((x) => x.event === 'credential-rotation')
          .map((x) => x.outcome),
        c.outcomes,
      );
      assert.equal(await vaultHoldsTheLiveToken(e), true, 'the vault holds the working token');
      const tokens = await stsUserTokens(e);
      assert.ok(tokens.filter((t) => t.active).length <= 2, 'at most one extra active token');
      assert.equal(tokens.filter((t) => t.active).length, 1);
      assert.equal(await gitlabAccepts(e, original), false, 'the original token is gone');
      const subject = await azureToken({
        caFile: e.entra.caFile,
        authorityHost: e.entra.url,
        tenantId: e.seed.tenantId,
        clientId: e.seed.pipelineClientId,
        clientSecret: e.seed.pipelineClientSecret,
        scope: `${e.seed.resourceUri}/.default`,
      });
      const res = await postForm(`${serve.url}/token`, {
        ...EXCHANGE,
        subject_token: subject,
        resource: `${e.gitlab.url}/${PROJECT}`,
      });
      assert.equal(res.status, 200, res.text);
      assert.equal((await fetch(`${serve.url}/readyz`)).status, 200);
      // One rotate request per rotation: never one with a token already rotated.
      const stats = (await (await fetch(`${e.gitlab.url}/_emulator/stats`)).json()) as {
        byRoute: Record<string, number>;
      };
      assert.equal(
        stats.byRoute['POST /personal_access_tokens/self/rotate'],
        c.outcomes.filter((o) => o === 'success').length + (c.step === 'before-gitlab' ? 0 : 1),
      );
      assert.ok((await vaultVersions(e)).length >= 2);
      assertNoSecrets([readFileSync(audit, 'utf8'), serve.log()], 'audit and log');
    } finally {
      await serve.kill('SIGTERM');
    }
  } finally {
    await e.close();
  }
}
