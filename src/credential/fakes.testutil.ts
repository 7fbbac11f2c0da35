/**
 * Stand-ins for the credential tests: GitLab's personal access tokens as the
 * rotation API treats them (rotate revokes the old token; a rotate call with an
 * already-rotated token revokes the newest token of its family: "Automatic
 * reuse detection", doc/api/personal_access_tokens.md), every call recorded;
 * and a source whose value and write failures the test controls.
 */
import { GitlabRejectedError, GitlabUnavailableError } from '../gitlab/errors.ts';
import type { GitlabClient, PersonalTokenInfo, RotatedPersonalToken } from '../gitlab/types.ts';
import { CredentialSourceError } from './errors.ts';
import type { CredentialSource } from './source.ts';

interface Pat {
  id: number;
  value: string;
  revoked: boolean;
  expiresAt: string | null;
  createdAt: string;
  previous?: number;
}

export interface FakeTokens extends Pick<GitlabClient, 'getSelfToken' | 'rotateSelfToken'> {
  pats: Pat[];
  calls: Array<{ op: 'get' | 'rotate'; token: string; status: number | 'lost' | 'unavailable' }>;
  /** The next rotate: `lost` = GitLab rotates but the answer never arrives; `unavailable` = nothing happens; a status = refused. */
  nextRotate?: 'lost' | 'unavailable' | number;
  /** Whether `value` authenticates now. */
  works(value: string): boolean;
  /** Active tokens of the family. */
  active(): Pat[];
  /** The value of the family's active token (the test's "GitLab view"). */
  activeValue(): string | undefined;
  /** What a call without an explicit token sends (the client's holder). */
  current?: () => string;
}

let counter = 0;
const newValue = () => `glpat-fake${String(++counter).padStart(4, '0')}xxxxxxxxxxxxxxxxxx`;

export function fakeTokens(
  initial: string,
  o: { createdAt?: string; expiresAt?: string | null } = {},
): FakeTokens {
  const pats: Pat[] = [
    {
      id: 1,
      value: initial,
      revoked: false,
      expiresAt: o.expiresAt === undefined ? null : o.expiresAt,
      createdAt: o.createdAt ?? new Date().toISOString(),
    },
  ];
  const info = (p: Pat): PersonalTokenInfo => ({
    id: p.id,
    name: 'sts',
    scopes: ['api'],
    active: !p.revoked,
    revoked: p.revoked,
    expiresAt: p.expiresAt,
    createdAt: p.createdAt,
    userId: 1,
    lastUsedAt: null,
  });
  const f: FakeTokens = {
    pats,
    calls: [],
    works: (v) => pats.some((p) => p.value === v && !p.revoked),
    active: () => pats.filter((p) => !p.revoked),
    activeValue: () => pats.find((p) => !p.revoked)?.value,
    async getSelfToken(token?: string) {
      const t = token ?? f.current?.() ?? '';
      const p = pats.find((x) => x.value === t && !x.revoked);
      f.calls.push({ op: 'get', token: t, status: p ? 200 : 401 });
      if (!p) throw new GitlabRejectedError(401, 'invalid_token', 'reading its own token');
      return info(p);
    },
    async rotateSelfToken(i: { token: string; expiresAt: string }): Promise<RotatedPersonalToken> {
      const p = pats.find((x) => x.value === i.token);
      const mode = f.nextRotate;
      f.nextRotate = undefined;
      if (p?.revoked) {
        // Reuse detection: the newest active token of the family is revoked too.
        for (const q of pats) q.revoked = true;
        f.calls.push({ op: 'rotate', token: i.token, status: 401 });
        throw new GitlabRejectedError(401, 'invalid_token', 'rotating its own token');
      }
      if (!p) {
        f.calls.push({ op: 'rotate', token: i.token, status: 401 });
        throw new GitlabRejectedError(401, '401 Unauthorized', 'rotating its own token');
      }
      if (mode === 'unavailable') {
        f.calls.push({ op: 'rotate', token: i.token, status: 'unavailable' });
        throw new GitlabUnavailableError(
          'GitLab POST /personal_access_tokens/self/rotate failed: ECONNRESET',
        );
      }
      if (typeof mode === 'number') {
        f.calls.push({ op: 'rotate', token: i.token, status: mode });
        throw new GitlabRejectedError(mode, 'refused', 'rotating its own token');
      }
      p.revoked = true;
      const n: Pat = {
        id: Math.max(...pats.map((x) => x.id)) + 1,
        value: newValue(),
        revoked: false,
        expiresAt: i.expiresAt,
        createdAt: new Date().toISOString(),
        previous: p.id,
      };
      pats.push(n);
      if (mode === 'lost') {
        f.calls.push({ op: 'rotate', token: i.token, status: 'lost' });
        throw new GitlabUnavailableError('GitLab POST /personal_access_tokens/self/rotate failed: timed out');
      }
      f.calls.push({ op: 'rotate', token: i.token, status: 200 });
      return { ...info(n), token: n.value };
    },
  };
  return f;
}

export interface MemorySource extends CredentialSource {
  value: string;
  reads: number;
  writes: string[];
  /** Writes that fail (transient) before one succeeds. */
  failWrites: number;
  failReads: boolean;
}

export function memorySource(value: string): MemorySource {
  const s: MemorySource = {
    kind: 'keyVault',
    description: 'Key Vault https://test.vault.azure.net, secret gitlab-token',
    writable: true,
    value,
    reads: 0,
    writes: [],
    failWrites: 0,
    failReads: false,
    async read() {
      s.reads++;
      if (s.failReads) throw new CredentialSourceError('cannot read (test)', true);
      return s.value;
    },
    async write(v: string) {
      if (s.failWrites > 0) {
        s.failWrites--;
        throw new CredentialSourceError(
          `${s.description}: cannot write a new version: 503 ServiceUnavailable`,
          true,
        );
      }
      s.writes.push(v);
      s.value = v;
      return { version: `v${s.writes.length}` };
    },
    async close() {},
  };
  return s;
}

/** A log that keeps its lines (and fails a test that finds a token in them). */
export function memoryLog(): {
  lines: string[];
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
} {
  const lines: string[] = [];
  const add = (level: string) => (o: object, m: string) =>
    void lines.push(`${level} ${m} ${JSON.stringify(o)}`);
  return { lines, info: add('info'), warn: add('warn'), error: add('error') };
}
