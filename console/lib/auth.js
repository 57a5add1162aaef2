// auth.js - who is using the console, and what they may do.
//
// The node may have no auth endpoints yet (404), may run with [auth]
// enabled = false, or may require a login.  probe() asks GET /api/auth/user
// once at start and sets session.mode accordingly:
//   'none'  no auth endpoints: no login, everything offered
//   'off'   the node answers without a token: no login, role as answered
//   'on'    a token is needed: the login page, POST /api/auth/login
// The token is the JWT access token: kept in sessionStorage (this tab
// only), sent as "Authorization: Bearer" by api.js, never in a cookie.
// Its role claim (or /api/auth/user) decides which controls are offered;
// less than 60 s before its exp the session ends and the login page comes
// back, returning to where the user was afterwards.

import {call, unwrap, ApiError} from './api.js';

const KEY = 'artemis.console.token';
const EXPIRY_MARGIN_S = 60;

export const session = {
  mode: 'unknown',
  token: null,
  username: '',
  role: 'viewer',
  exp: 0,
  expired: false,
};

const listeners = new Set();
let expiryTimer = 0;

export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  for (const fn of listeners) fn(session);
}

export function decodeJwt(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '==='.slice((b64.length + 3) % 4));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

const ROLES = ['viewer', 'operator', 'admin'];

function normRole(r) {
  const v = String(r || '').toLowerCase();
  return ROLES.includes(v) ? v : 'viewer';
}

export const canWrite = () => session.role === 'operator' || session.role === 'admin';
export const isAdmin = () => session.role === 'admin';
export const needsLogin = () => session.mode === 'on' && !session.token;
export const operatorId = () => session.username || 'console';

function setToken(token) {
  session.token = token;
  session.expired = false;
  const claims = token ? decodeJwt(token) : null;
  session.exp = claims && Number(claims.exp) ? Number(claims.exp) : 0;
  if (claims) {
    session.username = claims.username || claims.sub || session.username;
    session.role = normRole(claims.role);
  }
  try {
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
  } catch {
    // storage refused (private mode): the token lives in memory only
  }
  scheduleExpiry();
}

function scheduleExpiry() {
  clearTimeout(expiryTimer);
  if (!session.token || !session.exp) return;
  const ms = (session.exp - EXPIRY_MARGIN_S) * 1000 - Date.now();
  expiryTimer = setTimeout(expire, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
}

// The session is over (401 or close to exp): forget the token.
export function expire() {
  if (session.mode !== 'on') return;
  const had = !!session.token;
  setToken(null);
  session.expired = had;
  changed();
}

function applyUser(u) {
  if (!u || typeof u !== 'object') return;
  session.username = u.username || u.name || session.username;
  if (u.role) session.role = normRole(u.role);
}

export async function probe() {
  let stored = null;
  try {
    stored = sessionStorage.getItem(KEY);
  } catch {
    stored = null;
  }
  if (stored) setToken(stored);
  if (stored && session.exp && session.exp - EXPIRY_MARGIN_S <= Date.now() / 1000) setToken(null);
  try {
    const u = unwrap(await call('GET', '/api/auth/user', {auth: !!session.token}));
    applyUser(u);
    session.mode = session.token ? 'on' : 'off';
    if (session.mode === 'off' && !u?.role) session.role = 'admin';
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      session.mode = 'none';
      session.role = 'admin';
      session.username = '';
      setToken(null);
    } else if (e instanceof ApiError && e.status === 401) {
      session.mode = 'on';
      setToken(null);
    } else {
      throw e;
    }
  }
  changed();
}

export async function login(username, password) {
  const d = unwrap(await call('POST', '/api/auth/login', {body: {username, password}, auth: false}));
  const token = d && (d.accessToken || d.access_token || d.token);
  if (!token) throw new ApiError('The node answered the login without a token', 200, d, 'POST /api/auth/login');
  session.username = username;
  setToken(token);
  try {
    applyUser(unwrap(await call('GET', '/api/auth/user')));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
  }
  session.mode = 'on';
  changed();
}

export async function logout() {
  if (session.token) {
    try {
      await call('POST', '/api/auth/logout', {body: {}});
    } catch {
      // the token is forgotten here whatever the node answered
    }
  }
  setToken(null);
  session.username = session.mode === 'on' ? '' : session.username;
  changed();
}
