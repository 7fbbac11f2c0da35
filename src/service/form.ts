/**
 * Strict application/x-www-form-urlencoded parsing for the token and
 * revocation endpoints: ASCII only, valid percent-encoding and UTF-8, no
 * parameter given twice (RFC 6749 §3.2: "Request and response parameters
 * MUST NOT be included more than once"), a bounded number of parameters.
 */
import { InvalidRequestError } from './errors.ts';

const MAX_PARAMS = 32;

export type FormParams = ReadonlyMap<string, string>;

export function parseForm(body: string): FormParams {
  const params = new Map<string, string>();
  if (body.length === 0) return params;
  if (/[^\x20-\x7e]/.test(body)) {
    throw new InvalidRequestError(
      'the request body must be form-urlencoded ASCII',
      'non-ASCII byte in form body',
    );
  }
  const pairs = body.split('&');
  if (pairs.length > MAX_PARAMS) {
    throw new InvalidRequestError('too many parameters', `form has ${pairs.length} parameters`);
  }
  for (const pair of pairs) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const name = decode(rawName);
    const value = decode(rawValue);
    if (params.has(name)) {
      throw new InvalidRequestError(
        'a parameter was given more than once',
        `duplicate parameter ${safeName(name)}`,
      );
    }
    params.set(name, value);
  }
  return params;
}

function decode(s: string): string {
  // Most values (a JWT, a grant type) need no decoding at all.
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new InvalidRequestError(
      'the request body is not valid form-urlencoded UTF-8',
      'bad percent-encoding',
    );
  }
}

/** Parameter names echoed into the audit log are trimmed to something harmless. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '?').slice(0, 40);
}
