/**
 * Scrubbing of anything that could be a credential before text reaches
 * stderr. Library error messages (@azure/identity, MSAL, fetch) can echo
 * response bodies; we never trust them to be clean. Known secret values are
 * registered as they are read, and well-known token shapes are masked too.
 */
import { GITLAB_TOKEN_PATTERN, JWT_PATTERN } from '../util/token-patterns.ts';

const PATTERNS: RegExp[] = [
  // JWTs and GitLab tokens: util/token-patterns.ts.
  JWT_PATTERN,
  GITLAB_TOKEN_PATTERN,
  // Form fields and headers that carry secrets.
  /\b(client_secret|client_assertion|subject_token|actor_token|access_token|refresh_token|password|token)=([^&\s"',]+)/gi,
  /\b(Bearer|Basic)\s+[A-Za-z0-9+/=._~-]{8,}/g,
  /("(?:access_token|client_secret|client_assertion|subject_token|token|password|oidcToken)"\s*:\s*")([^"]*)(")/gi,
];

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Remember a value that must never be printed (ignored if too short to be a secret). */
  add(value: string | undefined): void {
    if (value && value.length >= 6) this.secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    // Longest first so that a secret containing another is fully masked.
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length))
      out = out.split(s).join('[redacted]');
    out = out.replace(PATTERNS[0]!, '[redacted-jwt]');
    out = out.replace(PATTERNS[1]!, '[redacted-token]');
    out = out.replace(PATTERNS[2]!, (_m, k: string) => `${k}=[redacted]`);
    out = out.replace(PATTERNS[3]!, (_m) => `${_m.split(/\s/)[0]} [redacted]`);
    out = out.replace(PATTERNS[4]!, (_m, a: string, _v: string, c: string) => `${a}[redacted]${c}`);
    return out;
  }
}

/** One process-wide redactor: every value read from a secret source is registered here. */
export const redactor = new Redactor();

export function redact(text: string): string {
  return redactor.redact(text);
}
