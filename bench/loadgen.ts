/**
 * The load generator, in its own process: autocannon's programmatic API,
 * driven over IPC by bench/run.ts. One job at a time; each answer carries
 * the counts autocannon saw, exact latency percentiles of the 2xx answers
 * (autocannon's own histogram has 1 ms resolution, too coarse for a 2 ms
 * exchange), and this process's own CPU time during the run.
 */
import autocannon from 'autocannon';

export interface LoadJob {
  url: string;
  path: string;
  method: 'GET' | 'POST';
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  amount?: number;
  headers?: Record<string, string>;
  /** Request bodies, sent in rotation (all connections share one counter). */
  bodies?: string[];
  /** Seconds before a request counts as a timeout. */
  timeout?: number;
}

export interface LoadResult {
  /** Answers by status code. */
  status: Record<string, number>;
  responses: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Wall-clock seconds autocannon ran. */
  seconds: number;
  /** 2xx answers per second. */
  okRps: number;
  /** All answers per second. */
  rps: number;
  /** Latency of 2xx answers, ms. */
  p50: number;
  p99: number;
  mean: number;
  /** CPU seconds this process used during the run. */
  cpu: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const bodies = job.bodies ?? [];
  let next = 0;
  const latencies: number[] = [];
  const status: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const opts: autocannon.Options = {
    url: job.url,
    connections: job.connections,
    pipelining: 1,
    timeout: job.timeout ?? 30,
    ...(job.amount ? { amount: job.amount } : { duration: job.duration ?? 5 }),
    requests: [
      {
        method: job.method,
        path: job.path,
        headers: job.headers,
        ...(bodies.length > 0
          ? {
              setupRequest: (req: autocannon.Request) => {
                req.body = bodies[next++ % bodies.length];
                return req;
              },
            }
          : {}),
      },
    ],
  };
  const instance = autocannon(opts) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    status[statusCode] = (status[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = (await instance) as unknown as autocannon.Result;
  const seconds = (performance.now() - t0) / 1000;
  const cpuD = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const ok = latencies.length;
  const responses = Object.values(status).reduce((a, b) => a + b, 0);
  return {
    status,
    responses,
    ok,
    non2xx: responses - ok,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds,
    okRps: ok / seconds,
    rps: responses / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    mean: ok ? latencies.reduce((a, b) => a + b, 0) / ok : Number.NaN,
    cpu: (cpuD.user + cpuD.system) / 1e6,
  };
}

if (process.send) {
  process.on('message', (msg: { job: LoadJob }) => {
    runLoad(msg.job).then(
      (r) => process.send?.(r),
      (err: Error) => process.send?.({ error: err.stack ?? err.message }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}
