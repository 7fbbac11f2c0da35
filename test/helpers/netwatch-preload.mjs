// Preloaded into the Node processes of a CI job under test (NODE_OPTIONS="--import <this file>",
// test/templates/): appends one line per outbound request or connection to $TANUKI_TEST_NET_LOG,
// so a test can prove that a job sent nothing. Nothing is blocked, only recorded.
import dc from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';

const log = process.env.TANUKI_TEST_NET_LOG;
if (log) {
  const note = (what) => appendFileSync(log, `${process.pid} ${what}\n`);
  const originalFetch = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    note(`fetch ${typeof input === 'string' ? input : (input?.url ?? String(input))}`);
    return originalFetch(input, init);
  };
  dc.subscribe('undici:request:create', ({ request }) => note(`request ${request.origin}${request.path}`));
  dc.subscribe('net.client.socket', () => note('socket'));
}
