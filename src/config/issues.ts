/**
 * What a configuration problem says: the offending key and what was
 * expected. zod's own texts (`Invalid input`, `Unrecognized key`) are
 * replaced through an error map that sees the schema behind each issue:
 *
 * - a missing key: `required (a list of strings, at least 1)`;
 * - a wrong type: `expected …, got a string`;
 * - an unknown key: `` unknown key `tennant` (did you mean `tenant`?) `` — the
 *   suggestion is the known key of that object nearest in edit distance;
 * - a union none of whose shapes fits: every shape it accepts, and the
 *   unknown keys with their nearest known ones. When exactly one shape fits
 *   the value's type and keys (an `entra:` issuer missing `audiences`), that
 *   shape's own problems are reported instead, under their full keys.
 */
import { z } from 'zod';

type Schema = z.core.$ZodType;
type Def = z.core.$ZodTypeDef & {
  innerType?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  valueType?: Schema;
  options?: readonly Schema[];
  in?: Schema;
  out?: Schema;
  values?: readonly unknown[];
  entries?: Record<string, unknown>;
};
type CheckDef = { check: string; minimum?: number };
const checks = (d: Def): CheckDef[] => (d.checks ?? []).map((c) => c._zod.def as CheckDef);

/** What the reader should write, attached to a value type with `.meta({ expected })` (fields.ts). */
interface Expected {
  expected?: string;
  title?: string;
}

/** One problem: the key (`issuers.contoso.audiences`, `policies[0].match.roles`) and what is wrong. */
export interface ConfigIssue {
  key: string;
  message: string;
}

const def = (s: Schema): Def => s._zod.def as Def;
const metaOf = (s: Schema): Expected | undefined => z.globalRegistry.get(s) as Expected | undefined;
/** A key or word in backticks, cut at 64 characters (a key may be anything a YAML file holds). */
const code = (v: unknown) => {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return `\`${text.length > 64 ? `${text.slice(0, 61)}...` : text}\``;
};

/** `a`, `a or b`, `a, b or c`. */
export function joinOr(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[s.length]![t.length]!;
}

/** The known word nearest to `word`, if it is near enough to be a typo (one edit per three letters, at most 3). */
export function didYouMean(word: string, known: Iterable<string>): string | undefined {
  if (word.length > 64) return undefined;
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of known) {
    const dist = editDistance(word, k);
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  return best;
}

function unknownKeys(keys: readonly string[], known: readonly string[]): string {
  const each = keys.map((k) => {
    const near = didYouMean(k, known);
    return near === undefined ? code(k) : `${code(k)} (did you mean ${code(near)}?)`;
  });
  const allowed = known.length > 0 && known.length <= 8 ? `; allowed: ${known.map(code).join(', ')}` : '';
  return `unknown key${keys.length > 1 ? 's' : ''} ${each.join(', ')}${allowed}`;
}

/** Peel `default`, `optional`, `nullable`, `readonly`: what the value itself must be. */
function core(schema: Schema): Schema {
  let s = schema;
  for (;;) {
    const d = def(s);
    if (d.innerType && ['default', 'optional', 'nullable', 'readonly', 'prefault'].includes(d.type)) {
      if (metaOf(s)?.expected !== undefined) return s;
      s = d.innerType;
    } else return s;
  }
}

function minimum(d: Def, check: string): number | undefined {
  return checks(d).find((c) => c.check === check)?.minimum;
}

function plural(item: string): string {
  const simple: Record<string, string> = {
    'a string': 'strings',
    'a number': 'numbers',
    'a whole number': 'whole numbers',
  };
  return simple[item] ?? `items (each ${item})`;
}

/** The keys an object schema requires, then `…` if it takes optional ones too. */
function objectShape(d: Def): string {
  const entries = Object.entries(d.shape ?? {});
  const required = entries
    .filter(([, s]) => !['optional', 'default'].includes(def(s).type))
    .map(([k]) => `${k}: …`);
  const more = required.length < entries.length ? (required.length ? ', …' : '…') : '';
  return `\`{ ${required.join(', ')}${more} }\``;
}

