/**
 * `tanuki-sts emulate entra|gitlab`: run one emulator in the foreground.
 * The emulators live in src/emulators/ and share no code with the product.
 */
import type { Command } from 'commander';
import { onShutdown, parsePort } from '../shared.ts';

export function registerEmulateCommands(program: Command): void {
  const emulate = program.command('emulate').description('run a local emulator of Entra ID or GitLab');

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
}
