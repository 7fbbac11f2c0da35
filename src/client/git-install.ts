/**
 * What `git-credential --install` and `--uninstall` change in the user's
 * global git config, planned from the config as it is (pure: entries in,
 * `git config --global …` argument lists out; commands.ts prints and runs them).
 *
 * `--install` writes, in `[credential "<gitlab>"]`, an empty `helper` (the
 * reset: helpers configured before it for this URL are not used), the helper
 * command (`helperCommand`: `!'<node>' '<script>' git-credential[ --sts '<url>']`)
 * and `useHttpPath = true`. It replaces a helper it installed earlier in that
 * section and leaves every other entry alone, so `--uninstall` can remove
 * what it added: the helper, the reset just before it, `useHttpPath`, and the
 * section when nothing else is left in it. (`useHttpPath` carries no mark of who
 * set it: one the user had set to true for that same URL goes too, and git's
 * default, false, applies again.)
 */
import { isLoopbackHost } from './trust.ts';

export interface GlobalEntry {
  /** As git prints it: section and name lower-cased, the subsection as written. */
  key: string;
  /** undefined for a key written without `=` (git's boolean shorthand). */
  value: string | undefined;
}

/** Parses `git config --global --null --list`: `key\nvalue\0` (or `key\0` for a key without value). */
export function parseGlobalList(out: string): GlobalEntry[] {
  return out
    .split('\0')
    .filter((part) => part !== '')
    .map((part) => {
      const nl = part.indexOf('\n');
      return nl === -1
        ? { key: part, value: undefined }
        : { key: part.slice(0, nl), value: part.slice(nl + 1) };
    });
}

const QUOTED = String.raw`'((?:[^']|'\\'')*)'`;
/** Exactly the shape `helperCommand` writes (unchanged since the first release). */
const INSTALLED = new RegExp(`^!${QUOTED} ${QUOTED} git-credential(?: --sts ${QUOTED})?$`);

