/**
 * `tanuki-sts emulate entra|gitlab|keyvault`: run one emulator in the foreground.
 * The emulators live in src/emulators/ and share no code with the product.
 */
import type { Command } from 'commander';
import { onShutdown, parsePort } from '../shared.ts';

export function registerEmulateCommands(program: Command): void {
  const emulate = program
    .command('emulate')
    .description('run a local emulator of Entra ID, GitLab or Azure Key Vault');

  emulate
    .command('entra')
    .description('Entra ID emulator (HTTPS token endpoints, discovery, JWKS, managed identity)')
    .option('--port <n>', 'HTTPS port (0 = any free port)', parsePort, 0)
    .option('--imds-port <n>', 'plain-http managed identity port (0 = any free port)', parsePort, 0)
    .option('--config <file>', 'YAML config of tenants, apps and resource APIs (default: built-in dev seed)')
    .option('--state-dir <dir>', 'where the CA, keys and state are kept', '.tanuki-dev/entra')
    .action(async (opts: { port: number; imdsPort: number; config?: string; stateDir: string }) => {
      const { startEntraEmulator } = await import('../../emulators/entra/index.ts');
      const emu = await startEntraEmulator({
        port: opts.port,
        imdsPort: opts.imdsPort,
        configFile: opts.config,
        stateDir: opts.stateDir,
      });
      process.stdout.write(
        `Entra ID emulator listening on ${emu.url} (managed identity: ${emu.imdsUrl})\n` +
          `Trust its CA with: export NODE_EXTRA_CA_CERTS=${emu.caFile}\n`,
      );
      onShutdown(() => emu.close());
    });

  emulate
    .command('gitlab')
    .description('GitLab emulator (REST API v4 access tokens, git smart HTTP)')
    .option('--port <n>', 'HTTP port (0 = any free port)', parsePort, 0)
    .option('--config <file>', 'YAML seed of users, groups and projects (default: built-in dev seed)')
    .option(
      '--state-dir <dir>',
      'where repositories and (with --persist) state are kept',
      '.tanuki-dev/gitlab',
    )
    .option('--persist', 'keep tokens and users in the state dir across restarts', false)
    .action(async (opts: { port: number; config?: string; stateDir: string; persist: boolean }) => {
      const { startGitlabEmulator } = await import('../../emulators/gitlab/index.ts');
      const emu = await startGitlabEmulator({
        port: opts.port,
        configFile: opts.config,
        stateDir: opts.stateDir,
        persist: opts.persist,
      });
      process.stdout.write(`GitLab emulator listening on ${emu.url}\n`);
      onShutdown(() => emu.close());
    });

  emulate
    .command('keyvault')
    .description('Azure Key Vault emulator (HTTPS secrets API, challenge authentication against Entra ID)')
    .option(
      '--authority <url>',
      "the Entra ID emulator URL (https://localhost:PORT) tokens come from (required unless the config's authority)",
    )
    .option('--port <n>', 'HTTPS port (0 = any free port)', parsePort, 0)
    .option(
      '--config <file>',
      'YAML config of the vault, its secrets and role assignments (default: dev seed)',
    )
    .option(
      '--state-dir <dir>',
      'where the secrets (with --persist) and the CA are kept',
      '.tanuki-dev/keyvault',
    )
    .option(
      '--ca-dir <dir>',
      "the local CA's folder, e.g. the Entra emulator's state dir (default: --state-dir)",
    )
    .option('--persist', 'keep every secret version in the state dir across restarts', false)
    .action(
      async (opts: {
        authority?: string;
        port: number;
        config?: string;
        stateDir: string;
        caDir?: string;
        persist: boolean;
      }) => {
        const { startKeyVaultEmulator } = await import('../../emulators/keyvault/index.ts');
        const emu = await startKeyVaultEmulator({
          authority: opts.authority,
          port: opts.port,
          configFile: opts.config,
          stateDir: opts.stateDir,
          caDir: opts.caDir,
          persist: opts.persist,
        });
        process.stdout.write(
          `Key Vault emulator listening on ${emu.url} (vault ${emu.config.name}, tenant ${emu.config.tenantId}, authority ${emu.authority})\n` +
            `Trust its CA with: export NODE_EXTRA_CA_CERTS=${emu.caFile}\n` +
            'A SecretClient for this URL needs { disableChallengeResourceVerification: true } (src/emulators/keyvault/README.md)\n',
        );
        onShutdown(() => emu.close());
      },
    );
}
