/**
 * Baseline "verify": the CPU time of one `crypto.verify` of an RS256 (RSA
 * 2048, SHA-256, PKCS#1 v1.5) signature over a JWT's signing input, measured
 * in its own process with process.cpuUsage(): the cryptographic floor of an
 * exchange, the denominator of exchange_cpu_per_verify.
 *
 * Usage (forked by run.ts): node --import tsx bench/verify.ts <seconds>
 * Prints one JSON line: {"verifies":n,"cpuSeconds":s,"wallSeconds":w,"cpuUsPerVerify":u}
 */
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';

const seconds = Number(process.argv[2] ?? 2);
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const input = Buffer.from(
  `${b64({ alg: 'RS256', typ: 'JWT', kid: 'bench' })}.${b64({
    iss: 'http://127.0.0.1/bench',
    aud: 'tanuki-bench',
    sub: 'bench-subject',
    appid: '00000000-0000-4000-8000-000000000001',
    iat: now,
    nbf: now,
    exp: now + 3600,
    jti: 'bench',
  })}`,
);
const signature = sign('sha256', input, privateKey);
// A KeyObject, as a JWKS cache holds it (jose imports keys once).
const key = createPublicKey({ key: publicKey.export({ format: 'jwk' }), format: 'jwk' });

const once = () => {
  if (!verify('sha256', input, key, signature)) throw new Error('signature did not verify');
};
// Warm-up, then count verifications in a window.
const warmEnd = performance.now() + Math.min(500, seconds * 250);
while (performance.now() < warmEnd) once();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + seconds * 1000;
let n = 0;
while (performance.now() < end) {
  for (let i = 0; i < 50; i++) once();
  n += 50;
}
const wall = (performance.now() - t0) / 1000;
const c = process.cpuUsage(cpu0);
const cpu = (c.user + c.system) / 1e6;
process.stdout.write(
  `${JSON.stringify({ verifies: n, cpuSeconds: cpu, wallSeconds: wall, cpuUsPerVerify: (cpu / n) * 1e6 })}\n`,
);
