/**
 * Baseline "hello": a fastify route returning a small JSON body, in its own
 * process. The rate the load generator gets from it is the HTTP ceiling of
 * this machine, the denominator of every *_ratio figure.
 *
 * `POST /refuse` is a floor, not a baseline (full runs): the least any audited
 * refusal can do on plain fastify — read the form body as text, write one pino
 * audit line with the SHA-256 of the body to a file (as the STS's audit sink
 * does), answer 400 with an RFC 6749 error body. No STS code is involved, so it
 * bounds what garbage_reject_ratio could reach with any design that audits
 * every refusal (docs/performance.md).
 */
import { hash } from 'node:crypto';
import { join } from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';

const auditDir = process.argv[2];
const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
app.post('/hello', async () => ({ hello: 'world' }));

if (auditDir) {
  const audit = pino(
    { base: null, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: join(auditDir, 'hello-audit.log'), sync: false }),
  );
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  app.post('/refuse', async (request, reply) => {
    audit.info({
      audit: true,
      event: 'exchange',
      requestId: request.id,
      clientIp: request.ip,
      outcome: 'invalid_request',
      subjectTokenSha256: hash('sha256', String(request.body), 'hex'),
    });
    return reply
      .code(400)
      .send({ error: 'invalid_request', error_description: 'the subject token is invalid or not accepted' });
  });
}

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(`hello listening on http://127.0.0.1:${port}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
