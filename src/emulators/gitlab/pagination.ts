/**
 * Offset pagination as GitLab answers it (`doc/api/rest/index.md`, "Pagination"):
 * `page` (default 1), `per_page` (default 20, at most 100), headers `X-Total`,
 * `X-Total-Pages`, `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page` (empty
 * when none) and a `Link` header with `prev`/`next`/`first`/`last` URLs built
 * from the request URL with `page` replaced. `private_token` is dropped from
 * the links so a token never travels in a header.
 */
import { apiErrors } from './errors.ts';
import { INVALID, type Params } from './http.ts';

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

export interface PageRequest {
  page: number;
  perPage: number;
}

export function pageRequest(params: Params): PageRequest {
  const problems: string[] = [];
  const int = (name: string, fallback: number) => {
    const v = params.string(name);
    if (v === undefined || v === '') return fallback;
    if (v === INVALID || !/^-?\d+$/.test(v)) {
      problems.push(`${name} is invalid`);
      return fallback;
    }
    return Number(v);
  };
  const page = int('page', 1);
  const perPage = int('per_page', DEFAULT_PER_PAGE);
  if (problems.length > 0) throw apiErrors.invalidParams(problems);
  return { page: Math.max(1, page), perPage: Math.min(MAX_PER_PAGE, Math.max(1, perPage)) };
}

export function paginate<T>(
  items: T[],
  req: PageRequest,
  requestUrl: URL,
): { page: T[]; headers: Record<string, string> } {
  const total = items.length;
  const totalPages = Math.max(1, Math.ceil(total / req.perPage));
  const start = (req.page - 1) * req.perPage;
  const page = items.slice(start, start + req.perPage);
  const next = req.page < totalPages ? req.page + 1 : null;
  const prev = req.page > 1 ? req.page - 1 : null;

  const link = (n: number) => {
    const u = new URL(requestUrl.href);
    u.searchParams.delete('private_token');
    u.searchParams.delete('access_token');
    u.searchParams.set('page', String(n));
    u.searchParams.set('per_page', String(req.perPage));
    return u.href;
  };
  const links: string[] = [];
  if (prev !== null) links.push(`<${link(prev)}>; rel="prev"`);
  if (next !== null) links.push(`<${link(next)}>; rel="next"`);
  links.push(`<${link(1)}>; rel="first"`);
  links.push(`<${link(totalPages)}>; rel="last"`);

  return {
    page,
    headers: {
      link: links.join(', '),
      'x-total': String(total),
      'x-total-pages': String(totalPages),
      'x-page': String(req.page),
      'x-per-page': String(req.perPage),
      'x-next-page': next === null ? '' : String(next),
      'x-prev-page': prev === null ? '' : String(prev),
    },
  };
}