/** A helper value `--install` wrote, and the STS it names; undefined for anything else (also our helper written by hand). */
export function parseInstalledHelper(value: string | undefined): { sts: string | undefined } | undefined {
  if (value === undefined) return undefined;
  const m = INSTALLED.exec(value);
  if (!m) return undefined;
  return { sts: m[3] === undefined ? undefined : m[3].replace(/'\\''/g, "'") };
}

interface Section {
  /** The URL in `[credential "<url>"]`, as written. */
  url: string;
  /** `helper` values in file order. */
  helpers: Array<string | undefined>;
  /** Lower-cased names of the section's other keys (`usehttppath`, `username`, …), one per entry. */
  others: string[];
}

/** `credential.<url>.*` sections of the global config, in order of first appearance. */
function credentialSections(entries: GlobalEntry[]): Section[] {
  const byUrl = new Map<string, Section>();
  for (const e of entries) {
    if (!e.key.startsWith('credential.')) continue;
    const last = e.key.lastIndexOf('.');
    if (last <= 'credential'.length) continue; // credential.helper, credential.usehttppath: no URL
    const url = e.key.slice('credential.'.length, last);
    const name = e.key.slice(last + 1);
    let s = byUrl.get(url);
    if (!s) {
      s = { url, helpers: [], others: [] };
      byUrl.set(url, s);
    }
    if (name === 'helper') s.helpers.push(e.value);
    else s.others.push(name);
  }
  return [...byUrl.values()];
}

/** The helper values left once every installed helper `ours` accepts, and the reset just before each, are taken out. */
function withoutOurs(
  helpers: Array<string | undefined>,
  ours: (sts: string | undefined) => boolean,
): { remaining: Array<string | undefined>; removed: number } {
  const drop = new Set<number>();
  helpers.forEach((value, i) => {
    const installed = parseInstalledHelper(value);
    if (!installed || !ours(installed.sts)) return;
    drop.add(i);
    if (i > 0 && helpers[i - 1] === '' && !drop.has(i - 1)) drop.add(i - 1);
  });
  return {
    remaining: helpers.filter((_, i) => !drop.has(i)),
    removed: [...drop].filter((i) => helpers[i] !== '').length,
  };
}

/** `git config --global` arguments that set a section's helper list to `values` (after removing what was there). */
function rewriteHelpers(section: Section, values: Array<string | undefined>): string[][] {
  const key = `credential.${section.url}.helper`;
  const steps: string[][] = [];
  if (section.helpers.length > 0) steps.push(['--unset-all', key]);
  for (const v of values) steps.push(['--add', key, v ?? 'true']);
  return steps;
}

/** `--install` for `gitlab` with `helper`: replaces an earlier install in that section, keeps everything else. */
export function planInstall(entries: GlobalEntry[], gitlab: string, helper: string): string[][] {
  const section = credentialSections(entries).find((s) => s.url === gitlab) ?? {
    url: gitlab,
    helpers: [],
    others: [],
  };
  const key = `credential.${gitlab}.helper`;
  const { remaining, removed } = withoutOurs(section.helpers, () => true);
  // An earlier install is taken out (with its reset); the user's own entries are not touched.
  const steps = removed > 0 ? rewriteHelpers(section, remaining) : [];
  steps.push(['--add', key, ''], ['--add', key, helper], [`credential.${gitlab}.useHttpPath`, 'true']);
  return steps;
}

export interface UninstallTarget {
  /** Remove the install for this GitLab URL (normalised, as `--install` writes it)… */
  gitlab?: string;
  /** …else every install whose helper names this STS; neither: every install. */
  sts?: string;
}

export interface UninstallPlan {
  steps: string[][];
  /** Section URLs an installed helper was removed from. */
  urls: string[];
}

function isHttpLoopback(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

function sameUrl(a: string, b: string): boolean {
  const norm = (x: string) => {
    try {
      const u = new URL(x);
      return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    } catch {
      return x;
    }
  };
  return norm(a) === norm(b);
}

/**
 * `--uninstall`: removes the helpers `--install` wrote for the target, each with the reset
 * written just before it, and `useHttpPath` (which `--install` set) from their sections; a
 * section with nothing else in it is removed. For a development target
 * (http on a loopback host) it also removes the installs for other loopback ports that
 * name a loopback STS: dev stacks of earlier versions changed ports on every start, and
 * each `--install` left a `[credential "http://127.0.0.1:<port>"]` section behind.
 */
export function planUninstall(entries: GlobalEntry[], target: UninstallTarget): UninstallPlan {
  const devTarget = target.gitlab !== undefined ? isHttpLoopback(target.gitlab) : isHttpLoopback(target.sts);
  const staleDev = (url: string, sts: string | undefined) =>
    devTarget && isHttpLoopback(url) && (sts === undefined || isHttpLoopback(sts));
  const matches = (url: string, sts: string | undefined): boolean => {
    if (target.gitlab !== undefined) return sameUrl(url, target.gitlab) || staleDev(url, sts);
    if (target.sts !== undefined)
      return (sts !== undefined && sameUrl(sts, target.sts)) || (sts !== undefined && staleDev(url, sts));
    return true;
  };
  const steps: string[][] = [];
  const urls: string[] = [];
  for (const section of credentialSections(entries)) {
    const { remaining, removed } = withoutOurs(section.helpers, (sts) => matches(section.url, sts));
    if (removed === 0) continue;
    urls.push(section.url);
    const others = section.others.filter((n) => n !== 'usehttppath');
    if (remaining.length === 0 && others.length === 0) {
      steps.push(['--remove-section', `credential.${section.url}`]);
      continue;
    }
    steps.push(...rewriteHelpers(section, remaining));
    if (section.others.includes('usehttppath'))
      steps.push(['--unset-all', `credential.${section.url}.useHttpPath`]);
  }
  return { steps, urls };
}
