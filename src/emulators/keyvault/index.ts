/**
 * The Azure Key Vault emulator: the secrets data plane of one vault over HTTPS
 * (the emulators' local CA, `../tls.ts`) on 127.0.0.1 and ::1 with the same port,
 * with Key Vault's challenge-based authentication against an Entra ID authority
 * (the Entra ID emulator) and Azure RBAC role assignments per secret. Shares no
 * code with the product. See README.md.
 *
 * @example
 * const kv = await startKeyVaultEmulator({
 *   stateDir: '.tanuki-dev/keyvault',
 *   caDir: '.tanuki-dev/entra', // share the Entra emulator's CA: one NODE_EXTRA_CA_CERTS for both
 *   authority: entra.url,
 * });
 * kv.setSecret('gitlab-token', gitlab.adminToken);
 * // new SecretClient(kv.url, credential, { disableChallengeResourceVerification: true })
 * await kv.close();
 */
import { mkdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { resolve } from 'node:path';
import { ensureLocalCa } from '../tls.ts';
import { AdminRequestError, Faults, handleAdminRequest, newStats } from './admin.ts';
import { challengeHeader, TokenVerifier } from './auth.ts';
import { type KeyVaultConfig, loadKeyVaultConfigFile, parseKeyVaultConfig } from './config.ts';
import { defaultKeyVaultConfig } from './dev-seed.ts';
import { errorBody, KeyVaultError, kvErrors } from './errors.ts';
import { keyVaultHeaders, sendJson } from './http.ts';
import { matchOperation, runOperation } from './secrets.ts';
import { loadState, saveState, VaultStore } from './store.ts';

export type { KeyVaultConfig, RoleAssignment } from './config.ts';

/**
 * The `api-version` values Key Vault's secrets API has (Azure/azure-rest-api-specs,
 * `specification/keyvault/Security.KeyVault.Secrets/`); `@azure/keyvault-secrets` 4.11 sends
 * `2025-07-01` (`LATEST_API_VERSION`), 4.x before it 7.4-7.6.
 */
export const API_VERSIONS = [
  '2016-10-01',
  '7.0',
  '7.1',
  '7.2',
  '7.3',
  '7.4',
  '7.5',
  '7.6-preview.1',
  '7.6-preview.2',
  '7.6',
  '2025-06-01-preview',
  '2025-06-01',
  '2025-07-01',
] as const;
export const LATEST_API_VERSION = '2025-07-01';

export interface KeyVaultEmulatorOptions {
  /** HTTPS port (0 or absent = any free port). */
  port?: number;
  /** Where the secrets are kept (`persist`) and, without `caDir`, the local CA. */
  stateDir: string;
  /** The local CA's folder (default `stateDir`); give the Entra emulator's state dir to share its CA. */
  caDir?: string;
  /** The Entra ID authority host, `https://localhost:PORT` (the Entra emulator's `url`); wins over the config's. */
  authority?: string;
  /** A PEM file of more CAs to trust when fetching the authority's keys (its own CA, if not the local one). */
  authorityCaFile?: string;
  /** YAML config (default: the built-in dev seed, dev-seed.ts). */
  configFile?: string;
  /** A parsed config object; overrides configFile. */
  config?: unknown;
  /** Keep every version in `<stateDir>/keyvault-state.json` (mode 0600) across restarts. */
  persist?: boolean;
  /**
   * More DNS names for the server certificate, e.g. `tanuki-dev.vault.azure.net` mapped to
   * 127.0.0.1 in /etc/hosts: a vault URL on `*.vault.azure.net` passes the SDK's challenge
   * resource check without `disableChallengeResourceVerification` (README.md).
   */
  hostNames?: string[];
}

export interface KeyVaultEmulatorHandle {
  /** `https://localhost:PORT`: the vault URL clients use. */
  url: string;
  port: number;
  /** Absolute path of the CA PEM (NODE_EXTRA_CA_CERTS / caFile). */
  caFile: string;
  /** The authority named in the challenge and trusted for tokens. */
  authority: string;
  config: KeyVaultConfig;
  /** A new version of a secret, without a token (seeding): its `id` and `version`. */
  setSecret(name: string, value: string, o?: { contentType?: string }): { id: string; version: string };
  /** The latest value of a secret (tests, the dev stack), or undefined. */
  latestSecretValue(name: string): string | undefined;
  close(): Promise<void>;
}

const LOCAL_HOSTS = ['localhost', '127.0.0.1', '::1'];

export async function startKeyVaultEmulator(o: KeyVaultEmulatorOptions): Promise<KeyVaultEmulatorHandle> {
  // Validate first, so a config error leaves no socket behind.
  const config =
    o.config !== undefined
      ? parseKeyVaultConfig(o.config)
      : o.configFile
        ? loadKeyVaultConfigFile(o.configFile)
        : parseKeyVaultConfig(defaultKeyVaultConfig(), 'dev seed');
  const authority = normalizeAuthority(o.authority ?? config.authority);
  const hostNames = (o.hostNames ?? []).map((h) => h.toLowerCase());
  for (const h of hostNames) {
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(h)) throw new TypeError(`hostNames: ${h} is not a DNS name`);
  }
  const stateDir = resolve(o.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const ca = await ensureLocalCa(o.caDir ?? stateDir, { hosts: [...LOCAL_HOSTS, ...hostNames] });
  const extraCas = [ca.caCertPem, ...(o.authorityCaFile ? [readFileSync(o.authorityCaFile, 'utf8')] : [])];
  const verifier = new TokenVerifier({ authority, tenantId: config.tenantId, extraCaPems: extraCas });

  const store = new VaultStore();
  for (const s of config.secrets) {
    store.set(s.name, {
      value: s.value,
      ...(s.contentType === undefined ? {} : { contentType: s.contentType }),
    });
  }
  if (o.persist) {
    const saved = loadState(stateDir);
    if (saved) store.restore(saved);
    store.onChange = () => saveState(stateDir, store);
    saveState(stateDir, store);
  }

  const faults = new Faults();
  const stats = newStats();
  const challenge = challengeHeader(authority, config.tenantId);
  let port = 0;
  const knownHosts = new Set(['localhost', '127.0.0.1', '[::1]', ...hostNames]);
  const baseUrlOf = (req: IncomingMessage): string => {
    try {
      const u = new URL(`https://${req.headers.host ?? ''}`);
      if (Number(u.port) === port && knownHosts.has(u.hostname.toLowerCase())) return `https://${u.host}`;
    } catch {}
    return `https://localhost:${port}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname;
    if (path === '/_emulator' || path.startsWith('/_emulator/')) {
      return handleAdminRequest({ store, faults, stats }, req, res, path);
    }
    const method = req.method ?? 'GET';
    // Authentication first: the SDK's first request carries no token (nor body) and expects the challenge.
    const caller = await verifier.verify(req.headers.authorization);
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) throw kvErrors.missingApiVersion();
    if (!(API_VERSIONS as readonly string[]).includes(apiVersion)) {
      throw kvErrors.unsupportedApiVersion(apiVersion.slice(0, 40), LATEST_API_VERSION);
    }
    const op = matchOperation(method, path);
    stats.byOperation[op.name] = (stats.byOperation[op.name] ?? 0) + 1;
    const fault = faults.take(op.name);
    if (fault) throw fault;
    const result = await runOperation(
      { config, store, baseUrl: baseUrlOf(req), apiVersion, query: url.searchParams },
      op,
      caller,
      req,
    );
    sendJson(res, result.status, result.body, keyVaultHeaders(req, config.location));
  };

  const sendError = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers = keyVaultHeaders(req, config.location);
    if (err instanceof KeyVaultError) {
      if (err.status === 401) {
        stats.challenges++;
        headers['www-authenticate'] = challenge;
      }
      if (err.status === 413) headers.connection = 'close';
      sendJson(res, err.status, errorBody(err), headers);
    } else if (err instanceof AdminRequestError) {
      sendJson(res, 400, { error: { code: 'BadParameter', message: err.message } }, headers);
    } else {
      // Never a stack trace (nor a token) on the wire; the message goes to stderr.
      process.stderr.write(`keyvault emulator: internal error: ${(err as Error)?.message ?? String(err)}\n`);
      sendJson(res, 500, errorBody(kvErrors.internal()), headers);
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.on('finish', () => {
      stats.byStatus[res.statusCode] = (stats.byStatus[res.statusCode] ?? 0) + 1;
    });
    void handle(req, res).catch((err) => sendError(req, res, err));
  };

  const servers: Server[] = [];
  try {
    const https = await listenDual(
      () => createHttpsServer({ key: ca.keyPem, cert: ca.certPem }, onRequest),
      o.port ?? 0,
    );
    servers.push(...https.servers);
    port = https.port;
    const url = `https://localhost:${port}`;
    let closed: Promise<void> | undefined;
    return {
      url,
      port,
      caFile: ca.caFile,
      authority,
      config,
      setSecret(name, value, so = {}) {
        const { secret, version } = store.set(name, {
          value,
          ...(so.contentType === undefined ? {} : { contentType: so.contentType }),
        });
        return { id: `${url}/secrets/${secret.name}/${version.version}`, version: version.version };
      },
      latestSecretValue(name) {
        return store.latest(name)?.value;
      },
      close() {
        closed ??= (async () => {
          await Promise.all(servers.map(closeServer));
          await verifier.close();
        })();
        return closed;
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    await verifier.close();
    throw err;
  }
}

function normalizeAuthority(a: string | undefined): string {
  if (!a) {
    throw new TypeError(
      'the Key Vault emulator needs an authority: the Entra ID emulator URL (https://localhost:PORT), as --authority (option authority) or the config key authority',
    );
  }
  let u: URL;
  try {
    u = new URL(a);
  } catch {
    throw new TypeError(`authority ${a} is not a URL`);
  }
  if (u.protocol !== 'https:') throw new TypeError(`authority ${a} must be https://`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
}

function portOf(server: Server): number {
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/**
 * 127.0.0.1 first (port 0 = any), then ::1 on the same port so `localhost` works whichever
 * address it resolves to first. Without IPv6, 127.0.0.1 alone.
 */
async function listenDual(make: () => Server, port: number): Promise<{ servers: Server[]; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const v4 = make();
    await listen(v4, port, '127.0.0.1');
    const chosen = portOf(v4);
    const v6 = make();
    try {
      await listen(v6, chosen, '::1');
      return { servers: [v4, v6], port: chosen };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && port === 0 && attempt < 5) {
        await closeServer(v4);
        continue;
      }
      return { servers: [v4], port: chosen };
    }
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    if (!server.listening) return resolveClose();
    server.close(() => resolveClose());
    server.closeAllConnections();
  });
}
