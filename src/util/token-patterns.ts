/**
 * What a credential looks like in free text: the one definition used by the
 * audit trail's redaction (service/audit.ts), the client's stderr scrubbing
 * (client/redact.ts) and the tests' leak scans (test/helpers/). Case-insensitive:
 * a message may lowercase what it quotes, and a lowercased token is still a leak.
 *
 * GitLab tokens (doc/security/tokens/index.md, "Token prefixes"): a known
 * prefix, `-`, then either the ≤ 17.x form (`glpat-` + 20 characters) or the
 * 18.x form (`glpat-` + payload + `.01.` + 9 characters, 51–54 in all): the
 * dots are part of the value, a sentence's final `.` is not. JWTs: a compact
 * JWS/JWE starts with `eyJ` (base64url of `{"`); a header alone, or a header
 * and payload without signature, is matched too.
 */

/** GitLab's token prefixes, without the `-`. An instance prefix (`acme-glpat-`) still ends in one of these. */
export const GITLAB_TOKEN_PREFIXES = [
  'glpat', // personal, project, group and impersonation access tokens
  'gloas', // OAuth application secret
  'gldt', // deploy token
  'glrt', // runner authentication token
  'glrtr', // runner registration token
  'glcbt', // CI/CD job token
  'glptt', // pipeline trigger token
  'glft', // feed token
  'glimt', // incoming mail token
  'glagent', // agent for Kubernetes token
  'glffct', // feature flags client token
  'glsoat', // SCIM token
  'glwt', // workspace token
] as const;

const GITLAB_TOKEN_SOURCE = `\\b(?:${GITLAB_TOKEN_PREFIXES.join('|')})-[a-z0-9_-]{8,}(?:\\.[a-z0-9_-]+)*`;
const JWT_SOURCE = 'eyJ[a-z0-9_-]{5,}\\.(?:[a-z0-9_-]+(?:\\.[a-z0-9_-]*)?)?';

/** GitLab tokens. Global: for `String.replace`/`matchAll`; use `findToken` to test. */
export const GITLAB_TOKEN_PATTERN = new RegExp(GITLAB_TOKEN_SOURCE, 'gi');
/** JWT-shaped runs. Global: for `String.replace`/`matchAll`; use `findToken` to test. */
export const JWT_PATTERN = new RegExp(JWT_SOURCE, 'gi');
/** Either kind. Global: for `String.replace`/`matchAll`; use `findToken` to test. */
export const TOKEN_PATTERN = new RegExp(`${GITLAB_TOKEN_SOURCE}|${JWT_SOURCE}`, 'gi');

/** The first token-shaped run in `text`, whole, or undefined. Stateless (no `lastIndex`). */
export function findToken(text: string): string | undefined {
  return text.match(TOKEN_PATTERN)?.[0];
}
