import { TOKEN_PATTERN } from '../util/token-patterns.ts';

/** Token-shaped text (a GitLab token, a JWT) pasted where a name or path belongs is never printed. */
function scrub(text: string): string {
  return text.replace(TOKEN_PATTERN, '[token redacted]');
}

/**
 * The one error of this folder: a configuration that cannot be used, with one line per wrong key.
 * The lines name keys and what was expected, not values; as a last guard, anything token-shaped
 * they would quote (a file path, an environment variable name, a key) is redacted.
 */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  readonly issues: string[];
  constructor(message: string, issues: string[] = []) {
    const lines = issues.map(scrub);
    super(lines.length ? `${scrub(message)}:\n  - ${lines.join('\n  - ')}` : scrub(message));
    this.issues = lines;
  }
}
