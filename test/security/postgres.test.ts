/**
 * Attacks on the PostgreSQL ledger (docs/security.md rows 110–119): its
 * password leaking, a downgrade to plain text, SQL through the schema name,
 * deployments sharing a database, and the database going away.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/index.ts';
import { newGrant } from '../../src/ledger/contract.testutil.ts';
import { ActiveGrantCapError, openPostgresLedger } from '../../src/ledger/index.ts';
import { startSts } from '../../src/service/server.ts';
import { deadPort, PG_URL, testSchema } from '../helpers/pg.ts';
import { EXCHANGE, PROJECT, pipelineToken, postForm, type Stack, startStack } from '../helpers/stack.ts';

const SECRET = 'pg-pass-7b3f0c1e9a';

/** A server that speaks the first step of the PostgreSQL protocol only: it refuses TLS ('N') and records what follows. */
async function noTlsServer(): Promise<{
  port: number;
  sslRequests: number;
  plaintext: Buffer[];
  close(): Promise<void>;
}> {
  const state = { sslRequests: 0, plaintext: [] as Buffer[] };
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    sock.on('data', (data) => {
      // SSLRequest: length 8, code 80877103.
      if (data.length === 8 && data.readInt32BE(4) === 80877103) {
        state.sslRequests++;
        sock.write('N');
      } else {
        state.plaintext.push(data);
        sock.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    get sslRequests() {
      return state.sslRequests;
    },
    plaintext: state.plaintext,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('110: the database password never leaves the configuration', () => {
  let s: Stack;
  const lines: string[] = [];
  before(async () => {
    const { schema } = await testSchema();
    const url = `postgres://sts:${SECRET}@127.0.0.1:${await deadPort()}/tanuki`;
    s = await startStack({
      tweak: (raw) => {
        raw.store = { postgres: { url, schema } };
      },
    });
    // Restart the STS with a logger we can read.
    await s.sts.close();
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    s.sts = await startSts({
      config: s.config,
      logger: pino({ level: 'debug' }, sink),
      audit: s.audit,
      now: s.clock.now,
      background: true,
    });
  });
  after(() => s.close());

  it('not in logs, /readyz, error answers or the audit; not in config errors', async () => {
    const ready = await fetch(`${s.sts.url}/readyz`);
    const readyText = await ready.text();
    assert.equal(ready.status, 503);
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: await pipelineToken(s),
      audience: PROJECT,
    });
    assert.equal(res.status, 503);
    const revoke = await postForm(`${s.sts.url}/revoke`, { token: 'glpat-aaaaaaaaaaaaaaaaaaaa' });
    assert.equal(revoke.status, 503);
    assert.ok(
      lines.some((l) => l.includes('ledger database unavailable')),
      'the outage is logged',
    );
    const everything = [readyText, res.text, revoke.text, ...lines, JSON.stringify(s.audit.events)].join(
      '\n',
    );
    assert.ok(!everything.includes(SECRET), 'the password appears somewhere');
    // A URL the schema refuses is not echoed either.
    let message = '';
    try {
      parseConfig(
        {
          server: { publicUrl: 'https://sts.example.com' },
          gitlab: { url: 'https://gitlab.example.com', token: 'glpat-x' },
          issuers: {},
          policies: [],
          store: { postgres: { url: `postgres://sts:${SECRET}@db/x?sslmode=prefer` } },
        },
        { env: {} },
      );
    } catch (err) {
      message = (err as Error).message;
    }
    assert.match(message, /store\.postgres\.url/);
    assert.ok(!message.includes(SECRET));
  });
});

describe('111: no downgrade to plain text', () => {
  let fake: Awaited<ReturnType<typeof noTlsServer>>;
  before(async () => {
    fake = await noTlsServer();
  });
  after(() => fake.close());

  for (const [label, url] of [
    ['a non-loopback host without sslmode', () => `postgres://sts:${SECRET}@0.0.0.0:${fake.port}/d`],
    [
      'sslmode=require on loopback',
      () => `postgres://sts:${SECRET}@127.0.0.1:${fake.port}/d?sslmode=require`,
    ],
  ] as const) {
    it(`${label}: a server refusing TLS gets nothing, the connection fails`, async () => {
      const before = fake.sslRequests;
      await assert.rejects(
        openPostgresLedger({ url: url(), schema: 'tanuki_test_x' }),
        /does not support SSL/,
      );
      assert.equal(fake.sslRequests, before + 1, 'TLS was asked for');
      assert.deepEqual(fake.plaintext, [], 'no startup message (user, database) in plain text');
    });
  }
});

describe('112: SQL through the schema name', () => {
  it('refused before any connection, by the config and by the ledger itself', async () => {
    const port = await deadPort(); // a connection attempt would say ECONNREFUSED
    for (const schema of ['x"; DROP SCHEMA public CASCADE; --', 'Tanuki', 'a b', '', 'pg_catalog"."x']) {
      await assert.rejects(
        openPostgresLedger({ url: `postgres://u@127.0.0.1:${port}/d`, schema }),
        /lower-case SQL identifier/,
        schema,
      );
    }
  });
});

describe('113: two deployments in one database (a schema each) share nothing', () => {
  it('each has its own leader and its own cap', async () => {
    const one = await testSchema();
    const two = await testSchema();
    const a = await openPostgresLedger({ url: PG_URL, schema: one.schema, poolSize: 1 });
    const b = await openPostgresLedger({ url: PG_URL, schema: two.schema, poolSize: 1 });
    const ea = a.leaderElection({ onChange: () => {} });
    const eb = b.leaderElection({ onChange: () => {} });
    try {
      await ea.start();
      await eb.start();
      assert.deepEqual([ea.isLeader(), eb.isLeader()], [true, true]);
      const cap = { maxActive: 1, now: Date.now() };
      await a.insertMinting(newGrant({ identityKey: 'shared' }), cap);
      await assert.rejects(a.insertMinting(newGrant({ identityKey: 'shared' }), cap), ActiveGrantCapError);
      await b.insertMinting(newGrant({ identityKey: 'shared' }), cap);
      assert.equal(await b.countActive('shared'), 1);
    } finally {
      await ea.stop();
      await eb.stop();
      await a.close();
      await b.close();
      await one.drop();
      await two.drop();
    }
  });
});

describe('114: an STS whose database is gone mints nothing', () => {
  it('a start with no database: 503 with Retry-After, no grant, no GitLab token, for a valid caller', async () => {
    const { schema } = await testSchema();
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/test`;
    const s = await startStack({
      tweak: (raw) => {
        raw.store = { postgres: { url, schema } };
      },
    });
    try {
      const tokensBefore = (await (await fetch(`${s.gitlab.url}/_emulator/tokens`)).json()) as unknown[];
      const res = await postForm(`${s.sts.url}/token`, {
        ...EXCHANGE,
        subject_token: await pipelineToken(s),
        audience: PROJECT,
      });
      assert.equal(res.status, 503);
      assert.equal(res.json.error, 'temporarily_unavailable');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      const tokensAfter = (await (await fetch(`${s.gitlab.url}/_emulator/tokens`)).json()) as unknown[];
      assert.equal(tokensAfter.length, tokensBefore.length, 'no token created');
      const audit = s.audit.events.filter((e) => e.event === 'exchange').at(-1);
      assert.equal(audit?.outcome, 'temporarily_unavailable');
      assert.match(String(audit?.reason), /store unavailable/);
    } finally {
      await s.close();
    }
  });
});
