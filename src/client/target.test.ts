import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXIT, StsRefusedError } from './errors.ts';
import { checkFormatNeeds, renderToken } from './formats.ts';
import type { ExchangeResult } from './sts.ts';
import { resolveTarget } from './target.ts';

describe('resolveTarget', () => {
  for (const [input, gitlab, expected] of [
    [
      'platform/lib',
      'https://gitlab.example.com/',
      {
        resource: 'https://gitlab.example.com/platform/lib',
        path: 'platform/lib',
        gitlabUrl: 'https://gitlab.example.com',
      },
    ],
    [
      '/platform/lib.git/',
      'https://gitlab.example.com',
      {
        resource: 'https://gitlab.example.com/platform/lib',
        path: 'platform/lib',
        gitlabUrl: 'https://gitlab.example.com',
      },
    ],
    ['platform/lib', undefined, { audience: 'platform/lib', path: 'platform/lib' }],
    [
      'https://gitlab.example.com/platform/lib/-/tree/main',
      undefined,
      {
        resource: 'https://gitlab.example.com/platform/lib',
        path: 'platform/lib',
        gitlabUrl: 'https://gitlab.example.com',
      },
    ],
    [
      'https://host/gitlab/g/p.git',
      'https://host/gitlab',
      { resource: 'https://host/gitlab/g/p', path: 'g/p', gitlabUrl: 'https://host/gitlab' },
    ],
    [
      'http://127.0.0.1:8080/platform',
      'http://127.0.0.1:8080',
      { resource: 'http://127.0.0.1:8080/platform', path: 'platform', gitlabUrl: 'http://127.0.0.1:8080' },
    ],
  ] as const) {
    it(`${input} (gitlab ${gitlab})`, () => assert.deepEqual(resolveTarget(input, gitlab), expected));
  }
  for (const bad of [
    undefined,
    '',
    'https://gitlab.example.com/',
    'ftp://x/y',
    'https://u:p@gitlab/x',
    'a/../b',
    'a b',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () =>
      assert.throws(() => resolveTarget(bad, 'https://g'), { exitCode: EXIT.usage }));
  }
});

describe('renderToken', () => {
  const result: ExchangeResult = {
    accessToken: 'glpat-abc',
    issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    tokenType: 'Bearer',
    expiresIn: 900,
    scopes: ['read_repository', 'read_registry'],
    body: '{"access_token":"glpat-abc"}',
  };
  const input = { result, gitlabUrl: 'http://127.0.0.1:8080', registry: 'registry.example.com:5050' };
  for (const [format, expected] of [
    ['raw', 'glpat-abc\n'],
    ['json', '{"access_token":"glpat-abc"}\n'],
    ['env', "GITLAB_TOKEN='glpat-abc'\nGITLAB_USERNAME='oauth2'\n"],
    ['netrc', 'machine 127.0.0.1 login oauth2 password glpat-abc\n'],
    ['git-credentials', 'http://oauth2:glpat-abc@127.0.0.1:8080\n'],
    [
      'docker-config',
      `{"auths":{"registry.example.com:5050":{"auth":"${Buffer.from('oauth2:glpat-abc').toString('base64')}"}}}\n`,
    ],
  ] as const) {
    it(format, () => {
      checkFormatNeeds(format, input);
      assert.equal(renderToken(format, input), expected);
    });
  }
  it('docker-config refuses a grant without read_registry (exit 4)', () => {
    assert.throws(
      () => checkFormatNeeds('docker-config', { ...input, result: { ...result, scopes: ['read_api'] } }),
      (e: unknown) =>
        e instanceof StsRefusedError && e.exitCode === 4 && /without read_registry/.test(e.message),
    );
  });
  it('netrc needs a GitLab host', () => {
    assert.throws(() => checkFormatNeeds('netrc', { ...input, gitlabUrl: undefined }), { exitCode: 2 });
  });
});
