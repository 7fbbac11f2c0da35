/**
 * Client authentication at the token endpoint (RFC 6749 §2.3, §2.3.1, §3.2.1),
 * for the request people already write for GitLab's `/oauth/token`:
 * `client_id` + `client_secret` in the body (`client_secret_post`), or HTTP
 * Basic with both form-urlencoded first (`client_secret_basic`). The clients
 * are the config's `clients`; a policy may require one (`client: NAME`).
 *
 * - A secret is compared in constant time: the SHA-256 of what was sent
 *   against the SHA-256 kept from the config (`timingSafeEqual`), so neither
 *   its length nor its first differing byte shows in the time taken. An
 *   unknown client costs the same comparison, against a random digest.
 * - `401 invalid_client` (errors.ts) for a `client_secret` of a client that is
 *   not configured (or without `client_id`), a wrong secret, a malformed or
 *   non-Basic `Authorization` header, or two methods at once; the description
 *   never says which, the audit reason does (without the secret).
 * - A bare `client_id` (no secret, no header) is a public client's name: it
 *   authenticates nothing and is recorded in the audit event: as a hash
 *   (`sha256:…`), unless it names a configured client (auditName).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../util/hash.ts';
import { findToken } from '../util/token-patterns.ts';
import { InvalidClientError } from './errors.ts';
import type { FormParams } from './form.ts';

/** Confidential clients by name, each as the SHA-256 of its secret: the secret itself is not kept. */
export interface ClientRegistry {
  readonly digests: ReadonlyMap<string, Buffer>;
}

/**
 * A client whose secret is empty (not read: `check-config --no-secrets`, a Key Vault secret before
 * `readClientSecrets`) is left out: it can never authenticate, rather than with an empty secret.
 */
export function createClientRegistry(clients: Readonly<Record<string, { secret: string }>>): ClientRegistry {
  const digests = new Map<string, Buffer>();
  for (const [name, c] of Object.entries(clients)) if (c.secret !== '') digests.set(name, digestOf(c.secret));
  return { digests };
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface ClientAuthResult {
  /** The confidential client the request authenticated as; undefined when none. */
  client?: string;
  method: ClientAuthMethod;
  /**
   * A public client's `client_id`, for the audit event: as sent when it names a configured
   * client (named without its secret), else `sha256:<first 16 hex digits>` (see auditName).
   */
  publicClientId?: string;
}

const PLAIN_NAME = /^[A-Za-z0-9_.~-]{1,128}$/;
/** RFC 7617 token68 after `Basic `; base64 with its padding. */
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;
const MAX_AUTHORIZATION_CHARS = 4096;

function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Compared against when the client is unknown, so that the time taken does not say so. */
const DUMMY = randomBytes(32);

/**
 * How a `client_id` appears in the audit: as sent when it names a configured client (a name the
 * operator wrote, not a secret), else as `sha256:<first 16 hex digits>`: a caller who swapped
 * `client_id` and `client_secret`, or pasted a token there, must not leave its secret in the
 * audit trail. An operator matches a public client's name with `printf %s NAME | sha256sum`.
 */
function auditName(registry: ClientRegistry, id: string): string {
  return registry.digests.has(id) && PLAIN_NAME.test(id) && findToken(id) === undefined
    ? id
    : `sha256:${sha256Hex(id).slice(0, 16)}`;
}

/** RFC 6749 §2.3.1 / Appendix B: each part of the Basic credentials is form-urlencoded. */
function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** `Authorization: Basic …` → id and secret, or why not (for the audit reason; never quotes them). */
function parseBasic(header: string): { id: string; secret: string } | string {
  if (header.length > MAX_AUTHORIZATION_CHARS) return 'Authorization header too long';
  const m = BASIC.exec(header);
  if (!m) {
    const scheme = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,20}(?= |$)/.exec(header)?.[0];
    return scheme && scheme.toLowerCase() !== 'basic'
      ? `unsupported authentication scheme ${scheme}`
      : 'malformed Basic credentials';
  }
  const b64 = m[1] as string;
  const bytes = Buffer.from(b64, 'base64');
  // Strict base64: what decodes must encode back to what was sent.
  if (bytes.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
    return 'malformed Basic credentials (base64)';
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return 'malformed Basic credentials (UTF-8)';
  }
  const colon = text.indexOf(':');
  if (colon === -1) return 'malformed Basic credentials (no colon)';
  const id = formDecode(text.slice(0, colon));
  const secret = formDecode(text.slice(colon + 1));
  if (id === undefined || secret === undefined) return 'malformed Basic credentials (percent-encoding)';
  if (id === '') return 'Basic credentials without a client_id';
  return { id, secret };
}

/**
 * Who the client is. Throws InvalidClientError (401) for every failed or ambiguous attempt;
 * returns `method: 'none'` when the request made none.
 */
export function authenticateClient(
  registry: ClientRegistry,
  params: FormParams,
  authorization: string | undefined,
): ClientAuthResult {
  const bodyId = params.get('client_id');
  const bodySecret = params.get('client_secret');
  let id: string;
  let secret: string;
  let method: ClientAuthMethod;
  if (authorization !== undefined) {
    const basic = parseBasic(authorization);
    if (typeof basic === 'string') throw new InvalidClientError(basic);
    // RFC 6749 §2.3: one method per request.
    if (bodySecret !== undefined) {
      throw new InvalidClientError('two client authentication methods (HTTP Basic and client_secret)');
    }
    if (bodyId !== undefined && bodyId !== basic.id) {
      throw new InvalidClientError('client_id in the body differs from the HTTP Basic one');
    }
    ({ id, secret } = basic);
    method = 'client_secret_basic';
  } else if (bodySecret !== undefined) {
    if (bodyId === undefined || bodyId === '')
      throw new InvalidClientError('client_secret without client_id');
    id = bodyId;
    secret = bodySecret;
    method = 'client_secret_post';
  } else {
    return bodyId === undefined || bodyId === ''
      ? { method: 'none' }
      : { method: 'none', publicClientId: auditName(registry, bodyId) };
  }
  const known = registry.digests.get(id);
  const equal = timingSafeEqual(digestOf(secret), known ?? DUMMY);
  if (!known) throw new InvalidClientError(`unknown client ${auditName(registry, id)} (${method})`);
  if (!equal) throw new InvalidClientError(`wrong secret for client ${id} (${method})`);
  return { client: id, method };
}
