/**
 * Azure's errors as the one line an operator reads (the real SDK against the
 * Key Vault emulator: test/integration/credential-keyvault.test.ts). Shapes as
 * @azure/core-rest-pipeline's RestError and @azure/identity's errors carry them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { azureErrorText, skipsChallengeCheck } from './keyvault.ts';

const rest = (statusCode: number | undefined, code: string | undefined, message: string) =>
  Object.assign(new Error(message), { name: 'RestError', statusCode, code });

describe('azureErrorText', () => {
  const cases: Array<[string, unknown, string, boolean]> = [
    [
      '403 with the missing action',
      rest(
        403,
        'Forbidden',
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c;oid=8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e;iss=https://sts.windows.net/x/\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '/subscriptions/…'\r\n",
      ),
      '403 Forbidden: identity 8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e lacks Microsoft.KeyVault/vaults/secrets/getSecret/action (it needs "Key Vault Secrets Officer" on this secret)',
      false,
    ],
    [
      '404 SecretNotFound',
      rest(404, 'SecretNotFound', 'A secret with (name/id) gitlab-token was not found in this key vault.'),
      '404 SecretNotFound: no such secret in this vault (store the first token in it: docs/operations.md)',
      false,
    ],
    [
      '401 with the AKV code',
      rest(401, 'Unauthorized', 'AKV10022: Invalid audience.'),
      '401 Unauthorized (AKV10022)',
      false,
    ],
    ['503', rest(503, 'ServiceUnavailable', 'busy'), '503 ServiceUnavailable', true],
    [
      'a network error',
      rest(undefined, 'REQUEST_SEND_ERROR', 'connect ECONNREFUSED 127.0.0.1:1'),
      'cannot reach the vault (ECONNREFUSED)',
      true,
    ],
    [
      'an AADSTS code, first sentence only',
      Object.assign(
        new Error(
          'ClientSecretCredential authentication failed: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value. Trace ID: 1',
        ),
        { name: 'AuthenticationError' },
      ),
      'sign-in failed: AADSTS7000215: Invalid client secret provided',
      false,
    ],
    [
      'no identity at all',
      Object.assign(
        new Error('ChainedTokenCredential authentication failed.\nCredentialUnavailableError: …'),
        {
          name: 'AggregateAuthenticationError',
        },
      ),
      'sign-in failed: no Azure identity is available here (environment, workload identity or managed identity)',
      true,
    ],
    ['a timeout', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'no answer within 30 s', true],
  ];
  for (const [name, err, text, transient] of cases) {
    it(name, () => assert.deepEqual(azureErrorText(err, 30_000), { text, transient }));
  }

  it('never quotes a token, a control character or more than a line', () => {
    const err = Object.assign(
      new Error(
        'ManagedIdentityCredential: glpat-abcdefghijklmnopqrstuvwx \u001b[31mred\u202e evil\nsecond line',
      ),
      { name: 'CredentialUnavailableError' },
    );
    const { text } = azureErrorText(err, 1000);
    assert.equal(text, 'sign-in failed: ManagedIdentityCredential: [redacted] [31mred evil');
  });
});

describe('skipsChallengeCheck', () => {
  it('only with a caFile and a loopback vault (the emulator); never for a real vault host', () => {
    const at = (vaultUrl: string, caFile?: string) =>
      skipsChallengeCheck({ vaultUrl, secret: 's', ...(caFile ? { caFile } : {}) });
    assert.equal(at('https://localhost:8443', '/ca.pem'), true);
    assert.equal(at('https://127.0.0.1:8443', '/ca.pem'), true);
    assert.equal(at('https://[::1]:8443', '/ca.pem'), true);
    assert.equal(at('https://localhost:8443'), false);
    assert.equal(at('https://tanuki.vault.azure.net', '/ca.pem'), false);
    assert.equal(at('https://evil.example.com', '/ca.pem'), false);
  });
});
