/**
 * `tanuki-sts migrate --config F`: bring the ledger's schema up to date and
 * exit, without serving (before a rolling upgrade; `serve` migrates at start-up
 * too, under the same lock). A ledger newer than this tanuki-sts is an error.
 */
import type { Command } from 'commander';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description("bring the ledger's schema up to date and exit")
    .requiredOption('--config <file>', 'YAML configuration (its store section)')
    .action(async (opts: { config: string }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { migrateLedger } = await import('../../service/ledger-backend.ts');
      const r = await migrateLedger(loadConfigFile(opts.config));
      process.stdout.write(
        r.from === r.to
          ? `ledger ${r.where}: at schema version ${r.to}, nothing to migrate\n`
          : `ledger ${r.where}: migrated from schema version ${r.from} to ${r.to}\n`,
      );
    });
}
