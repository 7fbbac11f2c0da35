/** `tanuki-sts serve --config tanuki-sts.yaml`: run the STS. Modules load on demand, so client commands stay light. */
import type { Command } from 'commander';
import { onShutdown } from '../shared.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the token exchange service')
    .requiredOption('--config <file>', 'YAML configuration (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { startSts } = await import('../../service/server.ts');
      const sts = await startSts({
        config: loadConfigFile(opts.config),
        reloadConfig: () => loadConfigFile(opts.config),
      });
      // SIGTERM: stop accepting, finish in-flight requests, close the ledger cleanly.
      onShutdown(() => sts.close());
      // SIGHUP: re-read the file and apply what can change at run time (src/service/reload.ts); the
      // outcome is logged and counted, and an invalid file leaves the running configuration as it is.
      process.on('SIGHUP', () => void sts.reload());
    });

  program
    .command('check-config')
    .description('validate a configuration file and exit')
    .requiredOption('--config <file>', 'YAML configuration')
    .option(
      '--no-secrets',
      'check everything but the secrets: gitlab.token is not read, variables in secret-bearing keys are not expanded',
    )
    .action(async (opts: { config: string; secrets: boolean }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { compileConfig } = await import('../../service/runtime.ts');
      // What `serve` checks before it opens anything: the file (every problem in one pass),
      // then what each policy and each `server.deny` entry means.
      const config = loadConfigFile(opts.config, { secrets: opts.secrets });
      compileConfig(config);
      // Advice only (exit 0): App ID URIs a tenant with Entra's identifier URI restriction refuses.
      const { identifierUriWarnings } = await import('../../config/identifier-uri-warnings.ts');
      for (const w of identifierUriWarnings(config.issuers)) process.stderr.write(`warning: ${w}\n`);
      const n = config.policies.length;
      process.stdout.write(
        `configuration OK: ${Object.keys(config.issuers).length} issuer(s), ${n} polic${n === 1 ? 'y' : 'ies'}, server id ${config.server.id}${opts.secrets ? '' : ' (secrets not read)'}\n`,
      );
    });
}
