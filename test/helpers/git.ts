/**
 * Real `git` as the client: clone with a token passed through the environment.
 * Asynchronous on purpose: the emulators usually run in the test's own process,
 * so a blocking spawnSync would leave nobody to answer git.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function gitClone(
  repoUrl: string,
  token: string,
  /** The HTTP Basic username (any for access tokens; a deploy token's own for a deploy token). */
  username = 'oauth2',
): Promise<{ ok: boolean; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-clone-'));
  try {
    return await new Promise((resolve) => {
      execFile(
        'git',
        ['clone', '-q', repoUrl, join(dir, 'repo')],
        {
          encoding: 'utf8',
          timeout: 30_000,
          env: {
            PATH: process.env.PATH,
            HOME: dir,
            GIT_CONFIG_NOSYSTEM: '1',
            GIT_TERMINAL_PROMPT: '0',
            GIT_CONFIG_COUNT: '1',
            GIT_CONFIG_KEY_0: 'http.extraHeader',
            GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${username}:${token}`).toString('base64')}`,
          },
        },
        (err, _stdout, stderr) => resolve({ ok: !err, stderr }),
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
