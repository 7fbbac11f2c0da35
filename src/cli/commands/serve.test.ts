/**
 * `serve`, `check-config` and `policy test` refuse the same bad policies: the
 * shape through the config schema (ConfigError), what a policy means through
 * `compilePolicies` (PolicyCompileError), each rule checked in one place.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../config/index.ts';
import { startSts } from '../../service/server.ts';
import { runPolicyTest } from './policy.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tanuki-policy-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const POLICY = `name: reader
    issuer: ci
    match: { project_id: "42" }
    grant: { projects: [platform/app], scopes: [read_repository], role: reporter }`;

function configFile(name: string, policies: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `server: { listen: "127.0.0.1:0", metricsListen: false, publicUrl: "https://sts.example.com" }
gitlab: { url: "https://gitlab.example.com", token: glpat-placeholder }
store: { sqlite: ":memory:" }
issuers: { ci: { oidc: { issuer: "https://gitlab.example.com" }, audiences: [x] } }
policies:
${policies}
`,
  );
  return file;
}

const claims = join(dir, 'claims.json');
writeFileSync(claims, JSON.stringify({ iss: 'https://gitlab.example.com', sub: 's', project_id: '42' }));

/** The error each command ends with, or undefined when it accepts the file. */
const refusals = {
  async serve(file: string): Promise<string | undefined> {
    try {
      const sts = await startSts({ config: loadConfigFile(file), logger: false, background: false });
      await sts.close();
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  /** As an operator runs it: a process of its own (exit 1 and `tanuki-sts: <message>` when refused). */
  checkConfig(file: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin/tanuki-sts.js'), 'check-config', '--config', file],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve(code === 0 ? undefined : stderr));
    });
  },
  async policyTest(file: string): Promise<string | undefined> {
    const r = await runPolicyTest({ config: file, claims, audience: 'platform/app' });
    return r.exitCode === 2 ? r.stderr : undefined;
  },
};

describe('serve, check-config and policy test refuse the same policies', () => {
  const cases: Array<[string, string, string]> = [
    // [case, policies (YAML list items), what every refusal says]
    ['duplicate', `  - ${POLICY}\n  - ${POLICY}`, 'policy "reader": duplicate policy name'],
    [
      'ttl-order',
      `  - ${POLICY.replace('role: reporter', 'role: reporter, ttl: { default: 2h, max: 1h }')}`,
      'ttl.default must be positive and not exceed ttl.max',
    ],
    [
      'no-target',
      `  - ${POLICY.replace('projects: [platform/app]', 'projects: []')}`,
      'grant needs at least one project or group',
    ],
    ['empty-match', `  - ${POLICY.replace('{ project_id: "42" }', '{}')}`, 'match needs at least one claim'],
    ['bad-pattern', `  - ${POLICY.replace('"42"', '{ pattern: "(" }')}`, 'match.project_id: invalid pattern'],
    [
      'control-char',
      `  - ${POLICY.replace('"42"', '"4\\n2"')}`,
      'match.project_id: a value holds a control character',
    ],
    ['zero-id', `  - ${POLICY.replace('[platform/app]', '["000"]')}`, 'invalid numeric ID 000'],
    [
      'self-rotate',
      `  - ${POLICY.replace('[read_repository]', '[self_rotate]')}`,
      'policies[0].grant.scopes[0]: self_rotate is never granted',
    ],
    [
      'unknown-issuer',
      `  - ${POLICY.replace('issuer: ci', 'issuer: nope')}`,
      'policies[0].issuer: "nope" is not a configured issuer',
    ],
  ];
  for (const [name, policies, expected] of cases) {
    it(name, async () => {
      const file = configFile(name, policies);
      for (const [command, refusal] of Object.entries(refusals)) {
        const message = await refusal(file);
        assert.ok(message?.includes(expected), `${command}: ${message}`);
      }
    });
  }

  it('and all three accept a good one', async () => {
    const file = configFile('good', `  - ${POLICY}`);
    assert.equal(await refusals.serve(file), undefined);
    assert.equal(await refusals.checkConfig(file), undefined);
    assert.equal((await runPolicyTest({ config: file, claims, audience: 'platform/app' })).exitCode, 0);
  });
});
