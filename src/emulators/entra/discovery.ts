/**
 * OpenID discovery documents and JWKS per tenant, as Entra serves them
 * (signing-key-rollover.md, v2-protocols-oidc.md). MSAL (with
 * `disableInstanceDiscovery: true`) reads `token_endpoint`, `issuer`,
 * `authorization_endpoint`, `jwks_uri` and `end_session_endpoint`; the rest is
 * for fidelity. Keys carry `kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c` and, on
 * v2, `issuer`; no `alg` (as Entra).
 */
import type { KeyStore } from './keys.ts';
import { entraIssuer } from './tokens.ts';

export function openidConfiguration(baseUrl: string, tenantId: string, version: 1 | 2) {
  const t = `${baseUrl}/${tenantId}`;
  if (version === 2) {
    return {
      token_endpoint: `${t}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${t}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: entraIssuer(baseUrl, tenantId, 2),
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${baseUrl}/oidc/userinfo`,
      authorization_endpoint: `${t}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${t}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${t}/oauth2/v2.0/logout`,
      claims_supported: CLAIMS,
      kerberos_endpoint: `${t}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'localhost',
      cloud_graph_host_name: 'localhost',
      msgraph_host: 'localhost',
      rbac_url: baseUrl,
    };
  }
  return {
    token_endpoint: `${t}/oauth2/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${t}/discovery/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${t}/oauth2/logout`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
    scopes_supported: ['openid'],
    issuer: entraIssuer(baseUrl, tenantId, 1),
    claims_supported: CLAIMS,
    microsoft_multi_refresh_token: true,
    check_session_iframe: `${t}/oauth2/checksession`,
    userinfo_endpoint: `${t}/openid/userinfo`,
    kerberos_endpoint: `${t}/kerberos`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'localhost',
    cloud_graph_host_name: 'localhost',
    msgraph_host: 'localhost',
    rbac_url: baseUrl,
  };
}

const CLAIMS = [
  'sub',
  'iss',
  'cloud_instance_name',
  'cloud_instance_host_name',
  'cloud_graph_host_name',
  'msgraph_host',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'acr',
  'nonce',
  'preferred_username',
  'name',
  'tid',
  'ver',
  'at_hash',
  'c_hash',
  'email',
];

export function entraJwks(keys: KeyStore, issuer?: string) {
  return {
    keys: keys.publishedEntraKeys().map((k) => ({
      kty: 'RSA',
      use: 'sig',
      kid: k.kid,
      x5t: k.kid,
      n: k.publicJwk.n,
      e: k.publicJwk.e,
      x5c: k.certificate ? [k.certificate] : [],
      ...(issuer ? { issuer } : {}),
    })),
  };
}

/** The built-in OIDC test issuer's discovery document (shaped like GitLab's). */
export function testIssuerConfiguration(issuer: string) {
  return {
    issuer,
    jwks_uri: `${issuer}/jwks`,
    authorization_endpoint: `${issuer}/authorize`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    scopes_supported: ['openid'],
    claims_supported: [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'nbf',
      'jti',
      'namespace_path',
      'project_path',
      'ref',
      'ref_type',
    ],
  };
}

export function testIssuerJwks(keys: KeyStore) {
  return {
    keys: keys.testIssuerKeys().map((k) => ({
      ...k.publicJwk,
      kid: k.kid,
      use: 'sig',
      alg: k.publicJwk.kty === 'EC' ? 'ES256' : 'RS256',
    })),
  };
}
