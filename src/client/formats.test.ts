import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from './errors.ts';
import { isGitlabToken, readTokenOutput, renderToken } from './formats.ts';
import { OUTPUT_FORMATS } from './settings.ts';

const TOKEN = 'glpat-Ab3_dEf-9hIjKlMnOpQr';
const TOKEN_18 = 'glpat-Xy9Zq1w2E3r4T5y6U7i8O9p0AaBbCcDdEeFfG.01.0a1b2c3d4';

function input(token: string) {
  return {
    result: {
      accessToken: token,
      issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      tokenType: 'Bearer',
      expiresIn: 900,
      scopes: ['read_repository', 'read_registry'],
      body: JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 900 }),
    },
    gitlabUrl: 'https://gitlab.example.com',
    registry: 'registry.gitlab.example.com',
  };
}

function usage(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof ClientError && e.exitCode === 2 && message.test(e.message));
}

describe('readTokenOutput: the inverse of every format `token` prints', () => {
  for (const format of OUTPUT_FORMATS) {
    for (const token of [TOKEN, TOKEN_18]) {
      it(`${format}: ${token.length}-character token`, () => {
        const printed = renderToken(format, input(token));
        assert.deepEqual(readTokenOutput(printed), { token, format });
      });
    }
  }

  it('env as earlier versions wrote it (unquoted) and with CRLF line ends', () => {
    assert.deepEqual(readTokenOutput(`GITLAB_TOKEN=${TOKEN}\n`), { token: TOKEN, format: 'env' });
    assert.deepEqual(readTokenOutput(`${TOKEN}\r\n`), { token: TOKEN, format: 'raw' });
  });

  it('an instance token prefix (acme-glpat-…) is a GitLab token', () => {
    assert.equal(isGitlabToken('acme-glpat-Ab3dEf9hIjKlMnOpQr12'), true);
    assert.equal(readTokenOutput('acme-glpat-Ab3dEf9hIjKlMnOpQr12').token, 'acme-glpat-Ab3dEf9hIjKlMnOpQr12');
  });
});

describe('readTokenOutput refuses what holds no GitLab token, saying what it expected', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['notatoken', 'notatoken\n', /9 characters, not GitLab-token-shaped/],
    ['empty', '\n', /empty/],
    ['a JWT (an Entra token piped by mistake)', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', /a JWT/],
    ['two tokens', `${TOKEN}\n${TOKEN}\n`, /several lines/],
    ['a sentence', `here is ${TOKEN}`, /not one token/],
    ['a token with a suffix', `${TOKEN}!`, /not GitLab-token-shaped/],
    ['env of another variable', `OTHER=${TOKEN}`, /not one token|not GitLab-token-shaped/],
    ['env holding no token', "GITLAB_TOKEN='x'", /GITLAB_TOKEN value holds 1 character,/],
    ['netrc with another password', 'machine h login oauth2 password hunter22', /netrc password/],
    ['git-credentials without a password', 'https://gitlab.example.com', /carries no password/],
    ['json without access_token', '{"token_type":"Bearer"}', /neither access_token/],
    ['json that is not JSON', '{"access_token": ', /not JSON/],
    [
      'docker-config with two registries',
      '{"auths":{"a":{"auth":"eA=="},"b":{"auth":"eA=="}}}',
      /2 registries/,
    ],
    [
      'docker-config whose user is no username',
      `{"auths":{"r":{"auth":"${Buffer.from(`m e:${TOKEN}`).toString('base64')}"}}}`,
      /not <username>:<token>/,
    ],
    ['env with a second line that is not GITLAB_USERNAME', `GITLAB_TOKEN=${TOKEN}\nOTHER=x`, /several lines/],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => usage(() => readTokenOutput(text), message));
  }

  it('every refusal names the formats it accepts, and never quotes the input', () => {
    const secret = 'hunter2-is-my-password';
    for (const text of [secret, `machine h login x password ${secret}`, `{"access_token":"${secret}"}`]) {
      try {
        readTokenOutput(text);
        assert.fail('accepted');
      } catch (e) {
        assert.ok(e instanceof ClientError);
        assert.match(e.message, /raw, env .*netrc, git-credentials, docker-config or json/);
        assert.doesNotMatch(e.message, /hunter2/);
      }
    }
  });
});

describe('the username (gitlab_username) in every output', () => {
  const DEPLOY = 'gldt-Ab3dEf9hIjKlMnOpQr12';
  const deploy = (username?: string) => {
    const i = input(DEPLOY);
    return { ...i, result: { ...i.result, ...(username === undefined ? {} : { username }) } };
  };

  it("a deploy token's username in env, netrc, git-credentials and docker-config; each read back by revoke", () => {
    const d = deploy('gitlab+deploy-token-42');
    assert.equal(
      renderToken('env', d),
      `GITLAB_TOKEN='${DEPLOY}'\nGITLAB_USERNAME='gitlab+deploy-token-42'\n`,
    );
    assert.equal(
      renderToken('netrc', d),
      `machine gitlab.example.com login gitlab+deploy-token-42 password ${DEPLOY}\n`,
    );
    assert.equal(
      renderToken('git-credentials', d),
      `https://gitlab%2Bdeploy-token-42:${DEPLOY}@gitlab.example.com\n`,
    );
    const git = new URL(renderToken('git-credentials', d).trim());
    assert.equal(decodeURIComponent(git.username), 'gitlab+deploy-token-42');
    const docker = JSON.parse(renderToken('docker-config', d));
    assert.equal(
      Buffer.from(docker.auths['registry.gitlab.example.com'].auth, 'base64').toString(),
      `gitlab+deploy-token-42:${DEPLOY}`,
    );
    for (const format of OUTPUT_FORMATS) {
      assert.deepEqual(readTokenOutput(renderToken(format, d)), { token: DEPLOY, format }, format);
    }
  });

  it('an answer without gitlab_username (an older STS): oauth2, as before', () => {
    assert.match(renderToken('netrc', deploy()), / login oauth2 /);
    assert.match(renderToken('env', deploy()), /\nGITLAB_USERNAME='oauth2'\n$/);
  });

  it('never prints a username that is not one', () => {
    for (const bad of ['a b', 'x\nmachine evil', "o'neil", 'a:b', '']) {
      assert.throws(() => renderToken('netrc', deploy(bad)), /not one/, JSON.stringify(bad));
    }
  });
});
