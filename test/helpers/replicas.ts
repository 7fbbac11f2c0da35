/**
 * Real `tanuki-sts serve` processes (bin/tanuki-sts.js), for tests that run
 * replicas side by side: spawn one on a config file (listening on ephemeral
 * ports: it reports them in its `tanuki-sts listening` log line), SIGKILL it,
 * scrape its `tanuki_sts_leader` gauge. Its stdout and stderr go to a log file
 * (shown when it fails to start). Used by test/integration/sts-replicas.test.ts;
 * meant for the chaos test's replica mode too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tanuki-sts.js', import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  /** `http://127.0.0.1:<port>` as it listens. */
  url: string;
  metricsUrl: string;
  logFile: string;
  /** Send a signal (default SIGKILL) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Its `tanuki_sts_leader` (1/0), or undefined when it does not answer. */
  leader(): Promise<number | undefined>;
  /** The log so far. */
  log(): string;
}

/** Start `tanuki-sts serve --config <configFile>` and wait until it listens (its log line names the ports). */
export async function spawnServe(
  configFile: string,
  o: { logFile: string; env?: NodeJS.ProcessEnv; startTimeoutMs?: number },
): Promise<ServeProcess> {
  const fd = openSync(o.logFile, 'a');
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...o.env },
  });
  closeSync(fd);
  const log = () => readFileSync(o.logFile, 'utf8');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `tanuki-sts serve exited (${child.exitCode ?? child.signalCode}): ${log().slice(-2000)}`,
      );
    }
    // One log file per process: its (only) listening line.
    const line = log()
      .split('\n')
      .find((l) => l.includes('"tanuki-sts listening"'));
    if (line) {
      const { url, metricsUrl } = JSON.parse(line) as { url: string; metricsUrl: string };
      return {
        child,
        pid: child.pid as number,
        url,
        metricsUrl,
        logFile: o.logFile,
        async kill(signal = 'SIGKILL') {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill(signal);
          await exited;
        },
        leader: () => scrapeLeader(metricsUrl),
        log,
      };
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tanuki-sts serve did not start: ${log().slice(-2000)}`);
    }
    await sleep(50);
  }
}

/** `tanuki_sts_leader` from a metrics URL, or undefined when nothing answers. */
export async function scrapeLeader(metricsUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
    const m = /^tanuki_sts_leader (\d)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
