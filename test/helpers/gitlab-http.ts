/** A raw HTTP call to the GitLab emulator, as a GitLab API client makes it (the emulator tests assert exact answers). */
import { utcDate } from '../../src/util/utc-date.ts';

export type Json = any;

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Json;
}

export async function http(
  base: string,
  path: string,
  o: { method?: string; token?: string; json?: unknown; form?: string; redirect?: 'follow' | 'manual' } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (o.token) headers['PRIVATE-TOKEN'] = o.token;
  let body: string | undefined;
  if (o.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.json);
  } else if (o.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = o.form;
  }
  const res = await fetch(`${base}${path}`, {
    method: o.method ?? (body !== undefined ? 'POST' : 'GET'),
    headers,
    body,
    redirect: o.redirect ?? 'follow',
  });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A UTC date `offsetDays` from today, as GitLab's `expires_at` takes it. */
export function dayUtc(offsetDays: number): string {
  return utcDate(Date.now() + offsetDays * 86_400_000);
}
