/**
 * Who may import whom under src/, checked over the import graph (biome's
 * noRestrictedImports matches specifier strings, not resolved folders, so a
 * per-folder rule would need one pattern per nesting depth).
 *
 * Every `import … from`, `export … from`, bare `import '…'` and `import('…')`
 * with a relative specifier, in every .ts file under src/, is resolved to the
 * folder it lands in (`src/<folder>/…`, or `test/`, `bench/`… outside src) and
 * checked against RULES. Tests (`*.test.ts`) and test utilities
 * (`*.testutil.ts`) are exempt only where a rule says so: they may wire the
 * emulators to the product and build inputs through the real config schema.
 * The emulators get no exemption: they share no code with the product at all,
 * not even src/util, so they stay stand-ins for Entra ID and GitLab.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Every folder under src/, what it is, and (by RULES) what it may not import. */
const FOLDERS = {
  config: 'the configuration: schema, loading, secrets',
  util: 'small helpers shared by several parts (leaf)',
  identity: 'subject-token validation (pure layer)',
  policy: 'the policy engine (pure layer)',
  ledger: 'the grant ledger (pure layer)',
  gitlab: "the STS's GitLab client (pure layer)",
  credential: "the STS's own GitLab credential: sources, holder, rotation (pure layer)",
  service: 'the HTTP service',
  client: 'the pipeline client',
  cli: 'the command line: wiring only',
  emulators: 'Entra ID, GitLab and Key Vault stand-ins for development and tests',
} as const;
type Folder = keyof typeof FOLDERS;
const ALL = Object.keys(FOLDERS) as Folder[];
const PURE: Folder[] = ['identity', 'policy', 'ledger', 'gitlab', 'credential'];

interface Rule {
  from: readonly Folder[];
  /** Folders under src/, or `outside` for anything beyond src/ (test/, bench/, scripts/, …). */
  forbid: readonly (Folder | 'outside')[];
  /** Tests and *.testutil.ts may break this rule. */
  testsExempt?: true;
  why: string;
}

export const RULES: readonly Rule[] = [
  {
    from: PURE,
    forbid: ['service', 'cli', 'client'],
    why: 'the pure layers never depend on the HTTP service, the CLI or the client',
  },
  {
    from: PURE,
    forbid: ['config'],
    testsExempt: true,
    why: 'the config imports domain types from the domains, never the reverse (tests may build inputs through the real schema)',
  },
  {
    from: ['config'],
    // `credential` only for the plain data of `gitlab.token`'s forms (credential/types.ts).
    forbid: ['service', 'cli', 'client', 'ledger', 'gitlab'],
    why: 'the config knows the domains whose settings it holds (identity, policy) and util, nothing above',
  },
  { from: ['util'], forbid: ALL.filter((f) => f !== 'util'), why: 'util is a leaf' },
  {
    from: ['ledger', 'gitlab'],
    forbid: ['credential'],
    why: 'the credential layer uses the GitLab client and the ledger, never the reverse',
  },
  { from: ['service'], forbid: ['cli', 'client'], why: 'the service is below the command line' },
  {
    from: ['client'],
    forbid: ALL.filter((f) => f !== 'client' && f !== 'util'),
    why: 'the client shares only src/util with the STS',
  },
  {
    from: ALL.filter((f) => f !== 'emulators' && f !== 'cli'),
    forbid: ['emulators'],
    testsExempt: true,
    why: 'the product never imports an emulator; only the CLI (`emulate`, `dev`) and tests wire them in',
  },
  {
    from: ['emulators'],
    forbid: [...ALL.filter((f) => f !== 'emulators'), 'outside'],
    why: 'the emulators share no code with the product, not even src/util',
  },
  {
    from: ALL.filter((f) => f !== 'emulators'),
    forbid: ['outside'],
    testsExempt: true,
    why: 'shipped code imports nothing beyond src/ (test helpers are for tests)',
  },
];

/**
 * The emulators under src/emulators/, one folder per outside service. Each imports only its own
 * folder and the shared files directly in src/emulators/ (the local CA, `tls.ts`), never another
 * emulator: they meet over HTTP as the real services do (the Key Vault emulator knows Entra ID
 * only through its JWKS). Tests may wire them together.
 */
export const EMULATORS = {
  entra: 'Microsoft Entra ID and the managed identity endpoints',
  gitlab: 'GitLab REST API v4 and git smart HTTP',
  keyvault: "Azure Key Vault secrets (challenge authentication, RBAC per secret); trusts Entra ID's JWKS",
} as const;

/** One line per import from one emulator's folder into another's (tests exempt). */
export function crossEmulatorImports(files: ReadonlyMap<string, string>): string[] {
  const emulatorOf = (path: string) => {
    const [top, area, sub, ...rest] = path.split('/');
    return top === 'src' && area === 'emulators' && sub !== undefined && rest.length > 0 ? sub : undefined;
  };
  const found: string[] = [];
  for (const [file, source] of files) {
    const from = emulatorOf(file);
    if (from === undefined || isTest(file)) continue;
    for (const spec of relativeImports(source)) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec))
        .split(sep)
        .join('/');
      const to = emulatorOf(target);
      if (to !== undefined && to !== from)
        found.push(`${file} imports ${spec}: the ${from} emulator must not import the ${to} emulator`);
    }
  }
  return found;
}

