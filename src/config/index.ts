/**
 * The STS configuration: schema (`schema.ts`, split by section), loading with
 * `${VAR}` expansion (`load.ts`, `env.ts`), secret sources (`secrets.ts`).
 * See README.md; the reference, docs/configuration.md, is generated from the schema.
 */
export { ConfigError } from './errors.ts';
export { defaultServerId, type LoadOptions, loadConfigFile, parseConfig, type StsConfig } from './load.ts';
export type { RawConfig } from './schema.ts';
