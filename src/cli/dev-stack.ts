/**
 * The embedded default stack behind `tanuki-sts dev` and `npm start`:
 * Entra ID emulator + GitLab emulator + STS on loopback, a SQLite ledger in
 * the state dir, and a sample policy for the dev pipeline app. Tests and the
 * demo drive it through `<stateDir>/dev.json`, which exists exactly while the
 * stack runs: written last, once everything accepts connections, and removed
 * by `close()`, on a failed start and when the process exits (SIGKILL aside:
 * the next start finds the stack gone and ignores the file). A start checks
 * for a running stack and every port before it writes anything
 * (`dev-state.ts`).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../config/index.ts';
import { summarizeDevSeed } from '../emulators/entra/dev-seed.ts';
import { startEntraEmulator } from '../emulators/entra/index.ts';
import { startGitlabEmulator } from '../emulators/gitlab/index.ts';
import { startKeyVaultEmulator } from '../emulators/keyvault/index.ts';
import { startSts } from '../service/server.ts';
import { portBaseProblem, portUnavailableMessage } from './dev-ports.ts';
import { claimStateDir, DevStackError, writeAtomic } from './dev-state.ts';
import { walkthroughForShell, walkthroughScript } from './dev-walkthrough.ts';

export interface DevJson {
  /** The process serving the stack (it holds `<stateDir>/dev.lock`). */
  pid: number;
  caFile: string;
  entra: {
    authorityHost: string;
    tenantId: string;
    clientId: string;
    clientSecret: string;
    scope: string;
    certificatePath?: string;
    imdsUrl: string;
    managedIdentityClientId?: string;
    oidcIssuer: string;
  };
  gitlab: { url: string; adminToken: string; project: string };
  /**
   * The Key Vault emulator holding the STS's GitLab token (the STS reads it with the managed identity
   * emulator): the vault URL and the secret's name. `gitlab.adminToken` is that token as it was when the
   * stack started (`tanuki-sts credential rotate` replaces it in the vault and at GitLab).
   */
  keyVault: { url: string; secret: string };
  /**
   * `metricsUrl`: the STS's metrics listener (`server.metricsListen`), `http://127.0.0.1:PORT/metrics`.
   * `clientId`/`clientSecret`: the dev confidential client (`clients` of the STS config), what the
   * request written for GitLab's `/oauth/token` sends as `client_id`/`client_secret`.
   */
  sts: { url: string; config: string; metricsUrl: string; clientId: string; clientSecret: string };
}

export interface DevStack {
  devJson: DevJson;
  devJsonPath: string;
  banner(): string;
  close(): Promise<void>;
}

const DEV_PROJECT = 'platform/internal-lib';
/** The secret of the emulated vault that holds the dev STS's GitLab token. */
export const DEV_TOKEN_SECRET = 'gitlab-token';
/** The dev stack's confidential client (`clients` in its STS config; dev.json `sts.clientId`). */
export const DEV_CLIENT_ID = 'tanuki-dev-client';

/** The dev client's secret: made on first start and kept in the state dir (0600), like the emulators' secrets. */
function devClientSecret(file: string): string {
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept.length >= 32) return kept;
  }
  const secret = randomBytes(32).toString('base64url');
  writeAtomic(file, `${secret}\n`);
  return secret;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** A port taken between the check and the listen (a race) still gets the sentence, not Node's error. */
function explainListenError(err: unknown, portBase: number | undefined): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (portBase === undefined || typeof e?.port !== 'number') return err;
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') return err;
  return new DevStackError('ERR_DEV_PORT', portUnavailableMessage(e.port, portBase, e.code));
}

/**
 * Starts the stack. `stateDir` as the user gave it (messages repeat it);
 * `portBase`: ports N to N+4 (`DEV_PORT_ROLES`), undefined or 0 for any free
 * ports (the CLI passes its fixed default); `notice`: one-line remarks for
 * the user (a stale dev.json). Throws `DevStackError` when a stack already
 * runs from the state dir, a port is taken or the base cannot fit its ports,
 * having written nothing.
 */
