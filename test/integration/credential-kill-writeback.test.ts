/**
 * Never lose the only working credential: `tanuki-sts serve` SIGKILLed during a
 * rotation of its GitLab token — after the write-back, and after the write-back failed (the vault refusing `setSecret`) — and restarted
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

  it('killed at after-writeback: the restart ends with one working token, in the vault', () =>
    killAndRestart(root, KILL_CASES['after-writeback']));
  it('killed at writeback-failed: the restart ends with one working token, in the vault', () =>
    killAndRestart(root, KILL_CASES['writeback-failed']));
});
