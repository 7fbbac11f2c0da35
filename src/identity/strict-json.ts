/**
 * A small strict JSON parser (RFC 8259) for JOSE headers and claim sets.
 *
 * `JSON.parse` silently keeps the last of duplicated members, so
 * `{"alg":"none", …, "alg":"RS256"}` means different things to different
 * parsers. RFC 7515 §5.2 and RFC 7519 §4 let a recipient reject such input, and
 * we do: every object is checked for a member name that occurs twice after
 * unescaping (so `"\u0061lg"` is `"alg"`). Also refused: nesting deeper than
 * `maxDepth` (bounded work, go-jose CVE-2025-27144), strings containing U+0000
 * or a lone surrogate (not well-formed Unicode; attack catalogue #15), and
 * anything after the value.
 *
 * The value is built by `JSON.parse`, so a member named `__proto__` is an
 * ordinary own property (CreateDataProperty), never the prototype.
 */

export class StrictJsonError extends Error {
  constructor(
    message: string,
    /** True when a duplicated member name was found (the scan stops there, before the rest is checked). */
    readonly duplicate = false,
  ) {
    super(message);
    this.name = 'StrictJsonError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Two passes: a scan that builds nothing and checks everything above, then
 * `JSON.parse` to build the value. Once the scan has passed, the text is JSON
 * without duplicated members, so `JSON.parse` (native, and several times faster
 * than building objects here) cannot disagree with it about any member. The
 * scanner keeps its position in module state rather than closures: it runs
 * synchronously and never re-enters, and the closures it used to create per
 * call were the largest share of our own code in a garbage-token refusal's
 * profile (docs/performance.md).
 */
export function parseStrictJson(text: string, maxDepth = 16): unknown {
  // The depth bound is what keeps the recursion off the stack's limit.
  if (!Number.isInteger(maxDepth) || maxDepth < 0 || maxDepth > 256) {
    throw new RangeError('maxDepth must be a whole number from 0 to 256');
  }
  // A raw lone surrogate anywhere (with the u flag a well-formed pair is one code point,
  // so only a lone half matches \p{Cs}).
  if (LONE_SURROGATE.test(text)) throw new StrictJsonError('lone surrogate');
  src = text;
  pos = 0;
  limit = maxDepth;
  try {
    scanValue(0);
    skipWs();
    if (pos !== src.length) fail('trailing data');
  } finally {
    src = '';
  }
  return JSON.parse(text);
}

let src = '';
let pos = 0;
let limit = 16;

function fail(what: string): never {
  throw new StrictJsonError(`${what} at offset ${pos}`);
}

function skipWs(): void {
  for (;;) {
    const c = src.charCodeAt(pos);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
    else return;
  }
}

/** Scans a string literal at `pos` and returns its value (only member names need it). */
function scanString(): string {
  const start = pos;
  let escaped = false;
  pos++; // opening quote
  for (;;) {
    if (pos >= src.length) fail('unterminated string');
    const c = src.charCodeAt(pos);
    if (c === 0x22) break;
    if (c < 0x20) fail('control character in string');
    if (c === 0x5c) {
      escaped = true;
      const e = src.charCodeAt(pos + 1);
      if (e === 0x75 /* u */) {
        for (let k = pos + 2; k < pos + 6; k++) {
          const h = src.charCodeAt(k);
          const hex = (h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66);
          if (!hex) fail('bad \\u escape');
        }
        pos += 6;
      } else if (
        e === 0x22 ||
        e === 0x5c ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        pos += 2;
      } else {
        fail('bad escape');
      }
    } else {
      pos++;
    }
  }
  pos++; // closing quote
  if (!escaped) return src.slice(start + 1, pos - 1);
  // Escapes can spell what the raw text cannot hold: U+0000 and lone surrogates.
  const value = JSON.parse(src.slice(start, pos)) as string;
  if (value.includes('\u0000')) fail('NUL in string');
  if (LONE_SURROGATE.test(value)) fail('lone surrogate in string');
  return value;
}

function scanValue(depth: number): void {
  skipWs();
  const c = src.charCodeAt(pos);
  if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
    if (depth >= limit) fail('nesting too deep');
    if (c === 0x7b) scanObject(depth + 1);
    else scanArray(depth + 1);
    return;
  }
  if (c === 0x22) {
    scanString();
    return;
  }
  if (src.startsWith('true', pos)) {
    pos += 4;
    return;
  }
  if (src.startsWith('false', pos)) {
    pos += 5;
    return;
  }
  if (src.startsWith('null', pos)) {
    pos += 4;
    return;
  }
  NUMBER.lastIndex = pos;
  const m = NUMBER.exec(src);
  if (!m) fail('unexpected character');
  pos += m[0].length;
}

function scanObject(depth: number): void {
  pos++; // {
  skipWs();
  if (src.charCodeAt(pos) === 0x7d) {
    pos++;
    return;
  }
  const seen = new Set<string>();
  for (;;) {
    skipWs();
    if (src.charCodeAt(pos) !== 0x22) fail('expected a member name');
    const key = scanString();
    if (seen.has(key))
      throw new StrictJsonError(`duplicate member ${JSON.stringify(key.slice(0, 40))}`, true);
    seen.add(key);
    skipWs();
    if (src.charCodeAt(pos) !== 0x3a) fail('expected ":"');
    pos++;
    scanValue(depth);
    if (!another(0x7d)) return;
  }
}

function scanArray(depth: number): void {
  pos++; // [
  skipWs();
  if (src.charCodeAt(pos) === 0x5d) {
    pos++;
    return;
  }
  for (;;) {
    scanValue(depth);
    if (!another(0x5d)) return;
  }
}

/** After a member or element: true past a `,` (another follows), false past the closing bracket. */
function another(close: 0x7d | 0x5d): boolean {
  skipWs();
  const next = src.charCodeAt(pos);
  if (next !== 0x2c && next !== close) fail(`expected "," or "${String.fromCharCode(close)}"`);
  pos++;
  return next === 0x2c;
}
