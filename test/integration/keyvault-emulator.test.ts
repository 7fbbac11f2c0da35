/**
 * The Key Vault emulator with the unmodified `@azure/keyvault-secrets` SecretClient and
 * `@azure/identity` credentials (client secret, managed identity through IMDS) against the
 * Entra ID emulator, in child processes that trust the emulators' shared CA through
 * NODE_EXTRA_CA_CERTS; and its wire over raw HTTPS: the challenge, the token checks (audience,
 * tenant, signature, lifetime), `api-version`, Key Vault's error bodies, RBAC per secret, paging,
 * the operator endpoints and persistence.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_PIPELINE_OBJECT_ID,
  DEV_RESOURCE_URI,
  DEV_SYSTEM_MI_OBJECT_ID,
  DEV_TENANT_ID,
  DEV_USER_MI_CLIENT_ID,
  DEV_USER_MI_OBJECT_ID,
  defaultEntraConfig,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type KeyVaultEmulatorHandle, startKeyVaultEmulator } from '../../src/emulators/keyvault/index.ts';
import type { Scenario, StepResult } from './keyvault-emulator.azure-runner.ts';

const RUNNER = fileURLToPath(new URL('./keyvault-emulator.azure-runner.ts', import.meta.url));
const T = DEV_TENANT_ID;
const OTHER_TENANT = 'c0ffee00-1111-4222-8333-444455556666';
const OUTSIDER_CLIENT_ID = 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6';
const OUTSIDER_SECRET = 'outsider-secret-0123456789';
const VAULT_HOST = 'tanuki-test.vault.azure.net';
const KV_APP_ID = 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093';
const NOT_FOUND_TAIL =
  ' was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

/** The dev seed plus a second tenant with one app: its tokens verify (shared keys) but name another tenant. */
function entraConfig() {
  const cfg = defaultEntraConfig();
  cfg.tenants.push({
    id: OTHER_TENANT,
    name: 'other',
    resources: [],
    apps: [
      {
        name: 'outsider',
        clientId: OUTSIDER_CLIENT_ID,
        objectId: 'e2f3a4b5-c6d7-4e8f-9a01-b2c3d4e5f6a7',
        clientSecrets: [{ id: 'dev', value: OUTSIDER_SECRET }],
        clientCertificates: [],
        federatedCredentials: [],
        appRoleAssignments: [],
      },
    ],
    managedIdentities: [],
  });
  return cfg;
}

/**
 * The pipeline app: Secrets Officer on `app-secret`, Secrets User on the whole vault (so a missing
 * secret is a 404, not a 403). The system-assigned identity: Officer on `gitlab-token`; the
 * user-assigned one: Secrets User on it.
 */
const KV_CONFIG = {
  name: 'tanuki-test',
  tenantId: T,
  secrets: [{ name: 'seeded', value: 'seed-value' }],
  roleAssignments: [
    { objectId: DEV_PIPELINE_OBJECT_ID, role: 'Key Vault Secrets Officer', secret: 'app-secret' },
    { objectId: DEV_PIPELINE_OBJECT_ID, role: 'Key Vault Secrets User' },
    { objectId: DEV_SYSTEM_MI_OBJECT_ID, role: 'Key Vault Secrets Officer', secret: 'gitlab-token' },
    { objectId: DEV_USER_MI_OBJECT_ID, role: 'Key Vault Secrets User', secret: 'gitlab-token' },
  ],
};

let dir: string;
let entra: EntraEmulatorHandle;
let kv: KeyVaultEmulatorHandle;
let agent: Agent;
let pipelineSecret: string;
let sdk: Record<string, StepResult[]>;

interface Reply {
  status: number;
  headers: Headers;
  json: any;
}

async function call(
  base: string,
  path: string,
  o: {
    method?: string;
    token?: string;
    json?: unknown;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body = o.body;
  if (o.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.json);
  }
  const res = await fetch(`${base}${path}`, { method: o.method ?? 'GET', headers, body, dispatcher: agent });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers as unknown as Headers,
    json: text ? JSON.parse(text) : undefined,
  };
}

const vault = (path: string, o: Parameters<typeof call>[2] = {}) => call(kv.url, path, o);

