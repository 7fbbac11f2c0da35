/** `tanuki-sts serve --config tanuki-sts.yaml`: run the STS. */
import type { Command } from 'commander';
import { loadConfigFile } from '../../service/config.ts';
import { startSts } from '../../service/server.ts';
import { onShutdown } from '../shared.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the token exchange service')
    .requiredOption('--config <file>', 'YAML configuration (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      const config = loadConfigFile(opts.config);
      const sts = await startSts({ config });
      // SIGTERM: stop accepting, finish in-flight requests, close the ledger cleanly.
      onShutdown(() => sts.close());
    });

  program
    .command('check-config')
    .description('validate a configuration file and exit')
    .requiredOption('--config <file>', 'YAML configuration')
    .action((opts: { config: string }) => {
      const config = loadConfigFile(opts.config);
      process.stdout.write(
        `configuration OK: ${Object.keys(config.issuers).length} issuer(s), ${config.policies.length} polic${config.policies.length === 1 ? 'y' : 'ies'}, server id ${config.server.id}\n`,
      );
    });
}
