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
 * Objects are built with `Object.fromEntries` (CreateDataProperty), so a member
 * named `__proto__` is an ordinary own property, as with `JSON.parse`.
 */

export class StrictJsonError extends Error {
  constructor(
    message: string,
    /** True when the input was valid JSON but for a duplicated member name. */
    readonly duplicate = false,
  ) {
    super(message);
    this.name = 'StrictJsonError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LONE_SURROGATE = /\p{Cs}/u;

export function parseStrictJson(text: string, maxDepth = 16): unknown {
  let i = 0;

  const fail = (what: string): never => {
    throw new StrictJsonError(`${what} at offset ${i}`);
  };

  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return;
    }
  };

  const str = (): string => {
    const start = i;
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          fail('bad escape');
        }
      } else {
        i++;
      }
    }
    i++; // closing quote
    // The slice is a valid JSON string literal now; let the engine unescape it.
    const value = JSON.parse(text.slice(start, i)) as string;
    if (value.includes('\u0000')) fail('NUL in string');
    if (LONE_SURROGATE.test(value)) fail('lone surrogate in string');
    return value;
  };

  const value = (depth: number): unknown => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail('nesting too deep');
      return c === '{' ? obj(depth + 1) : arr(depth + 1);
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return Number(m[0]);
  };

  const obj = (depth: number): Record<string, unknown> => {
    i++; // {
    const entries: Array<[string, unknown]> = [];
    const seen = new Set<string>();
    ws();
    if (text[i] === '}') {
      i++;
      return {};
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail('expected a member name');
      const key = str();
      if (seen.has(key))
        throw new StrictJsonError(`duplicate member ${JSON.stringify(key.slice(0, 40))}`, true);
      seen.add(key);
      ws();
      if (text[i] !== ':') fail('expected ":"');
      i++;
      entries.push([key, value(depth)]);
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return Object.fromEntries(entries);
      }
      fail('expected "," or "}"');
    }
  };

  const arr = (depth: number): unknown[] => {
    i++; // [
    const out: unknown[] = [];
    ws();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth));
      ws();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return out;
      }
      fail('expected "," or "]"');
    }
  };

  const result = value(0);
  ws();
  if (i !== text.length) fail('trailing data');
  return result;
}
