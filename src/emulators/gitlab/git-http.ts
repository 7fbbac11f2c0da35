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
 * The old path of a moved project still works for clone, fetch and push
 * (`lib/gitlab/repo_path.rb`: `find_by_full_path(path, follow_redirects: true)`);
 * GitLab's "Project 'old' was moved to 'new'" notice (`Gitlab::Checks::ContainerMoved`,
 * shown after a push) is not emulated.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basicTokenOf, clientIp, resolveToken } from './auth.ts';
import { sendText } from './http.ts';
import { gitEnv, repoRelativePath, repositoriesRoot } from './repos.ts';
import { DEVELOPER, REPORTER } from './roles.ts';
import type { GitlabStore } from './store.ts';

const GIT_PATH = /^\/(.+?)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;

const MESSAGES = {
  accessDenied:
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password. If a token was provided, it was either incorrect, expired, or improperly scoped. See http://127.0.0.1/help/topics/git/troubleshooting_git.md#error-on-git-fetch-http-basic-access-denied",
  projectNotFound:
    "The project you were looking for could not be found or you don't have permission to view it.",
  download: 'You are not allowed to download code from this project.',
  push: 'You are not allowed to push code to this project.',
  authUpload: 'You are not allowed to upload code.',
};

export interface GitRequest {
  projectPath: string;
  /** `info/refs`, `git-upload-pack` or `git-receive-pack`. */
  action: string;
  /** True for a push (`git-receive-pack`). */
  write: boolean;
}

export function parseGitPath(pathname: string, query: URLSearchParams): GitRequest | undefined {
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
  const caller = resolveToken(store, basicTokenOf(req));
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

export function handleGitRequest(
  store: GitlabStore,
  stateDir: string,
  req: IncomingMessage,
  res: ServerResponse,
  git: GitRequest,
  rawQuery: string,
): void {
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
