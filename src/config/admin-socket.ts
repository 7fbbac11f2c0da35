/**
 * `server.adminSocket` of a configuration file, for `tanuki-sts reload`: only
 * that key is read (with `${VAR}` expansion and relative to the file's folder,
 * as `serve` reads it), so the command runs where the server's secrets and
 * other variables are not set. The server validates the whole file itself.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { expandEnv } from './env.ts';
import { ConfigError } from './errors.ts';

export function adminSocketOf(configPath: string, env: NodeJS.ProcessEnv = process.env): string {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(configPath, 'utf8'), { uniqueKeys: true });
  } catch {
    throw new ConfigError(`cannot read config file ${configPath} as YAML`);
  }
  const server = doc && typeof doc === 'object' ? (doc as Record<string, unknown>).server : undefined;
  const raw =
    server && typeof server === 'object' && Object.hasOwn(server, 'adminSocket')
      ? (server as Record<string, unknown>).adminSocket
      : undefined;
  if (typeof raw !== 'string' || raw === '') {
    throw new ConfigError(
      `server.adminSocket is not set in ${configPath}: set it (then restart the STS once), or send SIGHUP to the tanuki-sts serve process`,
    );
  }
  const issues: string[] = [];
  const path = expandEnv(raw, 'server.adminSocket', issues, env) as string;
  if (issues.length) throw new ConfigError('invalid configuration', issues);
  return isAbsolute(path) ? path : resolve(dirname(resolve(configPath)), path);
}
