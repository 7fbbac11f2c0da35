/**
 * The client and the STS's own token: `getSelfToken`, `rotateSelfToken` (one
 * request, whatever happens), and a token provider that swaps the token on a 401
 * (the request is sent once more). Against the GitLab emulator (personal access
 * token rotation as GitLab does it) and the fake for faults.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../emulators/gitlab/index.ts';
import { utcDate } from '../util/utc-date.ts';
import { createGitlabClient } from './client.ts';
import { GitlabRejectedError, GitlabUnavailableError } from './errors.ts';

const TOKEN = 'glpat-fake-admin-token-0123456789';

/** A GitLab that answers every request with `reply()` and records it. */
async function answering(reply: () => { status: number; body: unknown }) {
  const requests: Array<{ method: string; url: string; body: string }> = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', body });
      const r = reply();
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("the client and the STS's own token", () => {
  let dir: string;
  let emu: GitlabEmulatorHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tanuki-pat-'));
    emu = await startGitlabEmulator({ stateDir: dir });
  });
  after(async () => {
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('getSelfToken, rotateSelfToken: the new token and its expiry; the old one refused after', async () => {
    const old = emu.adminToken;
    const c = createGitlabClient({ url: emu.url, token: old, timeoutMs: 5000 });
    try {
      const self = await c.getSelfToken();
      assert.deepEqual(
        { id: self.id, name: self.name, scopes: self.scopes, active: self.active, expiresAt: self.expiresAt },
        { id: 1, name: 'tanuki-sts-admin', scopes: ['api'], active: true, expiresAt: null },
      );
      const expiresAt = utcDate(Date.now() + 30 * 86_400_000);
      const r = await c.rotateSelfToken({ token: old, expiresAt });
      assert.match(r.token, /^glpat-/);
      assert.notEqual(r.token, old);
      assert.deepEqual(
        { active: r.active, expiresAt: r.expiresAt, scopes: r.scopes },
        {
          active: true,
          expiresAt,
          scopes: ['api'],
        },
      );
      assert.notEqual(r.id, self.id);
      await assert.rejects(
        c.getSelfToken(old),
        (e: Error) => e instanceof GitlabRejectedError && e.status === 401,
      );
      assert.equal((await c.getSelfToken(r.token)).id, r.id);
      // A call with a token of its own says nothing about the client's readiness.
      assert.equal(c.lastStatus()?.ok, true);
    } finally {
      await c.close();
    }
  });

  it('a provider: a 401 asks it, and the request goes once more with the token it has now', async () => {
    const current = emu.adminToken;
    let token = 'glpat-an-old-rotated-away-value01';
    const asked: string[] = [];
    const c = createGitlabClient({
      url: emu.url,
      timeoutMs: 5000,
      token: {
        current: () => token,
        async unauthorized(used) {
          asked.push(used);
          token = current;
          return true;
        },
      },
    });
    try {
      const t = await c.resolveTarget('project', 'platform/internal-lib');
      assert.equal(t.fullPath, 'platform/internal-lib');
      assert.deepEqual(asked, ['glpat-an-old-rotated-away-value01']);
      assert.equal(c.lastStatus()?.ok, true, 'the retry answered');
      // A provider with nothing better: the 401 stands, asked once.
      token = 'glpat-dead-value-xxxxxxxxxxxxxxxx';
      const d = createGitlabClient({
        url: emu.url,
        timeoutMs: 5000,
        token: { current: () => token, unauthorized: async () => false },
      });
      await assert.rejects(
        d.getSelfToken(),
        (e: Error) => e instanceof GitlabRejectedError && e.status === 401,
      );
      assert.equal(d.lastStatus()?.ok, false);
      await d.close();
    } finally {
      await c.close();
    }
  });
});

describe('rotateSelfToken: exactly one request', () => {
  it('a 500, a malformed answer, a 401: one POST each, never a retry; a 401 is not refreshed', async () => {
    let next: { status: number; body: unknown } = { status: 500, body: {} };
    const gl = await answering(() => next);
    let refreshed = 0;
    const c = createGitlabClient({
      url: gl.url,
      timeoutMs: 2000,
      maxRetries: 3,
      retryBaseDelayMs: 1,
      token: {
        current: () => TOKEN,
        async unauthorized() {
          refreshed++;
          return true;
        },
      },
    });
    try {
      for (const [reply, type] of [
        [{ status: 500, body: { message: '500 Internal Server Error' } }, GitlabUnavailableError],
        [{ status: 200, body: { id: 5 } }, GitlabUnavailableError],
        [{ status: 401, body: { message: '401 Unauthorized' } }, GitlabRejectedError],
      ] as const) {
        next = reply;
        const before = gl.requests.length;
        await assert.rejects(c.rotateSelfToken({ token: TOKEN, expiresAt: '2099-01-01' }), type);
        assert.equal(gl.requests.length - before, 1);
      }
      assert.equal(refreshed, 0);
      assert.deepEqual(
        {
          method: gl.requests[0]?.method,
          url: gl.requests[0]?.url,
          body: JSON.parse(gl.requests[0]?.body ?? ''),
        },
        {
          method: 'POST',
          url: '/api/v4/personal_access_tokens/self/rotate',
          body: { expires_at: '2099-01-01' },
        },
      );
    } finally {
      await c.close();
      await gl.close();
    }
  });

  it("GitLab echoing the token in an error: redacted from the error's message", async () => {
    const secret = 'glpat-the-one-being-rotated-0000001';
    const gl = await answering(() => ({
      status: 400,
      body: { message: `token ${secret} cannot be rotated` },
    }));
    const c = createGitlabClient({ url: gl.url, timeoutMs: 2000, token: TOKEN });
    try {
      await assert.rejects(c.rotateSelfToken({ token: secret, expiresAt: '2099-01-01' }), (e: Error) => {
        assert.equal(e.message.includes(secret), false);
        assert.match(e.message, /\[redacted\] cannot be rotated/);
        return true;
      });
    } finally {
      await c.close();
      await gl.close();
    }
  });
});
