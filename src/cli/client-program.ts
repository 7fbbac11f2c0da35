/**
 * The pipeline client alone as a program: `token`, `exec`, `git-credential`,
 * `revoke` — the same commands as `tanuki-sts` (commands/client.ts), nothing
 * else. client-main.ts runs it; it is the entry of the self-contained bundle
 * the STS serves (src/service/client-bundle.ts), which must load no server code.
 */
import { Command } from 'commander';
import { registerClientCommands } from './commands/client.ts';
import { VERSION } from './program.ts';

export function buildClientProgram(): Command {
  const program = new Command('tanuki-sts')
    .description(
      'tanuki-sts pipeline client: exchange an Entra ID (or OIDC) token for a short-lived GitLab token',
    )
    .version(VERSION)
    .showHelpAfterError()
    // Before the sub-commands are added, so that they inherit it (usage errors exit 2).
    .exitOverride();
  registerClientCommands(program);
  return program;
}
