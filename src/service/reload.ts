/**
 * Reloading the configuration without a restart (SIGHUP, `tanuki-sts reload`
 * through the admin socket): the file is read and validated as at start-up,
 * then the reloadable parts are compiled; only when all of that succeeded is a
 * new request context built and swapped in. Otherwise the running
 * configuration stays, the error is logged and counted
 * (`tanuki_sts_config_reload_total{outcome="error"}`) and the STS keeps serving.
 *
 * Reloadable: `issuers` and `tokens` (a new validator), `policies`, `clients`,
 * `server.deny`, `server.rateLimit`, `server.maxActiveGrantsPerIdentity`.
 * Everything else (listeners, TLS, `publicUrl`, `id`, `gitlab`, `store`,
 * `reaper`, `audit`, …, and any key added later) needs a restart: a change is
 * reported and not applied, never half-applied.
 *
 * Each request takes the context current when it starts (app.ts), so an
 * exchange in flight finishes under the configuration it started with; a
 * replaced validator is closed only after `server.requestTimeout`, when no
 * request can still be using it. Grants minted under a removed policy stay
 * until their TTL (the reaper ends them; the kill switch sooner).
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, type StsConfig } from '../config/index.ts';
import type { TokenValidatorHandle } from '../identity/index.ts';
import { DenyListError, PolicyCompileError } from '../policy/index.ts';
import type { StsContext } from './context.ts';
import { createRateLimiter } from './limits.ts';
import { compileConfig, readClientSecrets } from './runtime.ts';

export interface ReloadResult {
  outcome: 'success' | 'error';
  /** The reloadable keys whose value changed, now applied (`policies`, `server.deny`, …). */
  applied: string[];
  /** Keys whose value changed but that only a restart applies: not applied. */
  restartRequired: string[];
  /** Why the reload failed (the running configuration stays); one line per problem, naming keys. */
  errors: string[];
}

export interface Reloader {
  /** The context a request starting now uses. */
  current(): StsContext;
  /** Read, validate and apply the configuration; never throws. Reloads run one at a time. */
  reload(): Promise<ReloadResult>;
  /** Closes the validators that reloads replaced and made (the running one included, if a reload made it). */
  close(): void;
}

/** Top-level sections a reload applies; every other one is restart-only. */
const RELOADABLE = new Set(['issuers', 'tokens', 'clients', 'policies']);
/** `server.*` keys a reload applies; every other one is restart-only. */
const RELOADABLE_SERVER = new Set(['deny', 'rateLimit', 'maxActiveGrantsPerIdentity']);

/**
 * A section as compared: `gitlab.token`'s value is left out, since the running process reads it
 * again by itself (`gitlab.credentialRefresh`, src/credential): a token rotated or replaced in its
 * file or vault is no configuration change. Where it lives (`tokenSource`) still counts.
 */
function comparable(key: string, value: unknown): unknown {
  if (key !== 'gitlab' || !value || typeof value !== 'object') return value;
  const { token: _token, ...rest } = value as Record<string, unknown>;
  return rest;
}

/** The keys that differ between two configurations, split into what a reload applies and what it cannot. */
export function diffConfig(
  running: StsConfig,
  next: StsConfig,
): { applied: string[]; restartRequired: string[] } {
  const applied: string[] = [];
  const restartRequired: string[] = [];
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === 'server') {
      const sa = running.server as unknown as Record<string, unknown>;
      const sb = next.server as unknown as Record<string, unknown>;
      for (const k of new Set([...Object.keys(sa), ...Object.keys(sb)])) {
        if (isDeepStrictEqual(sa[k], sb[k])) continue;
        (RELOADABLE_SERVER.has(k) ? applied : restartRequired).push(`server.${k}`);
      }
      continue;
    }
    if (isDeepStrictEqual(comparable(key, a[key]), comparable(key, b[key]))) continue;
    (RELOADABLE.has(key) ? applied : restartRequired).push(key);
  }
  return { applied, restartRequired };
}

/** The configuration to run with: the reloadable parts of `next`, everything else as running. */
function merge(running: StsConfig, next: StsConfig): StsConfig {
  return {
    ...running,
    issuers: next.issuers,
    tokens: next.tokens,
    clients: next.clients,
    policies: next.policies,
    server: {
      ...running.server,
      deny: next.server.deny,
      rateLimit: next.server.rateLimit,
      maxActiveGrantsPerIdentity: next.server.maxActiveGrantsPerIdentity,
    },
  };
}

