/** `${VAR}` expansion, applied to every string of the parsed file before validation. */

/**
 * `${VAR}` anywhere in a string value is replaced from the environment; a missing
 * variable is pushed to `issues` (as `path: …`) and replaced by the empty string.
 * Values under a key in `skip` (secret-bearing keys when secrets are not read)
 * are left as written.
 */
export function expandEnv(
  value: unknown,
  path: string,
  issues: string[],
  env: NodeJS.ProcessEnv,
  skip: ReadonlySet<string> = new Set(),
): unknown {
  if (skip.has(path)) return value;
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        issues.push(`${path || '(root)'}: environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, `${path}[${i}]`, issues, env, skip));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, expandEnv(v, path ? `${path}.${k}` : k, issues, env, skip)]),
    );
  }
  return value;
}