/** A noun phrase for what `schema` accepts: `a list of strings, at least 1`, `` `{ contains: … }` ``. */
export function describe(schema: Schema | undefined): string {
  if (!schema) return 'a value';
  const s = core(schema);
  const m = metaOf(s);
  if (m?.expected !== undefined) return m.expected;
  const d = def(s);
  switch (d.type) {
    case 'string':
      return 'a string';
    case 'number':
    case 'int':
      return checks(d).some((c) => c.check === 'number_format') ? 'a whole number' : 'a number';
    case 'boolean':
      return '`true` or `false`';
    case 'literal':
      return joinOr((d.values ?? []).map(code));
    case 'enum':
      return `one of ${Object.values(d.entries ?? {})
        .map(code)
        .join(', ')}`;
    case 'array': {
      const min = minimum(d, 'min_length');
      return `a list of ${plural(describe(d.element))}${min ? `, at least ${min}` : ''}`;
    }
    case 'record':
      return `a map of names to ${plural(describe(d.valueType)).replace(/^items \(each (.*)\)$/, '$1')}`;
    case 'object':
      return m?.title ? `${m.title} ${objectShape(d)}` : objectShape(d);
    case 'union':
      return joinOr((d.options ?? []).map(describe));
    case 'pipe': {
      const out = d.out && def(d.out).type;
      return describe(out === 'enum' || out === 'literal' ? d.out : d.in);
    }
    default:
      return 'a value';
  }
}

function received(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return `\`${v}\``;
  return `a ${typeof v}`;
}

/** The object keys every option of a union knows. */
function unionKeys(options: readonly Schema[]): string[] {
  const keys = new Set<string>();
  for (const o of options) for (const k of Object.keys(def(core(o)).shape ?? {})) keys.add(k);
  return [...keys];
}

type AnyIssue = z.core.$ZodIssue;

/** A branch of a union that failed at its root: wrong type or value, or keys it does not know. */
function failsAtRoot(i: AnyIssue): boolean {
  return (
    i.path.length === 0 &&
    (i.code === 'invalid_type' ||
      i.code === 'invalid_value' ||
      i.code === 'unrecognized_keys' ||
      i.code === 'invalid_union')
  );
}

/** zod's error map for the configuration: every message names what was expected. */
export const configErrorMap: z.core.$ZodErrorMap = (iss) => {
  const inst = iss.inst as Schema | undefined;
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return `required (${describe(inst)})`;
      return `expected ${describe(inst)}, got ${received(iss.input)}`;
    case 'invalid_value': {
      // Quoted only when it cannot be a secret pasted into the wrong key: a short lower-case word.
      const word = typeof iss.input === 'string' && /^[a-z_]{1,40}$/.test(iss.input) ? iss.input : undefined;
      if (word === undefined) return `expected ${describe(inst)}`;
      const near = didYouMean(
        word,
        iss.values.filter((v): v is string => typeof v === 'string'),
      );
      return `expected ${describe(inst)}, got ${code(word)}${near ? ` (did you mean ${code(near)}?)` : ''}`;
    }
    case 'too_small':
    case 'too_big': {
      const bound = Number(iss.code === 'too_small' ? iss.minimum : iss.maximum);
      const exclusive = !iss.inclusive;
      const rel =
        iss.code === 'too_small'
          ? exclusive
            ? 'more than'
            : 'at least'
          : exclusive
            ? 'less than'
            : 'at most';
      if (iss.origin === 'array' || iss.origin === 'set')
        return `expected ${rel} ${bound} item${bound === 1 ? '' : 's'}`;
      if (iss.origin === 'string') {
        return bound === 1 && iss.code === 'too_small'
          ? 'must not be empty'
          : `expected ${rel} ${bound} character${bound === 1 ? '' : 's'}`;
      }
      return `expected a number ${rel} ${bound}`;
    }
    case 'unrecognized_keys':
      return unknownKeys(iss.keys, Object.keys(inst ? (def(inst).shape ?? {}) : {}));
    case 'invalid_union': {
      const options = inst ? (def(inst).options ?? []) : [];
      const known = unionKeys(options);
      const strangers = new Set<string>();
      for (const branch of iss.errors ?? []) {
        for (const i of branch) {
          if (i.code === 'unrecognized_keys' && i.path.length === 0) {
            for (const k of i.keys) if (!known.includes(k)) strangers.add(k);
          }
        }
      }
      const expected = `expected ${joinOr(options.map(describe))}`;
      return strangers.size ? `${expected}; ${unknownKeys([...strangers], known)}` : expected;
    }
    default:
      return undefined;
  }
};

export function formatKey(path: readonly PropertyKey[]): string {
  const key = path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
  return key.replace(/\.\[/g, '[') || '(root)';
}

/**
 * One line per problem. A union whose value fits exactly one of its shapes
 * (by type and keys) reports that shape's problems under their full keys.
 */
export function flattenIssues(
  issues: readonly AnyIssue[],
  prefix: readonly PropertyKey[] = [],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const fitting = issue.errors.filter((branch) => branch.length > 0 && !branch.some(failsAtRoot));
      if (fitting.length === 1) {
        out.push(...flattenIssues(fitting[0]!, path));
        continue;
      }
    }
    out.push({ key: formatKey(path), message: issue.message });
  }
  return out;
}