/** A client-credentials token of the Entra emulator (v2 endpoint, or v1 with `resource`). */
async function entraToken(o: {
  tenant?: string;
  clientId?: string;
  secret?: string;
  scope?: string;
  resource?: string;
}) {
  const tenant = o.tenant ?? T;
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: o.clientId ?? DEV_PIPELINE_CLIENT_ID,
    client_secret: o.secret ?? pipelineSecret,
    ...(o.resource ? { resource: o.resource } : { scope: o.scope ?? 'https://vault.azure.net/.default' }),
  });
  const res = await fetch(`${entra.url}/${tenant}/oauth2/${o.resource ? '' : 'v2.0/'}token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    dispatcher: agent,
  });
  const json = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(json));
  return json.access_token as string;
}

/** An Entra token minted by the emulator's operator endpoint (signed with the real key). */
async function minted(entraSpec: Record<string, unknown>): Promise<string> {
  const res = await call(entra.url, '/_emulator/tokens', { method: 'POST', json: { entra: entraSpec } });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.token as string;
}

function runSdk(scenarios: Scenario[], env: Record<string, string>): Promise<Record<string, StepResult[]>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', RUNNER],
      {
        env: {
          PATH: process.env.PATH,
          NODE_EXTRA_CA_CERTS: kv.caFile,
          SCENARIOS: JSON.stringify(scenarios),
          ...env,
        },
        timeout: 90_000,
      },
      (err, stdout, stderr) => {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`runner failed: ${err?.message}\n${stderr}`));
        }
      },
    );
  });
}

const ok = (r: StepResult | undefined) => {
  assert.ok(r && 'ok' in r, `expected success, got ${JSON.stringify(r)}`);
  return r.ok;
};
const failed = (r: StepResult | undefined) => {
  assert.ok(r && 'error' in r, `expected an error, got ${JSON.stringify(r)}`);
  return r.error;
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tanuki-kv-'));
  entra = await startEntraEmulator({ stateDir: join(dir, 'entra'), config: entraConfig() });
  kv = await startKeyVaultEmulator({
    stateDir: join(dir, 'kv'),
    caDir: join(dir, 'entra'),
    authority: entra.url,
    config: KV_CONFIG,
    hostNames: [VAULT_HOST],
  });
  agent = new Agent({ connect: { ca: readFileSync(kv.caFile, 'utf8') } });
  pipelineSecret = entra.config.tenants[0]!.apps[0]!.clientSecrets[0]!.value;

  const pipeline = {
    kind: 'secret' as const,
    tenantId: T,
    clientId: DEV_PIPELINE_CLIENT_ID,
    secret: pipelineSecret,
    authorityHost: entra.url,
  };
  const clientSecretScenarios: Scenario[] = [
    {
      name: 'client-secret',
      vaultUrl: kv.url,
      credential: pipeline,
      disableChallengeResourceVerification: true,
      steps: [
        { op: 'set', name: 'app-secret', value: 'value-1', contentType: 'text/plain' },
        { op: 'set', name: 'app-secret', value: 'value-2' },
        { op: 'get', name: 'app-secret' },
        { op: 'get', name: 'app-secret', version: '$0' },
        { op: 'versions', name: 'app-secret' },
        { op: 'get', name: 'does-not-exist' },
        { op: 'set', name: 'seeded', value: 'overwritten?' },
        { op: 'get', name: 'seeded' },
      ],
    },
    {
      name: 'localhost-without-option',
      vaultUrl: kv.url,
      credential: pipeline,
      steps: [{ op: 'get', name: 'seeded' }],
    },
    {
      name: 'vault-host-without-option',
      vaultUrl: `https://${VAULT_HOST}:${kv.port}`,
      credential: pipeline,
      steps: [{ op: 'get', name: 'seeded' }],
    },
    {
      name: 'other-audience',
      vaultUrl: kv.url,
      credential: { ...pipeline, kind: 'fixed-scope', scope: `${DEV_RESOURCE_URI}/.default` },
      disableChallengeResourceVerification: true,
      steps: [{ op: 'get', name: 'seeded' }],
    },
    {
      name: 'other-tenant',
      vaultUrl: kv.url,
      credential: {
        kind: 'fixed-scope',
        tenantId: OTHER_TENANT,
        clientId: OUTSIDER_CLIENT_ID,
        secret: OUTSIDER_SECRET,
        authorityHost: entra.url,
        scope: 'https://vault.azure.net/.default',
      },
      disableChallengeResourceVerification: true,
      steps: [{ op: 'get', name: 'seeded' }],
    },
  ];
  const managedScenarios: Scenario[] = [
    {
      name: 'managed-system',
      vaultUrl: kv.url,
      credential: { kind: 'managed' },
      disableChallengeResourceVerification: true,
      steps: [
        { op: 'set', name: 'gitlab-token', value: 'glpat-first' },
        { op: 'set', name: 'gitlab-token', value: 'glpat-second' },
        { op: 'get', name: 'gitlab-token' },
        { op: 'get', name: 'gitlab-token', version: '$0' },
        { op: 'versions', name: 'gitlab-token' },
        { op: 'get', name: 'seeded' },
      ],
    },
    {
      name: 'managed-user',
      vaultUrl: kv.url,
      credential: { kind: 'managed', clientId: DEV_USER_MI_CLIENT_ID },
      disableChallengeResourceVerification: true,
      steps: [
        { op: 'get', name: 'gitlab-token' },
        { op: 'set', name: 'gitlab-token', value: 'glpat-not-allowed' },
      ],
    },
  ];
  const [a, b] = await Promise.all([
    runSdk(clientSecretScenarios, { HOSTS_FILE: JSON.stringify([VAULT_HOST]) }),
    runSdk(managedScenarios, { AZURE_POD_IDENTITY_AUTHORITY_HOST: entra.imdsUrl }),
  ]);
  sdk = { ...a, ...b };
});

