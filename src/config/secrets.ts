/**
 * Secret sources: a secret is given inline (discouraged), from an environment
 * variable (`{ env: NAME }`) or from a file (`{ file: path }`, relative to the
 * config file). Read once, at load time, trimmed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

export const secretRef = z.union([
  z.string().min(1),
  z
    .object({
      env: z
        .string()
        .regex(
          /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
          'expected the name of an environment variable (letters, digits, `_`)',
        ),
    })
    .strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);
export type SecretRef = z.output<typeof secretRef>;

/** The secret's value; a missing variable or unreadable file is a ConfigError naming `key`. */
export function resolveSecret(ref: SecretRef, baseDir: string, key: string, env: NodeJS.ProcessEnv): string {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const v = env[ref.env];
    if (!v)
      throw new ConfigError('invalid configuration', [`${key}: environment variable ${ref.env} is not set`]);
    return v.trim();
  }
  try {
    return readFileSync(resolve(baseDir, ref.file), 'utf8').trim();
  } catch {
    throw new ConfigError('invalid configuration', [`${key}: cannot read file ${ref.file}`]);
  }
}
