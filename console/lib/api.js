// api.js - every HTTP call the console makes goes through call().
//
// It adds the bearer token (never a cookie: credentials are omitted), sends
// and parses JSON, and turns each failure shape of the node into one
// ApiError carrying the server's own message: HTTP errors (Spring's
// {status, error, message}), the Rust envelope {success: false, message},
// Java's responseStatus and the instance operations' {status: {errorCode}}.
// A 401 tells the session (auth.js) so it can send the user to the login
// page; a 404 on an endpoint marks it absent (pages then say which call
// this node does not answer yet).

export class ApiError extends Error {
  constructor(message, status, body, request) {
    super(message);
    this.status = status;
    this.body = body;
    this.request = request;
  }
  get missing() {
    return this.status === 404;
  }
}

const hooks = {
  token: () => null,
  unauthorized: () => {},
};

export function configure(h) {
  Object.assign(hooks, h);
}

function serverMessage(d) {
  if (!d || typeof d !== 'object') return '';
  const rs = d.responseStatus;
  const st = d.status && typeof d.status === 'object' ? d.status : null;
  return d.message || d.errorMessage || (rs && (rs.errorMessage || rs.message || rs.errorCode)) ||
    (st && (st.errorMessage || st.message || st.errorCode)) || d.error || '';
}

// A 200 answer that still says it failed.
function envelopeFailure(d) {
  if (!d || typeof d !== 'object') return null;
  if (d.success === false) return d.message || 'The request failed';
  const rs = d.responseStatus;
  if (rs && rs.status && rs.status !== 'success' && rs.status !== 'partial_fail') {
    return rs.errorMessage || rs.message || rs.errorCode || 'The request failed';
  }
  const st = d.status;
  if (st && typeof st === 'object' && st.errorCode && st.errorCode !== 'success') {
    return st.errorMessage || st.message || st.errorCode;
  }
  return null;
}

export function describe(method, path) {
  return method + ' ' + path.split('?')[0];
}

// call('GET', '/api/x', {query: {a: 1}}) -> parsed JSON body.
export async function call(method, path, opts = {}) {
  const {body, query, auth = true} = opts;
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = auth ? hooks.token() : null;
  if (token) headers.Authorization = 'Bearer ' + token;
  const req = describe(method, path);
  let res;
  try {
    res = await fetch(url, {
      method, headers, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError('The node did not answer (' + e.message + ')', 0, null, req);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (res.status === 401 && auth) {
    hooks.unauthorized();
    throw new ApiError(serverMessage(data) || 'Your session has expired', 401, data, req);
  }
  if (!res.ok) {
    const msg = serverMessage(data) || (res.status + ' ' + res.statusText);
    throw new ApiError(msg, res.status, data, req);
  }
  const failure = envelopeFailure(data);
  if (failure) throw new ApiError(failure, res.status, data, req);
  return data;
}

// The payload of the Rust envelope {success, data}; other answers as they are.
export function unwrap(d) {
  if (d && typeof d === 'object' && !Array.isArray(d) && 'success' in d && 'data' in d) return d.data;
  return d;
}

export const get = (path, query) => call('GET', path, {query}).then(unwrap);
export const post = (path, body, query) => call('POST', path, {body: body ?? {}, query}).then(unwrap);
export const put = (path, body) => call('PUT', path, {body: body ?? {}}).then(unwrap);
export const del = (path, query) => call('DELETE', path, {query}).then(unwrap);

// A path segment from data: always encoded.
export function seg(v) {
  return encodeURIComponent(String(v));
}

// Which optional endpoints answered 404 (absent on this node).  Pages ask
// before offering what depends on them.
const absent = new Map();

export function markAbsent(key, err) {
  if (err instanceof ApiError && err.missing) absent.set(key, err.request);
}

export function isAbsent(key) {
  return absent.has(key);
}

export function forgetAbsent() {
  absent.clear();
}

// Run fn; a 404 marks `key` absent and yields `fallback`.
export async function optional(key, fn, fallback = null) {
  try {
    const r = await fn();
    absent.delete(key);
    return r;
  } catch (e) {
    if (e instanceof ApiError && e.missing) {
      absent.set(key, e.request);
      return fallback;
    }
    throw e;
  }
}

// Run async jobs with at most `limit` at a time; results in order, each
// {ok, value} or {ok: false, error}.
export async function pool(items, limit, fn, progress) {
  const out = new Array(items.length);
  let next = 0;
  let done = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = {ok: true, value: await fn(items[i], i)};
      } catch (error) {
        out[i] = {ok: false, error};
      }
      done += 1;
      if (progress) progress(done, items.length);
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker));
  return out;
}
