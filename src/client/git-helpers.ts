/**
 * Which credential helpers git will run for a URL, as git computes it
 * (credential.c `credential_apply_config`): every `credential.helper` and
 * `credential.<url>.helper` whose URL matches, in config order (system,
 * global, repository, worktree, then GIT_CONFIG_* / -c), an empty value
 * resetting the list. Git hands an approved credential to *every* helper in
 * that list (`store`), so tanuki-sts must be alone in it or another helper
 * (store, cache, a keychain) keeps the token.
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import type { Env } from './settings.ts';

export interface ConfigEntry {
  scope: string;
  origin: string;
  key: string;
  value: string | undefined;
}

export interface HelperEntry {
  value: string;
  /** Where git found it, e.g. `global file:/home/u/.gitconfig`, `command command line:`. */
  where: string;
}

/** Parses `git config --null --show-scope --show-origin --get-regexp …`: `scope\0origin\0key\nvalue\0`… */
export function parseConfigList(out: string): ConfigEntry[] {
  const parts = out.split('\0');
  const entries: ConfigEntry[] = [];
  for (let i = 0; i + 2 < parts.length; i += 3) {
    const scope = parts[i]!;
    const origin = parts[i + 1]!;
    const kv = parts[i + 2]!;
    const nl = kv.indexOf('\n');
    entries.push({
      scope,
      origin,
      key: nl === -1 ? kv : kv.slice(0, nl),
      value: nl === -1 ? undefined : kv.slice(nl + 1),
    });
  }
  return entries;
}

function hostMatches(pattern: string, host: string): boolean {
  // git's urlmatch: `*` matches one whole host label.
  const p = pattern.toLowerCase().split('.');
  const h = host.toLowerCase().split('.');
  return p.length === h.length && p.every((label, i) => label === '*' || label === h[i]);
}

function pathMatches(patternPath: string, path: string): boolean {
  const p = patternPath.replace(/^\/+|\/+$/g, '');
  const u = path.replace(/^\/+|\/+$/g, '');
  return p === '' || u === p || u.startsWith(`${p}/`);
}

/**
 * Does a `credential.<pattern>.*` section apply to `url`? `anyPath`: count a
 * pattern for any repository path on that host (at install time the
 * repository is not known yet, so warn about all of them).
 */
export function credentialUrlMatches(pattern: string, url: URL, anyPath: boolean): boolean {
  if (pattern.includes('://')) {
    let p: URL;
    try {
      p = new URL(pattern);
    } catch {
      return false;
    }
    if (p.protocol !== url.protocol) return false;
    if (!hostMatches(p.hostname, url.hostname) || p.port !== url.port) return false;
    if (p.username && p.username !== url.username) return false;
    return anyPath || pathMatches(p.pathname, url.pathname);
  }
  // A partial URL (`gitlab.example.com`, `gitlab.example.com/group`): git matches host and path.
  const slash = pattern.indexOf('/');
  const host = slash === -1 ? pattern : pattern.slice(0, slash);
  if (host.toLowerCase() !== url.host.toLowerCase()) return false;
  return anyPath || slash === -1 || pathMatches(pattern.slice(slash), url.pathname);
}

/** The helpers git will call for `url`, from parsed config entries in git's order. */
export function effectiveHelpers(entries: ConfigEntry[], url: URL, anyPath = false): HelperEntry[] {
  let list: HelperEntry[] = [];
  for (const e of entries) {
    const lower = e.key.toLowerCase();
    if (!lower.startsWith('credential.') || !lower.endsWith('.helper')) continue;
    if (lower !== 'credential.helper') {
      const pattern = e.key.slice('credential.'.length, -'.helper'.length);
      if (!credentialUrlMatches(pattern, url, anyPath)) continue;
    }
    if (e.value === undefined) continue;
    if (e.value === '') list = [];
    else list.push({ value: e.value, where: `${e.scope} ${e.origin}`.trim() });
  }
  return list;
}

/** Reads the credential config as git sees it from here (same cwd and environment as the git that runs us). */
export function readCredentialConfig(env: Env, cwd = process.cwd()): ConfigEntry[] {
  try {
    const out = execFileSync(
      'git',
      ['config', '--null', '--show-scope', '--show-origin', '--get-regexp', '^credential\\..*helper$'],
      { cwd, env: env as NodeJS.ProcessEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return parseConfigList(out);
  } catch (err) {
    // Exit 1: no such key. Anything else (no git): nothing we can check.
    if ((err as { status?: number }).status === 1) return [];
    throw err;
  }
}

function scriptPath(argv1 = process.argv[1]): string | undefined {
  if (!argv1) return undefined;
  try {
    return realpathSync(argv1);
  } catch {
    return argv1;
  }
}

/** Is this helper value tanuki-sts's own (as installed, or as written by hand)? */
export function isOurHelper(value: string, installed?: string, script = scriptPath()): boolean {
  if (installed !== undefined && value === installed) return true;
  if (!/\bgit-credential\b/.test(value)) return false;
  return /tanuki-sts/.test(value) || (script !== undefined && value.includes(script));
}

/** The helpers other than tanuki-sts that git will hand a credential for `url`. */
export function otherHelpers(
  env: Env,
  url: URL,
  opts: { anyPath?: boolean; installed?: string; cwd?: string } = {},
): HelperEntry[] {
  return effectiveHelpers(readCredentialConfig(env, opts.cwd), url, opts.anyPath ?? false).filter(
    (h) => !isOurHelper(h.value, opts.installed),
  );
}
