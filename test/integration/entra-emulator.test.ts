/**
 * The Entra ID emulator against unmodified @azure/identity (in child
 * processes that trust the emulator's CA through NODE_EXTRA_CA_CERTS), and
 * its wire formats over raw HTTP: discovery, JWKS, v1/v2 token responses,
 * AADSTS errors, managed identity, key rotation and the test issuer.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import { Agent, fetch } from 'undici';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_PIPELINE_OBJECT_ID,
  DEV_RESOURCE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_SYSTEM_MI_CLIENT_ID,
  DEV_SYSTEM_MI_OBJECT_ID,
  DEV_TENANT_ID,
  DEV_USER_MI_CLIENT_ID,
  defaultEntraConfig,
} from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import type { Scenario } from './entra-emulator.azure-runner.ts';

const RUNNER = fileURLToPath(new URL('./entra-emulator.azure-runner.ts', import.meta.url));
/** The readable secure form `api://<tenant ID>/<string>` (the v1 resource uses the default `api://<client ID>`). */
const V2_URI = `api://${DEV_TENANT_ID}/tanuki-sts-v2`;
const V2_CLIENT_ID = 'b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e';
const GITLAB_SUB = 'project_path:platform/internal-lib:ref_type:branch:ref:main';
const T = DEV_TENANT_ID;

/** The dev seed plus a v2 resource API that asks for `idtyp`, assigned to the same principals. */
function testConfig() {
  const cfg = defaultEntraConfig();
  const tenant = cfg.tenants[0]!;
  tenant.resources.push({
    name: 'tanuki-sts-v2',
    clientId: V2_CLIENT_ID,
    objectId: randomUUID(),
    identifierUris: [V2_URI],
    appRoles: [{ value: 'GitLab.Read', id: randomUUID() }],
    accessTokenAcceptedVersion: 2,
    idtypOptionalClaim: true,
  });
  for (const p of [...tenant.apps, ...tenant.managedIdentities]) {
    p.appRoleAssignments.push({ resource: V2_URI, role: 'GitLab.Read' });
  }
  return cfg;
}

let dir: string;
let emu: EntraEmulatorHandle;
let agent: Agent;
let jwks: ReturnType<typeof createLocalJWKSet>;
let secret: string;
let azure: Record<string, { token?: string; error?: string }>;

async function http(
  path: string,
  init: {
    method?: string;
    form?: Record<string, string>;
    json?: unknown;
    headers?: Record<string, string>;
  } = {},
) {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(init.form).toString();
  } else if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  const res = await fetch(`${emu.url}${path}`, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    dispatcher: agent,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: JSON.parse(text) as Record<string, any> };
}

async function mint(body: unknown): Promise<string> {
  const res = await http('/_emulator/tokens', { json: body });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.token as string;
}

function runAzure(scenarios: Scenario[], env: Record<string, string>): Promise<typeof azure> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', RUNNER],
      {
        env: {
          PATH: process.env.PATH,
          NODE_EXTRA_CA_CERTS: emu.caFile,
          SCENARIOS: JSON.stringify(scenarios),
          ...env,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`runner failed: ${err?.message}\n${stderr.slice(0, 2000)}`));
        }
      },
    );
  });
}

async function verify(
  token: string,
  issuerVersion: 1 | 2,
): Promise<{ payload: JWTPayload; header: Record<string, unknown> }> {
  const issuer = issuerVersion === 2 ? `${emu.url}/${T}/v2.0` : `${emu.url}/${T}/`;
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, algorithms: ['RS256'] });
  return { payload, header: protectedHeader as Record<string, unknown> };
}

