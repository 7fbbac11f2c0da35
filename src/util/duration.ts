/** Durations as operators write them in config and on the command line: `90s`, `15m`, `1h`, `1d`, or plain seconds. */
export class DurationError extends Error {
  readonly code = 'ERR_DURATION';
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parse a duration to whole seconds. Throws DurationError on anything else. */
export function parseDurationSeconds(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input <= 0)
      throw new DurationError('expected a positive whole number of seconds');
    return input;
  }
  const m = /^([1-9][0-9]{0,8})([smhd]?)$/.exec(input.trim());
  if (!m)
    throw new DurationError(`expected a duration such as 90s, 15m, 1h or 1d, got "${input.slice(0, 40)}"`);
  return Number(m[1]) * (UNITS[m[2] || 's'] ?? 1);
}