after(async () => {
  await kv?.close();
  await entra?.close();
  await agent?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('unmodified @azure/keyvault-secrets and @azure/identity', () => {
  test('ClientSecretCredential: set makes versions, get latest and by version, list versions', () => {
    const steps = sdk['client-secret']!;
    const first = ok(steps[0]);
    const second = ok(steps[1]);
    assert.match(first.version ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(first.version, second.version);
    assert.equal(first.id, `${kv.url}/secrets/app-secret/${first.version}`);
    assert.equal(first.contentType, 'text/plain');
    assert.deepEqual([ok(steps[2]).value, ok(steps[2]).version], ['value-2', second.version]);
    assert.deepEqual([ok(steps[3]).value, ok(steps[3]).version], ['value-1', first.version]);
    assert.deepEqual(ok(steps[4]).versions, [first.version, second.version]);
    assert.equal(kv.latestSecretValue('app-secret'), 'value-2');
  });

  test('ClientSecretCredential: a missing secret is SecretNotFound (404)', () => {
    const e = failed(sdk['client-secret']![5]);
    assert.deepEqual([e.code, e.statusCode], ['SecretNotFound', 404]);
    assert.equal(e.message, `A secret with (name/id) does-not-exist${NOT_FOUND_TAIL}`);
  });

  test('ClientSecretCredential: a write without the role is Forbidden (403) naming setSecret; the value is unchanged', () => {
    const e = failed(sdk['client-secret']![6]);
    assert.deepEqual([e.code, e.statusCode], ['Forbidden', 403]);
    assert.match(e.message, /Action: 'Microsoft\.KeyVault\/vaults\/secrets\/setSecret\/action'/);
    assert.equal(ok(sdk['client-secret']![7]).value, 'seed-value');
  });

  test('ManagedIdentityCredential (IMDS, system-assigned): the STS-like identity reads and writes its secret only', () => {
    const steps = sdk['managed-system']!;
    const first = ok(steps[0]);
    const second = ok(steps[1]);
    assert.equal(ok(steps[2]).value, 'glpat-second');
    assert.equal(ok(steps[3]).value, 'glpat-first');
    assert.deepEqual(ok(steps[4]).versions, [first.version, second.version]);
    const e = failed(steps[5]);
    assert.deepEqual([e.code, e.statusCode], ['Forbidden', 403]);
    assert.match(e.message, /Action: 'Microsoft\.KeyVault\/vaults\/secrets\/getSecret\/action'/);
    assert.match(e.message, new RegExp(`oid=${DEV_SYSTEM_MI_OBJECT_ID}`));
  });

  test('ManagedIdentityCredential (IMDS, user-assigned by client ID): Secrets User reads, cannot write', () => {
    const steps = sdk['managed-user']!;
    assert.equal(ok(steps[0]).value, 'glpat-second');
    const e = failed(steps[1]);
    assert.deepEqual([e.code, e.statusCode], ['Forbidden', 403]);
    assert.match(e.message, /setSecret\/action/);
    assert.equal(kv.latestSecretValue('gitlab-token'), 'glpat-second');
  });

  test('a vault on localhost needs disableChallengeResourceVerification: the SDK refuses the challenge otherwise', () => {
    const e = failed(sdk['localhost-without-option']![0]);
    assert.equal(
      e.message,
      "The challenge resource 'vault.azure.net' does not match the requested domain. Set disableChallengeResourceVerification to true in your client options to disable. See https://aka.ms/azsdk/blog/vault-uri for more information.",
    );
  });

  test('a vault host ending in .vault.azure.net (a hosts-file entry for 127.0.0.1) works without the option', () => {
    assert.equal(ok(sdk['vault-host-without-option']![0]).value, 'seed-value');
  });

  test('a token for another audience is refused: 401 Unauthorized AKV10022', () => {
    const e = failed(sdk['other-audience']![0]);
    assert.deepEqual([e.code, e.statusCode], ['Unauthorized', 401]);
    assert.equal(
      e.message,
      `AKV10022: Invalid audience. Expected https://vault.azure.net or ${KV_APP_ID}, found: ${DEV_RESOURCE_URI}.`,
    );
  });

  test('a token of another tenant (verified by the shared keys) is refused: 401 Unauthorized AKV10032', () => {
    const e = failed(sdk['other-tenant']![0]);
    assert.deepEqual([e.code, e.statusCode], ['Unauthorized', 401]);
    assert.equal(
      e.message,
      `AKV10032: Invalid issuer. Expected one of ${entra.url}/${T}/, ${entra.url}/${T}/v2.0, found ${entra.url}/${OTHER_TENANT}/.`,
    );
  });
});

describe('the challenge and the token checks (raw HTTPS)', () => {
  const challenge = () => `Bearer authorization="${entra.url}/${T}", resource="https://vault.azure.net"`;

  test('no token: 401, the challenge naming the authority and tenant, AKV10000', async () => {
    const variants: Array<Record<string, string>> = [
      {},
      { authorization: 'Basic dTpw' },
      { authorization: 'Bearer' },
    ];
    for (const headers of variants) {
      const r = await vault('/secrets/seeded?api-version=7.5', { headers });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), challenge());
      assert.deepEqual(r.json, {
        error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
      });
    }
  });

  test('a token works for v1 and v2 endpoints, the resource or the Key Vault application ID as scope', async () => {
    for (const token of [
      await entraToken({}),
      await entraToken({ resource: 'https://vault.azure.net' }),
      await entraToken({ scope: `${KV_APP_ID}/.default` }),
    ]) {
      const r = await vault('/secrets/seeded?api-version=7.5', { token });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.value, 'seed-value');
    }
  });

  test('audience with a trailing slash (https://vault.azure.net/) is refused, as Key Vault does', async () => {
    const token = await entraToken({ resource: 'https://vault.azure.net/' });
    const r = await vault('/secrets/seeded?api-version=7.5', { token });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), challenge());
    assert.equal(
      r.json.error.message,
      `AKV10022: Invalid audience. Expected https://vault.azure.net or ${KV_APP_ID}, found: https://vault.azure.net/.`,
    );
  });

  test('expired, not yet valid, forged, unknown key, alg none, HS256, not a JWT: 401, nothing read', async () => {
    const good = await entraToken({});
    const [h, p, s] = good.split('.') as [string, string, string];
    const flip = (x: string) =>
      x[5] === 'A' ? `${x.slice(0, 5)}B${x.slice(6)}` : `${x.slice(0, 5)}A${x.slice(6)}`;
    const unsigned = (header: object) =>
      `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.${Buffer.from('x').toString('base64url')}`;
    const expired = await minted({ resource: 'https://vault.azure.net', lifetimeSeconds: -400 });
    const future = await minted({
      resource: 'https://vault.azure.net',
      extraClaims: { nbf: Math.floor(Date.now() / 1000) + 3600 },
    });
    const unknownKid = await minted({ resource: 'https://vault.azure.net', header: { kid: 'not-a-key' } });
    const cases: Array<[string, string, string]> = [
      ['expired', expired, 'Token expired (emulator).'],
      ['not yet valid', future, 'Token not yet valid'],
      [
        'forged signature',
        `${h}.${p}.${flip(s)}`,
        'Invalid bearer token: the signature does not verify (emulator).',
      ],
      ['forged claims', `${h}.${flip(p)}.${s}`, ''],
      [
        'unknown kid',
        unknownKid,
        `AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '${unknownKid.split('.')[0]}'.`,
      ],
      ['alg none', unsigned({ alg: 'none', typ: 'JWT' }), ''],
      [
        'HS256',
        unsigned({ alg: 'HS256', typ: 'JWT', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid }),
        '',
      ],
      ['not a JWT', 'abc.def', 'Invalid bearer token: not a signed JWT (emulator).'],
    ];
    for (const [what, token, message] of cases) {
      const r = await vault('/secrets/seeded?api-version=7.5', { token });
      assert.equal(r.status, 401, what);
      assert.equal(r.headers.get('www-authenticate'), challenge(), what);
      assert.equal(r.json.error.code, 'Unauthorized', what);
      assert.ok(r.json.value === undefined, what);
      if (message) assert.equal(r.json.error.message, message, what);
    }
  });

  test('a token for another tenant: AKV10032, even though its signature verifies', async () => {
    const token = await entraToken({
      tenant: OTHER_TENANT,
      clientId: OUTSIDER_CLIENT_ID,
      secret: OUTSIDER_SECRET,
    });
    const r = await vault('/secrets/seeded?api-version=7.5', { token });
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /^AKV10032: Invalid issuer\. Expected one of /);
    // A token naming this tenant in iss but another in tid is refused too.
    const mixed = await minted({ resource: 'https://vault.azure.net', extraClaims: { tid: OTHER_TENANT } });
    assert.equal((await vault('/secrets/seeded?api-version=7.5', { token: mixed })).status, 401);
  });

  test('requests arriving together while the keys are first fetched all verify', async () => {
    const fresh = await startKeyVaultEmulator({
      stateDir: join(dir, 'kv-fresh'),
      caDir: join(dir, 'entra'),
      authority: entra.url,
      config: KV_CONFIG,
    });
    try {
      const token = await entraToken({});
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => call(fresh.url, '/secrets/seeded?api-version=7.5', { token })),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 200),
      );
    } finally {
      await fresh.close();
    }
  });

  test('tokens signed with a rotated Entra key verify (the keys are fetched again for an unknown kid)', async () => {
    assert.equal(
      (await vault('/secrets/seeded?api-version=7.5', { token: await entraToken({}) })).status,
      200,
    );
    await entra.rotateSigningKey();
    await new Promise((r) => setTimeout(r, 1100)); // the emulator fetches the keys at most once a second
    const r = await vault('/secrets/seeded?api-version=7.5', { token: await entraToken({}) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });
});