function assertV1AppToken(
  p: JWTPayload,
  h: Record<string, unknown>,
  o: { appid: string; oid: string; acr: string; aud: string },
) {
  assert.equal(p.aud, o.aud);
  assert.equal(p.appid, o.appid);
  assert.equal(p.appidacr, o.acr);
  assert.equal(p.ver, '1.0');
  assert.equal(p.tid, T);
  assert.equal(p.oid, o.oid);
  assert.equal(p.sub, o.oid);
  assert.deepEqual(p.roles, ['GitLab.Read']);
  assert.equal(p.azp, undefined);
  assert.equal(p.idtyp, undefined, 'no idtyp unless the resource asks for it');
  assert.equal(p.scp, undefined, 'app-only tokens carry no scp');
  for (const c of ['uti', 'rh', 'aio']) assert.equal(typeof p[c], 'string', c);
  assert.equal(p.nbf, p.iat);
  assert.ok(Math.abs(p.iat! - (Date.now() / 1000 - 300)) < 30, 'iat backdated 5 minutes');
  assert.equal(h.typ, 'JWT');
  assert.equal(h.x5t, h.kid, 'v1 header has x5t = kid');
}

function assertV2AppToken(
  p: JWTPayload,
  h: Record<string, unknown>,
  o: { azp: string; oid: string; acr: string },
) {
  assert.equal(p.aud, V2_CLIENT_ID, 'v2 aud is the resource client ID');
  assert.equal(p.azp, o.azp);
  assert.equal(p.azpacr, o.acr);
  assert.equal(p.ver, '2.0');
  assert.equal(p.tid, T);
  assert.equal(p.oid, o.oid);
  assert.equal(p.sub, o.oid);
  assert.equal(p.idtyp, 'app');
  assert.deepEqual(p.roles, ['GitLab.Read']);
  assert.equal(p.appid, undefined);
  assert.equal(h.x5t, undefined, 'no x5t header on v2');
  assert.equal(typeof h.kid, 'string');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'entra-emu-'));
  emu = await startEntraEmulator({ stateDir: join(dir, 'state'), config: testConfig() });
  agent = new Agent({ connect: { ca: readFileSync(emu.caFile, 'utf8') } });
  const keys = await http(`/${T}/discovery/v2.0/keys`);
  jwks = createLocalJWKSet(keys.json as JSONWebKeySet);
  const app = emu.config.tenants[0]!.apps[0]!;
  secret = app.clientSecrets[0]!.value;
  const cert = app.clientCertificates[0]!;

  const gitlabLike = {
    sub: GITLAB_SUB,
    project_path: 'platform/internal-lib',
    ref: 'main',
    ref_type: 'branch',
  };
  const federated = await mint({ claims: gitlabLike });
  const wrongSubject = await mint({
    claims: { ...gitlabLike, sub: 'project_path:platform/other:ref_type:branch:ref:main' },
  });
  const tokenFile = join(dir, 'federated-token');
  writeFileSync(tokenFile, await mint({ claims: gitlabLike, alg: 'ES256' }));

  const base = { tenantId: T, clientId: DEV_PIPELINE_CLIENT_ID, authorityHost: emu.url };
  const v1 = `${DEV_RESOURCE_URI}/.default`;
  const clientFlows: Scenario[] = [
    { name: 'secret-v1', kind: 'secret', ...base, secret, scope: v1 },
    { name: 'secret-v2', kind: 'secret', ...base, secret, scope: `${V2_URI}/.default` },
    { name: 'secret-wrong', kind: 'secret', ...base, secret: 'not-the-secret', scope: v1 },
    { name: 'certificate', kind: 'certificate', ...base, certificatePath: cert.pemFile!, scope: v1 },
    { name: 'assertion', kind: 'assertion', ...base, assertion: federated, scope: v1 },
    { name: 'assertion-wrong-subject', kind: 'assertion', ...base, assertion: wrongSubject, scope: v1 },
    { name: 'workload', kind: 'workload', ...base, tokenFilePath: tokenFile, scope: `${V2_URI}/.default` },
    { name: 'imds-system', kind: 'managed', scope: v1 },
    { name: 'imds-user', kind: 'managed', clientId: DEV_USER_MI_CLIENT_ID, scope: `${V2_URI}/.default` },
  ];
  const [a, b] = await Promise.all([
    runAzure(clientFlows, { AZURE_POD_IDENTITY_AUTHORITY_HOST: emu.imdsUrl }),
    runAzure([{ name: 'app-service', kind: 'managed', scope: v1 }], {
      IDENTITY_ENDPOINT: `${emu.imdsUrl}/msi/token`,
      IDENTITY_HEADER: emu.config.appServiceIdentityHeader,
    }),
  ]);
  azure = { ...a, ...b };
});

