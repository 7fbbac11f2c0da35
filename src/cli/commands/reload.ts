/**
 * `tanuki-sts reload --config F`: ask the running `tanuki-sts serve` to re-read
 * its configuration, through its admin socket (`server.adminSocket` of F), and
 * print what it answered: applied, needing a restart, or why the new
 * configuration was refused (the running one then stays). The server does the
 * validation, with its own environment and secrets; this command reads only
 * `server.adminSocket` from F. Exit 0 when the server applied it, 1 otherwise.
 * Without an admin socket, `kill -HUP <pid>` does the same reload (the outcome
 * is then in the server's log and `tanuki_sts_config_reload_total`).
 */
import type { Command } from 'commander';

export function registerReloadCommand(program: Command): void {
  program
    .command('reload')
    .description(
      'ask the running STS to re-read its configuration (through server.adminSocket) and say if it did',
    )
    .requiredOption('--config <file>', 'the YAML configuration the STS runs with (its server.adminSocket)')
    .action(async (opts: { config: string }) => {
      const { adminSocketOf } = await import('../../config/admin-socket.ts');
      const { requestReload } = await import('../../service/admin-socket.ts');
      const path = adminSocketOf(opts.config);
      const r = await requestReload(path);
      if (r.outcome === 'error') {
        throw new Error(
          `the STS refused the new configuration and keeps the running one:\n  - ${r.errors.join('\n  - ')}`,
        );
      }
      process.stdout.write(
        `configuration reloaded: ${r.applied.length ? `applied ${r.applied.join(', ')}` : 'nothing changed'}\n`,
      );
      if (r.restartRequired.length) {
        process.stderr.write(
          `warning: not applied, a restart is needed for: ${r.restartRequired.join(', ')}\n`,
        );
      }
    });
}
