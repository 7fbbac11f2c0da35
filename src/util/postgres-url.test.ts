import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PostgresUrlError, parsePostgresUrl } from './postgres-url.ts';

describe('parsePostgresUrl', () => {
  it('reads host, port, user, password and database; loopback is plain, anything else TLS', () => {
    assert.deepEqual(parsePostgresUrl('postgres://postgres@127.0.0.1:5432/test'), {
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'test',
      tls: false,
    });
    assert.deepEqual(parsePostgresUrl('postgresql://sts:p%40ss%2Fw@db.example.com/sts'), {
      host: 'db.example.com',
      port: 5432,
      user: 'sts',
      password: 'p@ss/w',
      database: 'sts',
      tls: true,
    });
    assert.equal(parsePostgresUrl('postgres://u@[::1]:6543/d').host, '::1');
    assert.equal(parsePostgresUrl('postgres://u@localhost/d').tls, false);
  });

  it('sslmode: disable opts out, require/verify-* mean verified TLS, even on loopback; caFile means TLS', () => {
    assert.equal(parsePostgresUrl('postgres://u@db.internal/d?sslmode=disable').tls, false);
    for (const m of ['require', 'verify-ca', 'verify-full']) {
      assert.equal(parsePostgresUrl(`postgres://u@127.0.0.1/d?sslmode=${m}`).tls, true, m);
    }
    assert.equal(parsePostgresUrl('postgres://u@127.0.0.1/d', true).tls, true);
  });

  it('refuses what it does not understand, without quoting the URL', () => {
    const secret = 'hunter2-secret';
    const cases: Array<[string, RegExp, boolean?]> = [
      [`mysql://u:${secret}@h/d`, /postgres:\/\/ or postgresql:\/\//],
      [`postgres://u:${secret}@h/d?sslmode=prefer`, /allow and prefer fall back to plain text/],
      [`postgres://u:${secret}@h/d?sslmode=allow`, /sslmode must be/],
      [`postgres://u:${secret}@h/d?application_name=x`, /unsupported URL parameter "application_name"/],
      [`postgres://u:${secret}@h/d?${secret}=1`, /unsupported URL parameter \(only sslmode/],
      [`postgres://u:${secret}@h/d?sslmode=require&sslmode=disable`, /twice/],
      [`postgres://u:${secret}@/d`, /expected a URL like/],
      ['postgres:///d', /a host is required/],
      [`postgres://u:${secret}@h:0/d`, /port out of range/],
      [`postgres://u:${secret}@h/d#x`, /fragment/],
      [`postgres://u:%E0%A4%A@h/d`, /percent-encoding/],
      [`postgres://u:${secret}@h/d?sslmode=disable`, /contradicts caFile/, true],
      ['not a url', /expected a URL like/],
    ];
    for (const [url, re, ca] of cases) {
      const err = (() => {
        try {
          parsePostgresUrl(url, ca);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof PostgresUrlError, url);
      assert.equal(err.code, 'ERR_POSTGRES_URL');
      assert.match(err.message, re, url);
      assert.ok(!err.message.includes(secret), `${url}: the message quotes the URL`);
    }
  });
});
