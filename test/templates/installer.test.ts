/**
 * Attacks on the templates' install step (docs/security.md rows 85–88): the program both
 * templates embed downloads the client from the STS, checks its SHA-256 (a pinned
 * TANUKI_CLIENT_SHA256, else the metadata's client_sha256) and refuses placeholders before
 * anything is sent. A fake STS on loopback serves whatever an attacker would; the "client" it
 * serves leaves a mark when it runs, so a test sees that refused code never ran. The install step
 * runs as GitLab Runner runs a job (test/helpers/ci-templates.ts); the Azure template embeds the
 * same program (schemas.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  type ClientHost,
  gitlabInstallStep,
  jobPath,
  NETWATCH,
  runGitlabJob,
  sha256Hex,
  startClientHost,
  writeStubs,
} from '../helpers/ci-templates.ts';

/** A stand-in client: writes which one it is and its arguments to $CLIENT_MARKER. */
const fakeClient = (name: string) =>
  Buffer.from(
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(process.env.CLIENT_MARKER, ${JSON.stringify(name)} + ' ' + process.argv.slice(2).join(' '));\n`,
  );
const GOOD = fakeClient('good');
const EVIL = fakeClient('evil');
const ZERO = '00000000-0000-0000-0000-000000000000';

describe('the templates’ install step', { concurrency: 1 }, () => {
  let root: string;
  let sts: ClientHost;
  let other: ClientHost;
  let install: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tanuki-installer-'));
    install = gitlabInstallStep();
    sts = await startClientHost(GOOD);
    other = await startClientHost(EVIL);
  });
  after(async () => {
    await sts?.close();
    await other?.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    // Each test starts from an honest STS.
    sts.requests.length = 0;
    other.requests.length = 0;
    sts.metadata = (base) => ({
      issuer: base,
      client_uri: `${base}/client/tanuki-sts.mjs`,
      client_sha256: sha256Hex(GOOD),
    });
    sts.client = (_req, res) => res.writeHead(200).end(GOOD);
  });

  /** The install step, then `tanuki-sts token --probe`, as a job; with the job's outbound requests recorded. */
  async function job(variables: Record<string, string>) {
    const dir = mkdtempSync(join(root, 'job-'));
    const tmp = join(dir, 'tmp');
    const projectDir = join(dir, 'project');
    mkdirSync(tmp);
    mkdirSync(projectDir);
    const { dir: stubs } = writeStubs(join(dir, 'stubs'));
    const marker = join(dir, 'client-ran');
    const netLog = join(dir, 'net.log');
    const run = await runGitlabJob({
      job: { before_script: [install], script: ['tanuki-sts token --probe'] },
      variables: {
        CI_PROJECT_DIR: projectDir,
        TANUKI_STS_URL: sts.url,
        CLIENT_MARKER: marker,
        NODE_OPTIONS: `--import ${NETWATCH}`,
        TANUKI_TEST_NET_LOG: netLog,
        ...variables,
      },
      hostEnv: { PATH: jobPath(stubs), HOME: dir, TMPDIR: tmp },
      projectDir,
      scriptDir: join(dir, 'scripts'),
    });
    return {
      code: run.main.code,
      stderr: run.main.stderr,
      ran: existsSync(marker) ? readFileSync(marker, 'utf8') : undefined,
      installed: readdirSync(tmp).filter((n) => n.startsWith('tanuki-sts-client.')),
      tmp,
      sent: existsSync(netLog) ? readFileSync(netLog, 'utf8') : '',
    };
  }

  /** Refused: the job failed, no client ran, nothing was written. */
  function assertRefused(r: Awaited<ReturnType<typeof job>>, message: RegExp) {
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.ran, undefined, 'no client ran');
    assert.deepEqual(r.installed, [], 'nothing installed');
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }

  it('control: an honest STS — the checked client is installed privately and runs', async () => {
    const r = await job({});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.ran, 'good token --probe');
    assert.match(r.stderr, new RegExp(`client sha256 ${sha256Hex(GOOD)} \\(from the STS metadata\\)`));
    assert.equal(r.installed.length, 1);
    const folder = join(r.tmp, r.installed[0]!);
    assert.equal(statSync(folder).mode & 0o777, 0o700);
    assert.equal(statSync(join(folder, 'tanuki-sts.mjs')).mode & 0o777, 0o600);
    assert.deepEqual(readFileSync(join(folder, 'tanuki-sts.mjs')), GOOD);
    assert.deepEqual(sts.requests, [
      'GET /.well-known/oauth-authorization-server',
      'GET /client/tanuki-sts.mjs',
    ]);
  });

  describe('85. the served client does not match the digest', () => {
    it('bytes differ from the metadata’s client_sha256 (tampered in transit or on the STS): refused, not run', async () => {
      sts.client = (_req, res) => res.writeHead(200).end(EVIL);
      const r = await job({});
      assertRefused(
        r,
        new RegExp(
          `has SHA-256 ${sha256Hex(EVIL)}, but the STS metadata's client_sha256 is ${sha256Hex(GOOD)}: not installed`,
        ),
      );
    });

    it('bytes differ from a pinned TANUKI_CLIENT_SHA256: refused, not run', async () => {
      sts.client = (_req, res) => res.writeHead(200).end(EVIL);
      const r = await job({ TANUKI_CLIENT_SHA256: sha256Hex(GOOD).toUpperCase() });
      assertRefused(r, /but TANUKI_CLIENT_SHA256 is [0-9a-f]{64}: not installed/);
    });
  });

  describe('86. a rogue STS serves other code and publishes its digest', () => {
    it('with TANUKI_CLIENT_SHA256 pinned: the pin wins over the metadata, refused, the message names both', async () => {
      sts.metadata = (base) => ({ issuer: base, client_sha256: sha256Hex(EVIL) });
      sts.client = (_req, res) => res.writeHead(200).end(EVIL);
      const r = await job({ TANUKI_CLIENT_SHA256: sha256Hex(GOOD) });
      assertRefused(
        r,
        new RegExp(
          `TANUKI_CLIENT_SHA256 is ${sha256Hex(GOOD)} \\(the STS now publishes ${sha256Hex(EVIL)}: update the pin`,
        ),
      );
    });

    it('with the pin, the STS’s digest does not matter when the bytes match the pin', async () => {
      sts.metadata = (base) => ({ issuer: base, client_sha256: sha256Hex(EVIL) });
      const r = await job({ TANUKI_CLIENT_SHA256: sha256Hex(GOOD) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.ran, 'good token --probe');
      assert.match(r.stderr, /\(pinned\)/);
    });

    it('a malformed pin is refused before anything is sent', async () => {
      const r = await job({ TANUKI_CLIENT_SHA256: 'sha256:abc' });
      assertRefused(r, /TANUKI_CLIENT_SHA256 must be the 64 hex digits/);
      assert.deepEqual(sts.requests, []);
    });
  });

  describe('87. the STS’s answer cannot be checked, or points elsewhere', () => {
    it('metadata without client_sha256 (an older STS, or not a tanuki-sts) and no pin: fail closed', async () => {
      sts.metadata = (base) => ({ issuer: base, client_uri: `${base}/client/tanuki-sts.mjs` });
      const r = await job({});
      assertRefused(
        r,
        /has no client_sha256, so the client cannot be checked: upgrade the STS, or pin TANUKI_CLIENT_SHA256/,
      );
      assert.deepEqual(
        sts.requests,
        ['GET /.well-known/oauth-authorization-server'],
        'the client was not even fetched',
      );
    });

    for (const [label, digest] of [
      ['upper-case', sha256Hex(GOOD).toUpperCase()],
      ['too short', sha256Hex(GOOD).slice(1)],
      ['not a string', 42],
    ] as const) {
      it(`a client_sha256 that is ${label}: refused`, async () => {
        sts.metadata = (base) => ({ issuer: base, client_sha256: digest });
        const r = await job({});
        assertRefused(r, /client_sha256 is not 64 lower-case hex digits|has no client_sha256/);
      });
    }

    it('metadata that is not a JSON object (404, HTML, an array): refused', async () => {
      sts.metadata = () => ['not', 'an', 'object'];
      const r = await job({});
      assertRefused(r, /returned no metadata object: is TANUKI_STS_URL the STS's base URL\?/);
      const r404 = await job({ TANUKI_STS_URL: `${sts.url}/nothing-here` });
      assertRefused(r404, /fetching the STS metadata .* failed with HTTP 404/);
    });

    it('a client_uri on another origin: refused, that origin gets no request', async () => {
      sts.metadata = (base) => ({
        issuer: base,
        client_uri: `${other.url}/client/tanuki-sts.mjs`,
        client_sha256: sha256Hex(EVIL),
      });
      const r = await job({});
      assertRefused(r, /client_uri is not a URL of the STS itself/);
      assert.deepEqual(other.requests, []);
    });

    it('the client route redirects elsewhere: refused, the redirect is not followed', async () => {
      sts.client = (_req, res) =>
        res.writeHead(302, { location: `${other.url}/client/tanuki-sts.mjs` }).end();
      const r = await job({});
      assertRefused(r, /answered a redirect \(HTTP 302\): refused/);
      assert.deepEqual(other.requests, []);
    });

    it('a client over 16 MiB: refused while it streams, whatever its digest', async () => {
      const huge = Buffer.alloc(17 * 1024 * 1024, 0x20);
      sts.metadata = (base) => ({ issuer: base, client_sha256: sha256Hex(huge) });
      sts.client = (_req, res) => res.writeHead(200).end(huge);
      const r = await job({});
      assertRefused(r, /the answer is over 16777216 bytes, refused/);
    });

    it('plain http to a host that is not loopback, or credentials in the URL: refused before any request', async () => {
      const plain = await job({ TANUKI_STS_URL: 'http://10.255.255.1:8600' });
      assertRefused(plain, /TANUKI_STS_URL must be https \(plain http only on a loopback host\)/);
      assert.equal(plain.sent, '', 'nothing sent');
      const creds = await job({ TANUKI_STS_URL: sts.url.replace('http://', 'http://user:secret@') });
      assertRefused(creds, /TANUKI_STS_URL must not contain credentials/);
      assert.doesNotMatch(creds.stderr, /secret/);
      assert.deepEqual(sts.requests, []);
    });
  });

  describe('88. the templates’ placeholders reach the network', () => {
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      [
        'the STS URL',
        { TANUKI_STS_URL: 'https://sts.example.com' },
        /TANUKI_STS_URL is the template's placeholder \(https:\/\/sts\.example\.com\): set it to your STS's URL/,
      ],
      [
        'an STS under .example',
        { TANUKI_STS_URL: 'https://sts.corp.example' },
        /TANUKI_STS_URL is the template's placeholder/,
      ],
      [
        'the id_token audience',
        { TANUKI_STS_AUDIENCE: 'https://sts.example.org' },
        /TANUKI_STS_AUDIENCE is the template's placeholder .*default: the STS URL/,
      ],
      [
        'the GitLab URL',
        { TANUKI_GITLAB_URL: 'https://gitlab.example.com' },
        /TANUKI_GITLAB_URL is the template's placeholder .*\$CI_SERVER_URL/,
      ],
      [
        'the tenant ID',
        { AZURE_TENANT_ID: ZERO },
        /AZURE_TENANT_ID holds the template's placeholder 0{8}-0{4}-0{4}-0{4}-0{12}: set it to your Directory \(tenant\) ID/,
      ],
      [
        'the client ID',
        { AZURE_CLIENT_ID: ZERO },
        /AZURE_CLIENT_ID holds the template's placeholder .*Application \(client\) ID/,
      ],
      [
        'the Entra scope',
        { TANUKI_AZURE_SCOPE: `api://${ZERO}/.default` },
        /TANUKI_AZURE_SCOPE holds the template's placeholder .*api:\/\/<the STS app's client ID>\/\.default/,
      ],
    ];
    for (const [label, variables, message] of cases) {
      it(`${label}: refused with a message naming the variable, nothing sent`, async () => {
        const r = await job(variables);
        assertRefused(r, message);
        assert.equal(r.sent, '', 'no request by any Node process of the job');
        assert.deepEqual(sts.requests, []);
      });
    }

    it('control: the same watch records the requests of a job that runs', async () => {
      const r = await job({ AZURE_TENANT_ID: '7f3c2a1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.sent, /oauth-authorization-server/);
    });
  });
});
