/**
 * What another local user, or any caller, could read without asking the STS
 * for a token: the policy list on the public listener (`/metrics`), secrets on
 * the command lines of the walkthrough `npm start` prints (/proc/PID/cmdline
 * is world-readable), and the ledger, its WAL/SHM/lock files and the audit log
 * under a permissive umask. Runs the real dev stack (`tanuki-sts dev`) in
 * this process, with umask 022.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type DevStack, startDevStack } from '../../src/cli/dev-stack.ts';
import { walkthroughScript } from '../../src/cli/dev-walkthrough.ts';
import { acquireLedgerLock, openSqliteLedger } from '../../src/ledger/index.ts';
import { createAuditSink } from '../../src/service/audit.ts';
import { assertNoSecrets } from '../helpers/stack.ts';

const modeOf = (p: string) => (statSync(p).mode & 0o777).toString(8).padStart(4, '0');

/** Shell variables and dev.json keys of the walkthrough that hold a secret. */
const SECRET_REFS = [
  /\$\{?ENTRA_TOKEN\b/,
  /\$\{?GITLAB_TOKEN\b/,
  /entra\.clientSecret/,
  /sts\.clientSecret/,
  /gitlab\.adminToken/,
];

/**
 * Simple commands of a bash script (continuations joined, comments dropped,
 * split at pipes, `$(`, `)`, `;`, `&&`, `||` and newlines) that mention a
 * secret but would start a process with it on its command line: allowed are
 * only bash's builtin printf (no process), `j KEY | …` and `name@<(j KEY)` (read
 * dev.json, print to a pipe) and environment assignments (git's header: only its own user can
 * read /proc/PID/environ). `$(j SECRET)` is refused outright: a substituted
 * secret ends up in a word, an argument or a variable.
 */
function secretsOnCommandLines(script: string): string[] {
  const lines = script
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'));
  const bad: string[] = [];
  for (const m of script.matchAll(
    /\$\(\s*j (?:entra\.clientSecret|sts\.clientSecret|gitlab\.adminToken)\s*\)/g,
  ))
    bad.push(m[0]);
  for (const line of lines) {
    if (/\bj entra\.clientSecret\b/.test(line) && !/\bj entra\.clientSecret \| /.test(line)) {
      bad.push(line.trim());
    }
    for (const raw of line.split(/\$\(|<\(|\)|\|\||\||;|&&/)) {
      const cmd = raw.trim().replace(/\s+/g, ' ');
      if (!SECRET_REFS.some((re) => re.test(cmd))) continue;
      if (/^printf /.test(cmd)) continue;
      if (/^j entra\.clientSecret$/.test(cmd)) continue;
      // `--data-urlencode client_secret@<(j sts.clientSecret)`: a pipe curl reads, its path on the line.
      if (/^j sts\.clientSecret$/.test(cmd) && line.includes('@<(j sts.clientSecret)')) continue;
      if (/^[A-Z_][A-Z0-9_]*="[^"]*$/.test(cmd)) continue; // VAR="…$(printf … — the printf is its own segment
      bad.push(cmd);
    }
  }
  return bad;
}

describe('leaks to other local users and to callers', () => {
  let dir: string;
  let stack: DevStack;
  let umask: number;

  before(async () => {
    umask = process.umask(0o022);
    dir = mkdtempSync(join(tmpdir(), 'tanuki-leaks-'));
    stack = await startDevStack({ stateDir: join(dir, 'state') });
  });
  after(async () => {
    await stack?.close();
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('metrics', () => {
    it('the public listener has no /metrics (it would list every policy); the metrics listener has', async () => {
      const pub = await fetch(`${stack.devJson.sts.url}/metrics`);
      assert.equal(pub.status, 404);
      const text = await pub.text();
      assert.ok(!text.includes('dev-pipeline'), text);
      const metricsUrl = stack.devJson.sts.metricsUrl;
      assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      assert.notEqual(new URL(metricsUrl).port, new URL(stack.devJson.sts.url).port);
      const res = await fetch(metricsUrl);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^# TYPE tanuki_sts_exchanges_total counter$/m);
      assert.match(stack.banner(), new RegExp(`STS metrics +${metricsUrl.replace(/[.]/g, '\\.')}`));
    });
  });

  describe('the walkthrough `npm start` prints', () => {
    it('puts no secret on a command line (static scan of the script)', () => {
      const script = walkthroughScript('/state/dev.json');
      assert.deepEqual(secretsOnCommandLines(script), []);
      // The secrets are still sent: by curl, from its stdin.
      assert.match(script, /j entra\.clientSecret \| curl [^\n]*\n[^\n]*--data-urlencode client_secret@- /);
      assert.match(script, /printf %s "\$ENTRA_TOKEN" \| curl [\s\S]*?--data-urlencode subject_token@- /);
      // The second secret of the exchange (the question's client_secret): from a pipe, not the command line.
      assert.match(script, /--data-urlencode client_secret@<\(j sts\.clientSecret\) /);
      assert.match(script, /printf %s "\$GITLAB_TOKEN" \| curl [^\n]*--data-urlencode token@-$/m);
      assert.doesNotMatch(script, /:\/\/[^/\s"]*@/, 'no userinfo in a URL');
      // The scan itself catches what the walkthrough used to do.
      assert.deepEqual(
        secretsOnCommandLines(
          'T=$(curl -sS "$STS/token" \\\n  --data-urlencode subject_token="$ENTRA_TOKEN" | field x)\n' +
            'curl -d client_secret="$(j entra.clientSecret)" x\n' +
            'curl -d client_secret="$(j sts.clientSecret)" y\n',
        ),
        [
          '$(j entra.clientSecret)',
          '$(j sts.clientSecret)',
          'curl -sS "$STS/token" --data-urlencode subject_token="$ENTRA_TOKEN"',
          'curl -d client_secret="$(j entra.clientSecret)" x',
          'j sts.clientSecret',
        ],
      );
    });

    it('runs end to end with no secret in any argv it starts (every command recorded)', async () => {
      const shims = join(dir, 'shims');
      mkdirSync(shims);
      const log = join(dir, 'argv.log');
      writeFileSync(log, '');
      const commands = ['curl', 'git', 'node', 'base64', 'tr', 'mktemp', 'rm'];
      for (const c of commands) {
        const real =
          c === 'node'
            ? process.execPath
            : spawnSync('bash', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
        assert.ok(real.startsWith('/'), `${c} found`);
        // The shim is started with the very argv the walkthrough gives the command, and records it.
        writeFileSync(
          join(shims, c),
          `#!/bin/sh\nprintf '%s\\n' "== ${c}" "$@" >> "$ARGV_LOG"\nexec '${real}' "$@"\n`,
          { mode: 0o755 },
        );
      }
      const home = join(dir, 'home');
      mkdirSync(home);
      const result = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn('bash', [join(dir, 'state', 'walkthrough.sh')], {
          env: {
            ...process.env,
            PATH: `${shims}:${process.env.PATH}`,
            HOME: home,
            ARGV_LOG: log,
            GIT_CONFIG_NOSYSTEM: '1',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.stderr.on('data', (d) => {
          out += d;
        });
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, out }));
      });
      assert.equal(result.code, 0, result.out);
      assert.match(result.out, /5\. a clone after revocation is refused/);
      assertNoSecrets([result.out], 'walkthrough output');

      const argv = readFileSync(log, 'utf8');
      const started = argv.split('\n').filter((l) => l.startsWith('== '));
      assert.equal(started.filter((l) => l === '== curl').length, 3, argv);
      assert.equal(started.filter((l) => l === '== git').length, 2, argv);
      assert.match(argv, /^client_secret@-$/m);
      assert.match(argv, /^subject_token@-$/m);
      assert.match(argv, /^token@-$/m);
      assertNoSecrets([argv], 'command lines');
      for (const secret of [
        stack.devJson.entra.clientSecret,
        stack.devJson.sts.clientSecret,
        stack.devJson.gitlab.adminToken,
      ]) {
        assert.ok(secret.length >= 8);
        assert.ok(!argv.includes(secret), 'a dev secret on a command line');
      }
      // The exchange and the revocation really happened (audited by hash).
      const audit = readFileSync(join(dir, 'state', 'audit.log'), 'utf8');
      assert.match(audit, /"event":"exchange"[^\n]*"outcome":"granted"/);
      assert.match(audit, /"event":"revoke"/);
    });
  });

  describe('file modes under umask 022', () => {
    it('the dev stack: state folder 0700; ledger, -wal, -shm, .lock, audit log and secrets 0600', () => {
      const state = join(dir, 'state');
      assert.equal(modeOf(state), '0700');
      const files = ['tanuki-sts.db', 'tanuki-sts.db-wal', 'tanuki-sts.db-shm', 'tanuki-sts.db.lock'];
      files.push('audit.log', 'dev.json', 'gitlab-admin-token', 'sts-client-secret', 'tanuki-sts.yaml');
      for (const f of files) assert.equal(modeOf(join(state, f)), '0600', f);
    });

    it('a ledger and an audit log in missing folders: folders 0700, files 0600', async () => {
      const ledger = join(dir, 'fresh', 'data', 'ledger.db');
      const lock = acquireLedgerLock(ledger);
      const store = openSqliteLedger(ledger);
      try {
        await store.countAllActive();
        assert.equal(modeOf(join(dir, 'fresh')), '0700');
        assert.equal(modeOf(join(dir, 'fresh', 'data')), '0700');
        for (const f of ['ledger.db', 'ledger.db-wal', 'ledger.db-shm', 'ledger.db.lock']) {
          assert.equal(modeOf(join(dir, 'fresh', 'data', f)), '0600', f);
        }
      } finally {
        await store.close();
        lock.release();
      }
      const file = join(dir, 'logs', 'audit', 'audit.log');
      const audit = createAuditSink({ file });
      audit.write({ event: 'revoke', outcome: 'ok' });
      await audit.close();
      assert.equal(modeOf(join(dir, 'logs')), '0700');
      assert.equal(modeOf(join(dir, 'logs', 'audit')), '0700');
      assert.equal(modeOf(file), '0600');
    });

    it('files an earlier version left 0644 lose group and other access at start', async () => {
      const folder = join(dir, 'old');
      mkdirSync(folder);
      const ledger = join(folder, 'ledger.db');
      // What SQLite alone creates under umask 022: 0644 database, WAL and SHM.
      const old = new Database(ledger);
      old.pragma('journal_mode = WAL');
      old.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      const auditFile = join(folder, 'audit.log');
      writeFileSync(auditFile, '{}\n', { mode: 0o644 });
      chmodSync(auditFile, 0o644);
      try {
        for (const f of ['ledger.db', 'ledger.db-wal', 'ledger.db-shm']) {
          assert.equal(modeOf(join(folder, f)), '0644', `precondition ${f}`);
        }
        const store = openSqliteLedger(ledger);
        await store.close();
        for (const f of ['ledger.db', 'ledger.db-wal', 'ledger.db-shm']) {
          assert.equal(modeOf(join(folder, f)), '0600', f);
        }
        await createAuditSink({ file: auditFile }).close();
        assert.equal(modeOf(auditFile), '0600');
      } finally {
        old.close();
      }
    });
  });
});
