// metrics.js - the node's /metrics (Prometheus text), sampled for charts.
//
// One sampler for the console's lifetime: every SAMPLE_MS it reads
// /metrics, keeps the last HISTORY samples (10 minutes) and tells its
// listeners.  Rates and latencies are derived from consecutive samples'
// counters, so the charts show what happened between two samples.

import {call} from './api.js';

const SAMPLE_MS = 5000;
const HISTORY = 120;

// Parse the text format into Map(name -> [{labels, value}]).
export function parse(text) {
  const out = new Map();
  for (const line of String(text).split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2].replace(/\\(.)/g, '$1');
    }
    const value = m[4] === '+Inf' ? Infinity : Number(m[4]);
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({labels, value});
  }
  return out;
}

export function value(mx, name, labels) {
  const rows = mx.get(name) || [];
  for (const r of rows) {
    if (!labels || Object.entries(labels).every(([k, v]) => r.labels[k] === v)) return r.value;
  }
  return NaN;
}

export function sum(mx, name) {
  return (mx.get(name) || []).reduce((a, r) => a + (Number.isFinite(r.value) ? r.value : 0), 0);
}

// Latency quantile (seconds) from the difference of two cumulative histograms.
export function quantile(q, prev, cur) {
  const buckets = cur.map((b, i) => ({le: b.le, n: b.n - (prev[i] ? prev[i].n : 0)}));
  const total = buckets.length ? buckets[buckets.length - 1].n : 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lowLe = 0;
  let lowN = 0;
  for (const b of buckets) {
    if (b.n >= rank) {
      if (!Number.isFinite(b.le)) return lowLe;
      const span = b.n - lowN;
      return span > 0 ? lowLe + (b.le - lowLe) * ((rank - lowN) / span) : b.le;
    }
    lowLe = b.le;
    lowN = b.n;
  }
  return lowLe;
}

function snapshot(mx, t) {
  const hist = (mx.get('artemis_http_request_duration_seconds_bucket') || [])
    .map((r) => ({le: r.labels.le === '+Inf' ? Infinity : Number(r.labels.le), n: r.value}))
    .sort((a, b) => a.le - b.le);
  return {
    t,
    instances: value(mx, 'artemis_instances'),
    services: value(mx, 'artemis_services'),
    requests: sum(mx, 'artemis_http_requests_total') + sum(mx, 'artemis_http_unmatched_total'),
    errors: sum(mx, 'artemis_http_errors_total'),
    registers: value(mx, 'artemis_registers_total'),
    unregisters: value(mx, 'artemis_unregisters_total'),
    renewals: value(mx, 'artemis_renewals_total'),
    latSum: value(mx, 'artemis_http_request_duration_seconds_sum'),
    latCount: value(mx, 'artemis_http_request_duration_seconds_count'),
    wsSessions: sum(mx, 'artemis_websocket_sessions'),
    version: value(mx, 'artemis_registry_version'),
    hist,
    raw: mx,
  };
}

// Derived figures between two samples.
export function derive(prev, cur) {
  const dt = (cur.t - prev.t) / 1000;
  if (dt <= 0) return null;
  const dn = cur.latCount - prev.latCount;
  return {
    t: cur.t,
    reqRate: Math.max(0, (cur.requests - prev.requests) / dt),
    errRate: Math.max(0, (cur.errors - prev.errors) / dt),
    regRate: Math.max(0, (cur.registers - prev.registers) / dt),
    renewRate: Math.max(0, (cur.renewals - prev.renewals) / dt),
    avgMs: dn > 0 ? ((cur.latSum - prev.latSum) / dn) * 1000 : NaN,
    p99Ms: quantile(0.99, prev.hist, cur.hist) * 1000,
    instances: cur.instances,
  };
}

const samples = [];
const listeners = new Set();
let timer = 0;
let lastError = null;

async function tick() {
  try {
    const text = await call('GET', '/metrics');
    samples.push(snapshot(parse(text), Date.now()));
    if (samples.length > HISTORY + 1) samples.shift();
    lastError = null;
  } catch (e) {
    lastError = e;
  }
  for (const fn of listeners) fn();
}

// The first two samples a second apart, so the charts start at once.
export function start() {
  if (timer) return;
  tick();
  setTimeout(tick, 1000);
  timer = setInterval(tick, SAMPLE_MS);
}

export function onSample(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function latest() {
  return samples.length ? samples[samples.length - 1] : null;
}

export function error() {
  return lastError;
}

// [{t, reqRate, ...}] for every pair of consecutive samples.
export function series() {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const d = derive(samples[i - 1], samples[i]);
    if (d) out.push(d);
  }
  return out;
}

export const sampleMs = SAMPLE_MS;
