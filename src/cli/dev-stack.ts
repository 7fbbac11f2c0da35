/**
 * The embedded default stack behind `tanuki-sts dev` and `npm start`:
 * Entra ID emulator + GitLab emulator + STS on loopback, a SQLite ledger in
 * the state dir, and a sample policy for the dev pipeline app. Tests and the
 * demo drive it through `<stateDir>/dev.json`.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../config/index.ts';
import { summarizeDevSeed } from '../emulators/entra/dev-seed.ts';
import { startEntraEmulator } from '../emulators/entra/index.ts';
import { startGitlabEmulator } from '../emulators/gitlab/index.ts';
import { startSts } from '../service/server.ts';
import { walkthroughScript } from './dev-walkthrough.ts';

export interface DevJson {
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
  /** `metricsUrl`: the STS's metrics listener (`server.metricsListen`), `http://127.0.0.1:PORT/metrics`. */
  sts: { url: string; config: string; metricsUrl: string };
}

export interface DevStack {
  devJson: DevJson;
  devJsonPath: string;
  banner(): string;
  close(): Promise<void>;
}

const DEV_PROJECT = 'platform/internal-lib';

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

function writeAtomic(path: string, content: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

export async function startDevStack(options: {
  stateDir: string;
  portBase?: number;
  quietSts?: boolean;
}): Promise<DevStack> {
  const { stateDir, portBase } = options;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const devJsonPath = join(stateDir, 'dev.json');
  rmSync(devJsonPath, { force: true });

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

    const seed = summarizeDevSeed(entra.config);
    const stsPort = portBase === undefined ? await freePort() : portBase + 3;
    const stsUrl = `http://127.0.0.1:${stsPort}`;
    const tokenFile = join(stateDir, 'gitlab-admin-token');
    writeAtomic(tokenFile, `${gitlab.adminToken}\n`);
    const oidcIssuer = `${entra.url}/_emulator/oidc`;
    const stsConfig = {
      server: {
        listen: `127.0.0.1:${stsPort}`,
        // Port base + 4, else any free port: two dev stacks never collide on the default 9464.
        metricsListen: `127.0.0.1:${portBase === undefined ? 0 : portBase + 4}`,
        publicUrl: stsUrl,
        id: 'dev',
        maxActiveGrantsPerIdentity: 50,
      },
      gitlab: { url: gitlab.url, token: { file: tokenFile }, healthInterval: '30s' },
      store: { sqlite: join(stateDir, 'tanuki-sts.db') },
      issuers: {
        'dev-entra': {
          entra: { tenant: seed.tenantId, authorityHost: entra.url },
          caFile: entra.caFile,
          audiences: [seed.resourceUri, seed.resourceClientId],
        },
        'dev-oidc': { oidc: { issuer: oidcIssuer }, caFile: entra.caFile, audiences: [stsUrl] },
      },
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
      sts: { url: sts.url, config: configPath, metricsUrl: sts.metricsUrl ?? '' },
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
          rmSync(devJsonPath, { force: true });
          await closeAll();
        })();
        return closed;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The console banner. It prints no secret: the dev admin PAT and client secret stay in files (0600). */
function devBanner(d: DevJson, devJsonPath: string, stateDir: string): string {
  return `
tanuki-sts dev stack is ready

  STS                    ${d.sts.url}   (config ${d.sts.config})
  STS metrics            ${d.sts.metricsUrl}
  Entra ID emulator      ${d.entra.authorityHost}   (tenant ${d.entra.tenantId})
  STS API scope          ${d.entra.scope}   (Entra's default App ID URI, api://<client ID>)
  managed identity       ${d.entra.imdsUrl}
  GitLab emulator        ${d.gitlab.url}   (admin PAT in ${join(stateDir, 'gitlab-admin-token')})
  CA to trust            ${d.caFile}
  audit log              ${join(stateDir, 'audit.log')}

Secrets (the dev app's client secret, ports) are in ${devJsonPath}.
Walk through an exchange by hand (bash; reads dev.json, prints no secret):

${walkthroughScript(devJsonPath)
  .split('\n')
  .filter((l) => !l.startsWith('#!') && !l.startsWith('set '))
  .map((l) => `  ${l}`)
  .join('\n')}
Or run it all: bash ${join(stateDir, 'walkthrough.sh')}   (npm run demo does this on a fresh stack)
Stop with Ctrl-C.
`;
}
