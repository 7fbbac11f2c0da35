/**
 * The cheap checks, before any key is looked at (octo-sts CVE-2024-34079:
 * bounded work on unauthenticated input): size cap,
 * exactly three canonical base64url segments (RFC 7515 §7.1 compact
 * serialisation; a JWE has five, JSON serialisation starts with `{`), strict
 * UTF-8 (RFC 7515 §5.2 step 4), strict JSON objects without duplicate members.
 */
import { MAX_SUBJECT_TOKEN_CHARS } from '../util/token-limits.ts';
import { SubjectTokenCodes as C, quote, refuse } from './errors.ts';
import { parseStrictJson, StrictJsonError } from './strict-json.ts';

/** Longest encoded header segment (1 KiB decoded). */
export const MAX_HEADER_SEGMENT = 1368;
/** Deepest JSON nesting in header or payload. */
export const MAX_JSON_DEPTH = 16;

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface DecodedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export function decodeCompact(token: unknown): DecodedJws {
  if (typeof token !== 'string') throw refuse(C.MALFORMED, 'subject token is not a string');
  if (token.length > MAX_SUBJECT_TOKEN_CHARS) {
    throw refuse(
      C.TOO_LARGE,
      `subject token is ${token.length} characters; the limit is ${MAX_SUBJECT_TOKEN_CHARS}`,
    );
  }
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw refuse(C.MALFORMED, `expected 3 dot-separated segments (compact JWS), got ${parts.length}`);
  }
  const [h, p, s] = parts as [string, string, string];
  for (const [name, seg] of [
    ['header', h],
    ['payload', p],
    ['signature', s],
  ] as const) {
    // No padding, no whitespace, no standard-base64 characters (RFC 7515 §2, §7.1).
    if (!SEGMENT.test(seg)) throw refuse(C.MALFORMED, `${name} segment is empty or not base64url`);
  }
  if (h.length > MAX_HEADER_SEGMENT) throw refuse(C.MALFORMED, `header segment is ${h.length} characters`);
  if (!canonicalBase64url(s)) throw refuse(C.MALFORMED, 'signature segment is not canonical base64url');
  return { header: decodeObject(h, 'header'), payload: decodeObject(p, 'payload') };
}

/** Decoding then re-encoding must give the same text: no stray trailing bits, no length ≡ 1 (mod 4). */
function canonicalBase64url(seg: string): boolean {
  return Buffer.from(seg, 'base64url').toString('base64url') === seg;
}

function decodeObject(seg: string, name: 'header' | 'payload'): Record<string, unknown> {
  if (!canonicalBase64url(seg)) throw refuse(C.MALFORMED, `${name} segment is not canonical base64url`);
  let text: string;
  try {
    text = utf8.decode(Buffer.from(seg, 'base64url'));
  } catch {
    throw refuse(C.MALFORMED, `${name} is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = parseStrictJson(text, MAX_JSON_DEPTH);
  } catch (err) {
    if (err instanceof StrictJsonError && err.duplicate) {
      throw refuse(C.DUPLICATE_MEMBER, `${name}: ${err.message} (duplicate JSON members are rejected)`);
    }
    throw refuse(C.MALFORMED, `${name} is not strict JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw refuse(
      C.MALFORMED,
      `${name} is not a JSON object (${quote(Array.isArray(value) ? 'array' : typeof value)})`,
    );
  }
  return value as Record<string, unknown>;
}
