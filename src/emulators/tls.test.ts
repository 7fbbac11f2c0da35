import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ensureLocalCa } from './tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'local-ca-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('ensureLocalCa issues a localhost / 127.0.0.1 / ::1 certificate under a new CA and reuses both', async () => {
  const first = await ensureLocalCa(dir);
  const ca = new X509Certificate(first.caCertPem);
  const cert = new X509Certificate(first.certPem);
  assert.ok(ca.ca, 'the CA is a CA');
  assert.ok(!cert.ca);
  assert.ok(cert.verify(ca.publicKey), 'the server certificate is signed by the CA');
  assert.ok(cert.checkHost('localhost'));
  assert.ok(cert.checkIP('127.0.0.1'));
  assert.ok(cert.checkIP('::1'));
  assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o077, 0, 'the CA key is private');

  const again = await ensureLocalCa(dir);
  assert.equal(again.caCertPem, first.caCertPem);
  assert.equal(again.certPem, first.certPem);

  // A server certificate that is unreadable is re-issued under the same CA.
  writeFileSync(first.certFile, 'garbage');
  const healed = await ensureLocalCa(dir);
  assert.equal(healed.caCertPem, first.caCertPem);
  assert.notEqual(healed.certPem, first.certPem);
  assert.ok(new X509Certificate(healed.certPem).verify(ca.publicKey));
});
