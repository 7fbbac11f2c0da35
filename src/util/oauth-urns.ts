/**
 * RFC 8693 identifiers (§2.1 grant type, §3 token types): the one copy the
 * STS, the pipeline client and the tests use. The emulators keep their own.
 */
export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
