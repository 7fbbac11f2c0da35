/**
 * The vault's secrets: each a list of versions, the newest last. A set always
 * adds a version (Key Vault REST API, "Set Secret": "If the named secret already
 * exists, Azure Key Vault creates a new version of that secret"). Names are
 * case-insensitive and keep the spelling of their first set. Versions are 32
 * lower-case hex digits, as Key Vault's are.
 *
 * With `persist`, `<stateDir>/keyvault-state.json` (mode 0600: it holds the values)
 * is rewritten atomically after every change.
 */
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  /** Unix seconds. */
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

export interface Secret {
  name: string;
  /** Oldest first. */
  versions: SecretVersion[];
}

export interface SetSecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  nbf?: number;
  exp?: number;
}

export const STATE_FILE = 'keyvault-state.json';

interface StateFile {
  version: 1;
  secrets: Secret[];
}

export class VaultStore {
  private readonly secrets = new Map<string, Secret>();
  /** Called after every change. */
  onChange: () => void = () => {};

  constructor(private readonly now: () => number = Date.now) {}

  get(name: string): Secret | undefined {
    return this.secrets.get(name.toLowerCase());
  }

  list(): Secret[] {
    return [...this.secrets.values()];
  }

  latest(name: string): SecretVersion | undefined {
    return this.get(name)?.versions.at(-1);
  }

  version(name: string, version: string): SecretVersion | undefined {
    return this.get(name)?.versions.find((v) => v.version === version.toLowerCase());
  }

  /** A new version of `name` (the secret is created by its first version). */
  set(name: string, input: SetSecretInput): { secret: Secret; version: SecretVersion } {
    const key = name.toLowerCase();
    let secret = this.secrets.get(key);
    if (!secret) {
      secret = { name, versions: [] };
      this.secrets.set(key, secret);
    }
    const t = Math.floor(this.now() / 1000);
    const version: SecretVersion = {
      version: randomUUID().replace(/-/g, ''),
      value: input.value,
      ...(input.contentType === undefined ? {} : { contentType: input.contentType }),
      ...(input.tags === undefined ? {} : { tags: { ...input.tags } }),
      enabled: input.enabled ?? true,
      ...(input.nbf === undefined ? {} : { nbf: input.nbf }),
      ...(input.exp === undefined ? {} : { exp: input.exp }),
      created: t,
      updated: t,
    };
    secret.versions.push(version);
    this.onChange();
    return { secret, version };
  }

  /** What `/_emulator/secrets` shows: everything but the values (a SHA-256 of each instead). */
  describe() {
    return this.list().map((s) => ({
      name: s.name,
      versions: s.versions.map((v) => ({
        version: v.version,
        enabled: v.enabled,
        created: v.created,
        contentType: v.contentType ?? null,
        sha256: createHash('sha256').update(v.value).digest('hex'),
      })),
    }));
  }

  /** Saved secrets replace the seed's of the same name; the seed's others stay. */
  restore(saved: Secret[]): void {
    for (const s of saved) {
      if (typeof s?.name !== 'string' || !Array.isArray(s.versions) || s.versions.length === 0) continue;
      this.secrets.set(s.name.toLowerCase(), {
        name: s.name,
        versions: s.versions.map((v) => ({ ...v, ...(v.tags ? { tags: { ...v.tags } } : {}) })),
      });
    }
  }
}

export function loadState(stateDir: string): Secret[] | undefined {
  const file = join(stateDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    return s?.version === 1 && Array.isArray(s.secrets) ? s.secrets : undefined;
  } catch {
    // A damaged file is ignored: the vault starts from its seed.
    return undefined;
  }
}

export function saveState(stateDir: string, store: VaultStore): void {
  const file = join(stateDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const state: StateFile = { version: 1, secrets: store.list() };
  writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
  renameSync(tmp, file);
  chmodSync(file, 0o600);
}
