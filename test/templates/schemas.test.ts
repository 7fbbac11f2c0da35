/**
 * The templates as the vendors' own schemas see them: GitLab's `ci.json` (the pipeline editor's
 * schema) and Microsoft's Azure Pipelines `service-schema.json`, both vendored unchanged under
 * test/fixtures/schemas/ (SOURCE.md names repository, path, commit and licence), validated with
 * ajv. Then what no schema says: maintained Node versions, no npm, the install step kept by jobs
 * with a before_script of their own, the audience variable, the service connection by name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import {
  AZURE_TEMPLATE,
  GITLAB_TEMPLATE,
  GitlabReference,
  installerProgram,
  parseGitlabYaml,
  resolveJob,
  resolveReferences,
  SCHEMAS,
  scriptLines,
  type Yaml,
} from '../helpers/ci-templates.ts';

function compile(
  schemaFile: string,
  options: { unicodeRegExp?: boolean } = {},
): { ajv: Ajv; validate: ValidateFunction } {
  // Both schemas use vendor keywords (markdownDescription, firstProperty, ignoreCase…): strict off.
  const ajv = new Ajv({ strict: false, allErrors: true, ...options });
  ajv.addFormat('uri', (s: string) => URL.canParse(s));
  ajv.addFormat('uri-reference', true);
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  ajv.addFormat('regex', (s: string) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  });
  return { ajv, validate: ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8'))) };
}

/** A definition of a compiled schema (by the schema's $id), as a validator of its own. */
function definitionOf(ajv: Ajv, id: string, definition: string): ValidateFunction {
  const v = ajv.getSchema(`${id}#/definitions/${definition}`);
  if (!v) throw new Error(`no definition ${definition}`);
  return v;
}

