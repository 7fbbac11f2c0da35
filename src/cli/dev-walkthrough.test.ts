/**
 * The walkthrough `npm start` prints, pasted as a user would into an
 * interactive bash, and `walkthrough.sh`, run with parts of the stack down:
 * both stop at the first failing step and say which one; the pasted copy
 * never closes the user's shell; no later step claims success.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closedPort } from '../../test/helpers/client-dev-stack.ts';
import { type DevStack, startDevStack } from './dev-stack.ts';

/** The lines each step prints when it worked. */
const STEP1_OK = /^1\. got an Entra ID token/m;
const LATER_OK = [
  /^2\. exchanged it/m,
  /^3\. git clone .* worked/m,
  /^4\. revoked the token/m,
  /^5\. a clone after revocation is refused/m,
];
const SUCCESS = [STEP1_OK, ...LATER_OK];

/** The walkthrough as the banner prints it: the indented lines after "Walk through an exchange by hand". */
function printedWalkthrough(banner: string): string {
  const lines = banner.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Walk through an exchange by hand'));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('Or run it all'));
  assert.ok(start > 0 && end > start, banner);
  return lines
    .slice(start + 1, end)
    .filter((l) => l === '' || l.startsWith('  '))
    .map((l) => l.slice(2))
    .join('\n');
}

interface ShellRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bash(args: string[], input: string, home: string): Promise<ShellRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, {
      env: {
        PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
        HOME: home,
        PS1: '',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_TERMINAL_PROMPT: '0',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/**
 * Pastes `text` into an interactive bash, then `echo still-here`, as a user at a terminal would,
 * and whether the tokens stayed behind in the shell's variables.
 */
const paste = (text: string, home: string) =>
  bash(
    ['--norc', '--noprofile', '-i'],
    `${text}\necho still-here\necho "tokens left in the shell: \${ENTRA_TOKEN:+entra}\${GITLAB_TOKEN:+gitlab}."\n`,
    home,
  );

describe('the dev walkthrough stops at the first failing step', () => {
  let dir: string;
  let home: string;
  let stack: DevStack;
  let printed: string;
  let devJson: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-walkthrough-'));
    home = join(dir, 'home');
    mkdirSync(home);
    stack = await startDevStack({ stateDir: join(dir, 'state') });
    printed = printedWalkthrough(stack.banner());
    devJson = readFileSync(stack.devJsonPath, 'utf8');
  });
  after(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the printed copy holds no `exit` that would close the shell; walkthrough.sh stays strict', () => {
    assert.doesNotMatch(printed, /(^|[\s;&|({])exit(\s|;|$)/m);
    const script = readFileSync(join(dir, 'state', 'walkthrough.sh'), 'utf8');
    assert.match(script, /^#!\/usr\/bin\/env bash\nset -euo pipefail\n/);
  });

  it('STS down: the pasted copy reports step 2 failed, claims nothing after it, and the shell goes on', async () => {
    const stsDown = JSON.parse(devJson);
    stsDown.sts.url = `http://127.0.0.1:${await closedPort()}`;
    writeFileSync(stack.devJsonPath, JSON.stringify(stsDown));
    try {
      const r = await paste(printed, home);
      assert.match(r.stdout, STEP1_OK, r.stderr);
      for (const line of LATER_OK) assert.doesNotMatch(r.stdout, line, r.stdout);
      assert.match(r.stderr, /(^|\s)step 2 failed: /, r.stderr);
      assert.match(r.stdout, /^still-here$/m, 'the shell is still open');
      // Step 1 got an Entra token (valid for an hour): it ended with the subshell, not in the user's shell.
      assert.match(r.stdout, /^tokens left in the shell: \.$/m);
      assert.equal(r.code, 0);

      // walkthrough.sh (npm run demo): the same stop, and a failing exit code.
      const s = await bash([join(dir, 'state', 'walkthrough.sh')], '', home);
      assert.notEqual(s.code, 0);
      assert.match(s.stdout, STEP1_OK);
      for (const line of LATER_OK) assert.doesNotMatch(s.stdout, line, s.stdout);
      assert.match(s.stderr, /^step 2 failed: /m, s.stderr);
    } finally {
      writeFileSync(stack.devJsonPath, devJson);
    }
  });

  it('everything down: step 1 failed, nothing after it, and the shell goes on', async () => {
    await stack.close();
    // What the user still has: the dev.json of a stack that is no longer running.
    writeFileSync(stack.devJsonPath, devJson);
    const r = await paste(printed, home);
    for (const line of SUCCESS) assert.doesNotMatch(r.stdout, line, r.stdout);
    assert.match(r.stderr, /(^|\s)step 1 failed: /, r.stderr);
    assert.match(r.stdout, /^still-here$/m, 'the shell is still open');
    assert.equal(r.code, 0);
  });
});
