/**
 * HTTP client of the STS: RFC 8414 metadata, RFC 8693 exchange, RFC 7009
 * revocation. Every failure becomes a ClientError with the exit code a
 * pipeline can act on; the subject token and issued token never appear in one.
 */
import { createHash } from 'node:crypto';
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../util/oauth-urns.ts';
import { retryAfterSeconds } from '../util/retry-after.ts';
import { StsRefusedError, StsUnavailableError } from './errors.ts';
import { redact, redactor } from './redact.ts';
import { isTokenShaped, isUsernameShaped } from './trust.ts';

/**
 * As received: the values are the STS's word, not yet checked (a rogue STS
 * chooses them). `metadataGitlabUrl` and `checkMetadataAzureScope` check the
 * two the client acts on.
 */
export interface StsMetadata {
  issuer?: unknown;
  token_endpoint?: unknown;
  revocation_endpoint?: unknown;
  grant_types_supported?: unknown;
  /** Extension: the Entra ID scope to request before calling the STS. */
  azure_scope?: unknown;
  azure_scopes?: unknown;
  gitlab_url?: unknown;
}

export interface ExchangeRequest {
  subjectToken: string;
  subjectTokenType: string;
  /** Absolute GitLab project/group URL (RFC 8693 `resource`)… */
  resource?: string;
  /** …or a path sent as `audience` when no GitLab URL is known. */
  audience?: string;
  scopes?: string[];
  ttlSeconds?: number;
}

export interface ExchangeResult {
  accessToken: string;
  issuedTokenType: string | undefined;
  tokenType: string | undefined;
  expiresIn: number | undefined;
  /** Granted scopes: the response's `scope`, else what was asked for (RFC 8693 §2.2.1). */
  scopes: string[] | undefined;
  /**
   * The response's `gitlab_username` (what git and registries must be given with the token: a
   * deploy token's own username); undefined from an STS that sends none (older ones: access
   * tokens only, where any username works). `usernameOf` (formats.ts) picks the one to use.
   */
  username?: string;
  /** The response body exactly as received (for `--format json`). */
  body: string;
}

export interface StsClientOptions {
  baseUrl: string;
  timeoutMs?: number;
  /** Extra attempts after a network error before sending, 429, 502, 503 or 504. */
  retries?: number;
  /** Longest Retry-After we are willing to wait for in-process. */
  maxRetryWaitSeconds?: number;
  log?: (line: string) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

interface HttpAnswer {
  status: number;
  body: string;
  retryAfter: number | undefined;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
// Errors raised before the request reached the server: retrying cannot mint a second token.
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export class StsClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxRetryWait: number;
  private readonly log: (line: string) => void;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private metadataPromise: Promise<StsMetadata> | undefined;

  constructor(options: StsClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 2;
    this.maxRetryWait = options.maxRetryWaitSeconds ?? 30;
    this.log = options.log ?? (() => {});
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The STS's RFC 8414 metadata, fetched once per process. */
  metadata(): Promise<StsMetadata> {
    this.metadataPromise ??= (async () => {
      const url = `${this.baseUrl}/.well-known/oauth-authorization-server`;
      const answer = await this.send('fetching the STS metadata', url, { method: 'GET' });
      if (answer.status !== 200) {
        if (answer.status >= 500) throw unavailable('fetching the STS metadata', this.baseUrl, answer);
        throw new StsRefusedError(
          `fetching the STS metadata from ${url} failed with HTTP ${answer.status}: is --sts / TANUKI_STS_URL the STS's base URL?`,
          { status: answer.status },
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(answer.body);
      } catch {
        throw new StsRefusedError(
          `${url} did not return JSON: is --sts / TANUKI_STS_URL the STS's base URL?`,
        );
      }
      if (typeof parsed !== 'object' || parsed === null)
        throw new StsRefusedError(`${url} returned no metadata object`);
      const m = parsed as StsMetadata;
      // Quoted: these are the STS's strings, and must not forge lines in the job log.
      const q = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v).slice(0, 200));
      this.log(
        `STS metadata: issuer ${q(m.issuer)}, gitlab_url ${q(m.gitlab_url)}, azure_scope ${q(m.azure_scope)}`,
      );
      return m;
    })();
    return this.metadataPromise;
  }

