/**
 * Output formats of `tanuki-sts token`. Each renders the issued token and
 * nothing else, ready for a file or a pipe; stdout carries only this.
 */
import { GITLAB_TOKEN_PATTERN } from '../util/token-patterns.ts';
import { StsRefusedError, UsageError } from './errors.ts';
import type { OutputFormat } from './settings.ts';
import type { ExchangeResult } from './sts.ts';
import { isTokenShaped, isUsernameShaped, shellQuote } from './trust.ts';

export interface RenderInput {
  result: ExchangeResult;
  /** GitLab base URL, for netrc and git-credentials. */
  gitlabUrl: string | undefined;
  registry: string | undefined;
}

/** The username used when the STS names none (older STSs mint access tokens only: any username works). */
export const BASIC_USERNAME = 'oauth2';

/**
 * The username to give git and the registries with the token: the STS's `gitlab_username` (a
 * deploy token works only with its own), else `oauth2`.
 */
export function usernameOf(result: Pick<ExchangeResult, 'username'>): string {
  return result.username ?? BASIC_USERNAME;
}

export function basicAuth(token: string, username = BASIC_USERNAME): string {
  return Buffer.from(`${username}:${token}`).toString('base64');
}

/** Checked before the token is shown: a docker config without registry access would fail later, less clearly. */
export function checkFormatNeeds(format: OutputFormat, input: RenderInput): void {
  if (format === 'docker-config') {
    if (!input.registry) {
      throw new UsageError(
        '--format docker-config needs --registry HOST (or TANUKI_REGISTRY), e.g. registry.gitlab.example.com',
      );
    }
    const granted = input.result.scopes ?? [];
    if (!granted.includes('read_registry')) {
      throw new StsRefusedError(
        `the STS granted "${granted.join(' ') || '(no scope listed)'}" without read_registry, so the token cannot pull images — ask for --scope "read_registry" and check the STS policy allows it (no token printed; the issued one was revoked)`,
      );
    }
  }
  if ((format === 'netrc' || format === 'git-credentials') && !input.gitlabUrl) {
    throw new UsageError(
      `--format ${format} needs the GitLab host: give --resource as a URL or run an STS whose metadata names gitlab_url`,
    );
  }
}

export function renderToken(format: OutputFormat, input: RenderInput): string {
  const token = input.result.accessToken;
  const username = usernameOf(input.result);
  // StsClient.exchange already refused anything else; checked again where it would be printed.
  if (!isTokenShaped(token))
    throw new Error('refusing to print a token that is not one line of token characters');
  if (!isUsernameShaped(username)) throw new Error('refusing to print a username that is not one');
  switch (format) {
    case 'raw':
      return `${token}\n`;
    case 'json':
      return input.result.body.endsWith('\n') ? input.result.body : `${input.result.body}\n`;
    case 'env':
      // Quoted although both are checked: the file is meant to be sourced by a shell.
      return `GITLAB_TOKEN=${shellQuote(token)}\nGITLAB_USERNAME=${shellQuote(username)}\n`;
    case 'netrc': {
      const host = new URL(input.gitlabUrl ?? '').hostname;
      return `machine ${host} login ${username} password ${token}\n`;
    }
    case 'git-credentials': {
      const u = new URL(input.gitlabUrl ?? '');
      return `${u.protocol}//${encodeURIComponent(username)}:${encodeURIComponent(token)}@${u.host}\n`;
    }
    case 'docker-config': {
      const registry = input.registry ?? '';
      return `${JSON.stringify({ auths: { [registry]: { auth: basicAuth(token, username) } } })}\n`;
    }
  }
}

/** A whole GitLab token (util/token-patterns.ts), an instance prefix (`acme-glpat-…`) allowed, nothing around it. */
const GITLAB_TOKEN_WHOLE = new RegExp(`^(?:[a-z0-9_]+-)*(?:${GITLAB_TOKEN_PATTERN.source})$`, 'i');

/** One GitLab-token-shaped value: a known prefix, and one line of token characters. */
export function isGitlabToken(value: string): boolean {
  return isTokenShaped(value) && GITLAB_TOKEN_WHOLE.test(value);
}

export interface ReadToken {
  token: string;
  format: OutputFormat;
}

export const EXPECTED_TOKEN_INPUT =
  'one GitLab token (glpat-…) in a format `tanuki-sts token` prints: raw, env (GITLAB_TOKEN=…), netrc, git-credentials, docker-config or json';

