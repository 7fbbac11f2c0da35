/**
 * `tanuki-sts credential status --config F [--json]` and `tanuki-sts
 * credential rotate --config F`: the STS's own GitLab token — where it is,
 * what GitLab says of it (id, scopes, expiry), its last rotation — and a
 * rotation now, with the protocol the leader uses (src/credential/rotation.ts).
 * Neither ever prints the token.
 */
import type { Command } from 'commander';

/** Warnings and errors of the credential code, one line each on stderr (never a token: messages carry none). */
const stderrLog = {
  info() {},
  warn(_o: object, msg: string) {
    process.stderr.write(`warning: ${msg}\n`);
  },
  error(_o: object, msg: string) {
    process.stderr.write(`error: ${msg}\n`);
  },
};

export function registerCredentialCommands(program: Command): void {
  const credential = program
    .command('credential')
    .description("the STS's own GitLab token: its status, or a rotation now");

  credential
    .command('status')
    .description(
      "where the STS's GitLab token is, what GitLab says of it, and its last rotation (never the token)",
    )
    .requiredOption('--config <file>', 'YAML configuration (its gitlab and store sections)')
    .option(
      '--json',
      'one JSON object: source, location, tokenId, name, scopes, expiresAt, active, lastRotation, …',
    )
    .action(async (opts: { config: string; json?: boolean }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { credentialStatus } = await import('../../service/credential.ts');
      const s = await credentialStatus(loadConfigFile(opts.config), {
        log: stderrLog,
        warn: (line) => process.stderr.write(`warning: ${line}\n`),
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s)}\n`);
        return;
      }
      const rot = s.rotation
        ? `every ${s.rotation.every} s, new tokens live ${s.rotation.lifetime} s`
        : 'off (gitlab.rotation is not set)';
      process.stdout.write(
        [
          `source         ${s.source}: ${s.location}`,
          `token          id ${s.tokenId} (${s.name}), ${s.active ? 'active' : 'NOT ACTIVE'}`,
          `scopes         ${s.scopes.join(' ')}`,
          `expires        ${s.expiresAt ?? 'never'}`,
          `rotation       ${rot}`,
          `last rotation  ${s.lastRotation ? `${s.lastRotation.finishedAt ?? s.lastRotation.startedAt} (token ${s.lastRotation.previousTokenId ?? '?'} → ${s.lastRotation.tokenId ?? '?'})` : 'none recorded'}`,
          ...(s.pendingRotation
            ? [
                `PENDING        rotation ${s.pendingRotation.rotationId} since ${s.pendingRotation.startedAt}: ` +
                  `${s.pendingRotation.answered ? 'GitLab answered' : 'no answer recorded'}, ` +
                  `${s.pendingRotation.writtenBack ? 'written back' : 'not written back'}; the leader (or credential rotate) completes it`,
              ]
            : []),
        ].join('\n') + '\n',
      );
    });

  credential
    .command('rotate')
    .description(
      "rotate the STS's GitLab token now and write the new one back to gitlab.token (Key Vault, file)",
    )
    .requiredOption('--config <file>', 'YAML configuration (its gitlab, store and audit sections)')
    .action(async (opts: { config: string }) => {
      const { loadConfigFile } = await import('../../config/index.ts');
      const { rotateCredentialNow } = await import('../../service/credential.ts');
      const r = await rotateCredentialNow(loadConfigFile(opts.config), { log: stderrLog });
      const tokens = `token ${r.oldTokenId ?? '?'} → ${r.newTokenId ?? '?'}${r.expiresAt ? `, expires ${r.expiresAt}` : ''}`;
      const where = `${r.location}${r.version ? ` (version ${r.version})` : ''}`;
      switch (r.outcome) {
        case 'success':
          process.stdout.write(`rotated the GitLab credential: ${tokens}; written to ${where}\n`);
          return;
        case 'recovered':
          process.stdout.write(
            `completed a rotation left pending (${tokens}); written to ${where}; nothing else rotated\n`,
          );
          return;
        case 'writeback_failed':
          throw new Error(
            `rotated at GitLab (${tokens}) but not written to ${r.location}: ${r.reason}. The new token is kept ` +
              'sealed in the ledger; run the command again (or let the leader) to finish the write-back',
          );
        case 'busy':
          throw new Error(
            'another rotation is in progress (the leader, or another credential rotate); try again later',
          );
        default:
          throw new Error(`not rotated (${r.outcome}): ${r.reason ?? 'unknown reason'}`);
      }
    });
}
