/**
 * Key selection from a fetched JWKS (RFC 7517). We pick the key ourselves
 * rather than through jose's `createLocalJWKSet` so that "no key with this
 * kid" (worth one refetch) is told apart from "a key with this kid that cannot
 * verify this alg" (an attack: an RSA kid with an ES256 header, #10 and #4 in
 * the attack catalogue), which is refused without any fetch.
 *
 * Only public members are imported (kty, n, e / crv, x, y), whatever else the
 * document carries; `use` must be `sig` and `alg`/`key_ops` must allow the
 * header alg when present (RFC 7517 §4.2-4.4). signature.ts then binds the
 * imported key to the alg for node:crypto and refuses RSA keys under 2048 bits
 * (RFC 7518 §3.3).
 */
import { importJWK, type JWK } from 'jose';
import { SubjectTokenCodes as C, quote, refuse } from './errors.ts';
import { type SignatureKey, signatureKey } from './signature.ts';

/** More keys than any real issuer publishes (Entra: about 5-8). */
export const MAX_JWKS_KEYS = 100;

const EC_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

interface Entry {
  kid: string | undefined;
  raw: Record<string, unknown>;
}

export type Verifier = SignatureKey;

export type Selection = { kind: 'found'; key: Promise<Verifier> } | { kind: 'unknown' };

export class KeySet {
  private readonly entries: Entry[];
  private readonly imported = new Map<string, Promise<Verifier>>();

  /** Throws a plain Error when the document is not a JWKS. */
  constructor(doc: unknown) {
    if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw new Error('not a JWKS: no "keys" array');
    }
    const keys = (doc as { keys: unknown[] }).keys;
    if (keys.length > MAX_JWKS_KEYS)
      throw new Error(`JWKS holds ${keys.length} keys; the limit is ${MAX_JWKS_KEYS}`);
    this.entries = keys
      .filter((k): k is Record<string, unknown> => !!k && typeof k === 'object' && !Array.isArray(k))
      .filter((k) => typeof k.kty === 'string')
      .map((raw) => ({ kid: typeof raw.kid === 'string' ? raw.kid : undefined, raw }));
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The key for `kid` (or the only usable key when the header has no kid,
   * generic OIDC only) that can verify `alg`. 'unknown' when no key has that
   * kid; throws ERR_KEY_MISMATCH when keys have it but none fits `alg`.
   */
  select(kid: string | undefined, alg: string): Selection {
    const named = kid === undefined ? this.entries : this.entries.filter((e) => e.kid === kid);
    if (named.length === 0) return { kind: 'unknown' };
    const usable = named.filter((e) => fits(e.raw, alg));
    if (usable.length === 0) {
      if (kid === undefined) return { kind: 'unknown' };
      throw refuse(
        C.KEY_MISMATCH,
        `key ${quote(kid, 40)} (kty ${quote(named[0]?.raw.kty)}) cannot verify ${alg}`,
      );
    }
    if (usable.length > 1) {
      throw refuse(
        C.KEY_MISMATCH,
        `${usable.length} keys fit kid ${quote(kid ?? null, 40)} and ${alg}: ambiguous`,
      );
    }
    const entry = usable[0]!;
    const cacheKey = `${this.entries.indexOf(entry)}|${alg}`;
    let key = this.imported.get(cacheKey);
    if (!key) {
      key = importJWK(publicPart(entry.raw), alg).then((imported) => signatureKey(imported, alg));
      // Keep the rejection observable by the caller only; do not leave an unhandled one in the cache.
      key.catch(() => {});
      this.imported.set(cacheKey, key);
    }
    return { kind: 'found', key };
  }
}

function fits(k: Record<string, unknown>, alg: string): boolean {
  if (k.use !== undefined && k.use !== 'sig') return false;
  if (k.alg !== undefined && k.alg !== alg) return false;
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) return false;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    return k.kty === 'RSA' && typeof k.n === 'string' && typeof k.e === 'string';
  }
  if (alg.startsWith('ES')) {
    return k.kty === 'EC' && k.crv === EC_CURVE[alg] && typeof k.x === 'string' && typeof k.y === 'string';
  }
  if (alg === 'EdDSA') return k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string';
  return false;
}

function publicPart(k: Record<string, unknown>): JWK {
  if (k.kty === 'RSA') return { kty: 'RSA', n: k.n as string, e: k.e as string };
  if (k.kty === 'EC') return { kty: 'EC', crv: k.crv as string, x: k.x as string, y: k.y as string };
  return { kty: 'OKP', crv: k.crv as string, x: k.x as string };
}