describe('requests and answers (raw HTTPS)', () => {
  let token: string;
  before(async () => {
    token = await entraToken({});
  });

  test('api-version: missing or unknown is 400 BadParameter; every version the SDKs send is accepted', async () => {
    const missing = await vault('/secrets/seeded', { token });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'BadParameter');
    const unknown = await vault('/secrets/seeded?api-version=7.9', { token });
    assert.deepEqual(unknown.json, {
      error: {
        code: 'BadParameter',
        message:
          'The specified version (7.9) is not recognized. Consider using the latest supported version (2025-07-01).',
      },
    });
    for (const v of ['7.4', '7.5', '7.6', '2025-07-01']) {
      assert.equal((await vault(`/secrets/seeded?api-version=${v}`, { token })).status, 200, v);
    }
  });

  test('the secret bundle: value, id, attributes in Unix seconds; Key Vault headers', async () => {
    const r = await vault('/secrets/seeded/?api-version=7.5', {
      token,
      headers: { 'x-ms-client-request-id': 'c0ffee00-aaaa-4bbb-8ccc-0123456789ab' },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ['value', 'id', 'attributes']);
    assert.match(r.json.id, new RegExp(`^${kv.url}/secrets/seeded/[0-9a-f]{32}$`));
    assert.deepEqual(Object.keys(r.json.attributes), [
      'enabled',
      'created',
      'updated',
      'recoveryLevel',
      'recoverableDays',
    ]);
    assert.ok(Math.abs(r.json.attributes.created - Date.now() / 1000) < 600);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-ms-client-request-id'), 'c0ffee00-aaaa-4bbb-8ccc-0123456789ab');
    assert.match(r.headers.get('x-ms-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('an unknown version of a known secret: SecretNotFound naming name/version', async () => {
    const r = await vault('/secrets/seeded/0123456789abcdef0123456789abcdef?api-version=7.5', { token });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, {
      error: {
        code: 'SecretNotFound',
        message: `A secret with (name/id) seeded/0123456789abcdef0123456789abcdef${NOT_FOUND_TAIL}`,
      },
    });
  });

  test('Forbidden: the body Key Vault sends, with the action, caller, resource and ForbiddenByRbac', async () => {
    const r = await vault('/secrets/seeded?api-version=7.5', { method: 'PUT', token, json: { value: 'x' } });
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, {
      error: {
        code: 'Forbidden',
        message:
          'Caller is not authorized to perform action on resource.\r\n' +
          'If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n' +
          `Caller: appid=${DEV_PIPELINE_CLIENT_ID};oid=${DEV_PIPELINE_OBJECT_ID};iss=${entra.url}/${T}/\r\n` +
          "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\n" +
          "Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/tanuki-dev/providers/microsoft.keyvault/vaults/tanuki-test/secrets/seeded'\r\n" +
          'Assignment: (not found)\r\n' +
          'DenyAssignmentId: null\r\n' +
          'DecisionReason: null \r\n' +
          'Vault: tanuki-test;location=emulator\r\n',
        innererror: { code: 'ForbiddenByRbac' },
      },
    });
    // An identity with no assignment at all gets 403 for a secret that does not exist: no existence oracle.
    const outsider = await minted({
      resource: 'https://vault.azure.net',
      clientId: 'aaaaaaaa-1111-4222-8333-444444444444',
    });
    const none = await vault('/secrets/no-such-secret?api-version=7.5', { token: outsider });
    assert.equal(none.status, 403);
  });

  test('names: 1-127 of 0-9 a-z A-Z -, case-insensitive', async () => {
    const bad = await vault('/secrets/bad_name?api-version=7.5', { token });
    assert.deepEqual(bad.json, {
      error: { code: 'BadParameter', message: 'The request URI contains an invalid name: bad_name' },
    });
    const long = await vault(`/secrets/${'a'.repeat(128)}?api-version=7.5`, { token });
    assert.equal(long.status, 400);
    const upper = await vault('/secrets/SEEDED?api-version=7.5', { token });
    assert.equal(upper.status, 200);
    assert.match(upper.json.id, /\/secrets\/seeded\//);
  });

  test('set: body checks; attributes and tags kept; a disabled version is not read', async () => {
    const bad = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 5 },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'BadParameter');
    const notJson = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      body: '{',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(notJson.status, 400);
    const disabled = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 'off', attributes: { enabled: false }, tags: { purpose: 'test' } },
    });
    assert.equal(disabled.status, 200);
    assert.equal(disabled.json.attributes.enabled, false);
    assert.deepEqual(disabled.json.tags, { purpose: 'test' });
    const get = await vault('/secrets/app-secret?api-version=7.5', { token });
    assert.deepEqual(get.json, {
      error: {
        code: 'Forbidden',
        message: 'Operation get is not allowed on a disabled secret.',
        innererror: { code: 'SecretDisabled' },
      },
    });
    const enabled = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 'on' },
    });
    assert.equal(enabled.status, 200);
  });

  test('list versions: pages of maxresults with a nextLink that carries api-version; no values', async () => {
    const pages: string[][] = [];
    let next: string | null = `/secrets/app-secret/versions?api-version=7.5&maxresults=2`;
    while (next) {
      const r: Reply = await vault(next.startsWith('https://') ? next.slice(kv.url.length) : next, { token });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      for (const item of r.json.value) assert.equal(item.value, undefined);
      pages.push(r.json.value.map((i: { id: string }) => i.id.split('/').at(-1)));
      next = r.json.nextLink;
      if (next) assert.match(next, new RegExp(`^${kv.url}/secrets/app-secret/versions\\?api-version=7\\.5&`));
    }
    const all = pages.flat();
    assert.ok(all.length >= 4, all.join());
    assert.ok(pages.every((p) => p.length <= 2));
    assert.equal(new Set(all).size, all.length);
    const bad = await vault('/secrets/app-secret/versions?api-version=7.5&maxresults=26', { token });
    assert.equal(bad.status, 400);
  });

  test('list secrets needs readMetadata on the vault; items have no values', async () => {
    const r = await vault('/secrets?api-version=7.5', { token });
    assert.equal(r.status, 200);
    const ids = r.json.value.map((i: { id: string }) => i.id);
    assert.ok(ids.includes(`${kv.url}/secrets/seeded`), ids.join());
    assert.ok(r.json.value.every((i: { value?: string }) => i.value === undefined));
    const mi = await minted({ resource: 'https://vault.azure.net', clientId: DEV_USER_MI_CLIENT_ID });
    assert.equal((await vault('/secrets?api-version=7.5', { token: mi })).status, 403);
  });

  test('unknown paths are 404, operations the emulator lacks 501, a body over 256 KB 413', async () => {
    assert.equal((await vault('/nothing?api-version=7.5', { token })).status, 404);
    const del = await vault('/secrets/seeded?api-version=7.5', { method: 'DELETE', token });
    assert.equal(del.status, 501);
    assert.equal(del.json.error.code, 'NotImplemented');
    const big = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 'x'.repeat(300 * 1024) },
    });
    assert.equal(big.status, 413);
  });
});

