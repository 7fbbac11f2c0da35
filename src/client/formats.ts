/**
 * Output formats of `tanuki-sts token`. Each renders the issued token and
 * nothing else, ready for a file or a pipe; stdout carries only this.
 */
import { StsRefusedError, UsageError } from './errors.ts';
import type { OutputFormat } from './settings.ts';
import type { ExchangeResult } from './sts.ts';
import { isTokenShaped, shellQuote } from './trust.ts';

export interface RenderInput {
  result: ExchangeResult;
  /** GitLab base URL, for netrc and git-credentials. */
  gitlabUrl: string | undefined;
  registry: string | undefined;
}

export const BASIC_USERNAME = 'oauth2';

export function basicAuth(token: string): string {
  return Buffer.from(`${BASIC_USERNAME}:${token}`).toString('base64');
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
  // StsClient.exchange already refused anything else; checked again where it would be printed.
  if (!isTokenShaped(token))
    throw new Error('refusing to print a token that is not one line of token characters');
  switch (format) {
    case 'raw':
      return `${token}\n`;
    case 'json':
      return input.result.body.endsWith('\n') ? input.result.body : `${input.result.body}\n`;
    case 'env':
      // Quoted although the token is checked: the file is meant to be sourced by a shell.
      return `GITLAB_TOKEN=${shellQuote(token)}\n`;
    case 'netrc': {
      const host = new URL(input.gitlabUrl ?? '').hostname;
      return `machine ${host} login ${BASIC_USERNAME} password ${token}\n`;
    }
    case 'git-credentials': {
      const u = new URL(input.gitlabUrl ?? '');
      return `${u.protocol}//${BASIC_USERNAME}:${encodeURIComponent(token)}@${u.host}\n`;
    }
    case 'docker-config': {
      const registry = input.registry ?? '';
      return `${JSON.stringify({ auths: { [registry]: { auth: basicAuth(token) } } })}\n`;
    }
  }
}
