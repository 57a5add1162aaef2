// registry.js - what the console knows of the registry, kept live.
//
// The services page asks the node for one page at a time instead
// (fetchServicesPage: GET /api/management/services, counts, no instances).
// Sources of the whole model, best first (a 404 falls back to the next, once):
//   all services: POST /api/management/services.json  (every instance, with
//                 the server's up/down, pulled-out ones included)
//                 POST /artemis/api/replication/registry/services.json
//                 {regionId} (every registered instance, live, unfiltered;
//                 discovery's services.json is a versioned cache up to 30 s
//                 old by Java's contract, which would hide new services
//                 registered before the socket connected)
//   one service:  POST /api/management/service.json {serviceId, regionId, zoneId}
//                 POST /artemis/api/discovery/service.json
// The all-services model is loaded once, on first use, and then follows
// the live socket: a pushed `new` is applied as it comes; `delete`,
// `reload` and /ws events mark the service dirty and it is fetched again
// (a delete may be a pull-out, which the management view still lists); a
// reconnect reloads everything.  Refetches are batched and throttled so a
// burst of changes costs a few requests, not one per change.

import {call, get, optional, isAbsent} from './api.js';
import * as live from './live.js';

let nodeInfo = null;

// This node's region and zone, URL and status (node.json).
export async function node() {
  if (nodeInfo) return nodeInfo;
  const d = await call('GET', '/artemis/api/status/node.json');
  const ns = d.nodeStatus || {};
  const zone = (ns.node && ns.node.zone) || {};
  nodeInfo = {regionId: zone.regionId || '', zoneId: zone.zoneId || '', url: (ns.node && ns.node.url) || '',
    status: ns.status || 'unknown'};
  return nodeInfo;
}

// The cluster's nodes: the /api alias the Rust console reads, else Java's.
export async function fetchCluster() {
  const d = isAbsent('api-status-cluster') ? null
    : await optional('api-status-cluster', () => call('GET', '/api/status/cluster.json'));
  return d || call('GET', '/artemis/api/status/cluster.json');
}

export function instanceKey(inst) {
  return (String(inst.regionId || '') + '\u0000' + String(inst.instanceId || '')).toLowerCase();
}

// Fetch every service: [{serviceId, instances: [...]}].
export async function fetchAll() {
  const mgmt = isAbsent('management-services') ? null
    : await optional('management-services', () => call('POST', '/api/management/services.json', {body: {}}));
  if (mgmt) return {source: 'management', services: mgmt.services || []};
  const n = await node();
  const d = await call('POST', '/artemis/api/replication/registry/services.json', {body: {regionId: n.regionId}});
  return {source: 'discovery', services: d.services || []};
}

// One page of services, sorted by serviceId, whose id contains q (any
// case): {offset, limit, q, total, totalInstances, allServices,
// services: [{serviceId, instances, statuses: {up: n, ..}, zones}]}.
export function fetchServicesPage({q = '', offset = 0, limit = 100} = {}) {
  return get('/api/management/services', {q, offset, limit});
}

// Fetch one service: {service: {serviceId, instances}, source}.
export async function fetchService(serviceId) {
  const n = await node();
  if (!isAbsent('management-service')) {
    const m = await optional('management-service', () => call('POST', '/api/management/service.json',
      {body: {serviceId, regionId: n.regionId, zoneId: n.zoneId}}));
    if (m) return {source: 'management', service: m.service || {serviceId, instances: []}, groups: m.groups};
  }
  const d = await call('POST', '/artemis/api/discovery/service.json', {
    body: {discoveryConfig: {serviceId, regionId: n.regionId, zoneId: n.zoneId}, regionId: n.regionId,
      zoneId: n.zoneId},
  });
  return {source: 'discovery', service: d.service || {serviceId, instances: []}};
}

// ---- the all-services model -------------------------------------------------