export async function startDevStack(options: {
  stateDir: string;
  portBase?: number;
  notice?: (line: string) => void;
}): Promise<DevStack> {
  const portBase = options.portBase === 0 ? undefined : options.portBase;
  if (portBase !== undefined) {
    const problem = portBaseProblem(portBase);
    if (problem) throw new DevStackError('ERR_DEV_PORT_BASE', problem);
  }
  const stateDir = resolve(options.stateDir);
  const claim = await claimStateDir({
    dir: stateDir,
    label: options.stateDir,
    portBase,
    notice: options.notice,
  });
  const devJsonPath = join(stateDir, 'dev.json');
  // Whatever ends the process (an uncaught error, process.exit), dev.json goes with it.
  const removeDevJson = () => rmSync(devJsonPath, { force: true });
  process.on('exit', removeDevJson);

  // The Azure SDK (the STS reads its GitLab token from the emulated vault) takes a second to load:
  // load it while the emulators start.
  const azureSdk = Promise.all([import('@azure/identity'), import('@azure/keyvault-secrets')]);
  azureSdk.catch(() => {});
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    const entra = await startEntraEmulator({
      port: portBase ?? 0,
      imdsPort: portBase === undefined ? 0 : portBase + 1,
      stateDir: join(stateDir, 'entra'),
    });
    closers.push(() => entra.close());
    const gitlab = await startGitlabEmulator({
      port: portBase === undefined ? 0 : portBase + 2,
      stateDir: join(stateDir, 'gitlab'),
      persist: true,
    });
    closers.push(() => gitlab.close());
    // The STS's GitLab token lives in an emulated Key Vault, which trusts the Entra emulator (one CA
    // for both: caDir). Any free port: only the STS (its config is written below) and dev.json name it.
    const keyVault = await startKeyVaultEmulator({
      port: 0,
      stateDir: join(stateDir, 'keyvault'),
      caDir: join(stateDir, 'entra'),
      authority: entra.url,
      persist: true,
    });
    closers.push(() => keyVault.close());
    // A new version only when GitLab's token differs from the vault's (first start; a rotation
    // the vault missed). After `credential rotate` both hold the new token already.
    if (keyVault.latestSecretValue(DEV_TOKEN_SECRET) !== gitlab.adminToken) {
      keyVault.setSecret(DEV_TOKEN_SECRET, gitlab.adminToken);
    }

    const seed = summarizeDevSeed(entra.config);
    const stsPort = portBase === undefined ? await freePort() : portBase + 3;
    const stsUrl = `http://127.0.0.1:${stsPort}`;
    const tokenFile = join(stateDir, 'gitlab-admin-token');
    writeAtomic(tokenFile, `${gitlab.adminToken}\n`);
    const oidcIssuer = `${entra.url}/_emulator/oidc`;
    const clientSecretFile = join(stateDir, 'sts-client-secret');
    const clientSecret = devClientSecret(clientSecretFile);
    const stsConfig = {
      server: {
        listen: `127.0.0.1:${stsPort}`,
        // Port base + 4, else any free port: two dev stacks never collide on the default 9464.
        metricsListen: `127.0.0.1:${portBase === undefined ? 0 : portBase + 4}`,
        publicUrl: stsUrl,
        id: 'dev',
        maxActiveGrantsPerIdentity: 50,
      },
      gitlab: {
        url: gitlab.url,
        // Read with the dev seed's system-assigned managed identity (Key Vault Secrets Officer on the
        // secret) through the Entra emulator's IMDS endpoint; the vault's certificate is from its CA.
        token: {
          keyVault: {
            vaultUrl: keyVault.url,
            secret: DEV_TOKEN_SECRET,
            caFile: keyVault.caFile,
            managedIdentityEndpoint: entra.imdsUrl,
          },
        },
        healthInterval: '30s',
      },
      store: { sqlite: join(stateDir, 'tanuki-sts.db') },
      issuers: {
        'dev-entra': {
          entra: { tenant: seed.tenantId, authorityHost: entra.url },
          caFile: entra.caFile,
          audiences: [seed.resourceUri, seed.resourceClientId],
        },
        'dev-oidc': { oidc: { issuer: oidcIssuer }, caFile: entra.caFile, audiences: [stsUrl] },
      },
      // What the request written for GitLab's /oauth/token sends as client_id / client_secret.
      clients: { [DEV_CLIENT_ID]: { secret: { file: clientSecretFile } } },
      policies: [
        {
          name: 'dev-pipeline',
          issuer: 'dev-entra',
          match: { appid: seed.pipelineClientId, roles: { contains: 'GitLab.Read' } },
          grant: {
            projects: [DEV_PROJECT],
            scopes: ['read_repository', 'read_api'],
            role: 'reporter',
            ttl: { default: '15m', max: '1h' },
          },
        },
        ...(seed.managedIdentityClientId
          ? [
              {
                name: 'dev-managed-identity',
                issuer: 'dev-entra',
                match: { appid: seed.managedIdentityClientId },
                grant: {
                  projects: [DEV_PROJECT],
                  scopes: ['read_repository', 'read_api'],
                  role: 'reporter',
                  ttl: { default: '15m', max: '1h' },
                },
              },
            ]
          : []),
        {
          name: 'dev-gitlab-ci',
          issuer: 'dev-oidc',
          match: { sub: `project_path:${DEV_PROJECT}:ref_type:branch:ref:main` },
          grant: {
            projects: [DEV_PROJECT],
            scopes: ['read_repository', 'read_api'],
            role: 'reporter',
            ttl: { default: '15m', max: '1h' },
          },
        },
      ],
      audit: { file: join(stateDir, 'audit.log') },
    };
    const configPath = join(stateDir, 'tanuki-sts.yaml');
    writeAtomic(
      configPath,
      `# Written by \`tanuki-sts dev\`; regenerated at every start.\n${toYaml(stsConfig)}`,
    );
    const sts = await startSts({ config: loadConfigFile(configPath), logger: false });
    closers.push(() => sts.close());

    const health = await fetch(`${sts.url}/healthz`);
    if (health.status !== 200) throw new Error(`the STS did not become healthy (HTTP ${health.status})`);

    const devJson: DevJson = {
      pid: process.pid,
      caFile: entra.caFile,
      entra: {
        authorityHost: entra.url,
        tenantId: seed.tenantId,
        clientId: seed.pipelineClientId,
        clientSecret: seed.pipelineClientSecret,
        scope: `${seed.resourceUri}/.default`,
        certificatePath: seed.pipelineCertificatePath,
        imdsUrl: entra.imdsUrl,
        managedIdentityClientId: seed.managedIdentityClientId,
        oidcIssuer,
      },
      gitlab: { url: gitlab.url, adminToken: gitlab.adminToken, project: DEV_PROJECT },
      keyVault: { url: keyVault.url, secret: DEV_TOKEN_SECRET },
      sts: {
        url: sts.url,
        config: configPath,
        metricsUrl: sts.metricsUrl ?? '',
        clientId: DEV_CLIENT_ID,
        clientSecret,
      },
    };
    writeAtomic(join(stateDir, 'walkthrough.sh'), walkthroughScript(devJsonPath), 0o700);
    writeAtomic(devJsonPath, `${JSON.stringify(devJson, null, 2)}\n`);
    chmodSync(devJsonPath, 0o600);

    let closed: Promise<void> | undefined;
    return {
      devJson,
      devJsonPath,
      banner: () => devBanner(devJson, devJsonPath, stateDir),
      close() {
        closed ??= (async () => {
          removeDevJson();
          try {
            await closeAll();
          } finally {
            process.off('exit', removeDevJson);
            claim.release();
          }
        })();
        return closed;
      },
    };
  } catch (err) {
    removeDevJson();
    await closeAll();
    process.off('exit', removeDevJson);
    claim.release();
    throw explainListenError(err, portBase);
  }
}

