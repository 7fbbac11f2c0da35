/**
 * Claim matchers: compiled once, then evaluated against a token's claims.
 * Every comparison is type-strict (`===`): a YAML `true` never matches the
 * string "true", a YAML `42` never matches "42". Claim names are top-level
 * keys of the token; there is no dotted path into nested objects.
 *
 * A claim value holding a control character (C0 — NUL, \t, \n, \r … —, DEL,
 * C1, U+2028/2029, bidi formatting), as a string or as a string element of an array, fails every matcher,
 * whatever it is: `[^/]+` would otherwise accept "main\nanything". Checked
 * here, where every policy decision (exchange, `policy test`) goes through,
 * rather than in the token validator, so no issuer kind or claim escapes it.
 */
import { PolicyCompileError } from './errors.ts';
import type { ClaimMatcher } from './types.ts';

export type Scalar = string | number | boolean;

export type CompiledMatcher =
  | { kind: 'exact'; claim: string; value: Scalar }
  | { kind: 'oneOf'; claim: string; values: readonly Scalar[] }
  | { kind: 'contains'; claim: string; value: string | number }
  | { kind: 'pattern'; claim: string; source: string; re: RegExp };

export function compileMatcher(policy: string, claim: string, m: ClaimMatcher): CompiledMatcher {
  // No claim value may hold a control character, so a policy value with one could never match.
  const values = Array.isArray(m) ? m : typeof m !== 'object' ? [m] : 'contains' in m ? [m.contains] : [];
  if (values.some(hasControlChar)) {
    throw new PolicyCompileError(policy, `match.${claim}: a value holds a control character`);
  }
  if (Array.isArray(m)) return { kind: 'oneOf', claim, values: [...m] };
  if (typeof m === 'object') {
    if ('contains' in m) return { kind: 'contains', claim, value: m.contains };
    let re: RegExp;
    try {
      // Anchored here, not by the operator: `a.b` must never match "xa.by".
      re = new RegExp(`^(?:${m.pattern})$`, 'u');
    } catch (err) {
      throw new PolicyCompileError(policy, `match.${claim}: invalid pattern: ${(err as Error).message}`);
    }
    return { kind: 'pattern', claim, source: m.pattern, re };
  }
  return { kind: 'exact', claim, value: m };
}

/**
 * C0 controls (U+0000-U+001F), DEL (U+007F), C1 controls (U+0080-U+009F), the
 * line and paragraph separators (U+2028, U+2029: line breaks to JavaScript and
 * many log viewers) and the bidirectional formatting characters (U+200E,
 * U+200F, U+202A-U+202E, U+2066-U+2069: they make a value read differently
 * from what it is, "Trojan Source", CVE-2021-42574), in a string or a string element.
 */
export function hasControlChar(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasControlChar);
  if (typeof v !== 'string') return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
    if (c >= 0x200e && c <= 0x206f && SEPARATORS_AND_BIDI.has(c)) return true;
  }
  return false;
}

const SEPARATORS_AND_BIDI = new Set([
  0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);

/** A key that keeps the type: the string "42" and the number 42 are different keys. */
export function scalarKey(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return `s:${v}`;
    case 'number':
      return `n:${v}`;
    case 'boolean':
      return `b:${v}`;
    default:
      return undefined;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a ${t}`;
}

/**
 * Undefined when the matcher holds, else why not. The reason names the claim
 * and the kind of mismatch but no expected value: it goes to the audit log.
 */
export function checkMatcher(
  m: CompiledMatcher,
  claims: Readonly<Record<string, unknown>>,
): string | undefined {
  // Own properties only: a policy on `constructor` must not find Object.prototype's.
  if (!Object.hasOwn(claims, m.claim)) return `claim ${m.claim}: missing`;
  const v = claims[m.claim];
  if (hasControlChar(v)) return `claim ${m.claim}: holds a control character`;
  switch (m.kind) {
    case 'exact':
      if (v === m.value) return undefined;
      return typeof v === typeof m.value
        ? `claim ${m.claim}: value differs`
        : `claim ${m.claim}: expected ${typeName(m.value)}, token has ${typeName(v)}`;
    case 'oneOf':
      if (Array.isArray(v)) return `claim ${m.claim}: is an array (a list matches one value; use contains)`;
      return m.values.includes(v as Scalar) ? undefined : `claim ${m.claim}: not one of the listed values`;
    case 'contains':
      if (!Array.isArray(v)) return `claim ${m.claim}: expected an array, token has ${typeName(v)}`;
      return v.includes(m.value) ? undefined : `claim ${m.claim}: does not contain the value`;
    case 'pattern':
      if (typeof v !== 'string') return `claim ${m.claim}: expected a string, token has ${typeName(v)}`;
      return m.re.test(v) ? undefined : `claim ${m.claim}: does not match the pattern`;
  }
}

/** The matcher as an operator wrote it, for `policy test`. */
export function describeMatcher(m: CompiledMatcher): string {
  switch (m.kind) {
    case 'exact':
      return JSON.stringify(m.value);
    case 'oneOf':
      return `one of ${JSON.stringify(m.values)}`;
    case 'contains':
      return `contains ${JSON.stringify(m.value)}`;
    case 'pattern':
      return `pattern ^(?:${m.source})$`;
  }
}
