// How a release misbehaves when told to: the test knobs of the example.
// Defaults are baked into the artifact (build/behaviour.json, written by
// scripts/build-artifact.sh --behave KEY=VALUE); the process environment
// overrides them. Node's standard library only.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const KNOBS = {
  MESHHOOK_HEALTH: 'ok',          // "fail": /healthz answers 503 forever
  MESHHOOK_HEALTH_FAIL_IF: '',    // a path (relative to the release dir): /healthz answers 503
                                  // while it exists — one host of several made sick
  MESHHOOK_ERROR_RATE: '0',       // 0..1: share of app requests answered 500 (deterministic)
  MESHHOOK_DELAY_MS: '0',         // every app request waits this long
  MESHHOOK_COLD_REQUESTS: '0',    // the first N app requests of a process (a cold start) ...
  MESHHOOK_COLD_DELAY_MS: '0',    // ... wait this long instead of MESHHOOK_DELAY_MS
  MESHHOOK_CRASH_AT_START: '0',   // "1": exit 1 before listening
  MESHHOOK_START_DELAY_MS: '0',   // wait this long before listening (slow boot)
  MESHHOOK_JOB_MS: '200',         // worker: how long one job takes
};

function load(buildDir) {
  let baked = {};
  try {
    baked = JSON.parse(fs.readFileSync(path.join(buildDir, 'behaviour.json'), 'utf8'));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const out = {};
  for (const [k, def] of Object.entries(KNOBS)) {
    out[k] = process.env[k] !== undefined && process.env[k] !== '' ? process.env[k] : (baked[k] ?? def);
  }
  return {
    failHealth: out.MESHHOOK_HEALTH === 'fail',
    failHealthIf: out.MESHHOOK_HEALTH_FAIL_IF,
    errorRate: Math.min(1, Math.max(0, Number(out.MESHHOOK_ERROR_RATE) || 0)),
    delayMs: Math.max(0, Number(out.MESHHOOK_DELAY_MS) || 0),
    coldRequests: Math.max(0, Number(out.MESHHOOK_COLD_REQUESTS) || 0),
    coldDelayMs: Math.max(0, Number(out.MESHHOOK_COLD_DELAY_MS) || 0),
    crashAtStart: out.MESHHOOK_CRASH_AT_START === '1',
    startDelayMs: Math.max(0, Number(out.MESHHOOK_START_DELAY_MS) || 0),
    jobMs: Math.max(0, Number(out.MESHHOOK_JOB_MS) || 0),
  };
}

function version(buildDir) {
  if (process.env.MESHHOOK_VERSION) return process.env.MESHHOOK_VERSION;
  try {
    return JSON.parse(fs.readFileSync(path.join(buildDir, 'version.json'), 'utf8')).version;
  } catch {
    return 'dev';
  }
}

// A deterministic error pattern: request n fails when floor(n*rate) moves.
// rate 0.25 fails requests 4, 8, 12...; rate 1 fails all.
function errorGate(rate) {
  let n = 0;
  return () => {
    n += 1;
    return Math.floor(n * rate) > Math.floor((n - 1) * rate);
  };
}

function spoolDir() {
  return process.env.MESHHOOK_SPOOL_DIR || path.join(process.cwd(), 'spool');
}

module.exports = { load, version, errorGate, spoolDir, KNOBS };