describe('operator endpoints and persistence', () => {
  test('/_emulator/secrets shows versions and SHA-256s, never a value', async () => {
    const r = await vault('/_emulator/secrets');
    assert.equal(r.status, 200);
    const text = JSON.stringify(r.json);
    for (const v of ['seed-value', 'glpat-second', 'value-2']) assert.ok(!text.includes(v), v);
    const seeded = r.json.find((s: { name: string }) => s.name === 'seeded');
    assert.match(seeded.versions[0].sha256, /^[0-9a-f]{64}$/);
    const put = await vault('/_emulator/secrets/operator-set', { method: 'PUT', json: { value: 'v' } });
    assert.equal(put.status, 200);
    assert.deepEqual(Object.keys(put.json), ['name', 'version', 'sha256']);
    assert.equal(kv.latestSecretValue('operator-set'), 'v');
  });

  test('faults: the next set fails with the given status, then sets work again', async () => {
    const token = await entraToken({});
    const f = await vault('/_emulator/faults', {
      method: 'POST',
      json: { status: 503, operations: ['setSecret'], count: 1 },
    });
    assert.equal(f.status, 200);
    const before = kv.latestSecretValue('app-secret');
    const get = await vault('/secrets/app-secret?api-version=7.5', { token });
    assert.equal(get.status, 200, 'another operation is not faulted');
    const failedSet = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 'lost' },
    });
    assert.equal(failedSet.status, 503);
    assert.equal(failedSet.json.error.code, 'ServiceUnavailable');
    assert.equal(kv.latestSecretValue('app-secret'), before);
    const set = await vault('/secrets/app-secret?api-version=7.5', {
      method: 'PUT',
      token,
      json: { value: 'kept' },
    });
    assert.equal(set.status, 200);
    assert.equal((await vault('/_emulator/faults', { method: 'POST', json: { status: 200 } })).status, 400);
  });

  test('persist: every version survives a restart; the state file is 0600', async () => {
    const stateDir = join(dir, 'kv-persist');
    const opts = {
      stateDir,
      caDir: join(dir, 'entra'),
      authority: entra.url,
      config: KV_CONFIG,
      persist: true,
    };
    const first = await startKeyVaultEmulator(opts);
    const a = first.setSecret('gitlab-token', 'glpat-before-restart');
    const b = first.setSecret('gitlab-token', 'glpat-after-rotation');
    await first.close();
    assert.equal(statSync(join(stateDir, 'keyvault-state.json')).mode & 0o777, 0o600);
    const second = await startKeyVaultEmulator(opts);
    try {
      assert.equal(second.latestSecretValue('gitlab-token'), 'glpat-after-rotation');
      const mi = await minted({ resource: 'https://vault.azure.net', clientId: DEV_USER_MI_CLIENT_ID });
      const old = await call(second.url, `/secrets/gitlab-token/${a.version}?api-version=7.5`, { token: mi });
      assert.equal(old.json.value, 'glpat-before-restart');
      const versions = await call(second.url, '/secrets/gitlab-token/versions?api-version=7.5', {
        token: mi,
      });
      assert.deepEqual(
        versions.json.value.map((i: { id: string }) => i.id.split('/').at(-1)),
        [a.version, b.version],
      );
    } finally {
      await second.close();
    }
  });
});
