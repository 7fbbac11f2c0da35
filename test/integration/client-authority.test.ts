/**
 * A wrong tenant, an untrusted authority certificate and an unreachable
 * authority host each get their own message, not MSAL's shared
 * `endpoints_resolution_error` (src/client/authority.ts): `tanuki-sts token`
 * run as a pipeline runs it (a child process, real @azure/identity) against
 * the Entra ID emulator.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_TENANT_ID,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { closedPort } from '../helpers/client-dev-stack.ts';

const ENTRY = fileURLToPath(new URL('../helpers/cli-entry.ts', import.meta.url));
const UNKNOWN_TENANT = '0f0e0d0c-0b0a-4909-8807-060504030201';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function tokenCommand(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ENTRY, 'token', '--resource', 'https://gitlab.example.com/platform/lib'],
      { env, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('Azure sign-in: which of the three common mistakes it was (Entra ID emulator)', () => {
  let dir: string;
  let emu: EntraEmulatorHandle;
  let env: (extra: Record<string, string | undefined>) => Record<string, string>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-authority-'));
    emu = await startEntraEmulator({ stateDir: join(dir, 'entra') });
    const secret = emu.config.tenants[0]!.apps[0]!.clientSecrets[0]!.value;
    // No STS listens: a sign-in that works ends in exit 5, one that fails in exit 3, before any exchange.
    const sts = `http://127.0.0.1:${await closedPort()}`;
    env = (extra) => {
      const all: Record<string, string | undefined> = {
        PATH: process.env.PATH,
        HOME: dir,
        NODE_EXTRA_CA_CERTS: emu.caFile,
        AZURE_AUTHORITY_HOST: emu.url,
        AZURE_TENANT_ID: DEV_TENANT_ID,
        AZURE_CLIENT_ID: DEV_PIPELINE_CLIENT_ID,
        AZURE_CLIENT_SECRET: secret,
        TANUKI_STS_URL: sts,
        TANUKI_AZURE_SCOPE: `${DEV_RESOURCE_URI}/.default`,
        TANUKI_RETRIES: '0',
        ...extra,
      };
      return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
    };
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('control: with the right tenant, CA and host the sign-in works (then the absent STS: exit 5)', async () => {
    const r = await tokenCommand(env({}));
    assert.equal(r.code, 5, r.stderr);
    assert.doesNotMatch(r.stderr, /Azure sign-in failed/);
  });

  it('a tenant the authority does not know: "tenant X not found at H (AADSTS90002)", exit 3', async () => {
    const r = await tokenCommand(env({ AZURE_TENANT_ID: UNKNOWN_TENANT }));
    assert.equal(r.code, 3, r.stderr);
    const host = new URL(emu.url).host;
    assert.match(
      r.stderr,
      new RegExp(
        `tenant ${UNKNOWN_TENANT} not found at ${host} \\(AADSTS90002\\) — check --tenant-id / --authority-host`,
      ),
    );
    assert.doesNotMatch(r.stderr, /endpoints_resolution_error/);
    assert.equal(r.stdout, '');
  });

  it('the emulator\'s https without NODE_EXTRA_CA_CERTS: "TLS: certificate of H not trusted — set NODE_EXTRA_CA_CERTS", exit 3', async () => {
    const r = await tokenCommand(env({ NODE_EXTRA_CA_CERTS: undefined }));
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `TLS: certificate of ${new URL(emu.url).host} not trusted \\([A-Z_]+\\) — set NODE_EXTRA_CA_CERTS`,
      ),
    );
    assert.doesNotMatch(r.stderr, /endpoints_resolution_error/);
  });

  it('a port where nothing listens: "cannot reach H", exit 3', async () => {
    const port = await closedPort();
    const r = await tokenCommand(env({ AZURE_AUTHORITY_HOST: `https://127.0.0.1:${port}` }));
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`cannot reach 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\) — check --authority-host`),
    );
    assert.doesNotMatch(r.stderr, /endpoints_resolution_error/);
  });

  it('a wrong client secret still gets its AADSTS advice (no diagnosis needed)', async () => {
    const r = await tokenCommand(env({ AZURE_CLIENT_SECRET: 'not-the-secret' }));
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /AADSTS7000215: the client secret is wrong/);
  });
});
