/**
 * Subject-token validation: turns an Entra ID or OIDC JWT into an `Identity`,
 * or refuses it with a `SubjectTokenError`. See README.md for what is checked.
 */
export type { EntraVersion } from './discovery.ts';
export { GENERIC_MESSAGE, type SubjectTokenCode, SubjectTokenCodes, SubjectTokenError } from './errors.ts';
export { createJsonFetcher, type FetchJson, MAX_RESPONSE_BYTES } from './fetch-json.ts';
export type { EntraIssuerConfig, IssuerConfig, OidcIssuerConfig } from './issuer-config.ts';
export { type Identity, identityKey } from './types.ts';
export {
  createTokenValidator,
  DEFAULT_BACKGROUND_REFRESH_MS,
  DEFAULT_COOLDOWN_MS,
  type TokenValidator,
  type TokenValidatorHandle,
  type ValidatorOptions,
} from './validator.ts';
