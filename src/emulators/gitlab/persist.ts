/**
 * Files under the state dir: `gitlab-state.json` (with `persist`: bots,
 * tokens, groups and projects with their moves, redirect routes), `seed-tokens.json` (generated seed token values, always, so a
 * restarted dev stack keeps its admin token) and `admin-token`.
 * Writes are atomic (temporary file + rename) and debounced.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StateSnapshot } from './store.ts';

export const STATE_FILE = 'gitlab-state.json';
export const SEED_TOKENS_FILE = 'seed-tokens.json';
export const ADMIN_TOKEN_FILE = 'admin-token';

export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

export function readJsonFile<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    // A damaged file is ignored: the emulator starts from its seed.
    return undefined;
  }
}

export function loadSnapshot(stateDir: string): StateSnapshot | undefined {
  const s = readJsonFile<StateSnapshot>(join(stateDir, STATE_FILE));
  // Version 1 (bots and tokens) still loads; version 2 adds groups, projects and redirects.
  return (s?.version === 1 || s?.version === 2) && Array.isArray(s.tokens) && Array.isArray(s.bots)
    ? s
    : undefined;
}

export interface Persister {
  /** Schedules a write (debounced). */
  schedule(): void;
  /** Writes now if anything changed. */
  flush(): void;
}

export function createPersister(
  stateDir: string,
  snapshot: () => StateSnapshot,
  debounceMs = 500,
): Persister {
  const file = join(stateDir, STATE_FILE);
  let timer: NodeJS.Timeout | undefined;
  let dirty = false;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!dirty) return;
    dirty = false;
    writeFileAtomic(file, JSON.stringify(snapshot()));
  };
  return {
    schedule() {
      dirty = true;
      if (!timer) {
        timer = setTimeout(flush, debounceMs);
        timer.unref();
      }
    },
    flush,
  };
}

/** `username/tokenName` → value, in seed order (the admin's first). */
export function readSeedTokens(stateDir: string): Record<string, string> {
  const v = readJsonFile<Record<string, unknown>>(join(stateDir, SEED_TOKENS_FILE)) ?? {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string' && x.startsWith('glpat-')) out[k] = x;
  return out;
}

export function writeSeedTokens(
  stateDir: string,
  values: Record<string, string>,
  adminToken: string | null,
): void {
  writeFileAtomic(join(stateDir, SEED_TOKENS_FILE), `${JSON.stringify(values, null, 2)}\n`);
  if (adminToken) writeFileAtomic(join(stateDir, ADMIN_TOKEN_FILE), `${adminToken}\n`);
}
