/**
 * `server.deny`: identities refused before any policy is looked at — the
 * "stop this identity now" switch of the kill-switch runbook
 * (docs/operations.md). Each entry is a `match` as a policy writes it (the same
 * matchers, type-strict, own properties only, control characters never
 * matching), optionally limited to one issuer. A linear scan: the list is
 * short (it names incidents, not workloads).
 */
import type { Identity } from '../identity/types.ts';
import { DenyListError, PolicyCompileError } from './errors.ts';
import { type CompiledMatcher, checkMatcher, compileMatcher } from './match.ts';
import type { DenyRule } from './types.ts';

interface CompiledDenyRule {
  issuer?: string;
  matchers: readonly CompiledMatcher[];
}

export interface DenyList {
  readonly rules: readonly CompiledDenyRule[];
}

/** Compile `server.deny`; throws DenyListError naming the entry (`server.deny[i]`). */
export function compileDenyList(rules: readonly DenyRule[]): DenyList {
  return {
    rules: rules.map((r, i): CompiledDenyRule => {
      const key = `server.deny[${i}]`;
      const entries = Object.entries(r.match);
      if (entries.length === 0) throw new DenyListError(key, 'match needs at least one claim');
      const matchers = entries.map(([claim, m]) => {
        try {
          return compileMatcher(key, claim, m);
        } catch (err) {
          if (err instanceof PolicyCompileError) {
            throw new DenyListError(key, err.message.slice(`policy "${key}": `.length));
          }
          throw err;
        }
      });
      return r.issuer === undefined ? { matchers } : { issuer: r.issuer, matchers };
    }),
  };
}

/** The index of the first entry that matches the caller, or undefined when none does. */
export function deniedBy(list: DenyList, identity: Identity): number | undefined {
  for (let i = 0; i < list.rules.length; i++) {
    const r = list.rules[i] as CompiledDenyRule;
    if (r.issuer !== undefined && r.issuer !== identity.issuer) continue;
    if (r.matchers.every((m) => checkMatcher(m, identity.claims) === undefined)) return i;
  }
  return undefined;
}
