// The web process, as SvelteKit's adapter-node builds it: `node build`
// serves on $HOST:$PORT. Routes:
//   GET  /             {"app":"meshhook","version":...,"pid":...}
//   GET  /healthz      200 "ok" (503 when MESHHOOK_HEALTH=fail)
//   POST /hooks/NAME   accepts a webhook: queues a job for the worker (202)
// SIGTERM: stop accepting, finish in-flight requests, exit 0.
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const behaviour = require('./behaviour.js');

const b = behaviour.load(__dirname);
const version = behaviour.version(__dirname);
const fails = behaviour.errorGate(b.errorRate);
let served = 0;  // app requests of this process (not /healthz): the cold start's count
const log = (msg) => process.stdout.write(`${new Date().toISOString()} web ${version} ${msg}\n`);

if (b.crashAtStart) {
  process.stderr.write(`meshhook ${version}: crashing at start (MESHHOOK_CRASH_AT_START=1)\n`);
  process.exit(1);
}

function enqueue(name, body) {
  const dir = path.join(behaviour.spoolDir(), 'pending');
  fs.mkdirSync(dir, { recursive: true });
  const id = `${Date.now()}-${crypto.randomBytes(4).toString('hex')}`;
  const tmp = path.join(dir, `.${id}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify({ id, hook: name, body, received_by: version }));
  fs.renameSync(tmp, path.join(dir, `${id}.json`));
  return id;
}

function answer(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'x-meshhook-version': version,
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') {
    const sick = b.failHealth || (b.failHealthIf !== '' && fs.existsSync(path.resolve(b.failHealthIf)));
    return sick ? answer(res, 503, 'unhealthy\n') : answer(res, 200, 'ok\n');
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const respond = () => {
      if (fails()) return answer(res, 500, { error: 'injected failure', version });
      if (req.method === 'POST' && url.pathname.startsWith('/hooks/')) {
        const id = enqueue(url.pathname.slice('/hooks/'.length), Buffer.concat(chunks).toString());
        return answer(res, 202, { queued: id, version });
      }
      if (req.method === 'GET' && url.pathname === '/') {
        return answer(res, 200, { app: 'meshhook', version, pid: process.pid });
      }
      return answer(res, 404, { error: 'not found' });
    };
    served += 1;
    const delay = served <= b.coldRequests ? b.coldDelayMs : b.delayMs;
    if (delay > 0) setTimeout(respond, delay);
    else respond();
  });
});
server.keepAliveTimeout = 5000;

function listen() {
  const port = Number(process.env.PORT || 3000);
  // WHY 0.0.0.0: adapter-node's default, so the tests see what the real app
  // does when HOST is not set (the agent sets HOST=127.0.0.1).
  const host = process.env.HOST || '0.0.0.0';
  server.listen(port, host, () => log(`listening on ${host}:${port}`));
}

process.on('SIGTERM', () => {
  log('SIGTERM: draining');
  server.close(() => {
    log('drained, exiting');
    process.exit(0);
  });
  server.closeIdleConnections();
});

if (b.startDelayMs > 0) setTimeout(listen, b.startDelayMs);
else listen();
