/**
 * Git smart HTTP through `git http-backend` (CGI), behind GitLab's access
 * checks (`lib/gitlab/git_access.rb`, `app/controllers/repositories/git_http_controller.rb`):
 * - no, unknown, expired or revoked credentials, or a token without a
 *   repository scope → `401` with `WWW-Authenticate: Basic realm="GitLab"`
 *   (git only sends credentials after that challenge);
 * - a project that does not exist or the caller cannot see → `404` "The
 *   project you were looking for could not be found or you don't have
 *   permission to view it." (git prints it after `remote:`);
 * - read needs `read_repository`/`write_repository`/`api` and Reporter; push
 *   needs `write_repository`/`api` and Developer, else `403`.
 * - a deploy token (`Gitlab::Auth#deploy_token_check`) authenticates only with
 *   its own username, while active (`expires_at >= NOW()`: to the second), and
 *   only for its project (a group token: the projects of its group and
 *   subgroups); anything else is the same `401`. It never pushes (no deploy
 *   token scope has `push_code`: `403 You are not allowed to upload code.`) and
 *   reads only with `read_repository` (`403 You are not allowed to download code.`).
 * The old path of a moved project still works for clone, fetch and push
 * (`lib/gitlab/repo_path.rb`: `find_by_full_path(path, follow_redirects: true)`);
 * GitLab's "Project 'old' was moved to 'new'" notice (`Gitlab::Checks::ContainerMoved`,
 * shown after a push) is not emulated.
 *
 * `git clone https://host/group/project` (no `.git`) works as on GitLab: a
 * `GET /group/project/info/refs` whose query is empty or exactly
 * `service=git-upload-pack` / `service=git-receive-pack` is redirected (301)
 * to `/group/project.git/info/refs` with the same query, before any access
 * check (config/routes/git_http.rb, "Redirect /group/project/info/refs to
 * /group/project.git/info/refs"; lib/constraints/repository_redirect_url_constrainer.rb);
 * git follows it and sends the rest of the conversation to the `.git` URL.
 * Anything else without `.git` (a POST, another query) is not a git route: 404.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basicCredentialsOf, clientIp, resolveToken } from './auth.ts';
import { sendText } from './http.ts';
import { gitEnv, repoRelativePath, repositoriesRoot } from './repos.ts';
import { DEVELOPER, REPORTER } from './roles.ts';
import type { DeployTokenRecord, GitlabStore } from './store.ts';

const GIT_PATH = /^\/(.+?)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
/** `/group/project/info/refs`: segments of path characters, none ending in `.git` (that is GIT_PATH). */
const REDIRECTABLE = /^\/((?:[A-Za-z0-9_.-]+\/)+[A-Za-z0-9_.-]+)\/info\/refs$/;
const HANDSHAKE_QUERIES = new Set(['', 'service=git-upload-pack', 'service=git-receive-pack']);

const MESSAGES = {
  accessDenied:
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password. If a token was provided, it was either incorrect, expired, or improperly scoped. See http://127.0.0.1/help/topics/git/troubleshooting_git.md#error-on-git-fetch-http-basic-access-denied",
  projectNotFound:
    "The project you were looking for could not be found or you don't have permission to view it.",
  download: 'You are not allowed to download code from this project.',
  push: 'You are not allowed to push code to this project.',
  authUpload: 'You are not allowed to upload code.',
  authDownload: 'You are not allowed to download code.',
};

export interface GitRequest {
  projectPath: string;
  /** `info/refs`, `git-upload-pack` or `git-receive-pack`. */
  action: string;
  /** True for a push (`git-receive-pack`). */
  write: boolean;
  /** Set for `/group/project/info/refs`: the path (and query) of the `.git` URL to redirect to. */
  redirectTo?: string;
}

/**
 * The git request a path names: `/<project>.git/<action>`, or the handshake of
 * a clone URL without `.git` (`redirectTo` set; `rawQuery` is the query as sent).
 */