const SPECIFIERS = [
  /\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** Relative specifiers of one file's source, in order of appearance per kind. */
export function relativeImports(source: string): string[] {
  return SPECIFIERS.flatMap((re) => [...source.matchAll(re)].map((m) => m[1] ?? '')).filter((s) =>
    s.startsWith('.'),
  );
}

const isTest = (file: string) => /\.(test|testutil)\.ts$/.test(file);

/** `src/<folder>` of a repository-relative path, or `outside`. */
function areaOf(path: string): Folder | 'outside' | undefined {
  const [top, folder] = path.split('/');
  if (top !== 'src') return 'outside';
  return folder !== undefined && folder in FOLDERS ? (folder as Folder) : undefined;
}

/** One line per forbidden import in `files` (repository-relative path → source). */
export function violations(files: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [file, source] of files) {
    const from = areaOf(file);
    if (from === undefined || from === 'outside') {
      found.push(`${file}: src/${file.split('/')[1]} is not in FOLDERS (add it, with its rules)`);
      continue;
    }
    for (const spec of relativeImports(source)) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec))
        .split(sep)
        .join('/');
      const to = areaOf(target);
      if (to === from) continue;
      for (const rule of RULES) {
        if (!rule.from.includes(from) || to === undefined || !rule.forbid.includes(to)) continue;
        if (rule.testsExempt && isTest(file)) continue;
        found.push(`${file} imports ${spec} (${to}): ${from} must not import ${to}: ${rule.why}`);
      }
    }
  }
  return found;
}

function sources(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) sources(path, out);
    else if (name.endsWith('.ts')) out.set(path, readFileSync(join(ROOT, path), 'utf8'));
  }
  return out;
}

describe('import rules (src/)', () => {
  it('every folder under src/ is known and says what it owns in a README.md', () => {
    for (const name of readdirSync(join(ROOT, 'src'))) {
      if (!statSync(join(ROOT, 'src', name)).isDirectory()) continue;
      assert.ok(name in FOLDERS, `src/${name} is not in FOLDERS`);
      assert.ok(
        statSync(join(ROOT, 'src', name, 'README.md'), { throwIfNoEntry: false }),
        `src/${name}/README.md`,
      );
    }
  });

  it('no file under src/ imports what its folder must not', () => {
    const files = sources('src');
    assert.ok(files.size > 100, `read ${files.size} files`);
    assert.deepEqual(violations(files), []);
  });

  it('every emulator folder is known, has a README.md, and imports no other emulator', () => {
    for (const name of readdirSync(join(ROOT, 'src', 'emulators'))) {
      if (!statSync(join(ROOT, 'src', 'emulators', name)).isDirectory()) continue;
      assert.ok(name in EMULATORS, `src/emulators/${name} is not in EMULATORS`);
      assert.ok(statSync(join(ROOT, 'src', 'emulators', name, 'README.md'), { throwIfNoEntry: false }), name);
    }
    assert.deepEqual(crossEmulatorImports(sources('src/emulators')), []);
    const probe = new Map([
      [
        'src/emulators/keyvault/a.ts',
        "import { x } from '../entra/keys.ts';\nimport { y } from '../tls.ts';",
      ],
      ['src/emulators/keyvault/a.test.ts', "import { x } from '../entra/dev-seed.ts';"],
    ]);
    assert.equal(crossEmulatorImports(probe).length, 1);
  });

  it('the checker sees static, re-exported, type-only and dynamic imports, and the exemptions', () => {
    const files = new Map([
      ['src/identity/a.ts', "import { x } from '../service/app.ts';\nexport * from '../cli/main.ts';"],
      [
        'src/policy/b.ts',
        "import type {\n  T,\n} from '../config/index.ts';\nawait import('../client/sts.ts');",
      ],
      ['src/policy/b.test.ts', "import { parseConfig } from '../config/index.ts';"],
      ['src/emulators/gitlab/c.ts', "import '../../util/hash.ts';"],
      ['src/identity/d.test.ts', "import { tls } from '../emulators/tls.ts';"],
      ['src/service/e.ts', "import { tls } from '../emulators/tls.ts';"],
      ['src/cli/f.ts', "import { start } from '../emulators/gitlab/index.ts';"],
    ]);
    assert.deepEqual(
      violations(files).map((v) => v.replace(/^(\S+) imports \S+ \((\w+)\).*$/s, '$1 → $2')),
      [
        'src/identity/a.ts → service',
        'src/identity/a.ts → cli',
        'src/policy/b.ts → config',
        'src/policy/b.ts → client',
        'src/emulators/gitlab/c.ts → util',
        'src/service/e.ts → emulators',
      ],
    );
  });
});
