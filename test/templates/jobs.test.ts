/**
 * The templates run as the CI systems run them, against `tanuki-sts dev`: every GitLab CI example
 * job (hidden jobs resolved through `extends` and `!reference`) runs its before_script + script in
 * one bash and its after_script in another, as GitLab Runner's bash shell does, with the variables
 * GitLab sets (CI_SERVER_URL, CI_PROJECT_PATH, CI_JOB_ID…, the template's variables, the project's
 * CI/CD variables) and an id_token in the variable `id_tokens` names, with the audience the job
 * asks for. The jobs start in an empty folder with no tanuki-sts on PATH and npm replaced by a
 * stub that fails: they must download the client from the STS, check it, use it, and leave no
 * GitLab token active (the GitLab emulator's own list says so). The Azure Pipelines template's
 * AzureCLI@2 script runs likewise, with what the task hands it (idToken, servicePrincipalId,
 * tenantId).
 *
 * A failing command fails the job with exit code 1, whatever its own: the runner `eval`s the
 * stage under errexit in a pipeline (without FF_USE_NEW_BASH_EVAL_STRATEGY), as real jobs do.
 *
 * The dev stack has no GitLab-issued id_tokens: its OIDC test issuer (the Entra emulator's
 * `/_emulator/oidc`, dev.json `entra.oidcIssuer`) stands for GitLab's — the dev STS trusts it for
 * direct OIDC (audience: the STS URL) and the dev pipeline app has a federated credential for it
 * (subject project_path:platform/internal-lib:ref_type:branch:ref:main). An Azure DevOps token
 * would come from vstoken.dev.azure.com; the same issuer stands for it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { findToken } from '../../src/util/token-patterns.ts';
import {
  AZURE_TEMPLATE,
  expandAzureParameters,
  expandVariables,
  expandWith,
  GITLAB_TEMPLATE,
  type JobRun,
  jobPath,
  NETWATCH,
  parseGitlabYaml,
  resolveJob,
  resolveReferences,
  runBash,
  runGitlabJob,
  shellQuote,
  writeStubs,
  type Yaml,
  yamlVariables,
} from '../helpers/ci-templates.ts';
import {
  type EmulatorToken,
  emulatorIdToken,
  gitlabTokens,
  type Stack,
  startStack,
} from '../helpers/client-dev-stack.ts';

const PROJECT = 'platform/internal-lib';
const CI_SUB = `project_path:${PROJECT}:ref_type:branch:ref:main`;

interface JobResult extends JobRun {
  /** Tokens GitLab created while the job ran, in their state after it. */
  newTokens: EmulatorToken[];
  variables: Record<string, string>;
  /** id_token variable → the audience the job asked for. */
  audiences: Record<string, string>;
  projectDir: string;
  npmMarker: string;
  netLog: string;
}

