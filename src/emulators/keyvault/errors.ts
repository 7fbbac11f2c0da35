/**
 * Errors as Azure Key Vault's data plane answers them: `{"error":{"code","message"[,"innererror":{"code"}]}}`
 * (Microsoft Learn, "Common parameters and headers": "Common error response"). Every `401`
 * carries the authentication challenge (auth.ts), as Key Vault's do.
 *
 * Messages quoted from Key Vault (the page or thread each comes from):
 * - `AKV10000: Request is missing a Bearer or PoP token.` (../shared/reference/azure-key-vault.md)
 * - `AKV10022: Invalid audience. Expected https://vault.azure.net or cfa8b339-…, found: <aud>.`
 *   (argoproj-labs/argocd-vault-plugin#621, 2024)
 * - `AKV10032: Invalid issuer. Expected one of <issuers>, found <iss>.` (Azure/azure-sdk-for-js
 *   `sdk/keyvault/TROUBLESHOOTING.md`, issue #6221)
 * - `AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '<header>'.`
 *   (Azure-Samples/azuresandbox#188)
 * - `Token not yet valid` (Azure/azure-sdk-for-java#26624)
 * - `Forbidden` / `ForbiddenByRbac`: `Caller is not authorized to perform action on resource.\r\n…`
 *   (piyushsachdeva/Terraform_AKS#2, Azure/Commercial-Marketplace-SaaS-Accelerator#710)
 * - `SecretNotFound`: `A secret with (name/id) <name> was not found in this key vault. If you recently
 *   deleted this secret you may be able to recover it using the correct recovery command. For help
 *   resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182` (Azure/azure-sdk-for-js#25489)
 * - `BadParameter`: `The request URI contains an invalid name: <name>` (aspnet/MicrosoftConfigurationBuilders#22),
 *   `The specified version (<v>) is not recognized. Consider using the latest supported version (<latest>).`
 *   (Azure/azure-sdk-for-net#14789)
 * The others (a malformed or expired token, a bad signature, a missing `api-version`, a bad body,
 * an unknown path) are the emulator's own words; README.md lists them.
 */

export class KeyVaultError extends Error {
  static readonly code = 'ERR_KEYVAULT_EMULATOR';
  readonly code = KeyVaultError.code;
  override name = 'KeyVaultError';
  constructor(
    readonly status: number,
    /** Key Vault's `error.code` (`Unauthorized`, `Forbidden`, `SecretNotFound`, `BadParameter`, …). */
    readonly errorCode: string,
    message: string,
    /** `error.innererror.code` (`ForbiddenByRbac`, `SecretDisabled`). */
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

export interface KeyVaultErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

export function errorBody(err: KeyVaultError): KeyVaultErrorBody {
  return {
    error: {
      code: err.errorCode,
      message: err.message,
      ...(err.innerCode ? { innererror: { code: err.innerCode } } : {}),
    },
  };
}

/** The Key Vault application (public cloud) and resource: the two audiences a vault accepts. */
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
export const KEY_VAULT_APP_ID = 'cfa8b339-82a2-471a-a3c9-0fc0be7a4093';

const unauthorized = (message: string) => new KeyVaultError(401, 'Unauthorized', message);

/** What the caller was denied, for the `403` message (Azure RBAC's wording). */
export interface Denial {
  action: string;
  appId: string | undefined;
  objectId: string;
  issuer: string;
  /** The ARM resource ID of the vault, or of the secret (`…/secrets/<name>`). */
  resource: string;
  vaultName: string;
  location: string;
}

export const kvErrors = {
  missingToken: () => unauthorized('AKV10000: Request is missing a Bearer or PoP token.'),
  malformedToken: () => unauthorized('Invalid bearer token: not a signed JWT (emulator).'),
  invalidAudience: (found: string) =>
    unauthorized(
      `AKV10022: Invalid audience. Expected ${KEY_VAULT_RESOURCE} or ${KEY_VAULT_APP_ID}, found: ${found}.`,
    ),
  invalidIssuer: (expected: string[], found: string) =>
    unauthorized(`AKV10032: Invalid issuer. Expected one of ${expected.join(', ')}, found ${found}.`),
  unknownKey: (encodedHeader: string) =>
    unauthorized(
      `AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '${encodedHeader}'.`,
    ),
  badSignature: () => unauthorized('Invalid bearer token: the signature does not verify (emulator).'),
  expired: () => unauthorized('Token expired (emulator).'),
  notYetValid: () => unauthorized('Token not yet valid'),
  noObjectId: () => unauthorized('Invalid bearer token: no oid claim (emulator).'),
  forbidden: (d: Denial) =>
    new KeyVaultError(
      403,
      'Forbidden',
      'Caller is not authorized to perform action on resource.\r\n' +
        'If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n' +
        `Caller: appid=${d.appId ?? 'null'};oid=${d.objectId};iss=${d.issuer}\r\n` +
        `Action: '${d.action}'\r\n` +
        `Resource: '${d.resource.toLowerCase()}'\r\n` +
        'Assignment: (not found)\r\n' +
        'DenyAssignmentId: null\r\n' +
        'DecisionReason: null \r\n' +
        `Vault: ${d.vaultName};location=${d.location}\r\n`,
      'ForbiddenByRbac',
    ),
  secretDisabled: () =>
    new KeyVaultError(
      403,
      'Forbidden',
      'Operation get is not allowed on a disabled secret.',
      'SecretDisabled',
    ),
  secretNotFound: (nameOrId: string) =>
    new KeyVaultError(
      404,
      'SecretNotFound',
      `A secret with (name/id) ${nameOrId} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    ),
  invalidName: (name: string) =>
    new KeyVaultError(400, 'BadParameter', `The request URI contains an invalid name: ${name}`),
  missingApiVersion: () =>
    new KeyVaultError(400, 'BadParameter', 'The api-version query parameter is required (emulator).'),
  unsupportedApiVersion: (given: string, latest: string) =>
    new KeyVaultError(
      400,
      'BadParameter',
      `The specified version (${given}) is not recognized. Consider using the latest supported version (${latest}).`,
    ),
  badParameter: (message: string) => new KeyVaultError(400, 'BadParameter', message),
  notFound: () => new KeyVaultError(404, 'NotFound', 'The emulator has no such endpoint (emulator).'),
  notImplemented: (what: string) =>
    new KeyVaultError(501, 'NotImplemented', `The Key Vault emulator does not implement ${what}.`),
  bodyTooLarge: (limit: number) =>
    new KeyVaultError(413, 'BadParameter', `The request body is larger than ${limit} bytes (emulator).`),
  internal: () => new KeyVaultError(500, 'InternalServerError', 'Internal error in the Key Vault emulator.'),
};