export function parseGitPath(
  pathname: string,
  query: URLSearchParams,
  rawQuery = query.toString(),
): GitRequest | undefined {
  const r = REDIRECTABLE.exec(pathname);
  if (r && !r[1]!.endsWith('.git') && HANDSHAKE_QUERIES.has(rawQuery)) {
    return {
      projectPath: r[1]!,
      action: 'info/refs',
      write: rawQuery === 'service=git-receive-pack',
      redirectTo: `/${r[1]}.git/info/refs${rawQuery ? `?${rawQuery}` : ''}`,
    };
  }
  const m = GIT_PATH.exec(pathname);
  if (!m) return undefined;
  let projectPath: string;
  try {
    projectPath = decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
  const action = m[2]!;
  const service = action === 'info/refs' ? query.get('service') : action;
  return { projectPath, action, write: service === 'git-receive-pack' };
}

type GitAccess =
  | { ok: true; username: string; projectId: number }
  | { ok: false; status: number; message: string; headers?: Record<string, string> };

/** GitLab's checks, in its order: credentials and scopes, the project, then the role. */
export function checkGitAccess(store: GitlabStore, req: IncomingMessage, git: GitRequest): GitAccess {
  const challenge = { 'www-authenticate': 'Basic realm="GitLab"' };
  const credentials = basicCredentialsOf(req);
  const deployToken = credentials ? store.findDeployTokenByValue(credentials.password) : undefined;
  if (deployToken && credentials)
    return checkDeployTokenAccess(store, git, deployToken, credentials.username);
  const caller = resolveToken(store, credentials?.password);
  if (typeof caller === 'string')
    return { ok: false, status: 401, message: MESSAGES.accessDenied, headers: challenge };
  const scopes = caller.token.scopes;
  const canRead = scopes.some((s) => s === 'api' || s === 'read_repository' || s === 'write_repository');
  const canWrite = scopes.some((s) => s === 'api' || s === 'write_repository');
  if (!canRead && !canWrite)
    return { ok: false, status: 401, message: MESSAGES.accessDenied, headers: challenge };
  store.touch(caller.token, clientIp(req));

  const project = store.resolveProject(git.projectPath)?.resource;
  const role = project ? store.projectRole(caller.user, project) : 0;
  if (!project?.hasRepository || role === 0)
    return { ok: false, status: 404, message: MESSAGES.projectNotFound };
  if (git.write) {
    if (!canWrite) return { ok: false, status: 403, message: MESSAGES.authUpload };
    if (role < DEVELOPER) return { ok: false, status: 403, message: MESSAGES.push };
  } else if (role < REPORTER) {
    return { ok: false, status: 403, message: MESSAGES.download };
  }
  return { ok: true, username: caller.user.username, projectId: project.id };
}

/**
 * A deploy token over git (`Gitlab::Auth#deploy_token_check`, then `Gitlab::GitAccess`): the login
 * must be the token's username, the token active, and the project its own (or, for a group token,
 * one in its group or a subgroup); otherwise GitLab finds no credential at all (`401`).
 */
function checkDeployTokenAccess(
  store: GitlabStore,
  git: GitRequest,
  token: DeployTokenRecord,
  login: string,
): GitAccess {
  const denied: GitAccess = {
    ok: false,
    status: 401,
    message: MESSAGES.accessDenied,
    headers: { 'www-authenticate': 'Basic realm="GitLab"' },
  };
  if (!store.isDeployTokenActive(token) || login !== store.deployTokenUsername(token)) return denied;
  const project = store.resolveProject(git.projectPath)?.resource;
  if (project) {
    const group = store.groups.get(project.namespaceId);
    const owner = token.kind === 'group' ? store.groups.get(token.resourceId) : undefined;
    const mine =
      token.kind === 'project'
        ? token.resourceId === project.id
        : owner !== undefined && group !== undefined && store.isSelfOrDescendant(owner, group);
    if (!mine) return denied;
  }
  token.lastUsedAt = store.nowIso();
  if (git.write) return { ok: false, status: 403, message: MESSAGES.authUpload };
  if (!token.scopes.includes('read_repository'))
    return { ok: false, status: 403, message: MESSAGES.authDownload };
  if (!project?.hasRepository) return { ok: false, status: 404, message: MESSAGES.projectNotFound };
  return { ok: true, username: store.deployTokenUsername(token), projectId: project.id };
}

export function handleGitRequest(
  store: GitlabStore,
  stateDir: string,
  req: IncomingMessage,
  res: ServerResponse,
  git: GitRequest,
  rawQuery: string,
): void {
  if (git.redirectTo !== undefined) {
    // A routing redirect: GET only, answered before (and whatever) the credentials.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 404, 'Not Found');
      return;
    }
    const location = `http://${req.headers.host ?? '127.0.0.1'}${git.redirectTo}`;
    res.writeHead(301, { location, 'content-type': 'text/html; charset=utf-8', 'content-length': '0' });
    res.end();
    return;
  }
  const access = checkGitAccess(store, req, git);
  if (!access.ok) {
    sendText(res, access.status, access.message, access.headers);
    return;
  }
  runHttpBackend(
    stateDir,
    `/${repoRelativePath(access.projectId)}/${git.action}`,
    access.username,
    req,
    res,
    rawQuery,
  );
}

/** Runs `git http-backend` as a CGI script: request body in, CGI headers and body out. */
function runHttpBackend(
  stateDir: string,
  pathInfo: string,
  remoteUser: string,
  req: IncomingMessage,
  res: ServerResponse,
  rawQuery: string,
): void {
  const h = req.headers;
  const env: Record<string, string> = {
    GIT_PROJECT_ROOT: repositoriesRoot(stateDir),
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: pathInfo,
    REQUEST_METHOD: req.method ?? 'GET',
    QUERY_STRING: rawQuery,
    REMOTE_USER: remoteUser,
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
  };
  if (h['content-type']) env.CONTENT_TYPE = h['content-type'];
  if (h['content-length']) env.CONTENT_LENGTH = h['content-length'];
  if (typeof h['content-encoding'] === 'string') env.HTTP_CONTENT_ENCODING = h['content-encoding'];
  if (typeof h['git-protocol'] === 'string') env.GIT_PROTOCOL = h['git-protocol'];

  const child = spawn('git', ['http-backend'], { env: gitEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString('utf8');
  });
  child.on('error', () => {
    if (!res.headersSent) sendText(res, 500, 'git http-backend failed');
    else res.destroy();
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {});
  req.on('aborted', () => child.kill());
  res.on('close', () => {
    if (child.exitCode === null) child.kill();
  });

  // CGI output: header lines, an empty line, then the body.
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      if (!res.write(chunk)) {
        child.stdout.pause();
        res.once('drain', () => child.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
    if (end < 0) return;
    const sepLen = end === crlf ? 4 : 2;
    const { status, headers } = parseCgiHeaders(head.subarray(0, end).toString('latin1'));
    headersDone = true;
    res.writeHead(status, headers);
    const rest = head.subarray(end + sepLen);
    if (rest.length > 0) res.write(rest);
  });
  child.stdout.on('end', () => {
    if (!headersDone) {
      if (!res.headersSent) sendText(res, 500, 'git http-backend gave no answer');
      return;
    }
    res.end();
  });
  child.on('close', (code) => {
    if (code !== 0 && stderr)
      process.stderr.write(`gitlab emulator: git http-backend exit ${code}: ${stderr.trim()}\n`);
  });
}

export function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') status = Number.parseInt(value, 10) || 200;
    else headers[name] = value;
  }
  return { status, headers };
}
