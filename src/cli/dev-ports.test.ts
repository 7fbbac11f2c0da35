/** The dev stack's port base: which bases fit, and the sentences for a base or a port that cannot be used. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { describe, it } from 'node:test';
import {
  DEFAULT_DEV_PORT_BASE,
  DEV_PORT_ROLES,
  firstUnavailablePort,
  MAX_DEV_PORT_BASE,
  portBaseProblem,
  portUnavailableMessage,
} from './dev-ports.ts';

describe('dev port base', () => {
  it('the default base and its four neighbours are ports below the ephemeral ranges', () => {
    assert.equal(DEFAULT_DEV_PORT_BASE, 18600);
    assert.equal(DEV_PORT_ROLES.length, 5);
    assert.equal(portBaseProblem(DEFAULT_DEV_PORT_BASE), undefined);
    assert.ok(DEFAULT_DEV_PORT_BASE + 4 < 32768);
  });

  for (const [base, problem] of [
    [0, undefined],
    [1024, undefined],
    [65531, undefined],
    [
      65532,
      "port base 65532 cannot hold the dev stack's 5 ports (65532 to 65536; the highest port is 65535): use 65531 or lower, or 0 for any free ports",
    ],
    [
      65534,
      "port base 65534 cannot hold the dev stack's 5 ports (65534 to 65538; the highest port is 65535): use 65531 or lower, or 0 for any free ports",
    ],
    [-1, '--port-base expects a whole number from 1 to 65531 (or 0 for any free ports)'],
    [1.5, '--port-base expects a whole number from 1 to 65531 (or 0 for any free ports)'],
    [Number.NaN, '--port-base expects a whole number from 1 to 65531 (or 0 for any free ports)'],
  ] as const) {
    it(`base ${base}: ${problem ?? 'fits'}`, () => {
      assert.equal(portBaseProblem(base), problem);
    });
  }

  it('MAX_DEV_PORT_BASE is the last base whose last port exists', () => {
    assert.equal(MAX_DEV_PORT_BASE + DEV_PORT_ROLES.length - 1, 65535);
  });

  it('a port in use: named with its role and the --port-base hint', () => {
    assert.equal(
      portUnavailableMessage(18603, 18600, 'EADDRINUSE'),
      'port 18603 (STS) on 127.0.0.1 is in use; choose other ports with --port-base N (the dev stack uses N to N+4)',
    );
    assert.equal(
      portUnavailableMessage(80, 80, 'EACCES'),
      'port 80 (Entra ID emulator) on 127.0.0.1 cannot be used (EACCES); choose other ports with --port-base N (the dev stack uses N to N+4)',
    );
  });

  it('firstUnavailablePort names the first taken port of the base', async () => {
    const srv: Server = await new Promise((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => resolve(s));
    });
    const addr = srv.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      assert.ok(port > 4);
      // Taken as base + 4 (STS metrics): the four ports before it are tried first, so any of them may be taken too.
      const message = await firstUnavailablePort(port - 4);
      assert.match(message ?? '', /^port \d+ \([^)]+\) on 127\.0\.0\.1 (is in use|cannot be used)/);
      assert.equal(await firstUnavailablePort(port), portUnavailableMessage(port, port, 'EADDRINUSE'));
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