/** The console banner. It prints no secret: the dev admin PAT and client secret stay in files (0600). */
function devBanner(d: DevJson, devJsonPath: string, stateDir: string): string {
  return `
tanuki-sts dev stack is ready

  STS                    ${d.sts.url}   (config ${d.sts.config})
  STS metrics            ${d.sts.metricsUrl}
  STS client             ${d.sts.clientId}   (client_id; its client_secret is dev.json's sts.clientSecret)
  Entra ID emulator      ${d.entra.authorityHost}   (tenant ${d.entra.tenantId})
  STS API scope          ${d.entra.scope}   (Entra's default App ID URI, api://<client ID>)
  managed identity       ${d.entra.imdsUrl}
  GitLab emulator        ${d.gitlab.url}   (admin PAT in ${join(stateDir, 'gitlab-admin-token')})
  Key Vault emulator     ${d.keyVault.url}   (the STS's GitLab token: secret ${d.keyVault.secret})
  CA to trust            ${d.caFile}
  audit log              ${join(stateDir, 'audit.log')}

Secrets (the dev app's and the STS client's secrets, ports) are in ${devJsonPath}.
Walk through an exchange by hand: paste this into bash (it reads dev.json and prints no secret;
it stops at the first step that fails and says which, and leaves your shell open):

${walkthroughForShell(devJsonPath)
  .split('\n')
  .map((l) => (l ? `  ${l}` : l))
  .join('\n')}
Or run it all: bash ${join(stateDir, 'walkthrough.sh')}   (npm run demo does this on a fresh stack)
Stop with Ctrl-C.
`;
}
