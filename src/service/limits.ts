/**
 * In-memory token buckets for per-identity and per-IP limits. Bounded: the
 * oldest keys are evicted first, so a flood of distinct keys cannot grow
 * memory without limit. (Several replicas each enforce their own share.)
 */
export interface RateLimiter {
  /** Take one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number;
}

export function createRateLimiter(perMinute: number, now: () => number, maxKeys = 100_000): RateLimiter {
  if (perMinute <= 0) return { take: () => 0 };
  const ratePerMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      let b = buckets.get(key);
      if (b) {
        b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * ratePerMs);
        b.at = t;
        // Refresh recency so eviction drops idle keys first.
        buckets.delete(key);
        buckets.set(key, b);
      } else {
        b = { tokens: perMinute, at: t };
        buckets.set(key, b);
        if (buckets.size > maxKeys) {
          const oldest = buckets.keys().next().value;
          if (oldest !== undefined) buckets.delete(oldest);
        }
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000));
    },
  };
}
