/**
 * `tanuki-sts check-config` run as a separate process: an Entra issuer whose
 * `audiences` hold an App ID URI outside Entra's secure patterns is a warning
 * on stderr, not a failure; the secure default gives no warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CliRun, runCli } from '../../../test/helpers/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'check-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '3f0c7a59-0000-4000-8000-000000000000';

function configWith(audience: string): string {
  const file = join(dir, `${Buffer.from(audience).toString('hex')}.yaml`);
  writeFileSync(
    file,
    `server: { publicUrl: https://sts.example.com }
gitlab:
  url: https://gitlab.example.com
  token: glpat-placeholder
issuers:
  contoso:
    entra: { tenant: ${TENANT} }
    audiences: ["${audience}", ${APP}]
policies:
  - name: image-build
    issuer: contoso
    match: { appid: 11111111-2222-3333-4444-555555555555 }
    grant: { projects: [platform/internal-lib], scopes: [read_repository], role: reporter }
`,
  );
  return file;
}

function checkConfig(file: string): Promise<CliRun> {
  return runCli(['check-config', '--config', file]);
}

describe('tanuki-sts check-config: Application ID URIs', () => {
  it('warns (exit 0) about an api:// audience that matches no secure pattern, naming the rule', async () => {
    const r = await checkConfig(configWith('api://my-sts'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configuration OK: 1 issuer\(s\), 1 policy/);
    assert.match(
      r.stderr,
      /^warning: issuers\.contoso\.audiences: api:\/\/my-sts matches none of Entra ID's secure/,
    );
    assert.match(r.stderr, /identifierUriRestriction/);
    assert.match(
      r.stderr,
      /learn\.microsoft\.com\/en-us\/entra\/identity-platform\/identifier-uri-restrictions/,
    );
  });

  it(`is silent for Entra's default api://<client ID> and for api://<tenant ID>/<string>`, async () => {
    for (const audience of [`api://${APP}`, `api://${TENANT}/tanuki-sts`]) {
      const r = await checkConfig(configWith(audience));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', audience);
    }
  });
});
