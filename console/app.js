// app.js - the console's entry point: the frame around every page, the
// routes, and the session's comings and goings.
//
// Loaded by index.html as an ES module; no build step, no framework.  It
// asks the node once who the user is (auth.js), then renders the page the
// hash names.  A page module exports {title, render(main, ctx)}; render
// returns a cleanup function the router calls before the next page.

import {h, clear, replace} from './lib/dom.js';
import {configure, post} from './lib/api.js';
import * as auth from './lib/auth.js';
import * as router from './lib/router.js';
import * as live from './lib/live.js';
import * as metrics from './lib/metrics.js';
import {node} from './lib/registry.js';
import {notice, errorText, formDialog, toast, button} from './lib/ui.js';

import login from './pages/login.js';
import dashboard from './pages/dashboard.js';
import services from './pages/services.js';
import instances from './pages/instances.js';
import cluster from './pages/cluster.js';
import routing from './pages/routing.js';
import zones from './pages/zones.js';
import canary from './pages/canary.js';
import audit from './pages/audit.js';
import users from './pages/users.js';

const NAV = [
  {path: '/', label: 'Dashboard'},
  {path: '/services', label: 'Services'},
  {path: '/cluster', label: 'Cluster'},
  {path: '/routing', label: 'Routing'},
  {path: '/zones', label: 'Zones'},
  {path: '/canary', label: 'Canary'},
  {path: '/audit', label: 'Audit log'},
  {path: '/users', label: 'Users', admin: true},
];

router.add('/', dashboard);
router.add('/login', login);
router.add('/services', services);
router.add('/services/:id', instances);
router.add('/cluster', cluster);
router.add('/routing', routing);
router.add('/zones', zones);
router.add('/canary', canary);
router.add('/audit', audit);
router.add('/users', users);

const app = document.getElementById('app');
const main = h('main', {id: 'main', tabindex: '-1'});
const navList = h('ul');
const nav = h('nav', {id: 'nav', 'aria-label': 'Main'}, navList);
const navToggle = h('button', {type: 'button', class: 'nav-toggle', 'aria-controls': 'nav', 'aria-expanded': 'false',
  onclick: () => setNavOpen(navToggle.getAttribute('aria-expanded') !== 'true')}, 'Menu');
const liveEl = h('span', {class: 'live', role: 'status', title: 'Live updates'});
const nodeEl = h('span', {class: 'node-name'});
const userEl = h('div', {class: 'user'});
const skip = h('a', {class: 'skip-link', href: '#main', onclick: (ev) => { ev.preventDefault(); main.focus(); }},
  'Skip to content');
const topbar = h('header', {class: 'topbar'}, navToggle, h('a', {class: 'brand', href: '#/'}, 'Artemis'),
  nodeEl, liveEl, userEl);
const layout = h('div', {class: 'layout'}, nav, main);

let cleanup = null;
let firstRender = true;

function setNavOpen(open) {
  navToggle.setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('nav-open', open);
}

function renderNav(path) {
  clear(navList);
  for (const item of NAV) {
    if (item.admin && !auth.isAdmin()) continue;
    const current = item.path === '/' ? path === '/' : path === item.path || path.startsWith(item.path + '/');
    navList.append(h('li', null, h('a', {href: '#' + item.path, 'aria-current': current ? 'page' : null,
      onclick: () => setNavOpen(false)}, item.label)));
  }
}

function renderUser() {
  clear(userEl);
  const s = auth.session;
  if (s.mode === 'on' && s.token) {
    userEl.append(h('span', {class: 'who'}, s.username, ' ', h('span', {class: 'role'}, '(' + s.role + ')')),
      button('Password', changePassword), button('Sign out', signOut));
  } else if (s.mode === 'off') {
    userEl.append(h('span', {class: 'who'}, (s.username || 'no login') + ' ', h('span', {class: 'role'}, '(' + s.role + ')')));
  }
}

async function signOut() {
  await auth.logout();
  router.navigate('/login');
}

function changePassword() {
  formDialog({
    title: 'Change your password',
    fields: [
      {name: 'oldPassword', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password'},
      {name: 'newPassword', label: 'New password', type: 'password', required: true, autocomplete: 'new-password',
        validate: (v) => (v.length < 8 ? 'Use at least 8 characters.' : '')},
      {name: 'again', label: 'New password again', type: 'password', required: true, autocomplete: 'new-password',
        validate: (v, all) => (v !== all.newPassword ? 'The two new passwords differ.' : '')},
    ],
    submitLabel: 'Change password',
    onSubmit: async (v) => {
      await post('/api/auth/password/change', {oldPassword: v.oldPassword, newPassword: v.newPassword});
      toast('Password changed.');
    },
  });
}

function show(route) {
  const s = auth.session;
  if (s.mode === 'on' && !s.token && route.path !== '/login') {
    router.navigate('/login', {next: route.raw, expired: s.expired ? '1' : ''}, {replace: true});
    return;
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  const found = router.resolve(route.path);
  const bare = found && found.page === login;
  document.body.classList.toggle('bare', bare);
  renderNav(route.path);
  renderUser();
  clear(main);
  if (!found) {
    document.title = 'Not found · Artemis';
    main.append(h('h1', {tabindex: '-1'}, 'Not found'), h('p', null, 'No console page is called ', h('code', null, route.path), '.'));
  } else if (found.page.adminOnly && !auth.isAdmin()) {
    document.title = found.page.title + ' · Artemis';
    main.append(h('h1', {tabindex: '-1'}, found.page.title), notice('info', 'Only administrators see this page.'));
  } else {
    document.title = found.page.title + ' · Artemis';
    try {
      cleanup = found.page.render(main, {params: found.params, query: route.query, raw: route.raw}) || null;
    } catch (e) {
      main.append(notice('error', 'This page failed: ' + errorText(e)));
    }
  }
  if (!firstRender) {
    const h1 = main.querySelector('h1');
    if (h1) h1.focus({preventScroll: false});
  }
  firstRender = false;
}

function liveText(status) {
  liveEl.className = 'live live-' + status;
  liveEl.textContent = status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Offline, retrying';
}

async function boot() {
  replace(app, skip, topbar, layout);
  main.append(h('p', {class: 'loading'}, 'Loading…'));
  configure({
    token: () => auth.session.token,
    unauthorized: () => auth.expire(),
  });
  auth.onSessionChange((s) => {
    renderUser();
    const cur = router.current();
    if (s.mode === 'on' && !s.token && cur.path !== '/login') {
      router.navigate('/login', {next: cur.raw, expired: s.expired ? '1' : ''});
    }
  });
  try {
    await auth.probe();
  } catch (e) {
    replace(main, h('h1', null, 'Artemis'), notice('error', 'The node did not answer: ' + errorText(e)),
      button('Try again', () => location.reload()));
    return;
  }
  node().then((n) => { nodeEl.textContent = n.regionId + ' / ' + n.zoneId; }).catch(() => {});
  live.onStatus(liveText);
  live.start();
  metrics.start();
  router.start(show);
}

boot();
