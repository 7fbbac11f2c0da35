/**
 * `check-config` advice, not validation: an Entra issuer's `audiences` naming
 * an `api://` Application ID URI that Entra ID would refuse for a new app.
 *
 * Microsoft Learn, "Restrictions on identifier URIs of Microsoft Entra
 * applications", lists the secure patterns; tenants (or Microsoft) enforce them
 * through the app management policy's `identifierUriRestriction`
 * (`uriAdditionWithoutUniqueTenantIdentifier`). Apps that already hold another
 * URI keep it, so this is a warning: the configuration still loads.
 *
 * Checked offline, by shape: `api://<GUID>`, `api://<GUID>/<string>` and
 * `api://<string>/<GUID>` pass (the STS does not know the app ID, so any GUID
 * counts as the app or tenant ID). Verified domains cannot be checked offline:
 * `https://…` URIs and `api://<domain>/<string>` (a host with a dot) are left
 * alone. Audiences that are not `api://` URIs (the bare client ID of v2
 * tokens) are not identifier URIs and are not looked at.
 */

export const IDENTIFIER_URI_RESTRICTIONS_URL =
  'https://learn.microsoft.com/en-us/entra/identity-platform/identifier-uri-restrictions';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when an `api://` URI matches a secure pattern, as far as can be told offline. */
export function isSecureApiUri(uri: string): boolean {
  const m = /^api:\/\/([^/?#]+)((?:\/[^/?#]+)*)\/?$/i.exec(uri);
  if (!m) return false;
  const host = m[1]!;
  const segments = (m[2] ?? '').split('/').filter((s) => s !== '');
  if (GUID.test(host)) return true; // api://<appId>, api://<appId|tenantId>/<string>
  if (segments.length === 0) return false;
  if (GUID.test(segments.at(-1)!)) return true; // api://<string>/<appId>
  return host.includes('.'); // api://<verified domain>/<string>: cannot be checked offline
}

interface IssuerLike {
  kind: string;
  audiences: readonly string[];
}

/** One warning per `api://` audience of an Entra issuer that matches no secure pattern. */
export function identifierUriWarnings(issuers: Readonly<Record<string, IssuerLike>>): string[] {
  const warnings: string[] = [];
  for (const [name, issuer] of Object.entries(issuers)) {
    if (issuer.kind !== 'entra') continue;
    for (const aud of issuer.audiences) {
      if (!/^api:\/\//i.test(aud) || isSecureApiUri(aud)) continue;
      warnings.push(
        `issuers.${name}.audiences: ${aud} matches none of Entra ID's secure identifier URI patterns ` +
          '(api://<appId>, api://<tenantId>/<string>, api://<string>/<appId>, https://<verified domain>/…); ' +
          "tenants that enforce the app management policy's identifierUriRestriction " +
          '(uriAdditionWithoutUniqueTenantIdentifier) refuse it for new applications. An app that already ' +
          "has it keeps working; for a new setup use Entra's default, api://<the STS app's client ID> — " +
          IDENTIFIER_URI_RESTRICTIONS_URL,
      );
    }
  }
  return warnings;
}