after(async () => {
  await agent?.close();
  await emu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('@azure/identity, unmodified, against the emulator', () => {
  const token = (name: string) => {
    const r = azure[name];
    assert.ok(r?.token, `${name}: ${r?.error}`);
    return r.token;
  };

  test('ClientSecretCredential gets a v1 token with the v1 claim set', async () => {
    const { payload, header } = await verify(token('secret-v1'), 1);
    assertV1AppToken(payload, header, {
      appid: DEV_PIPELINE_CLIENT_ID,
      oid: DEV_PIPELINE_OBJECT_ID,
      acr: '1',
      aud: DEV_RESOURCE_URI,
    });
    assert.ok(
      Math.abs(payload.exp! - payload.iat! - 3899) < 5,
      'about one hour (plus the 5 minute backdate)',
    );
  });

  test('ClientSecretCredential gets a v2 token when the resource accepts v2', async () => {
    const { payload, header } = await verify(token('secret-v2'), 2);
    assertV2AppToken(payload, header, { azp: DEV_PIPELINE_CLIENT_ID, oid: DEV_PIPELINE_OBJECT_ID, acr: '1' });
  });

  test("a wrong secret fails with AADSTS7000215 in @azure/identity's own error", () => {
    assert.equal(azure['secret-wrong']?.token, undefined);
    assert.match(azure['secret-wrong']?.error ?? '', /AADSTS7000215/);
  });

  test('ClientCertificateCredential (PS256, x5t#S256) gets a token with appidacr 2', async () => {
    const { payload } = await verify(token('certificate'), 1);
    assert.equal(payload.appid, DEV_PIPELINE_CLIENT_ID);
    assert.equal(payload.appidacr, '2');
    const stats = await http('/_emulator/stats');
    assert.equal(stats.json.client_auth_certificate_PS256, 1, JSON.stringify(stats.json));
  });

  test('ClientAssertionCredential exchanges a GitLab-CI-shaped id_token from the test issuer', async () => {
    const { payload } = await verify(token('assertion'), 1);
    assert.equal(payload.appid, DEV_PIPELINE_CLIENT_ID);
    assert.equal(payload.appidacr, '2');
  });

  test('a federated assertion with the wrong subject fails with AADSTS70021', () => {
    assert.equal(azure['assertion-wrong-subject']?.token, undefined);
    assert.match(azure['assertion-wrong-subject']?.error ?? '', /AADSTS70021/);
  });

  test('WorkloadIdentityCredential reads an ES256 federated token from its file', async () => {
    const { payload, header } = await verify(token('workload'), 2);
    assertV2AppToken(payload, header, { azp: DEV_PIPELINE_CLIENT_ID, oid: DEV_PIPELINE_OBJECT_ID, acr: '2' });
    const stats = await http('/_emulator/stats');
    assert.equal(
      stats.json.client_auth_federated_ES256,
      1,
      'the ES256 assertion went through the federated path',
    );
    assert.ok(stats.json.test_issuer_jwks >= 2, 'the issuer keys were fetched through discovery');
  });

  test('ManagedIdentityCredential via IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST), system-assigned, ~24 h', async () => {
    const { payload, header } = await verify(token('imds-system'), 1);
    assertV1AppToken(payload, header, {
      appid: DEV_SYSTEM_MI_CLIENT_ID,
      oid: DEV_SYSTEM_MI_OBJECT_ID,
      acr: '2',
      aud: DEV_RESOURCE_URI,
    });
    assert.ok(payload.exp! - Date.now() / 1000 > 86_000, 'managed identity tokens live about a day');
  });

  test('ManagedIdentityCredential via IMDS, user-assigned by client ID', async () => {
    const { payload } = await verify(token('imds-user'), 2);
    assert.equal(payload.azp, DEV_USER_MI_CLIENT_ID);
    assert.equal(typeof payload.xms_mirid, 'string');
  });

  test('ManagedIdentityCredential via App Service (IDENTITY_ENDPOINT + IDENTITY_HEADER)', async () => {
    const { payload } = await verify(token('app-service'), 1);
    assert.equal(payload.appid, DEV_SYSTEM_MI_CLIENT_ID);
  });
});

describe('wire formats', () => {
  const tokenUrl = `/${T}/oauth2/v2.0/token`;
  const cc = (extra: Record<string, string>) => ({
    grant_type: 'client_credentials',
    client_id: DEV_PIPELINE_CLIENT_ID,
    ...extra,
  });

  test('listens on https://localhost with the same port on 127.0.0.1 and ::1', async () => {
    assert.match(emu.url, /^https:\/\/localhost:\d+$/);
    assert.equal(emu.url, `https://localhost:${emu.port}`);
    for (const host of ['127.0.0.1', '[::1]']) {
      const res = await fetch(`https://${host}:${emu.port}/${T}/v2.0/.well-known/openid-configuration`, {
        dispatcher: new Agent({ connect: { ca: readFileSync(emu.caFile, 'utf8') } }),
      }).catch((err: Error) => err);
      if (
        res instanceof Error &&
        host === '[::1]' &&
        /EADDRNOTAVAIL|ECONNREFUSED|ENETUNREACH/.test(String(res.cause))
      )
        continue;
      assert.ok(!(res instanceof Error), `${host}: ${res instanceof Error ? res.cause : ''}`);
      assert.equal(res.status, 200);
      await res.text();
    }
  });

  test('discovery documents name the endpoints MSAL needs, v2 and v1', async () => {
    const v2 = await http(`/${T}/v2.0/.well-known/openid-configuration`);
    assert.equal(v2.status, 200);
    assert.equal(v2.json.issuer, `${emu.url}/${T}/v2.0`);
    assert.equal(v2.json.token_endpoint, `${emu.url}/${T}/oauth2/v2.0/token`);
    assert.equal(v2.json.jwks_uri, `${emu.url}/${T}/discovery/v2.0/keys`);
    assert.equal(v2.json.authorization_endpoint, `${emu.url}/${T}/oauth2/v2.0/authorize`);
    const v1 = await http(`/${T}/.well-known/openid-configuration`);
    assert.equal(v1.json.issuer, `${emu.url}/${T}/`);
    assert.equal(v1.json.token_endpoint, `${emu.url}/${T}/oauth2/token`);
    assert.equal(v1.json.jwks_uri, `${emu.url}/${T}/discovery/keys`);
  });

  test('JWKS entries: kty, use, kid, x5t, n, e, x5c, and issuer on v2 only', async () => {
    const v2 = await http(`/${T}/discovery/v2.0/keys`);
    const k = v2.json.keys[0];
    assert.deepEqual(Object.keys(k).sort(), ['e', 'issuer', 'kid', 'kty', 'n', 'use', 'x5c', 'x5t']);
    assert.equal(k.use, 'sig');
    assert.equal(k.issuer, `${emu.url}/${T}/v2.0`);
    const v1 = await http(`/${T}/discovery/keys`);
    assert.equal(v1.json.keys[0].issuer, undefined);
    assert.equal(v1.json.keys[0].kid, k.kid);
  });

  test('the v1 endpoint answers with string values, expires_on, not_before and resource', async () => {
    const res = await http(`/${T}/oauth2/token`, {
      form: cc({ client_secret: secret, resource: DEV_RESOURCE_URI }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.headers.get('cache-control'), 'no-store, no-cache');
    const { access_token, ...rest } = res.json;
    for (const [k, v] of Object.entries(rest)) assert.equal(typeof v, 'string', k);
    assert.equal(rest.token_type, 'Bearer');
    assert.equal(rest.expires_in, '3599');
    assert.equal(rest.resource, DEV_RESOURCE_URI);
    const { payload } = await verify(access_token, 1);
    assert.equal(rest.expires_on, String(payload.exp));
    assert.equal(rest.not_before, String(payload.nbf));
  });

  test('v2 success body, HTTP Basic client auth, MSAL extras tolerated, resource by client ID', async () => {
    const basic = Buffer.from(`${DEV_PIPELINE_CLIENT_ID}:${encodeURIComponent(secret)}`).toString('base64');
    const res = await http(`${tokenUrl}?client-request-id=${randomUUID()}`, {
      form: {
        grant_type: 'client_credentials',
        scope: `${DEV_RESOURCE_CLIENT_ID}/.default`,
        'client-request-id': randomUUID(),
        'x-client-SKU': 'msal.js.node',
        'x-client-VER': '5.6.0',
        claims: '{"access_token":{"xms_cc":{"values":["CP1"]}}}',
      },
      headers: { authorization: `Basic ${basic}` },
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(Object.keys(res.json), ['token_type', 'expires_in', 'ext_expires_in', 'access_token']);
    assert.equal(res.json.expires_in, 3599);
    const { payload } = await verify(res.json.access_token, 1);
    assert.equal(payload.aud, DEV_RESOURCE_CLIENT_ID, 'v1 aud is the resource as requested');
  });

  test('a certificate assertion signed RS256 with an x5t header is accepted', async () => {
    const cert = emu.config.tenants[0]!.apps[0]!.clientCertificates[0]!;
    const key = readFileSync(cert.privateKeyFile!, 'utf8');
    const assertion = await certAssertion(key, { alg: 'RS256', x5t: cert.x5t });
    const res = await http(tokenUrl, {
      form: cc({
        client_assertion_type: JWT_BEARER,
        client_assertion: assertion,
        scope: `${DEV_RESOURCE_URI}/.default`,
      }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });

  const errorCases: Array<{
    code: number;
    status: number;
    error: string;
    request: () => Promise<{ path: string; form: Record<string, string> }>;
  }> = [
    {
      code: 7000215,
      status: 401,
      error: 'invalid_client',
      request: async () => ({
        path: tokenUrl,
        form: cc({ client_secret: 'wrong', scope: `${DEV_RESOURCE_URI}/.default` }),
      }),
    },
    {
      code: 7000216,
      status: 401,
      error: 'invalid_client',
      request: async () => ({ path: tokenUrl, form: cc({ scope: `${DEV_RESOURCE_URI}/.default` }) }),
    },
    {
      code: 700016,
      status: 400,
      error: 'unauthorized_client',
      request: async () => ({
        path: tokenUrl,
        form: cc({ client_id: randomUUID(), client_secret: 'x', scope: `${DEV_RESOURCE_URI}/.default` }),
      }),
    },
    {
      code: 500011,
      status: 400,
      error: 'invalid_resource',
      request: async () => ({
        path: tokenUrl,
        form: cc({ client_secret: secret, scope: 'api://nobody/.default' }),
      }),
    },
    {
      code: 70011,
      status: 400,
      error: 'invalid_scope',
      request: async () => ({
        path: tokenUrl,
        form: cc({ client_secret: secret, scope: `${DEV_RESOURCE_URI}/GitLab.Read` }),
      }),
    },
    {
      code: 90002,
      status: 400,
      error: 'invalid_request',
      request: async () => ({
        path: `/${randomUUID()}/oauth2/v2.0/token`,
        form: cc({ client_secret: secret, scope: `${DEV_RESOURCE_URI}/.default` }),
      }),
    },
    {
      code: 70003,
      status: 400,
      error: 'unsupported_grant_type',
      request: async () => ({
        path: tokenUrl,
        form: cc({ grant_type: 'password', client_secret: secret, scope: `${DEV_RESOURCE_URI}/.default` }),
      }),
    },
    {
      code: 700024,
      status: 400,
      error: 'invalid_client',
      request: async () => {
        const cert = emu.config.tenants[0]!.apps[0]!.clientCertificates[0]!;
        const now = Math.floor(Date.now() / 1000);
        const a = await certAssertion(
          readFileSync(cert.privateKeyFile!, 'utf8'),
          { alg: 'PS256', 'x5t#S256': cert.x5tS256 },
          { nbf: now - 3600, exp: now - 1800 },
        );
        return {
          path: tokenUrl,
          form: cc({
            client_assertion_type: JWT_BEARER,
            client_assertion: a,
            scope: `${DEV_RESOURCE_URI}/.default`,
          }),
        };
      },
    },
    {
      code: 700027,
      status: 400,
      error: 'invalid_client',
      request: async () => {
        const cert = emu.config.tenants[0]!.apps[0]!.clientCertificates[0]!;
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString();
        const a = await certAssertion(other, { alg: 'PS256', 'x5t#S256': cert.x5tS256 });
        return {
          path: tokenUrl,
          form: cc({
            client_assertion_type: JWT_BEARER,
            client_assertion: a,
            scope: `${DEV_RESOURCE_URI}/.default`,
          }),
        };
      },
    },
    {
      code: 70021,
      status: 400,
      error: 'invalid_request',
      request: async () => {
        const a = await mint({ claims: { sub: GITLAB_SUB, aud: 'api://SomethingElse' } });
        return {
          path: tokenUrl,
          form: cc({
            client_assertion_type: JWT_BEARER,
            client_assertion: a,
            scope: `${DEV_RESOURCE_URI}/.default`,
          }),
        };
      },
    },
  ];
  errorCases.push({
    code: 900144,
    status: 400,
    error: 'invalid_request',
    request: async () => ({
      path: tokenUrl,
      form: { client_id: DEV_PIPELINE_CLIENT_ID, client_secret: secret },
    }),
  });
  for (const c of errorCases) {
    test(`AADSTS${c.code}: ${c.status} ${c.error} in Entra's error shape`, async () => {
      const { path, form } = await c.request();
      const correlation = randomUUID();
      const res = await http(path, { form, headers: { 'client-request-id': correlation } });
      assert.equal(res.status, c.status, JSON.stringify(res.json));
      assert.equal(res.json.error, c.error);
      assert.deepEqual(res.json.error_codes, [c.code]);
      assert.match(
        res.json.error_description,
        new RegExp(
          `^AADSTS${c.code}: .+\\r\\nTrace ID: ${res.json.trace_id}\\r\\nCorrelation ID: ${correlation}\\r\\nTimestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`,
          's',
        ),
      );
      assert.equal(res.json.correlation_id, correlation);
      assert.match(res.json.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
      assert.match(res.json.trace_id, /^[0-9a-f-]{36}$/);
      assert.equal(res.json.error_uri, `https://login.microsoftonline.com/error?code=${c.code}`);
    });
  }

  test('GET on the token endpoint is AADSTS900561; bodies over 1 MB are 413', async () => {
    const get = await http(tokenUrl);
    assert.equal(get.status, 400);
    assert.deepEqual(get.json.error_codes, [900561]);
    const big = await http(tokenUrl, {
      form: { grant_type: 'client_credentials', pad: 'x'.repeat(1024 * 1024) },
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error, 'invalid_request');
  });

  test('unknown paths are 404 JSON', async () => {
    const res = await http('/nowhere/at/all');
    assert.equal(res.status, 404);
    assert.equal(res.json.error, 'not_found');
  });

  test("IMDS requires Metadata: true (400, as Azure answers @azure/identity's probe); App Service requires its header", async () => {
    const q = `api-version=2018-02-01&resource=${encodeURIComponent(DEV_RESOURCE_URI)}`;
    const bare = await fetch(`${emu.imdsUrl}/metadata/identity/oauth2/token?${q}`);
    assert.equal(bare.status, 400);
    assert.equal(((await bare.json()) as Record<string, string>).error, 'invalid_request');
    const ok = await fetch(`${emu.imdsUrl}/metadata/identity/oauth2/token?${q}`, {
      headers: { Metadata: 'true' },
    });
    const body = (await ok.json()) as Record<string, string>;
    assert.equal(ok.status, 200);
    for (const k of ['expires_in', 'expires_on', 'not_before', 'resource', 'token_type', 'refresh_token'])
      assert.equal(typeof body[k], 'string', k);
    assert.equal(body.refresh_token, '');
    const appService = await fetch(
      `${emu.imdsUrl}/msi/token?api-version=2019-08-01&resource=${encodeURIComponent(DEV_RESOURCE_URI)}`,
      {
        headers: { 'X-IDENTITY-HEADER': 'wrong' },
      },
    );
    assert.equal(appService.status, 401);
    await appService.text();
  });

  test('POST /_emulator/tokens mints an Entra token directly (v2 forced, extra claims)', async () => {
    const token = await mint({
      entra: {
        tenant: T,
        clientId: DEV_PIPELINE_CLIENT_ID,
        resource: DEV_RESOURCE_URI,
        version: '2.0',
        extraClaims: { scp: 'x' },
      },
    });
    const { payload } = await verify(token, 2);
    assert.equal(payload.azp, DEV_PIPELINE_CLIENT_ID);
    assert.equal(payload.aud, DEV_RESOURCE_CLIENT_ID);
    assert.equal(payload.scp, 'x');
  });

  test('the test issuer publishes RSA and EC keys and signs ES256 on request', async () => {
    const disco = await http('/_emulator/oidc/.well-known/openid-configuration');
    assert.equal(disco.json.issuer, `${emu.url}/_emulator/oidc`);
    const keys = await http(new URL(disco.json.jwks_uri).pathname);
    assert.deepEqual(keys.json.keys.map((k: { kty: string }) => k.kty).sort(), ['EC', 'RSA']);
    const token = await mint({ claims: { sub: 'x' }, alg: 'ES256', lifetimeSeconds: 60 });
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys.json as JSONWebKeySet), {
      issuer: `${emu.url}/_emulator/oidc`,
      audience: 'api://AzureADTokenExchange',
    });
    assert.equal(payload.exp! - payload.iat!, 60);
    assert.equal(typeof payload.jti, 'string');
  });

  test('key rotation: new tokens use a new kid; the old kid stays in the JWKS', async () => {
    const before = await http(`/${T}/discovery/v2.0/keys`);
    const oldKid = before.json.keys.at(-1).kid;
    const rotated = await http('/_emulator/rotate-keys', { method: 'POST', json: {} });
    assert.equal(rotated.status, 200);
    assert.equal(rotated.json.previousKid, oldKid);
    assert.notEqual(rotated.json.kid, oldKid);
    const keys = await http(`/${T}/discovery/v2.0/keys`);
    const kids = keys.json.keys.map((k: { kid: string }) => k.kid);
    assert.ok(kids.includes(oldKid) && kids.includes(rotated.json.kid), kids.join());
    const res = await http(tokenUrl, {
      form: cc({ client_secret: secret, scope: `${DEV_RESOURCE_URI}/.default` }),
    });
    assert.equal(decodeProtectedHeader(res.json.access_token).kid, rotated.json.kid);
    await emu.rotateSigningKey();
    const again = await http(`/${T}/discovery/keys`);
    assert.equal(again.json.keys.length, 3);
  });

  test('a config error names the wrong key', async () => {
    const cfg = defaultEntraConfig();
    (cfg.tenants[0]!.apps[0] as Record<string, unknown>).clientId = 'not-a-guid';
    await assert.rejects(
      startEntraEmulator({ stateDir: join(dir, 'bad'), config: cfg }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_ENTRA_EMULATOR_CONFIG');
        assert.match(err.message, /tenants\[0\]\.apps\[0\]\.clientId: must be a GUID/);
        return true;
      },
    );
  });
});

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function certAssertion(
  keyPem: string,
  header: Record<string, string>,
  times: { nbf?: number; exp?: number } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  const { createPrivateKey } = await import('node:crypto');
  return new SignJWT({ jti: randomUUID(), nbf: times.nbf ?? now, exp: times.exp ?? now + 600 })
    .setProtectedHeader({ typ: 'JWT', alg: 'PS256', ...header })
    .setIssuer(DEV_PIPELINE_CLIENT_ID)
    .setSubject(DEV_PIPELINE_CLIENT_ID)
    .setAudience(`${emu.url}/${T}/oauth2/v2.0/token`)
    .sign(createPrivateKey(keyPem));
}
