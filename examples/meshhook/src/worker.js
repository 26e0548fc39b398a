// The worker process: takes jobs from a spool directory shared by every
// release ($MESHHOOK_SPOOL_DIR, default ./spool):
//   pending/ID.json  --rename-->  working/ID.json  -->  done/ID.json
// The rename is the claim, so several workers (old and new releases) never
// take the same job. SIGTERM: finish the current job, then exit 0.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const behaviour = require('./behaviour.js');

const b = behaviour.load(__dirname);
const version = behaviour.version(__dirname);
const spool = behaviour.spoolDir();
const dirs = Object.fromEntries(['pending', 'working', 'done'].map((d) => [d, path.join(spool, d)]));
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
const log = (msg) => process.stdout.write(`${new Date().toISOString()} worker ${version} ${msg}\n`);

let stopping = false;
let busy = false;
let timer = null;

function claim() {
  const names = fs.readdirSync(dirs.pending).filter((n) => n.endsWith('.json')).sort();
  for (const name of names) {
    try {
      fs.renameSync(path.join(dirs.pending, name), path.join(dirs.working, name));
      return name;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;  // another worker won this one
    }
  }
  return null;
}

function tick() {
  timer = null;
  if (stopping) return;
  const name = claim();
  if (!name) {
    timer = setTimeout(tick, 50);
    return;
  }
  busy = true;
  log(`job ${name} started`);
  setTimeout(() => {
    const job = JSON.parse(fs.readFileSync(path.join(dirs.working, name), 'utf8'));
    job.done_by = { version, pid: process.pid, at: new Date().toISOString() };
    fs.writeFileSync(path.join(dirs.done, name), JSON.stringify(job) + '\n');
    fs.unlinkSync(path.join(dirs.working, name));
    busy = false;
    log(`job ${name} done`);
    if (stopping) return exit();
    tick();
  }, b.jobMs);
}

function exit() {
  log('stopped');
  process.exit(0);
}

process.on('SIGTERM', () => {
  log(busy ? 'SIGTERM: finishing the current job' : 'SIGTERM: idle, exiting');
  stopping = true;
  if (timer) clearTimeout(timer);
  if (!busy) exit();
});

log(`started, spool ${spool}`);
tick();