/**
 * Why a value read from a format is not taken: said without quoting it (it may be a secret of
 * another kind, e.g. an Entra token piped by mistake).
 */
function notGitlab(where: string, value: string): UsageError {
  const kind = /^eyJ/.test(value)
    ? 'a JWT (an Entra ID or CI token?), not a GitLab token'
    : `${value.length} character${value.length === 1 ? '' : 's'}, not GitLab-token-shaped`;
  return new UsageError(`${where} holds ${kind}: revoke needs ${EXPECTED_TOKEN_INPUT}`);
}

function taken(where: string, token: string, format: OutputFormat): ReadToken {
  if (!isGitlabToken(token)) throw notGitlab(where, token);
  return { token, format };
}

function readJson(text: string): ReadToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`the input starts with "{" but is not JSON: revoke needs ${EXPECTED_TOKEN_INPUT}`);
  }
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (typeof o.access_token === 'string') return taken('the json access_token', o.access_token, 'json');
  const auths = o.auths;
  if (typeof auths === 'object' && auths !== null) {
    const entries = Object.values(auths as Record<string, unknown>);
    if (entries.length !== 1) {
      throw new UsageError(
        `the docker-config holds ${entries.length} registries: revoke needs the one-registry file \`tanuki-sts token --format docker-config\` prints`,
      );
    }
    const auth = (entries[0] as { auth?: unknown } | null)?.auth;
    const decoded = typeof auth === 'string' ? Buffer.from(auth, 'base64').toString('utf8') : '';
    // `<username>:<token>`: the STS's gitlab_username (a deploy token's own), else oauth2.
    const colon = decoded.indexOf(':');
    if (colon < 1 || !isUsernameShaped(decoded.slice(0, colon)))
      throw new UsageError(
        `the docker-config's auth is not <username>:<token>: revoke needs ${EXPECTED_TOKEN_INPUT}`,
      );
    return taken("the docker-config's auth", decoded.slice(colon + 1), 'docker-config');
  }
  throw new UsageError(
    `the JSON has neither access_token (json) nor auths (docker-config): revoke needs ${EXPECTED_TOKEN_INPUT}`,
  );
}

/**
 * The token in what `tanuki-sts token` printed, in any of its formats (the inverse of
 * `renderToken`), for `revoke`. Exactly those formats: anything else, or a value that is
 * not a GitLab token, is a UsageError saying what was expected. RFC 7009 has the STS answer
 * 200 for tokens it does not know, so this is the only check that a revocation can mean
 * something.
 */
export function readTokenOutput(input: string): ReadToken {
  const text = input.trim();
  if (text === '') throw new UsageError(`the input is empty: revoke needs ${EXPECTED_TOKEN_INPUT}`);
  if (text.startsWith('{')) return readJson(text);
  // env: GITLAB_TOKEN, then the GITLAB_USERNAME line `token --format env` adds (earlier versions: none).
  const envPair =
    /^(GITLAB_TOKEN=\S*)\r?\nGITLAB_USERNAME=(?:'[A-Za-z0-9.+_-]{1,255}'|[A-Za-z0-9.+_-]{1,255})$/.exec(text);
  if (envPair) return readTokenOutput(envPair[1]!);
  if (/[\r\n]/.test(text)) {
    throw new UsageError(
      `the input has several lines: revoke needs ${EXPECTED_TOKEN_INPUT} (one token per call)`,
    );
  }
  // env: quoted as `token --format env` writes it, or unquoted as earlier versions did.
  const env = /^GITLAB_TOKEN=(?:'([^']*)'|([^\s'"]*))$/.exec(text);
  if (env) return taken('the GITLAB_TOKEN value', env[1] ?? env[2] ?? '', 'env');
  const netrc = /^machine \S+ login \S+ password (\S+)$/.exec(text);
  if (netrc) return taken('the netrc password', netrc[1]!, 'netrc');
  if (/^https?:\/\//i.test(text)) {
    let password = '';
    try {
      const u = new URL(text);
      password = decodeURIComponent(u.password);
    } catch {}
    if (!password)
      throw new UsageError(
        `the URL carries no password: revoke needs ${EXPECTED_TOKEN_INPUT} (git-credentials: https://oauth2:<token>@host)`,
      );
    return taken('the git-credentials password', password, 'git-credentials');
  }
  if (/\s/.test(text))
    throw new UsageError(`the input is not one token: revoke needs ${EXPECTED_TOKEN_INPUT}`);
  return taken('the input', text, 'raw');
}