  async exchange(req: ExchangeRequest): Promise<ExchangeResult> {
    redactor.add(req.subjectToken);
    const form = new URLSearchParams({
      grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
      subject_token: req.subjectToken,
      subject_token_type: req.subjectTokenType,
    });
    if (req.resource !== undefined) form.set('resource', req.resource);
    if (req.audience !== undefined) form.set('audience', req.audience);
    if (req.scopes && req.scopes.length > 0) form.set('scope', req.scopes.join(' '));
    if (req.ttlSeconds !== undefined) form.set('expires_in', String(req.ttlSeconds));
    const target = req.resource ?? req.audience ?? '?';
    this.log(
      `exchange: ${req.resource !== undefined ? 'resource' : 'audience'}=${target} scope=${req.scopes?.join(' ') ?? '(policy default)'} expires_in=${req.ttlSeconds ?? '(policy default)'}`,
    );
    const answer = await this.send('exchanging the token at the STS', `${this.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    });
    if (answer.status === 200) {
      const result = parseExchangeAnswer(answer.body, req, this.baseUrl);
      if (!isTokenShaped(result.accessToken)) throw await this.refuseIssued(result.accessToken);
      if (result.username === null) throw await this.refuseUsername(result.accessToken);
      return result as ExchangeResult;
    }
    throw exchangeFailure(answer, target, this.baseUrl);
  }

  /**
   * A 200 whose token is not one line of token characters: printed, it would
   * run shell code from `--format env`, add lines to git's credential protocol
   * or a netrc file, or headers to git's requests. It is never used; what was
   * issued is revoked (it may be real), and the job stops with exit 5.
   */
  private async refuseIssued(token: string): Promise<StsUnavailableError> {
    const sha = createHash('sha256').update(token).digest('hex').slice(0, 16);
    let outcome = 'revoked it';
    try {
      await this.revoke(token);
    } catch (err) {
      outcome = `could not revoke it (${redact((err as Error).message).slice(0, 200)})`;
    }
    return new StsUnavailableError(
      `the STS at ${this.baseUrl} issued a token that is not a single line of token characters ([A-Za-z0-9_.-], 8-512 long; got ${token.length} characters, sha256 ${sha}…): not used, ${outcome} — is --sts / TANUKI_STS_URL the real STS?`,
    );
  }

  /**
   * A 200 whose `gitlab_username` is not a username (a string of `[A-Za-z0-9.+_-]`): it goes into
   * netrc lines, URLs, git's credential protocol and the environment, so it is never used; the token
   * is revoked and the job stops with exit 5.
   */
  private async refuseUsername(token: string): Promise<StsUnavailableError> {
    let outcome = 'revoked the token';
    try {
      await this.revoke(token);
    } catch (err) {
      outcome = `could not revoke the token (${redact((err as Error).message).slice(0, 200)})`;
    }
    return new StsUnavailableError(
      `the STS at ${this.baseUrl} answered a gitlab_username that is not a username ([A-Za-z0-9.+_-], 1-255 long): not used, ${outcome} — is --sts / TANUKI_STS_URL the real STS?`,
    );
  }

  /** RFC 7009: 200 whatever the token was. Throws StsUnavailableError when the STS cannot be reached. */
  async revoke(token: string): Promise<void> {
    redactor.add(token);
    const answer = await this.send('revoking the token at the STS', `${this.baseUrl}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    });
    if (answer.status === 200) {
      this.log('revoke: done');
      return;
    }
    if (answer.status >= 500 || answer.status === 429)
      throw unavailable('revoking the token', this.baseUrl, answer);
    const e = parseOAuthError(answer.body);
    throw new StsRefusedError(
      `the STS refused the revocation (HTTP ${answer.status}${e.error ? ` ${e.error}` : ''}${e.description ? `: ${e.description}` : ''})`,
      { status: answer.status, error: e.error, requestId: e.requestId },
    );
  }

  private async send(what: string, url: string, init: RequestInit): Promise<HttpAnswer> {
    for (let attempt = 0; ; attempt++) {
      let answer: HttpAnswer;
      try {
        const res = await this.fetchImpl(url, {
          ...init,
          redirect: 'error',
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        answer = {
          status: res.status,
          body: await res.text(),
          retryAfter: retryAfterSeconds(res.headers.get('retry-after')),
        };
      } catch (err) {
        const code = errorCode(err);
        if (attempt < this.retries && code !== undefined && CONNECT_ERRORS.has(code)) {
          const wait = 2 ** attempt;
          this.log(`${what}: ${code}, retrying in ${wait}s`);
          await this.sleep(wait * 1000);
          continue;
        }
        throw networkFailure(what, this.baseUrl, err, this.timeoutMs);
      }
      if (RETRYABLE_STATUS.has(answer.status) && attempt < this.retries) {
        const wait = answer.retryAfter ?? 2 ** attempt;
        if (wait <= this.maxRetryWait) {
          this.log(`${what}: HTTP ${answer.status}, retrying in ${wait}s`);
          await this.sleep(wait * 1000);
          continue;
        }
      }
      return answer;
    }
  }
}

/** The answer as parsed; `username` null: present but not a username (refused by the caller). */
function parseExchangeAnswer(
  body: string,
  req: ExchangeRequest,
  base: string,
): Omit<ExchangeResult, 'username'> & { username?: string | null } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new StsUnavailableError(
      `the STS at ${base} answered 200 without JSON; it may be misconfigured or behind a proxy`,
    );
  }
  const accessToken = parsed.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new StsUnavailableError(`the STS at ${base} answered 200 without an access_token`);
  }
  redactor.add(accessToken);
  const scope = typeof parsed.scope === 'string' ? parsed.scope.split(' ').filter(Boolean) : req.scopes;
  return {
    accessToken,
    issuedTokenType: typeof parsed.issued_token_type === 'string' ? parsed.issued_token_type : undefined,
    tokenType: typeof parsed.token_type === 'string' ? parsed.token_type : undefined,
    // Bounded: it decides how long the helper caches and what git is told (password_expiry_utc).
    expiresIn:
      typeof parsed.expires_in === 'number' &&
      Number.isFinite(parsed.expires_in) &&
      parsed.expires_in > 0 &&
      parsed.expires_in <= 366 * 86_400
        ? Math.floor(parsed.expires_in)
        : undefined,
    scopes: scope,
    // Absent from older STSs; anything but a username-shaped string is refused (exchange()).
    ...(parsed.gitlab_username === undefined
      ? {}
      : { username: isUsernameShaped(parsed.gitlab_username) ? parsed.gitlab_username : null }),
    body,
  };
}