describe('the templates, run as runners run them, against tanuki-sts dev', { concurrency: 1 }, () => {
  let stack: Stack;
  let doc: Yaml;
  let jobCounter = 7000;
  const secrets: string[] = [];
  /** The template's jobs run so far. */
  const ran = new Set<string>();

  before(async () => {
    stack = await startStack();
    doc = parseGitlabYaml(readFileSync(GITLAB_TEMPLATE, 'utf8'));
    secrets.push(stack.dev.gitlab.adminToken, stack.dev.entra.clientSecret);
  });
  after(async () => {
    await stack?.stop();
  });

  /** What a project sets in Settings → CI/CD → Variables to use the template against the dev stack. */
  const projectVariables = (): Record<string, string> => ({
    TANUKI_STS_URL: stack.dev.sts.url,
    AZURE_TENANT_ID: stack.dev.entra.tenantId,
    AZURE_CLIENT_ID: stack.dev.entra.clientId,
    TANUKI_AZURE_SCOPE: stack.dev.entra.scope,
    // The emulator stands for Entra ID, with a CA of its own.
    AZURE_AUTHORITY_HOST: stack.dev.entra.authorityHost,
    NODE_EXTRA_CA_CERTS: stack.dev.caFile,
  });

  /** A fresh runner workspace: an empty project folder, HOME, TMPDIR, stubs. */
  function workspace(stubs: Record<string, string> = {}) {
    const root = mkdtempSync(join(stack.dir, 'runner-'));
    const projectDir = join(root, 'builds', PROJECT);
    const home = join(root, 'home');
    const tmp = join(root, 'tmp');
    for (const d of [projectDir, home, tmp]) mkdirSync(d, { recursive: true });
    const { dir: stubDir, npmMarker } = writeStubs(join(root, 'stubs'), stubs);
    const hostEnv = {
      PATH: jobPath(stubDir),
      HOME: home,
      TMPDIR: tmp,
      LANG: 'C.UTF-8',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
    };
    return { root, projectDir, hostEnv, npmMarker, netLog: join(root, 'net.log') };
  }

  /**
   * Runs a job of `pipeline` (the template, or a pipeline that includes it) as a runner would.
   * `project`: CI/CD variables (highest precedence); `watch`: record the job's outbound requests.
   */
  async function runJob(
    name: string,
    opts: {
      pipeline?: Yaml;
      project?: Record<string, string>;
      stubs?: Record<string, string>;
      extraScript?: string[];
      watch?: boolean;
    } = {},
  ): Promise<JobResult> {
    const pipeline = opts.pipeline ?? doc;
    if (pipeline === doc) ran.add(name);
    const ws = workspace(opts.stubs);
    const job = resolveReferences(pipeline, resolveJob(pipeline, name)) as Record<string, any>;
    const jobId = String(++jobCounter);
    const predefined: Record<string, string> = {
      CI: 'true',
      GITLAB_CI: 'true',
      CI_SERVER_URL: stack.dev.gitlab.url,
      CI_SERVER_HOST: new URL(stack.dev.gitlab.url).hostname,
      CI_PROJECT_PATH: PROJECT,
      CI_PROJECT_DIR: ws.projectDir,
      CI_BUILDS_DIR: join(ws.root, 'builds'),
      CI_JOB_ID: jobId,
      CI_JOB_NAME: name.replace(/^\./, ''),
      CI_PIPELINE_ID: String(jobCounter * 10),
      CI_COMMIT_REF_NAME: 'main',
      CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
      CI_REGISTRY_IMAGE: `registry.test/${PROJECT}`,
    };
    const netwatch: Record<string, string> = opts.watch
      ? { NODE_OPTIONS: `--import ${NETWATCH}`, TANUKI_TEST_NET_LOG: ws.netLog }
      : {};
    // Precedence, lowest first: predefined, the file's variables, the job's, the project's.
    const variables = expandVariables({
      ...predefined,
      ...yamlVariables(pipeline.variables),
      ...yamlVariables(job.variables),
      ...(opts.project ?? projectVariables()),
      ...netwatch,
    });
    // GitLab signs one id_token per `id_tokens` entry, its `aud` expanded with the job's variables
    // (app/models/ci/build.rb, expanded_id_token_aud).
    const audiences: Record<string, string> = {};
    for (const [variable, spec] of Object.entries((job.id_tokens ?? {}) as Record<string, { aud: string }>)) {
      const aud = expandWith(spec.aud, (n) => variables[n] ?? '');
      audiences[variable] = aud;
      const token = await emulatorIdToken(stack, {
        sub: CI_SUB,
        aud,
        project_path: PROJECT,
        ref: 'main',
        ref_type: 'branch',
        job_id: jobId,
      });
      variables[variable] = token;
      secrets.push(token);
    }
    const known = new Set((await gitlabTokens(stack)).map((t) => t.id));
    const run = await runGitlabJob({
      job,
      variables,
      hostEnv: ws.hostEnv,
      projectDir: ws.projectDir,
      scriptDir: join(ws.root, 'scripts'),
      extraScript: opts.extraScript,
    });
    const newTokens = (await gitlabTokens(stack)).filter((t) => !known.has(t.id));
    return {
      ...run,
      newTokens,
      variables,
      audiences,
      projectDir: ws.projectDir,
      npmMarker: ws.npmMarker,
      netLog: ws.netLog,
    };
  }

  const active = (tokens: EmulatorToken[]) => tokens.filter((t) => t.active === true && t.revoked !== true);

  function assertClean(r: JobResult, label: string) {
    assert.ok(r.newTokens.length >= 1, `${label}: the job got a GitLab token`);
    assert.deepEqual(active(r.newTokens), [], `${label}: no token left active after the job`);
    assert.equal(existsSync(r.npmMarker), false, `${label}: npm was not used`);
    assert.equal(findToken(r.log), undefined, `${label}: the job log shows no token`);
    for (const s of secrets) assert.equal(r.log.includes(s), false, `${label}: the job log shows a secret`);
  }

  describe('GitLab CI (templates/gitlab-ci/tanuki-sts.yml)', () => {
    it('the runner host has no tanuki-sts: the jobs must install it', async () => {
      const ws = workspace();
      const file = join(ws.root, 'probe.sh');
      writeFileSync(file, 'command -v tanuki-sts\n');
      const r = await runBash(file, ws.hostEnv, { cwd: ws.projectDir });
      assert.equal(r.code, 1, r.stdout);
    });

    it('.tanuki-sts-clone-example (Entra federation): clones with a short-lived token, revoked at the end', async () => {
      const r = await runJob('.tanuki-sts-clone-example');
      assert.equal(r.main.code, 0, r.log);
      assert.equal(r.audiences.TANUKI_ID_TOKEN, 'api://AzureADTokenExchange');
      assert.match(r.main.stderr, /tanuki-sts install: client sha256 [0-9a-f]{64} \(from the STS metadata\)/);
      assert.ok(existsSync(join(r.projectDir, 'vendor', 'internal-lib', '.git')), 'cloned');
      assertClean(r, 'clone');
    });

    it('.tanuki-sts-oidc-example (direct OIDC): the id_token audience is the STS URL by default', async () => {
      const r = await runJob('.tanuki-sts-oidc-example');
      assert.equal(r.main.code, 0, r.log);
      assert.equal(r.audiences.TANUKI_SUBJECT_TOKEN, stack.dev.sts.url);
      assert.match(r.main.stdout, /refs\/heads\/main/);
      assertClean(r, 'oidc');
    });

    it('.tanuki-sts-oidc-example with TANUKI_STS_AUDIENCE set: that audience is asked for', async () => {
      // The dev STS accepts only its URL: another audience is asked for, and refused.
      const r = await runJob('.tanuki-sts-oidc-example', {
        project: { ...projectVariables(), TANUKI_STS_AUDIENCE: 'https://sts-audience.internal.test' },
      });
      assert.equal(r.audiences.TANUKI_SUBJECT_TOKEN, 'https://sts-audience.internal.test');
      assert.equal(r.main.code, 1, r.log);
      assert.match(r.main.stderr, /the STS refused the exchange: invalid_request/);
      assert.deepEqual(r.newTokens, []);
    });

    it('.tanuki-sts-credential-helper-example: plain git through the helper, revoke-all in after_script', async () => {
      const r = await runJob('.tanuki-sts-credential-helper-example');
      assert.equal(r.main.code, 0, r.log);
      assert.ok(existsSync(join(r.projectDir, 'internal-lib', '.git')), 'cloned');
      assert.equal(r.after?.code, 0, r.log);
      assert.match(r.after?.stderr ?? '', /revoked 1 cached token/);
      assertClean(r, 'credential helper');
    });

    it('.tanuki-sts-credential-helper-example whose script fails: after_script still revokes the token', async () => {
      const r = await runJob('.tanuki-sts-credential-helper-example', { extraScript: ['false'] });
      assert.equal(r.main.code, 1, r.log);
      assert.equal(r.after?.code, 0, r.log);
      assert.match(r.after?.stderr ?? '', /revoked 1 cached token/);
      assertClean(r, 'failed script');
    });

    it('.tanuki-sts-docker-example: docker build gets a working GITLAB_TOKEN for its BuildKit secret', async () => {
      const marker = join(stack.dir, `docker-stub-${jobCounter}`);
      // apk: the image's package manager (Node and git are here already). docker: checks that the
      // secret is passed by name, not by value, and that the token in GITLAB_TOKEN works for git.
      const docker = [
        '#!/bin/bash',
        'set -eo pipefail',
        'case " $* " in *" --secret id=gitlab_token,env=GITLAB_TOKEN "*) ;; *) echo "docker stub: no BuildKit secret" >&2; exit 64;; esac',
        'if [ -z "$GITLAB_TOKEN" ]; then echo "docker stub: GITLAB_TOKEN is empty" >&2; exit 65; fi',
        'case "$*" in *"$GITLAB_TOKEN"*) echo "docker stub: the token is on the command line" >&2; exit 66;; esac',
        `auth=$(printf 'oauth2:%s' "$GITLAB_TOKEN" | base64 | tr -d '\\n')`,
        'GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Basic $auth" \\',
        '  git ls-remote --heads "$CI_SERVER_URL/platform/internal-lib.git" >/dev/null',
        `touch ${shellQuote(marker)}`,
        '',
      ].join('\n');
      const r = await runJob('.tanuki-sts-docker-example', {
        stubs: { apk: '#!/bin/sh\nexit 0\n', docker },
      });
      assert.equal(r.main.code, 0, r.log);
      assert.ok(existsSync(marker), 'docker build ran with a working token');
      assertClean(r, 'docker');
    });

    it('a job with a before_script of its own keeps working with !reference [.tanuki-sts, before_script]; without it, "command not found"', async () => {
      const own = parseGitlabYaml(
        `${readFileSync(GITLAB_TEMPLATE, 'utf8')}
build:
  extends: .tanuki-sts-oidc
  variables:
    TANUKI_RESOURCE: ${PROJECT}
  before_script:
    - !reference [.tanuki-sts, before_script]
    - echo "my own before_script"
  script:
    - tanuki-sts exec -- git ls-remote --heads "$TANUKI_GITLAB_URL/${PROJECT}.git"
forgot:
  extends: .tanuki-sts-oidc
  before_script:
    - echo "my own before_script"
  script:
    - tanuki-sts exec -- git ls-remote --heads "$TANUKI_GITLAB_URL/${PROJECT}.git"
`,
      );
      const ok = await runJob('build', { pipeline: own });
      assert.equal(ok.main.code, 0, ok.log);
      assert.match(ok.main.stdout, /my own before_script/);
      assertClean(ok, 'own before_script');
      const forgot = await runJob('forgot', { pipeline: own });
      assert.equal(forgot.main.code, 1, forgot.log);
      assert.match(forgot.main.stderr, /tanuki-sts: command not found/);
    });

    it('the template as shipped (placeholder STS URL): the job fails with a clear message and sends nothing', async () => {
      // Positive control: the same watch records a working job's requests.
      const control = await runJob('.tanuki-sts-oidc-example', { watch: true });
      assert.equal(control.main.code, 0, control.log);
      assert.match(readFileSync(control.netLog, 'utf8'), /oauth-authorization-server/);

      const r = await runJob('.tanuki-sts-oidc-example', { project: {}, watch: true });
      assert.equal(r.variables.TANUKI_STS_URL, 'https://sts.example.com');
      assert.equal(r.main.code, 1, r.log);
      assert.match(
        r.main.stderr,
        /tanuki-sts install: TANUKI_STS_URL is the template's placeholder \(https:\/\/sts\.example\.com\): set it to your STS's URL/,
      );
      assert.equal(
        existsSync(r.netLog),
        false,
        `nothing sent: ${existsSync(r.netLog) ? readFileSync(r.netLog, 'utf8') : ''}`,
      );
      assert.deepEqual(r.newTokens, []);
    });

    it('the Entra variant with the placeholder tenant and client IDs: refused before any request', async () => {
      const { AZURE_TENANT_ID: _t, AZURE_CLIENT_ID: _c, ...project } = projectVariables();
      const r = await runJob('.tanuki-sts-clone-example', { project, watch: true });
      assert.equal(r.main.code, 1, r.log);
      assert.match(
        r.main.stderr,
        /AZURE_TENANT_ID holds the template's placeholder 00000000-0000-0000-0000-000000000000: set it to your Directory \(tenant\) ID/,
      );
      assert.doesNotMatch(r.log, /endpoints_resolution_error/);
      assert.equal(existsSync(r.netLog), false, 'nothing sent');
      assert.deepEqual(r.newTokens, []);
    });

    it('every example job of the template ran above', () => {
      const examples = Object.keys(doc).filter((k) => k.startsWith('.') && k.endsWith('-example'));
      assert.ok(examples.length >= 4);
      assert.deepEqual(
        examples.filter((e) => !ran.has(e)),
        [],
        'example jobs no test ran',
      );
    });
  });

  describe('Azure Pipelines (templates/azure-pipelines/tanuki-sts.yml)', () => {
    /** The AzureCLI@2 step's script, run as the task runs it (`bash <file>`) with what it adds to the environment. */
    async function runAzure(
      parameters: Record<string, string>,
      taskEnv: Record<string, string | undefined> = {},
    ) {
      const ws = workspace();
      const template = expandAzureParameters(parse(readFileSync(AZURE_TEMPLATE, 'utf8')), parameters);
      const task = template.steps.find((s: Yaml) => s.task === 'AzureCLI@2');
      assert.equal(task.inputs.azureSubscription, parameters.serviceConnection);
      const script = join(ws.root, 'azureclitaskscript.sh');
      writeFileSync(script, task.inputs.inlineScript);
      const idToken = await emulatorIdToken(stack, { sub: CI_SUB, aud: 'api://AzureADTokenExchange' });
      secrets.push(idToken);
      const env = Object.fromEntries(
        Object.entries({
          ...ws.hostEnv,
          AGENT_TEMPDIRECTORY: join(ws.root, 'tmp'),
          BUILD_BUILDID: String(++jobCounter),
          AZURE_AUTHORITY_HOST: stack.dev.entra.authorityHost,
          NODE_EXTRA_CA_CERTS: stack.dev.caFile,
          ...(task.env as Record<string, string>),
          // addSpnToEnvironment with a workload identity federation connection
          idToken,
          servicePrincipalId: stack.dev.entra.clientId,
          tenantId: stack.dev.entra.tenantId,
          ...taskEnv,
        }).filter((e): e is [string, string] => e[1] !== undefined),
      );
      const known = new Set((await gitlabTokens(stack)).map((t) => t.id));
      const r = await runBash(script, env, { cwd: ws.projectDir });
      const newTokens = (await gitlabTokens(stack)).filter((t) => !known.has(t.id));
      return { r, newTokens, npmMarker: ws.npmMarker, log: `${r.stdout}\n${r.stderr}` };
    }

    const parameters = () => ({
      serviceConnection: 'tanuki-dev-wif',
      stsUrl: stack.dev.sts.url,
      azureScope: stack.dev.entra.scope,
      resource: PROJECT,
      command: `git ls-remote --heads ${stack.dev.gitlab.url}/${PROJECT}.git`,
    });

    it('downloads and checks the client, signs in with the idToken, runs the command, revokes', async () => {
      const { r, newTokens, npmMarker, log } = await runAzure(parameters());
      assert.equal(r.code, 0, log);
      assert.match(r.stdout, /refs\/heads\/main/);
      assert.ok(newTokens.length >= 1);
      assert.deepEqual(active(newTokens), []);
      assert.equal(existsSync(npmMarker), false);
      assert.equal(findToken(log), undefined);
      for (const s of secrets) assert.equal(log.includes(s), false);
    });

    it('the default stsUrl (placeholder) is refused with a clear message', async () => {
      const { stsUrl: _s, ...rest } = parameters();
      const { r, newTokens } = await runAzure(rest);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /TANUKI_STS_URL is the template's placeholder \(https:\/\/sts\.example\.com\)/);
      assert.deepEqual(newTokens, []);
    });

    it('a connection that gives no idToken (not workload identity federation): exit 2, says why', async () => {
      const { r, newTokens } = await runAzure(parameters(), { idToken: undefined });
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /no idToken: it must be an Azure Resource Manager connection with workload identity federation/,
      );
      assert.deepEqual(newTokens, []);
    });
  });
});