function explain(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 15)
    .map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`)
    .join('\n');
}

const MAINTAINED_NODE = new Set(['22', '24']);

/** An Azure Pipelines template expression `${{ parameters.<name> }}`, as written in the template. */
const param = (name: string) => ['$', '{{ parameters.', name, ' }}'].join('');

describe('GitLab CI template (templates/gitlab-ci/tanuki-sts.yml)', () => {
  let validate: ValidateFunction;
  let gitlabAjv: Ajv;
  const jobSchema = (definition: string) =>
    definitionOf(gitlabAjv, 'https://gitlab.com/.gitlab-ci.yml', definition);
  let text: string;
  let asWritten: Yaml;
  let doc: Yaml;
  const hiddenJobs = () => Object.keys(doc).filter((k) => k.startsWith('.'));

  before(() => {
    ({ ajv: gitlabAjv, validate } = compile(join(SCHEMAS, 'gitlab', 'ci.json')));
    text = readFileSync(GITLAB_TEMPLATE, 'utf8');
    asWritten = parseGitlabYaml(text, 'arrays');
    doc = parseGitlabYaml(text);
  });

  it("is valid against GitLab's ci.json", () => {
    assert.equal(validate(asWritten), true, explain(validate.errors));
  });

  it('each hidden job is a valid job for ci.json (the file check alone accepts any hidden key)', () => {
    const jobTemplate = jobSchema('job_template');
    for (const name of hiddenJobs()) {
      assert.equal(jobTemplate(asWritten[name]), true, `${name}:\n${explain(jobTemplate.errors)}`);
    }
  });

  it('a pipeline of the examples, as GitLab sees it after include, !reference and extends, is valid', () => {
    const pipeline: Record<string, unknown> = { variables: doc.variables };
    for (const name of hiddenJobs().filter((j) => j.endsWith('-example'))) {
      const job = resolveReferences(doc, resolveJob(doc, name)) as Record<string, unknown>;
      // GitLab flattens nested script arrays (a !reference inside a list).
      for (const key of ['before_script', 'script', 'after_script'])
        if (job[key] !== undefined) job[key] = scriptLines(job[key]);
      pipeline[name.slice(1)] = job;
    }
    assert.ok(Object.keys(pipeline).length >= 5);
    assert.equal(validate(pipeline), true, explain(validate.errors));
  });

  it('the schema is not vacuous: a job with an id_token without aud, or an unknown key, is refused', () => {
    const jobTemplate = jobSchema('job_template');
    const noAud = structuredClone(asWritten['.tanuki-sts-oidc']);
    noAud.id_tokens.TANUKI_SUBJECT_TOKEN = { audience: 'x' };
    assert.equal(jobTemplate(noAud), false);
    const unknown = structuredClone(asWritten['.tanuki-sts-clone-example']);
    unknown.scripts = ['typo'];
    assert.equal(jobTemplate(unknown), false);
    assert.equal(validate({ build: { extends: '.x', scripts: ['typo'] } }), false);
  });

  it('every job with a Node image names a maintained Node (22 or 24)', () => {
    const images = hiddenJobs()
      .map((j) => resolveJob(doc, j).image as string | undefined)
      .filter((i): i is string => typeof i === 'string' && i.startsWith('node:'));
    assert.ok(images.length >= 1);
    for (const image of images) {
      const major = /^node:(\d+)/.exec(image)?.[1];
      assert.ok(major && MAINTAINED_NODE.has(major), `${image} is not Node 22 or 24`);
    }
  });

  it('nothing is installed from npm', () => {
    assert.doesNotMatch(text, /^\s*-?\s*(npm|npx)\s/m);
    assert.doesNotMatch(text, /npm (install|i|ci)\b/);
  });

  it('every job with a before_script of its own keeps the install step (!reference [.tanuki-sts, before_script])', () => {
    const install = scriptLines(doc['.tanuki-sts'].before_script);
    for (const name of hiddenJobs()) {
      const raw = doc[name];
      if (name === '.tanuki-sts' || raw.before_script === undefined) continue;
      const refs = (raw.before_script as unknown[]).filter(
        (x) => x instanceof GitlabReference,
      ) as GitlabReference[];
      assert.deepEqual(
        refs.map((r) => r.path),
        [['.tanuki-sts', 'before_script']],
        name,
      );
      const resolved = scriptLines(resolveReferences(doc, resolveJob(doc, name).before_script));
      assert.ok(
        install.every((l) => resolved.includes(l)),
        `${name} drops the install step`,
      );
    }
  });

  it('every job that uses tanuki-sts installs it first', () => {
    for (const name of hiddenJobs()) {
      const job = resolveReferences(doc, resolveJob(doc, name)) as Record<string, unknown>;
      const uses = scriptLines(job.script).some((l) => l.includes('tanuki-sts '));
      if (!uses) continue;
      assert.match(scriptLines(job.before_script).join('\n'), /TANUKI_STS_INSTALL/, name);
    }
  });

  it('the direct-OIDC audience is a variable whose default is the STS URL; the GitLab URL defaults to $CI_SERVER_URL', () => {
    const oidc = resolveJob(doc, '.tanuki-sts-oidc');
    assert.equal(oidc.id_tokens.TANUKI_SUBJECT_TOKEN.aud, '$TANUKI_STS_AUDIENCE');
    assert.equal(doc.variables.TANUKI_STS_AUDIENCE, '$TANUKI_STS_URL');
    assert.equal(doc.variables.TANUKI_GITLAB_URL, '$CI_SERVER_URL');
  });

  it('the credential-helper example revokes in after_script, after installing the client again there', () => {
    const job = resolveReferences(doc, resolveJob(doc, '.tanuki-sts-credential-helper-example')) as Record<
      string,
      unknown
    >;
    const after = scriptLines(job.after_script);
    assert.equal(after.at(-1), 'tanuki-sts git-credential revoke-all');
    assert.match(after.slice(0, -1).join('\n'), /TANUKI_STS_INSTALL/);
  });
});

describe('Azure Pipelines template (templates/azure-pipelines/tanuki-sts.yml)', () => {
  let validate: ValidateFunction;
  let doc: Yaml;

  before(() => {
    // Some of the schema's patterns (e.g. `\:`) are not valid with the `u` flag.
    ({ validate } = compile(join(SCHEMAS, 'azure-pipelines', 'service-schema.json'), {
      unicodeRegExp: false,
    }));
    doc = parse(readFileSync(AZURE_TEMPLATE, 'utf8'));
  });

  it("is valid against Microsoft's Azure Pipelines schema", () => {
    assert.equal(validate(doc), true, explain(validate.errors));
  });

  it('the schema is not vacuous: AzureCLI@2 without scriptType, or with an unknown input, is refused', () => {
    const missing = structuredClone(doc);
    delete missing.steps[1].inputs.scriptType;
    assert.equal(validate(missing), false);
    const unknown = structuredClone(doc);
    unknown.steps[1].inputs.serviceConnectionId = 'x';
    assert.equal(validate(unknown), false);
  });

  it('references the service connection by name in an AzureCLI@2 task that hands its script the idToken', () => {
    const task = doc.steps.find((s: Yaml) => s.task === 'AzureCLI@2');
    assert.ok(task, 'an AzureCLI@2 step');
    assert.equal(task.inputs.azureSubscription, param('serviceConnection'));
    assert.equal(task.inputs.addSpnToEnvironment, true);
    assert.equal(task.inputs.scriptType, 'bash');
    assert.equal(task.env.TANUKI_AZURE_AUTH, 'gitlab-oidc');
    assert.equal(task.env.TANUKI_ID_TOKEN_VAR, 'idToken');
    assert.match(
      task.inputs.inlineScript,
      /AZURE_TENANT_ID="\$tenantId" AZURE_CLIENT_ID="\$servicePrincipalId"/,
    );
    const params = (doc.parameters as Array<{ name: string }>).map((p) => p.name);
    assert.ok(params.includes('serviceConnection'));
    assert.ok(!params.includes('serviceConnectionId'), 'no connection by ID');
    assert.doesNotMatch(JSON.stringify(doc), /SYSTEM_ACCESSTOKEN|System\.AccessToken/);
  });

  it('uses a maintained Node (NodeTool@0, 22.x or 24.x by default) and no npm', () => {
    const node = doc.steps.find((s: Yaml) => s.task === 'NodeTool@0');
    assert.equal(node.inputs.versionSpec, param('nodeVersion'));
    const def = (doc.parameters as Array<{ name: string; default?: string }>).find(
      (p) => p.name === 'nodeVersion',
    );
    assert.ok(def?.default && MAINTAINED_NODE.has(def.default.split('.')[0]!), String(def?.default));
    assert.doesNotMatch(readFileSync(AZURE_TEMPLATE, 'utf8'), /npm (install|i|ci)\b|\bnpx\b/);
  });

  it('embeds exactly the installer of the GitLab template', () => {
    const gitlab = parseGitlabYaml(readFileSync(GITLAB_TEMPLATE, 'utf8'));
    const task = doc.steps.find((s: Yaml) => s.task === 'AzureCLI@2');
    const a = installerProgram(scriptLines(gitlab['.tanuki-sts'].before_script)[0]!);
    const b = installerProgram(task.inputs.inlineScript);
    assert.ok(a.length > 1000);
    assert.equal(b, a);
  });
});