/** What a failed reload says: the config's own lines (they name keys, never values), else the message. */
function errorLines(err: unknown): string[] {
  if (err instanceof ConfigError) return err.issues.length ? err.issues : [err.message];
  if (err instanceof PolicyCompileError || err instanceof DenyListError) return [err.message];
  return [`unexpected: ${err instanceof Error ? err.message : String(err)}`];
}

export function createReloader(o: {
  initial: StsContext;
  /** Reads and validates the configuration file again (loadConfigFile); undefined: nothing to reload from. */
  load?: () => StsConfig;
  /** A validator for these issuers and `tokens` settings (not yet initialised). */
  makeValidator: (config: StsConfig) => TokenValidatorHandle;
  /** How long a replaced validator may still be used by requests in flight: `server.requestTimeout`. */
  graceMs: number;
}): Reloader {
  let live = o.initial;
  let queue: Promise<unknown> = Promise.resolve();
  /** Validators reloads made, to close at shutdown (the initial one is the server's to close). */
  const made = new Set<TokenValidatorHandle>();
  const timers = new Set<NodeJS.Timeout>();

  const retire = (v: StsContext['validator']) => {
    if (!made.has(v as TokenValidatorHandle)) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      made.delete(v as TokenValidatorHandle);
      v.close();
    }, o.graceMs);
    timer.unref();
    timers.add(timer);
  };

  const fail = (errors: string[]): ReloadResult => {
    live.metrics.configReloads.inc({ outcome: 'error' });
    live.log.error({ errors }, 'configuration reload failed; the running configuration stays');
    live.audit.write({ event: 'reload', outcome: 'error', reason: errors.join('; ') });
    return { outcome: 'error', applied: [], restartRequired: [], errors };
  };

  async function apply(): Promise<ReloadResult> {
    const running = live;
    const { log, metrics } = running;
    if (!o.load) return fail(['this process was started without a configuration file to reload']);
    let next: StsConfig;
    let compiled: ReturnType<typeof compileConfig>;
    try {
      // Client secrets in Key Vault are read again, as at start-up.
      next = await readClientSecrets(o.load());
      // Policies are compiled against the GitLab this process talks to (gitlab.url is restart-only).
      compiled = compileConfig(next, running.config.gitlab.url);
    } catch (err) {
      if (
        !(err instanceof ConfigError || err instanceof PolicyCompileError || err instanceof DenyListError)
      ) {
        log.error({ err }, 'configuration reload: unexpected error');
      }
      return fail(errorLines(err));
    }
    const { applied, restartRequired } = diffConfig(running.config, next);
    const config = merge(running.config, next);
    const keys =
      !isDeepStrictEqual(running.config.issuers, next.issuers) ||
      !isDeepStrictEqual(running.config.tokens, next.tokens);
    let validator = running.validator;
    if (keys) {
      try {
        const v = o.makeValidator(config);
        made.add(v);
        // As at start-up: discovery and keys are fetched now; an issuer that cannot be reached yet
        // is retried in the background (its tokens get 503 until then), as it would be after a restart.
        await v.init();
        validator = v;
      } catch (err) {
        return fail([`issuers: ${(err as Error).message}`]);
      }
    }
    const same = (k: 'perIdentity' | 'perIp') =>
      running.config.server.rateLimit[k] === config.server.rateLimit[k];
    const limits = {
      perIdentity: same('perIdentity')
        ? running.limits.perIdentity
        : createRateLimiter(config.server.rateLimit.perIdentity, running.now),
      perIp: same('perIp')
        ? running.limits.perIp
        : createRateLimiter(config.server.rateLimit.perIp, running.now),
    };
    live = { ...running, config, validator, limits, ...compiled };
    if (validator !== running.validator) retire(running.validator);
    metrics.configReloads.inc({ outcome: 'success' });
    log.info({ applied, restartRequired }, 'configuration reloaded');
    if (restartRequired.length > 0) {
      log.warn({ restartRequired }, 'configuration changes that need a restart were not applied');
    }
    running.audit.write({
      event: 'reload',
      outcome: 'success',
      ...(applied.length ? { applied } : {}),
      ...(restartRequired.length ? { restartRequired } : {}),
    });
    return { outcome: 'success', applied, restartRequired, errors: [] };
  }

  const safeApply = () =>
    apply().catch((err: unknown) => {
      live.log.error({ err }, 'configuration reload: unexpected error');
      return fail(errorLines(err));
    });

  return {
    current: () => live,
    reload() {
      const r = queue.then(safeApply, safeApply);
      queue = r.catch(() => {});
      return r;
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const v of made) v.close();
      made.clear();
    },
  };
}
