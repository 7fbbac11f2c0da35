/**
 * Never lose the only working credential: `tanuki-sts serve` SIGKILLed during a
 * rotation of its GitLab token — before the GitLab call, and after GitLab answered — and restarted
 * (test/helpers/credential-faults.ts says what each restart must leave).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KILL_CASES, killAndRestart } from '../helpers/credential-faults.ts';

describe('SIGKILL during a rotation, then a restart', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'tanuki-cred-kill-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('killed at before-gitlab: the restart ends with one working token, in the vault', () =>
    killAndRestart(root, KILL_CASES['before-gitlab']));
  it('killed at after-gitlab: the restart ends with one working token, in the vault', () =>
    killAndRestart(root, KILL_CASES['after-gitlab']));
});
