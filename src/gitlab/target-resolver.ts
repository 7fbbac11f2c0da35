/**
 * Which project or group a requested path names *now*, by id and canonical path.
 *
 * GitLab keeps a redirect route when a project or group is renamed or moved,
 * and its API follows it: a token created through an old path lands on the
 * moved project, wherever it lives. The STS therefore resolves the path
 * first, refuses it unless GitLab's canonical path is the one requested, and
 * mints on the numeric id.
 *
 * A short cache keeps this at about one GitLab call per exchange (the mint)
 * under load. Its lifetime is the window in which a move goes unnoticed: a
 * path resolved just before its project moved still maps to that project's id
 * for at most `ttlMs` (docs/security.md). Ids never change, so a cached entry
 * can never point at another project, only at a project that has just moved.
 * Failures are not cached; concurrent lookups of one path share one request.
 */
import type { TargetKind } from '../util/target-kind.ts';
import type { GitlabClient, ResolvedTarget } from './types.ts';

export interface TargetResolver {
  resolve(kind: TargetKind, ref: string): Promise<ResolvedTarget>;
}

export interface TargetResolverOptions {
  /** How long an answer is reused; 0 = ask GitLab every time. */
  ttlMs: number;
  now?: () => number;
  /** Most entries kept (oldest dropped first); default 10,000. */
  maxEntries?: number;
}

export function createTargetResolver(
  gitlab: Pick<GitlabClient, 'resolveTarget'>,
  o: TargetResolverOptions,
): TargetResolver {
  const now = o.now ?? Date.now;
  const maxEntries = Math.max(1, o.maxEntries ?? 10_000);
  const cache = new Map<string, { at: number; value: Promise<ResolvedTarget> }>();

  return {
    resolve(kind, ref) {
      if (o.ttlMs <= 0) return gitlab.resolveTarget(kind, ref);
      // GitLab compares paths case-insensitively, so one entry serves every spelling.
      const key = `${kind}:${ref.toLowerCase()}`;
      const t = now();
      const hit = cache.get(key);
      if (hit && t - hit.at < o.ttlMs) return hit.value;
      if (hit) cache.delete(key);
      const value = gitlab.resolveTarget(kind, ref);
      cache.set(key, { at: t, value });
      value.catch(() => {
        if (cache.get(key)?.value === value) cache.delete(key);
      });
      while (cache.size > maxEntries) {
        const oldest = cache.keys().next().value as string;
        cache.delete(oldest);
      }
      return value;
    },
  };
}