interface OAuthErrorBody {
  error: string | undefined;
  description: string | undefined;
  requestId: string | undefined;
}

export function parseOAuthError(body: string): OAuthErrorBody {
  try {
    const p = JSON.parse(body) as Record<string, unknown>;
    const s = (v: unknown) => (typeof v === 'string' ? redact(v).slice(0, 300) : undefined);
    return { error: s(p.error), description: s(p.error_description), requestId: s(p.request_id) };
  } catch {
    return { error: undefined, description: undefined, requestId: undefined };
  }
}

const REFUSAL_ADVICE: Record<string, (target: string) => string> = {
  invalid_request: () =>
    'the subject token is invalid or no STS policy accepts it — check the identity (app/managed identity/CI job) is named in a policy, has the required app role, and that the Azure scope is the STS App ID URI',
  invalid_target: (t) =>
    `no token for "${t}" — check --resource / TANUKI_RESOURCE names an existing GitLab project or group that your policy grants`,
  invalid_scope: () =>
    'the STS does not grant the requested scope — check --scope / TANUKI_SCOPE against the policy (or omit it for the default)',
  unsupported_grant_type: () =>
    'the server does not do RFC 8693 token exchange — is --sts / TANUKI_STS_URL a tanuki-sts?',
  invalid_client: () =>
    'the STS wants client authentication this client does not do — check the STS configuration',
};

function exchangeFailure(answer: HttpAnswer, target: string, base: string): Error {
  const e = parseOAuthError(answer.body);
  if (answer.status >= 500 || answer.status === 429)
    return unavailable('exchanging the token', base, answer, e);
  const rid = e.requestId ? ` (request_id ${e.requestId})` : '';
  const code = e.error ?? `HTTP ${answer.status}`;
  let advice: string;
  if (answer.status === 413)
    advice = 'the request was too large — is the subject token file the token and nothing else?';
  else if (answer.status === 404 || answer.status === 405)
    advice = `${base}/token does not exist — is --sts / TANUKI_STS_URL the STS's base URL?`;
  else advice = (e.error && REFUSAL_ADVICE[e.error]?.(target)) ?? e.description ?? 'no details given';
  const desc = e.description && e.error && REFUSAL_ADVICE[e.error] ? ` [${e.description}]` : '';
  return new StsRefusedError(`the STS refused the exchange: ${code}: ${advice}${desc}${rid}`, {
    status: answer.status,
    error: e.error,
    requestId: e.requestId,
  });
}

function unavailable(
  what: string,
  base: string,
  answer: HttpAnswer,
  e = parseOAuthError(answer.body),
): StsUnavailableError {
  const retry =
    answer.retryAfter !== undefined
      ? `; the STS asks to retry after ${answer.retryAfter}s (Retry-After)`
      : '';
  const rid = e.requestId ? ` (request_id ${e.requestId})` : '';
  const why =
    answer.status === 429
      ? 'too many requests (rate limited)'
      : answer.status === 503
        ? `the STS or GitLab behind it is temporarily unavailable${e.description ? `: ${e.description}` : ''}`
        : `the STS failed with HTTP ${answer.status}${e.error ? ` ${e.error}` : ''}`;
  return new StsUnavailableError(`${what} at ${base} failed: ${why}${retry}${rid}`, {
    status: answer.status,
    retryAfterSeconds: answer.retryAfter,
  });
}

function networkFailure(what: string, base: string, err: unknown, timeoutMs: number): StsUnavailableError {
  const code = errorCode(err);
  const name = (err as { name?: string })?.name;
  let why: string;
  if (name === 'TimeoutError' || name === 'AbortError')
    why = `no answer within ${Math.round(timeoutMs / 1000)}s`;
  else if (code === 'ECONNREFUSED') why = 'connection refused (ECONNREFUSED): nothing listens there';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = `the host name does not resolve (${code})`;
  else if (code?.startsWith('ERR_TLS') || code?.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT')
    why = `TLS failed (${code}): is the STS certificate trusted? (NODE_EXTRA_CA_CERTS)`;
  else {
    const cause = (err as { cause?: { message?: string } })?.cause?.message;
    why = code ?? redact(String(cause ?? (err as Error)?.message ?? err)).slice(0, 200);
  }
  return new StsUnavailableError(
    `${what} failed: cannot reach ${base}: ${why} — check --sts / TANUKI_STS_URL and that this job can reach the STS`,
    { cause: err },
  );
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
