/**
 * The new token of a rotation, kept in the ledger between GitLab's answer and
 * the write-back, sealed so that the ledger alone (a database dump, a backup)
 * does not reveal it: AES-256-GCM under a key derived (HKDF-SHA-256, a random
 * salt per seal) from the value of the token being rotated. Whoever holds the
 * old token can open it — the STS's replicas, which hold it until they see the
 * new one; nobody else can. The rotation's id is the associated data, so a
 * sealed value cannot be moved to another row.
 *
 * Format: `v1.<salt>.<iv>.<ciphertext>.<tag>`, each part base64url.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const INFO = 'tanuki-sts/credential-rotation/v1';

function key(oldToken: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(oldToken, 'utf8'), salt, INFO, 32));
}

export function sealToken(value: string, oldToken: string, rotationId: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key(oldToken, salt), iv);
  cipher.setAAD(Buffer.from(rotationId, 'utf8'));
  const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return ['v1', salt, iv, ct, cipher.getAuthTag()]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

/** The sealed value, or undefined if `oldToken` (or the id) is not the one it was sealed with. */
export function openSealedToken(sealed: string, oldToken: string, rotationId: string): string | undefined {
  const parts = sealed.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') return undefined;
  const [salt, iv, ct, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (salt.length !== 16 || iv.length !== 12 || tag.length !== 16) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key(oldToken, salt), iv);
    decipher.setAAD(Buffer.from(rotationId, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
