/** The one error of this folder: a configuration that cannot be used, with one line per wrong key. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(issues.length ? `${message}:\n  - ${issues.join('\n  - ')}` : message);
  }
}
