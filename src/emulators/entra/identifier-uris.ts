/**
 * Entra's restriction on identifier URIs (Application ID URIs), as the
 * emulator applies it to the resource APIs of its config.
 *
 * Microsoft Learn, "Restrictions on identifier URIs of Microsoft Entra
 * applications" (https://learn.microsoft.com/en-us/entra/identity-platform/identifier-uri-restrictions)
 * lists the secure patterns; every one carries the app ID, the tenant ID or a
 * verified domain of the tenant. Tenants (or Microsoft, `isStateSetByMicrosoft`)
 * enforce them for new applications through the app management policy's
 * `identifierUriRestriction` (`nonDefaultUriAddition`,
 * `uriAdditionWithoutUniqueTenantIdentifier`;
 * https://learn.microsoft.com/en-us/graph/api/resources/identifieruriconfiguration).
 * A tenant's `allowLegacyIdentifierUris: true` turns the check off, as in a
 * tenant created before the restriction.
 */

export const IDENTIFIER_URI_RULE =
  "Entra's identifier URI restriction (app management policy identifierUriRestriction: uriAdditionWithoutUniqueTenantIdentifier)";

export const IDENTIFIER_URI_PAGE =
  'https://learn.microsoft.com/en-us/entra/identity-platform/identifier-uri-restrictions';

/** The secure forms, for error messages. */
export const SECURE_IDENTIFIER_URI_FORMS = [
  'api://<appId>',
  'api://<tenantId>/<string>',
  'api://<string>/<appId>',
  'https://<verified domain>/<string>',
  'api://<verified domain>/<string>',
];

export interface IdentifierUriContext {
  /** The resource API's application (client) ID. */
  appId: string;
  tenantId: string;
  /** The tenant's verified domains (an initial `*.onmicrosoft.com` domain included, if the config names it). */
  verifiedDomains: readonly string[];
}

/** True when `uri` matches one of the secure patterns for this app and tenant. */
export function isSecureIdentifierUri(uri: string, ctx: IdentifierUriContext): boolean {
  const m = /^(api|https):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(uri);
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  const host = m[2]!.toLowerCase();
  const segments = (m[3] ?? '').split('/').filter((s) => s !== '');
  const appId = ctx.appId.toLowerCase();
  const tenantId = ctx.tenantId.toLowerCase();
  const onVerifiedDomain = ctx.verifiedDomains.some((d) => {
    const domain = d.toLowerCase();
    return host === domain || host.endsWith(`.${domain}`);
  });
  if (scheme === 'https') return onVerifiedDomain;
  if (host === appId) return true; // api://<appId>, api://<appId>/<string>
  if (segments.length === 0) return false;
  if (host === tenantId) return true; // api://<tenantId>/<string>, api://<tenantId>/<appId>
  if (segments.at(-1)?.toLowerCase() === appId) return true; // api://<string>/<appId>
  return onVerifiedDomain; // api://<verified domain>/<string>
}
