/**
 * The kill switch and reload, end to end, on a real `tanuki-sts serve`
 * process: two identities get grants; `server.deny` is added to the file and
 * the process gets SIGHUP: the denied identity's next exchange is refused
 * (the generic refusal) while the other's still works, without a restart.
 * `tanuki-sts reload --config F` does the same through the admin socket and
 * says what happened: an invalid file is refused and the running
 * configuration stays; a changed listen address is reported as needing a
 * restart, not applied.
 *
 * The other half of the runbook, `tanuki-sts grants revoke --app-id` (the
 * denied identity's tokens answering 401 at GitLab within 10 s while the
 * other's still work), runs here against the same serving process; its
 * filters and both stores are covered by test/e2e/grants-kill-switch.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { DEV_SYSTEM_MI_CLIENT_ID } from '../../src/emulators/entra/dev-seed.ts';
import { type ServeProcess, spawnServe } from '../helpers/replicas.ts';
import { runCli } from '../helpers/run-cli.ts';
import { assertNoSecrets, EXCHANGE, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { closeEntraAgent, mintEntra } from '../security/helpers/attack.ts';

const GENERIC = 'the subject token is invalid or not accepted';

/** One sample of the metrics text, by name and labels (`name{a="b"}`), or undefined. */
async function sample(metricsUrl: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Waits until the reload counter of `outcome` reaches `n` (the process reloads asynchronously after SIGHUP). */
async function reloads(serve: ServeProcess, outcome: 'success' | 'error', n: number): Promise<void> {
  const series = `tanuki_sts_config_reload_total{outcome="${outcome}"}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await sample(serve.metricsUrl, series);
    if (v === n) return;
    if (Date.now() > deadline)
      assert.fail(`${series} is ${v}, expected ${n}; log: ${serve.log().slice(-1500)}`);
    await sleep(50);
  }
}

describe('kill switch: server.deny + SIGHUP, and tanuki-sts reload (e2e, tanuki-sts serve)', () => {
  let s: Stack;
  let serve: ServeProcess;
  let configFile: string;
  let config: Record<string, any>;
  const appA = () => s.seed.pipelineClientId;
  const appB = DEV_SYSTEM_MI_CLIENT_ID;
  const write = (c: Record<string, any>) => writeFileSync(configFile, stringify(c));
  const exchange = async (app: string) =>
    postForm(`${serve.url}/token`, {
      ...EXCHANGE,
      subject_token: await mintEntra(s, { clientId: app }),
      audience: PROJECT,
    });
  const works = async (token: string) =>
    (
      await fetch(`${s.gitlab.url}/api/v4/projects/${encodeURIComponent(PROJECT)}`, {
        headers: { 'PRIVATE-TOKEN': token },
      })
    ).status;

  before(async () => {
    s = await startStack();
    configFile = join(s.dir, 'serve.yaml');
    writeFileSync(join(s.dir, 'gitlab-token'), `${s.gitlab.adminToken}\n`);
    const policy = (name: string, appid: string) => ({
      name,
      issuer: 'contoso',
      match: { appid },
      grant: { projects: [PROJECT], scopes: ['read_repository', 'read_api'], role: 'reporter' },
    });
    config = {
      server: {
        listen: '127.0.0.1:0',
        metricsListen: '127.0.0.1:0',
        publicUrl: 'http://127.0.0.1:8600',
        id: 'killswitch',
        adminSocket: join(s.dir, 'run', 'admin.sock'),
        rateLimit: { perIdentity: 0, perIp: 0 },
      },
      gitlab: { url: s.gitlab.url, token: { file: join(s.dir, 'gitlab-token') }, timeout: '3s' },
      store: { sqlite: join(s.dir, 'serve.db') },
      issuers: {
        contoso: {
          entra: { tenant: s.seed.tenantId, authorityHost: s.entra.url },
          caFile: s.entra.caFile,
          audiences: [s.seed.resourceUri, s.seed.resourceClientId],
        },
      },
      policies: [policy('app-a', appA()), policy('app-b', appB)],
    };
    write(config);
    serve = await spawnServe(configFile, { logFile: join(s.dir, 'serve.log') });
  });
  after(async () => {
    await serve?.kill('SIGTERM');
    if (s) await closeEntraAgent(s);
    await s?.close();
  });

  const tokens: Record<'a' | 'b', string[]> = { a: [], b: [] };

  it('two identities get grants', async () => {
    for (const [who, app] of [
      ['a', appA()],
      ['b', appB],
    ] as const) {
      const res = await exchange(app);
      assert.equal(res.status, 200, res.text);
      tokens[who].push(res.json.access_token);
      assert.equal(await works(res.json.access_token), 200);
    }
  });

  it('server.deny added and SIGHUP: the denied identity is refused at once, the other still served', async () => {
    config.server.deny = [{ issuer: 'contoso', match: { appid: appA() } }];
    write(config);
    serve.child.kill('SIGHUP');
    await reloads(serve, 'success', 1);
    const refused = await exchange(appA());
    assert.equal(refused.status, 400, refused.text);
    assert.deepEqual([refused.json.error, refused.json.error_description], ['invalid_request', GENERIC]);
    const other = await exchange(appB);
    assert.equal(other.status, 200, other.text);
    tokens.b.push(other.json.access_token);
    assert.equal(await sample(serve.metricsUrl, 'tanuki_sts_refusals_total{reason="denied"}'), 1);
    // Same process: no restart happened.
    assert.equal(serve.child.exitCode, null);
  });

  it("grants revoke --app-id while the STS serves: the denied identity's tokens answer 401 within 10 s, the other's still work", async () => {
    const run = await runCli(['grants', 'revoke', '--config', configFile, '--app-id', appA()]);
    assert.equal(run.code, 0, run.stderr);
    const deadline = Date.now() + 10_000;
    for (const token of tokens.a) {
      while ((await works(token)) !== 401) {
        assert.ok(Date.now() < deadline, "a revoked identity's token still works after 10 s");
        await sleep(100);
      }
    }
    for (const token of tokens.b)
      assert.equal(await works(token), 200, "the other identity's token still works");
    assert.equal(serve.child.exitCode, null);
  });

  it('tanuki-sts reload with an invalid file: exit 1, the errors shown, the running configuration stays', async () => {
    config.policies[1].match = { appid: { pattern: '(' } };
    write(config);
    const r = await runCli(['reload', '--config', configFile]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /the STS refused the new configuration and keeps the running one/);
    assert.match(r.stderr, /policy "app-b": match\.appid: invalid pattern/);
    await reloads(serve, 'error', 1);
    assert.equal((await exchange(appB)).status, 200, 'still served under the running configuration');
    assert.equal((await exchange(appA())).status, 400, 'still denied');
  });

  it('tanuki-sts reload: a changed listen address is reported as needing a restart and not applied', async () => {
    config.policies[1].match = { appid: appB };
    config.server.listen = '127.0.0.1:1';
    config.server.deny = [];
    write(config);
    const r = await runCli(['reload', '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'configuration reloaded: applied server.deny\n');
    assert.equal(r.stderr, 'warning: not applied, a restart is needed for: server.listen\n');
    await reloads(serve, 'success', 2);
    // Still on the port it listens on; the deny list is gone.
    assert.equal((await exchange(appA())).status, 200);
  });

  it('the log names keys and outcomes, never a secret or token', () => {
    const log = readFileSync(serve.logFile, 'utf8');
    assert.match(log, /"msg":"configuration reloaded"/);
    assert.match(log, /"msg":"configuration reload failed; the running configuration stays"/);
    assertNoSecrets([log], 'serve log');
    assert.ok(!log.includes(s.gitlab.adminToken));
  });
});
