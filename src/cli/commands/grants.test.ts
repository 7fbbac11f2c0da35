/**
 * `tanuki-sts grants list` / `grants revoke`, run in this process against a
 * SQLite ledger that another connection holds open as the serving STS does
 * (its serving lock taken), and the fake GitLab. The end-to-end runs, as
 * separate processes beside a serving STS on SQLite and PostgreSQL, are in
 * test/e2e/grants-kill-switch.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FAKE_ADMIN_TOKEN } from '../../gitlab/fake-gitlab.testutil.ts';
import { newGrant } from '../../ledger/contract.testutil.ts';
import { acquireLedgerLock, type ProcessLock, tokenName } from '../../ledger/index.ts';
import { type Kit, makeKit } from '../../ledger/testkit.testutil.ts';
import { type GrantsIo, type GrantsOptions, runGrantsList, runGrantsRevoke } from './grants.ts';

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

const NOW = Date.parse('2030-06-01T12:00:00.000Z');
const MIN = 60_000;

describe('tanuki-sts grants', () => {
  let kit: Kit;
  let lock: ProcessLock;
  let out: ReturnType<typeof capture>;
  let err: ReturnType<typeof capture>;
  let io: GrantsIo;

  function config(extra = ''): string {
    const file = join(kit.dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      file,
      `server: { publicUrl: "https://sts.example.com", id: dev }
gitlab: { url: "${kit.fake.url}", token: { env: TEST_GITLAB_TOKEN }, timeout: 2s }
store: { sqlite: "${kit.dbPath}" }
issuers: { ci: { oidc: { issuer: "https://gitlab.example.com" }, audiences: [x] } }
policies:
  - name: ci
    issuer: ci
    match: { project_id: "42" }
    grant: { projects: [group/app], scopes: [read_repository], role: reporter }
${extra}`,
    );
    return file;
  }
  const list = (o: Omit<GrantsOptions, 'config'> = {}, file = config()) =>
    runGrantsList({ config: file, ...o }, io);
  const revoke = (o: Omit<GrantsOptions, 'config'>, file = config()) =>
    runGrantsRevoke({ config: file, ...o }, io);
  const json = () =>
    out
      .text()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, any>);
  const liveTokens = (id: string, policy = 'ci') =>
    [...kit.fake.tokens.values()].flat().filter((t) => t.name === tokenName('dev', policy, id) && !t.revoked);

  beforeEach(async () => {
    kit = await makeKit();
    kit.clock.t = NOW;
    // As `serve` holds it: this command must work beside it.
    lock = acquireLedgerLock(kit.dbPath);
    out = capture();
    err = capture();
    io = {
      stdout: out.stream,
      stderr: err.stream,
      env: { TEST_GITLAB_TOKEN: FAKE_ADMIN_TOKEN },
      now: kit.clock.now,
    };
  });
  afterEach(async () => {
    lock.release();
    await kit.close();
  });

  describe('list', () => {
    it("--json: one object per grant with the issue's fields; no token, no hash; default status active", async () => {
      const a = await kit.grant({ clientId: 'app-a', targetId: 7, scopes: ['read_api'], accessLevel: 20 });
      const gone = await kit.grant({ clientId: 'app-a' });
      await kit.store.markRevoked(gone.id, NOW);
      await kit.grant({ clientId: 'app-b' });
      assert.equal(await list({ appId: 'APP-A', json: true }), 0);
      const [only, ...rest] = json();
      assert.equal(rest.length, 0, 'the revoked grant is not active');
      const g = await kit.store.getById(a.id);
      assert.deepEqual(only, {
        id: a.id,
        status: 'active',
        state: 'active',
        policy: 'ci',
        issuer: g?.issuer,
        subject: g?.subject,
        tenant: g?.tenant,
        appId: 'app-a',
        objectId: g?.objectId,
        target: 'group/app',
        targetKind: 'project',
        targetId: 7,
        tokenKind: 'access-token',
        scopes: ['read_api'],
        role: 'reporter',
        created: '2030-06-01T12:00:00Z',
        expires: '2030-06-01T12:01:00Z',
        gitlabExpires: g?.gitlabExpiresAt,
        gitlabTokenId: a.tokenId,
      });
      const printed = out.text();
      assert.ok(g?.tokenSha256 && !printed.includes(g.tokenSha256), 'no token hash');
      for (const t of [...kit.fake.tokens.values()].flat()) assert.ok(!printed.includes(t.token), 'no token');
    });

    it('a table by default; --status expired is the TTL passed, whatever the state; --status all', async () => {
      const live = await kit.grant({ clientId: 'app-a' });
      const late = await kit.grant({ clientId: 'app-a', createdAt: NOW - 10 * MIN, expiresAt: NOW - MIN });
      const revokedLate = await kit.grant({
        clientId: 'app-a',
        createdAt: NOW - 9 * MIN,
        expiresAt: NOW - MIN,
      });
      await kit.store.markRevoked(revokedLate.id, NOW - 2 * MIN);
      assert.equal(await list({}), 0);
      const lines = out.text().trimEnd().split('\n');
      assert.match(
        lines[0] ?? '',
        /^ID +STATUS +POLICY +APP ID \/ SUBJECT +TARGET +ROLE +SCOPES +CREATED +EXPIRES$/,
      );
      assert.equal(lines.length, 3);
      assert.match(lines[1] ?? '', new RegExp(`^${live.id} +active +ci +app-a +group/app +developer +`));
      assert.equal(lines[2], '1 grant (status active)');

      out = capture();
      io.stdout = out.stream;
      await list({ status: 'expired', json: true });
      assert.deepEqual(
        json().map((g) => [g.id, g.status, g.state]),
        [
          [late.id, 'expired', 'active'],
          [revokedLate.id, 'expired', 'revoked'],
        ],
      );
      out = capture();
      io.stdout = out.stream;
      await list({ status: 'all', json: true });
      assert.deepEqual(
        json().map((g) => g.id),
        [late.id, revokedLate.id, live.id],
        'oldest first',
      );
    });

    it('filters: policy, subject, target by path (any case, slashes trimmed) or id; no match says so', async () => {
      const a = await kit.grant({ policy: 'ci', subject: 's-1', targetRef: 'Group/App', targetId: 7 });
      await kit.grant({ policy: 'deploy', subject: 's-2', targetRef: 'group/other', targetId: 8 });
      const ids = async (o: Omit<GrantsOptions, 'config'>) => {
        out = capture();
        io.stdout = out.stream;
        assert.equal(await list({ ...o, json: true }), 0);
        return json().map((g) => g.id);
      };
      assert.deepEqual(await ids({ policy: 'ci' }), [a.id]);
      assert.deepEqual(await ids({ subject: 's-1' }), [a.id]);
      assert.deepEqual(await ids({ target: '/group/app/' }), [a.id]);
      assert.deepEqual(await ids({ target: '7' }), [a.id]);
      assert.deepEqual(await ids({ target: 'group/app', policy: 'deploy' }), []);
      out = capture();
      io.stdout = out.stream;
      await list({ policy: 'nope' });
      assert.equal(out.text(), 'no grants match (policy nope; status active)\n');
    });

    it('usage: empty, control characters, a URL as target, an unknown status → exit 2, nothing opened', async () => {
      for (const o of [
        { appId: '' },
        { subject: 'a\u001b[2Jb' },
        { policy: 'x\u202ey' },
        { target: 'https://gitlab.example.com/group/app' },
        { target: '///' },
        { status: 'revoking' },
      ]) {
        err = capture();
        io.stderr = err.stream;
        assert.equal(await list(o, join(kit.dir, 'never-read.yaml')), 2, JSON.stringify(o));
        assert.match(err.text(), /^tanuki-sts grants list: --(app-id|subject|policy|target|status)/);
      }
    });

    it('a missing ledger is an error, not an empty list, and is not created', async () => {
      const file = config();
      const missing = join(kit.dir, 'elsewhere', 'ledger.db');
      writeFileSync(file, readFileSync(file, 'utf8').replace(kit.dbPath, missing));
      await assert.rejects(list({}, file), /no ledger at .*elsewhere\/ledger\.db \(store\.sqlite\)/);
      assert.equal(existsSync(missing), false);
    });

    it('unprintable characters recorded in the ledger are escaped in the table', async () => {
      await kit.grant({ clientId: undefined, subject: 'evil\u001b]0;pwned\u0007' });
      await list({});
      assert.ok(!out.text().includes('\u001b'));
      assert.match(out.text(), /evil\\u001b\]0;pwned\\u0007/);
    });
  });

  describe('revoke', () => {
    it('needs a filter or --all-active, not both; revoked and failed are not statuses to revoke', async () => {
      const g = await kit.grant({ clientId: 'app-a' });
      for (const o of [{}, { allActive: true, appId: 'app-a' }, { appId: 'app-a', status: 'revoked' }]) {
        err = capture();
        io.stderr = err.stream;
        assert.equal(await revoke(o), 2, JSON.stringify(o));
        assert.match(err.text(), /^tanuki-sts grants revoke: /);
      }
      assert.equal(liveTokens(g.id).length, 1, 'nothing revoked');
      assert.equal((await kit.store.getById(g.id))?.state, 'active');
    });

    it('revokes one application in GitLab and the ledger, audits each grant (reason operator) to audit.file', async () => {
      const a1 = await kit.grant({ clientId: 'app-a' });
      const a2 = await kit.grant({ clientId: 'app-a', expiresAt: NOW - 1 }); // past its TTL, not reaped yet
      const b = await kit.grant({ clientId: 'app-b' });
      const auditFile = join(kit.dir, 'audit', 'audit.jsonl');
      assert.equal(await revoke({ appId: 'app-a' }, config(`audit: { file: "${auditFile}" }`)), 0);
      assert.equal(out.text(), 'revoked 2 of 2 grants (app-id app-a; status all)\n');
      assert.equal(err.text(), '');
      for (const g of [a1, a2]) {
        assert.deepEqual(liveTokens(g.id), []);
        assert.equal((await kit.store.getById(g.id))?.state, 'revoked');
      }
      assert.equal(liveTokens(b.id).length, 1);
      const events = readFileSync(auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(events.map((e) => [e.event, e.outcome, e.reason, e.appId, e.policy]).sort(), [
        ['revoke', 'revoked', 'operator', 'app-a', 'ci'],
        ['revoke', 'revoked', 'operator', 'app-a', 'ci'],
      ]);
      assert.deepEqual(events.map((e) => e.grantId).sort(), [a1.id, a2.id].sort());
      assert.equal(new Set(events.map((e) => e.requestId)).size, 1, 'one id for the run');
    });

    it("an audit sink on stdout: the events go to stderr, stdout stays the command's", async () => {
      const g = await kit.grant({ subject: 'pipeline-7' });
      assert.equal(await revoke({ subject: 'pipeline-7' }), 0);
      assert.equal(out.text(), 'revoked 1 of 1 grant (subject pipeline-7; status all)\n');
      const [event, ...more] = err.text().trim().split('\n');
      assert.equal(more.length, 0);
      const e = JSON.parse(event ?? '');
      assert.deepEqual(
        [e.audit, e.event, e.outcome, e.reason, e.grantId],
        [true, 'revoke', 'revoked', 'operator', g.id],
      );
    });

    it('--status active spares grants past their TTL; --all-active takes every live grant', async () => {
      const fresh = await kit.grant({ clientId: 'app-a' });
      const late = await kit.grant({ clientId: 'app-b', expiresAt: NOW - 1 });
      assert.equal(await revoke({ appId: 'app-b', status: 'active' }), 0);
      assert.match(
        out.text(),
        /^no live grant matches \(app-id app-b; status active\): nothing to revoke\n$/,
      );
      assert.equal(liveTokens(late.id).length, 1);
      assert.equal(await revoke({ allActive: true }), 0);
      assert.deepEqual([...liveTokens(fresh.id), ...liveTokens(late.id)], []);
    });

    it('GitLab refusing: exit 3 with the list; the grants stay due for the reaper', async () => {
      const ok = await kit.grant({ clientId: 'app-a', targetRef: 'group/app' });
      const refused = await kit.grant({ clientId: 'app-a', targetRef: 'group/locked' });
      kit.fake.intercept = (r) =>
        r.ref === 'group/locked' ? { status: 403, body: { message: '403 Forbidden' } } : undefined;
      assert.equal(await revoke({ appId: 'app-a' }), 3);
      const text = out.text();
      assert.match(text, /^revoked 1 of 2 grants \(app-id app-a; status all\)\n1 could not be revoked now;/);
      assert.match(text, new RegExp(`\\n  ${refused.id}  ci  group/locked  app-a  GitLab refused .*403`));
      assert.ok(!text.includes(ok.id));
      const left = await kit.store.getById(refused.id);
      assert.equal(left?.state, 'revoking');
      assert.ok((left?.nextAttemptAt ?? Number.POSITIVE_INFINITY) <= NOW, 'due now');
      assert.match(err.text(), /"outcome":"deferred","reason":"operator"/);
    });

    it('an exchange in flight is stopped: the serving process will take its token back', async () => {
      const g = newGrant({ clientId: 'app-a', createdAt: NOW, expiresAt: NOW + MIN });
      await kit.store.insertMinting(g);
      assert.equal(await revoke({ appId: 'app-a' }), 0);
      assert.match(
        out.text(),
        /revoked 1 of 1 grant .*; 1 caught mid-exchange: no client received their token\n$/,
      );
      assert.equal((await kit.store.getById(g.id))?.state, 'failed');
    });
  });
});
