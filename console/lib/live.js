// live.js - one WebSocket for the whole console: changes as they happen.
//
// It first tries the node's /ws (frames {event, data, timestamp}, answering
// {"type":"ping"} with a pong); when the node has none, it follows
// /artemis/websocket/discovery/all-instance-change (Java InstanceChange
// {instance, changeType, changeTime} for every service).  Either way,
// subscribers get one shape:
//   {kind: 'change', changeType: 'new'|'delete'|'reload', serviceId, instance}
//   {kind: 'event', event, serviceId, data}       (/ws only)
//   {kind: 'resync'}   after a reconnect: changes may have been missed
// The node closes push sessions after [websocket] session_ttl_ms; the
// socket reconnects with a growing delay and says so through onStatus.

const PING_MS = 25000;
const subscribers = new Set();
const statusListeners = new Set();
let ws = null;
let mode = null; // '/ws' | 'all-instance-change'
let status = 'connecting';
let retry = 0;
let timer = 0;
let pinger = 0;
let everOpen = false;
let stopped = false;
let markReady;
const readyP = new Promise((r) => { markReady = r; });
const READY_WAIT_MS = 3000;

function url(path) {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

function setStatus(s) {
  status = s;
  for (const fn of statusListeners) fn(s, mode);
}

function emit(msg) {
  for (const fn of subscribers) {
    try {
      fn(msg);
    } catch (e) {
      console.error('live subscriber', e);
    }
  }
}

function serviceOf(data) {
  if (!data || typeof data !== 'object') return '';
  return data.serviceId || data.service_id || (data.instance && data.instance.serviceId) || '';
}

function onMessage(ev) {
  let m;
  try {
    m = JSON.parse(ev.data);
  } catch {
    return;
  }
  if (!m || typeof m !== 'object') return;
  if (mode === '/ws') {
    if (m.type === 'pong' || !m.event) return;
    emit({kind: 'event', event: String(m.event), serviceId: serviceOf(m.data), data: m.data});
    return;
  }
  if (m.instance && m.changeType) {
    emit({kind: 'change', changeType: String(m.changeType), serviceId: String(m.instance.serviceId || ''),
      instance: m.instance});
  }
}

function open(path, fallback) {
  let opened = false;
  const sock = new WebSocket(url(path));
  ws = sock;
  sock.onopen = () => {
    opened = true;
    mode = fallback ? '/ws' : 'all-instance-change';
    retry = 0;
    setStatus('live');
    if (mode === '/ws') {
      pinger = setInterval(() => {
        if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify({type: 'ping'}));
      }, PING_MS);
    }
    if (everOpen) emit({kind: 'resync'});
    everOpen = true;
    markReady();
  };
  sock.onmessage = onMessage;
  sock.onclose = () => {
    clearInterval(pinger);
    if (ws !== sock || stopped) return;
    ws = null;
    if (!opened && fallback) {
      open(fallback, null); // no /ws on this node
      return;
    }
    setStatus('offline');
    markReady(); // no socket for now: readers load without waiting
    const delay = Math.min(10000, 500 * 2 ** retry);
    retry = Math.min(retry + 1, 5);
    timer = setTimeout(connect, delay);
  };
}

function connect() {
  setStatus('connecting');
  if (mode === 'all-instance-change') open('/artemis/websocket/discovery/all-instance-change', null);
  else open('/ws', '/artemis/websocket/discovery/all-instance-change');
}

export function start() {
  stopped = false;
  setTimeout(markReady, READY_WAIT_MS);
  if (!ws) connect();
}

// Resolves once the socket is open (or could not be opened, or after a few
// seconds): a reader that loads a snapshot after this and applies the
// pushes that arrive meanwhile misses no change.
export function ready() {
  return readyP;
}

export function stop() {
  stopped = true;
  clearTimeout(timer);
  clearInterval(pinger);
  if (ws) ws.close();
  ws = null;
}

export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

export function onStatus(fn) {
  statusListeners.add(fn);
  fn(status, mode);
  return () => statusListeners.delete(fn);
}

export function liveMode() {
  return mode;
}
