import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryAuditSink, redactTokens } from './audit.ts';

describe('audit redaction of token-shaped text', () => {
  it('redacts GitLab tokens and JWTs in any case, keeps everything else', () => {
    const glpat = 'glpat-AbCdEfGhIjKlMnOpQrSt';
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const current = 'glpat-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456.01.a1b2c3d4e'; // 18.x: the dots are part of it
    for (const secret of [
      glpat,
      glpat.toLowerCase(),
      jwt,
      jwt.toLowerCase(),
      'gldt-0123456789abcdef',
      current,
    ]) {
      const out = redactTokens(`image-build: project platform/${secret}: not in this grant`);
      assert.ok(!out.includes(secret), out);
      assert.match(
        out,
        /^image-build: project platform\/\[redacted sha256:[0-9a-f]{16}\]: not in this grant$/,
      );
    }
    const plain = 'policy image-build: appid 2b8e5f4a-1c3d-4e5f-9a6b-7c8d9e0f1a2b is not 11111111-2222';
    assert.equal(redactTokens(plain), plain);
  });

  it('the sinks redact reason and target before anything is written', () => {
    const sink = createMemoryAuditSink();
    sink.write({
      event: 'exchange',
      outcome: 'invalid_target',
      reason: 'x glpat-AbCdEfGhIjKlMnOp y',
      target: 'glpat-AbCdEfGhIjKlMnOp',
    });
    assert.doesNotMatch(JSON.stringify(sink.events), /glpat-/);
  });
});
