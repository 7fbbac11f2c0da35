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
      const sts = await startSts({ config: loadConfigFile(opts.config) });
      // SIGTERM: stop accepting, finish in-flight requests, close the ledger cleanly.
      onShutdown(() => sts.close());
    });

  program
    .command('check-config')
    .description('validate a configuration file and exit')
    .requiredOption('--config <file>', 'YAML configuration')
    .action(async (opts: { config: string }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { compilePolicies } = await import('../../policy/index.ts');
      const config = loadConfigFile(opts.config);
      // What `serve` checks before it opens anything: the file, then what each policy means.
      compilePolicies(config.policies, { gitlabUrl: config.gitlab.url });
      // Advice only (exit 0): App ID URIs a tenant with Entra's identifier URI restriction refuses.
      const { identifierUriWarnings } = await import('../../config/identifier-uri-warnings.ts');
      for (const w of identifierUriWarnings(config.issuers)) process.stderr.write(`warning: ${w}\n`);
      const n = config.policies.length;
      process.stdout.write(
        `configuration OK: ${Object.keys(config.issuers).length} issuer(s), ${n} polic${n === 1 ? 'y' : 'ies'}, server id ${config.server.id}\n`,
      );
    });
}
