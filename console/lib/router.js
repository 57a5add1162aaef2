// router.js - hash routes: "#/services/my-service?q=abc".
//
// A hash router needs nothing from the server beyond index.html, so every
// console address is "/console/#/...": reloads and bookmarks work, and the
// node never has to answer for paths it does not know.

const routes = [];
let handler = null;

// add('/services/:id', page)
export function add(pattern, page) {
  const names = [];
  const re = new RegExp('^' + pattern.replace(/:([a-z]+)/g, (_, n) => {
    names.push(n);
    return '([^/]+)';
  }) + '/?$');
  routes.push({pattern, re, names, page});
}

export function parse(hash) {
  const raw = (hash || '').replace(/^#/, '') || '/';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const query = Object.fromEntries(new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1)));
  return {path: path.startsWith('/') ? path : '/' + path, query, raw};
}

export function resolve(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (!m) continue;
    const params = {};
    try {
      r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    } catch {
      return null;
    }
    return {page: r.page, params};
  }
  return null;
}

export function href(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const qs = q.toString();
  return '#' + path + (qs ? '?' + qs : '');
}

export function current() {
  return parse(location.hash);
}

export function navigate(path, query, {replace = false} = {}) {
  const target = href(path, query);
  if (target === location.hash || (target === '#/' && !location.hash)) {
    if (handler) handler(parse(target));
    return;
  }
  if (replace) {
    history.replaceState(null, '', target);
    if (handler) handler(parse(target));
  } else {
    location.hash = target;
  }
}

// Change the query of the current route without rendering again (filters).
export function setQuery(query) {
  const {path} = current();
  history.replaceState(null, '', href(path, query));
}

export function start(fn) {
  handler = fn;
  window.addEventListener('hashchange', () => handler(current()));
  handler(current());
}
