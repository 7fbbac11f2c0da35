/**
 * The client commands' --help: the exit codes each lists are the ones it can
 * exit with (src/client/errors.ts; docs/pipelines.md §10).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerClientCommands } from './client.ts';

async function help(command: string): Promise<string> {
  let out = '';
  const program = new Command('tanuki-sts').exitOverride().configureOutput({
    writeOut: (s) => {
      out += s;
    },
    writeErr: (s) => {
      out += s;
    },
  });
  registerClientCommands(program);
  await assert.rejects(
    program.parseAsync(['node', 'tanuki-sts', command, '--help']),
    (e: unknown) => e instanceof CommanderError && e.code === 'commander.helpDisplayed',
  );
  return out;
}

/** The codes listed after "Exit codes:", e.g. [0, 1, 2, 4, 5]. */
function exitCodes(text: string): number[] {
  const tail = text.slice(text.indexOf('Exit codes:')).replace(/\s+/g, ' ');
  return [...tail.matchAll(/(?:codes: |, )(\d) /g)].map((m) => Number(m[1]));
}

describe('client --help: exit codes', () => {
  it('revoke never signs in: no exit code 3', async () => {
    const text = await help('revoke');
    assert.deepEqual(exitCodes(text), [0, 1, 2, 4, 5]);
    assert.doesNotMatch(text, /Azure/);
    assert.match(text, /raw, env, netrc,\s+git-credentials, docker-config, json/);
  });

  for (const command of ['token', 'exec', 'git-credential']) {
    it(`${command} lists 0-5`, async () => {
      const text = await help(command);
      assert.deepEqual(exitCodes(text), [0, 1, 2, 3, 4, 5]);
      assert.match(text, /3 Azure sign-in failed/);
    });
  }

  it("exec: the command's own code once it ran", async () => {
    assert.match(
      await help('exec'),
      /exits with the command's code\s+\(128\+n if killed by signal n, 127 not found/,
    );
  });

  it('git-credential documents --uninstall', async () => {
    const text = await help('git-credential');
    assert.match(text, /--uninstall/);
    assert.match(text, /Undo: tanuki-sts git-credential --uninstall/);
  });
});