const model = {
  services: new Map(), // serviceId -> Map(instanceKey -> instance)
  source: null,
  loaded: false,
  error: null,
  version: 0,
};
const listeners = new Set();
const dirty = new Set();
let loading = null;
let unsubscribeLive = null;
let flushTimer = 0;
let notifyTimer = 0;
const FLUSH_MS = 500;
const MAX_DIRTY_FETCH = 25;

function notify() {
  if (notifyTimer) return;
  notifyTimer = setTimeout(() => {
    notifyTimer = 0;
    model.version += 1;
    for (const fn of listeners) fn(model);
  }, 100);
}

function setService(svc) {
  const m = new Map();
  for (const inst of svc.instances || []) m.set(instanceKey(inst), inst);
  if (m.size) model.services.set(svc.serviceId, m); else model.services.delete(svc.serviceId);
}

// Pushes that arrive while a snapshot is being fetched wait in `held` and
// are applied after it, so none is lost or undone by an older snapshot.
let held = null;
let again = false;

async function loadAll() {
  await live.ready();
  held = [];
  try {
    const {source, services} = await fetchAll();
    model.services.clear();
    for (const svc of services) if (svc && svc.serviceId) setService(svc);
    model.source = source;
    model.loaded = true;
    model.error = null;
    dirty.clear();
  } catch (e) {
    model.error = e;
  }
  loading = null;
  const replay = held;
  held = null;
  for (const msg of replay) onLive(msg);
  if (again) {
    again = false;
    reload();
  }
  notify();
}

function reload() {
  if (loading) again = true; else loading = loadAll();
  return loading;
}

async function flush() {
  flushTimer = 0;
  if (loading) {
    schedule();
    return;
  }
  if (dirty.size > MAX_DIRTY_FETCH) {
    await reload();
    return;
  }
  const ids = [...dirty];
  dirty.clear();
  await Promise.all(ids.map(async (id) => {
    try {
      const {service} = await fetchService(id);
      setService({serviceId: id, instances: service.instances || []});
    } catch {
      dirty.add(id);
    }
  }));
  notify();
}

function schedule() {
  if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
}

function onLive(msg) {
  if (held) {
    held.push(msg);
    return;
  }
  if (msg.kind === 'resync') {
    reload();
    return;
  }
  if (!msg.serviceId) {
    if (msg.kind === 'event' && /^(service|instance)\./.test(msg.event)) reload();
    return;
  }
  if (msg.kind === 'change' && msg.changeType === 'new' && msg.instance) {
    const svc = model.services.get(msg.serviceId) || new Map();
    svc.set(instanceKey(msg.instance), msg.instance);
    model.services.set(msg.serviceId, svc);
    notify();
    return;
  }
  if (msg.kind === 'change' && msg.changeType === 'delete' && model.source === 'discovery') {
    const svc = model.services.get(msg.serviceId);
    if (svc) {
      svc.delete(instanceKey(msg.instance));
      if (!svc.size) model.services.delete(msg.serviceId);
      notify();
    }
    return;
  }
  dirty.add(msg.serviceId);
  schedule();
}

// Follow the model: fn(model) now (if loaded) and after every change.
export function watch(fn) {
  listeners.add(fn);
  if (!unsubscribeLive) {
    unsubscribeLive = live.subscribe(onLive);
    reload();
  } else if (model.loaded || model.error) {
    fn(model);
  }
  return () => listeners.delete(fn);
}

// The model as it is now (possibly not loaded yet).
export function snapshot() {
  return model;
}

export function refresh() {
  return reload();
}

export function effectiveStatus(inst) {
  return String(inst.status || 'unknown').toLowerCase();
}

// Counts of one service's instances: {total, up, down, other, zones:Set}.
export function countService(instances) {
  const c = {total: 0, up: 0, down: 0, other: 0, zones: new Set()};
  for (const inst of instances) {
    c.total += 1;
    const st = effectiveStatus(inst);
    if (st === 'up') c.up += 1; else if (st === 'down') c.down += 1; else c.other += 1;
    if (inst.zoneId) c.zones.add(String(inst.zoneId));
  }
  return c;
}
