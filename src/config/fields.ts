/**
 * Value types used by several sections of the schema. The reference generator
 * (`reference.ts`) prints their defaults the way operators write them: a
 * `duration` (recognised by identity) as `15m`, a `listen` value as `127.0.0.1:8600`.
 */
import { z } from 'zod';
import { parseDurationSeconds } from '../util/duration.ts';
import { isAllowedUrl } from '../util/url.ts';

/** What a key says about itself in docs/configuration.md. */
export interface KeyDoc {
  /** Markdown, links relative to docs/. */
  description: string;
  /** Shown in the default column instead of the value (for computed or absent defaults). */
  defaultText?: string;
}

/** Attach the documentation of one key; call it last, after `.default()` / `.optional()`. */
export function doc<T extends z.ZodType>(schema: T, description: string, defaultText?: string): T {
  return schema.meta(defaultText === undefined ? { description } : { description, defaultText });
}

export const httpsUrl = z
  .string()
  .refine(
    isAllowedUrl,
    'expected an https URL (http only for loopback hosts), without credentials or fragment',
  )
  .meta({ expected: 'an https URL' });

const DURATION = 'a duration (`90s`, `15m`, `1h`, `1d` or a number of seconds)';

/** `90s`, `15m`, `1h`, `1d` or a number of seconds; the output is seconds. */
export const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    try {
      return parseDurationSeconds(v);
    } catch (err) {
      // The parser quotes what it was given; a configuration error never does: the value may be a
      // secret pasted into the wrong key.
      const message = typeof v === 'number' ? (err as Error).message : `expected ${DURATION}`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
  })
  .meta({ expected: DURATION });

/** `host:port` (`[::1]:port` for IPv6) → `{ host, port }`; port 0 picks a free port. */
export const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8600')
  .transform((v) => {
    const i = v.lastIndexOf(':');
    return { host: v.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(v.slice(i + 1)) };
  })
  .refine((v) => v.port <= 65535, 'port out of range')
  .meta({ expected: '`host:port`, e.g. `127.0.0.1:8600`' });
