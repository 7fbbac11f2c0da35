import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { childEnvironment, gitEnvFor, keepList, runCommand } from './exec.ts';
import { resolveSettings } from './settings.ts';

describe('gitEnvFor', () => {
  it('appends an extraHeader after existing GIT_CONFIG entries and sets GITLAB_TOKEN and GITLAB_USERNAME', () => {
    const env = gitEnvFor('http://127.0.0.1:8080', 'glpat-x', { GIT_CONFIG_COUNT: '2' });
    assert.deepEqual(env, {
      GITLAB_TOKEN: 'glpat-x',
      GITLAB_USERNAME: 'oauth2',
      GIT_CONFIG_KEY_2: 'http.http://127.0.0.1:8080/.extraHeader',
      GIT_CONFIG_VALUE_2: `Authorization: Basic ${Buffer.from('oauth2:glpat-x').toString('base64')}`,
      GIT_CONFIG_COUNT: '3',
    });
    assert.equal(gitEnvFor('https://g', 't', {}).GIT_CONFIG_KEY_0, 'http.https://g/.extraHeader');
    assert.equal('CI_JOB_TOKEN' in env, false);
  });
  it("a deploy token: git's header and GITLAB_USERNAME carry the STS's gitlab_username", () => {
    const env = gitEnvFor('https://g', 'gldt-abcdefghij', {}, 'gitlab+deploy-token-7');
    assert.equal(env.GITLAB_USERNAME, 'gitlab+deploy-token-7');
    assert.equal(
      env.GIT_CONFIG_VALUE_0,
      `Authorization: Basic ${Buffer.from('gitlab+deploy-token-7:gldt-abcdefghij').toString('base64')}`,
    );
  });
  it('refuses a broken GIT_CONFIG_COUNT', () => {
    assert.throws(() => gitEnvFor('https://g', 't', { GIT_CONFIG_COUNT: 'x' }), { exitCode: 2 });
  });
});

describe('childEnvironment', () => {
  it("strips the pipeline's credentials and the configured token variables, keeps the rest", () => {
    const env = {
      PATH: '/bin',
      AZURE_CLIENT_ID: 'c',
      AZURE_CLIENT_SECRET: 's',
      SYSTEM_ACCESSTOKEN: 'a',
      MY_JWT: 'j',
      TANUKI_ID_TOKEN_VAR: 'MY_JWT',
      CI_JOB_TOKEN: 'job',
    };
    const settings = resolveSettings({ sts: 'https://s', idTokenVar: 'MY_JWT' }, env);
    const out = childEnvironment(env, settings, []);
    assert.deepEqual(out.stripped, ['AZURE_CLIENT_SECRET', 'MY_JWT', 'SYSTEM_ACCESSTOKEN']);
    assert.deepEqual(out.env, {
      PATH: '/bin',
      AZURE_CLIENT_ID: 'c',
      TANUKI_ID_TOKEN_VAR: 'MY_JWT',
      CI_JOB_TOKEN: 'job',
    });
    assert.equal(childEnvironment(env, settings, ['MY_JWT']).env.MY_JWT, 'j');
  });
  it('--keep-env and TANUKI_KEEP_ENV names are checked', () => {
    assert.deepEqual(keepList(['A'], { TANUKI_KEEP_ENV: 'B, C D' }), ['A', 'B', 'C', 'D']);
    assert.throws(() => keepList(['A=B'], {}), { exitCode: 2 });
  });
});

describe('runCommand', () => {
  const sh = (script: string) => ['/bin/sh', '-c', script];
  const run = async (command: string[], signalSource?: EventEmitter) => {
    const events: string[] = [];
    const code = await runCommand({
      command,
      env: { PATH: process.env.PATH, GITLAB_TOKEN: 'tok' },
      after: async () => void events.push('after'),
      warn: (l) => events.push(`warn:${l}`),
      signalSource,
    });
    return { code, events };
  };

  it('returns the exit code and runs `after` on success and failure', async () => {
    assert.deepEqual(await run(sh('test "$GITLAB_TOKEN" = tok')), { code: 0, events: ['after'] });
    assert.deepEqual(await run(sh('exit 7')), { code: 7, events: ['after'] });
  });

  it('127 for a missing command, still running `after`', async () => {
    const r = await run(['/no/such/command']);
    assert.equal(r.code, 127);
    assert.deepEqual(r.events, ['warn:command not found: /no/such/command', 'after']);
  });

  it('forwards SIGTERM to the child, waits, runs `after`, returns 128+15', async () => {
    const source = new EventEmitter();
    const p = run(sh('exec sleep 30'), source);
    await new Promise((r) => setTimeout(r, 200));
    source.emit('SIGTERM');
    const r = await p;
    assert.equal(r.code, 143);
    assert.deepEqual(r.events, ['after']);
    assert.equal(source.listenerCount('SIGTERM'), 0);
  });

  it('reports a failing `after` without changing the exit code', async () => {
    const code = await runCommand({
      command: sh('exit 3'),
      env: { PATH: process.env.PATH },
      after: async () => {
        throw new Error('could not revoke');
      },
      warn: () => {},
    });
    assert.equal(code, 3);
  });
});
