/**
 * The `clients` section: confidential OAuth clients (RFC 6749 §2.3) that may
 * authenticate at `POST /token` (and `/oauth/token`) with `client_id` and
 * `client_secret`, in the body or as HTTP Basic. A policy may require one
 * (`client: NAME`) beside the subject token. Secrets come from the same
 * sources as `gitlab.token` (secrets.ts) and are read at load time.
 */
import { z } from 'zod';
import { keyVaultRef } from './credential.ts';
import { doc } from './fields.ts';
import { secretRef } from './secrets.ts';

/** A client's name, its `client_id`: what `policies[].client` refers to. */
export const CLIENT_NAME = /^[A-Za-z0-9_~-]{1,128}$/;
export const CLIENT_NAME_RULE = 'expected 1-128 letters, digits, "_", "~" or "-"';

const client = z
  .object({
    secret: doc(
      // The same sources as gitlab.token: secrets.ts's, or Key Vault (read by the service, src/service/runtime.ts).
      z.union([...secretRef.options, keyVaultRef]),
      "The client's secret (its `client_secret`), from the same sources as `gitlab.token`: `{ env: NAME }`, " +
        '`{ file: path }`, `{ keyVault: { vaultUrl, secret, … } }` (read at start-up and at each reload) or ' +
        '(discouraged) an inline string; at least 16 characters. Compared in constant time, never logged. ' +
        'A reload reads it again.',
    ),
  })
  .strict();

export const clientsSchema = doc(
  z
    .record(z.string().regex(CLIENT_NAME, CLIENT_NAME_RULE), client)
    .default({})
    .meta({ expected: 'a map from a client name to `{ secret: … }`' }),
  'Optional. A map from a client name (its `client_id`; 1–128 of `A-Za-z0-9_~-`, no dot: it is part of the key `clients.NAME.secret`) to a confidential ' +
    'client. A request that sends a `client_secret` must name one of these and its secret (else ' +
    "`401 invalid_client`); a bare `client_id` without a secret is recorded as a public client's name " +
    'and authenticates nothing. A policy with `client: NAME` requires the request to authenticate as ' +
    'NAME ([clients](policies.md#client-a-second-factor)).',
);
