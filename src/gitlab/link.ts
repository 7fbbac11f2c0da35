/**
 * The `rel="next"` target of an RFC 8288 `Link` header, as GitLab sends it for
 * pagination (doc/api/rest/index.md, "Pagination Link header"):
 * `<https://gitlab.example.com/api/v4/projects/8/access_tokens?page=2&per_page=100>; rel="next", <…>; rel="last"`.
 */
export function parseLinkNext(header: string | undefined): string | undefined {
  if (!header) return undefined;
  // Split on commas that start a new `<…>` entry (URLs may contain commas).
  for (const part of header.split(/,\s*(?=<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    const params = m[2] ?? '';
    if (/;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(params)) return m[1];
  }
  return undefined;
}
