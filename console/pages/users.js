// users.js - users and sessions (administrators only).
//
// Calls (MANAGEMENT.md §3.2.7):
//   GET    /api/auth/users                 POST /api/auth/users {username, email, description, password, role}
//   PUT    /api/auth/users/{id} {email, description, role}
//   PUT    /api/auth/users/{id}/status {status}
//   POST   /api/auth/password/reset/{id} {newPassword}
//   DELETE /api/auth/users/{id}
//   GET    /api/auth/users/{id}/login-history
//   GET    /api/auth/sessions              DELETE /api/auth/sessions/{sessionId}

import {h, replace} from '../lib/dom.js';
import {get, post, put, del, seg} from '../lib/api.js';
import {session} from '../lib/auth.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, failure, toast, act, badge, button, fmtTime, confirmDialog,
  formDialog, details, section} from '../lib/ui.js';

const ROLES = ['viewer', 'operator', 'admin'];
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function normUser(u) {
  return {id: String(u.userId ?? u.id ?? ''), username: String(u.username ?? ''), email: u.email ?? '',
    description: u.description ?? '', role: String(u.role ?? 'viewer'), status: String(u.status ?? 'active'),
    createdAt: u.createdAt ?? u.created_at};
}

function normSession(s) {
  return {id: String(s.sessionId ?? s.id ?? ''), userId: String(s.userId ?? ''), ip: s.ipAddress ?? s.ip ?? '',
    agent: s.userAgent ?? '', createdAt: s.createdAt, expiresAt: s.expiresAt, lastActivity: s.lastActivity,
    username: s.username ?? ''};
}

const passwordField = (name, label) => ({name, label, type: 'password', required: true, autocomplete: 'new-password',
  validate: (v) => (v.length < 8 ? 'Use at least 8 characters.' : v.length > 128 ? 'Use at most 128 characters.' : '')});

export default {
  title: 'Users',
  adminOnly: true,
  render(main) {
    const state = {users: [], sessions: [], selected: null};
    const messages = h('div');
    const detail = h('div');
    const usersTable = vtable({
      label: 'Users', rowKey: (u) => u.id, sortKey: 'username', minWidth: '44rem', emptyText: 'No users.',
      onActivate: (u) => { state.selected = u.id; renderDetail(); },
      columns: [
        {key: 'username', title: 'User', width: 'minmax(9rem, 1.5fr)'},
        {key: 'role', title: 'Role', width: 'minmax(6rem, 1fr)'},
        {key: 'status', title: 'Status', width: 'minmax(6rem, 1fr)', render: (u) => badge(u.status)},
        {key: 'email', title: 'Email', width: 'minmax(10rem, 2fr)', className: 'clip'},
        {key: 'createdAt', title: 'Created', width: 'minmax(10rem, 1.5fr)', render: (u) => fmtTime(u.createdAt)},
      ],
    });
    const sessionsTable = vtable({
      label: 'Sessions', rowKey: (s) => s.id, sortKey: 'lastActivity', sortDir: -1, minWidth: '56rem', emptyText: 'No sessions.',
      columns: [
        {key: 'user', title: 'User', width: 'minmax(8rem, 1fr)',
          value: (s) => s.username || (state.users.find((u) => u.id === s.userId) || {}).username || s.userId},
        {key: 'ip', title: 'From', width: 'minmax(8rem, 1fr)'},
        {key: 'agent', title: 'Browser', width: 'minmax(10rem, 2fr)', className: 'clip'},
        {key: 'lastActivity', title: 'Last active', width: 'minmax(10rem, 1.5fr)', render: (s) => fmtTime(s.lastActivity)},
        {key: 'expiresAt', title: 'Expires', width: 'minmax(10rem, 1.5fr)', render: (s) => fmtTime(s.expiresAt)},
        {key: 'act', title: '', width: 'minmax(6rem, 1fr)', sort: false, render: (s) => button('Revoke', () => revoke(s))},
      ],
    });
    const newUserBtn = button('New user', create, {kind: 'primary'});
    main.append(pageHeader('Users and sessions'), messages,
      section('Users', h('div', {class: 'actions'}, newUserBtn), usersTable.el, detail),
      section('Sessions', sessionsTable.el));

    async function load() {
      try {
        const [u, s] = await Promise.all([get('/api/auth/users'), get('/api/auth/sessions')]);
        state.users = (Array.isArray(u) ? u : (u && u.users) || []).map(normUser);
        state.sessions = (Array.isArray(s) ? s : (s && s.sessions) || []).map(normSession);
        replace(messages);
        newUserBtn.hidden = false;
      } catch (e) {
        newUserBtn.hidden = true;
        replace(messages, failure('User management', e));
      }
      usersTable.setRows(state.users);
      sessionsTable.setRows(state.sessions);
      renderDetail();
    }

    const run = (what, fn) => act(what, fn, load);

    function create() {
      formDialog({
        title: 'New user',
        fields: [
          {name: 'username', label: 'User name', required: true, pattern: USER_RE,
            patternMessage: 'Use 3–64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit.'},
          {name: 'role', label: 'Role', type: 'select', options: ROLES, value: 'viewer'},
          {name: 'email', label: 'Email', type: 'email', pattern: EMAIL_RE, patternMessage: 'This is not an email address.'},
          {name: 'description', label: 'Description', maxLength: 256},
          passwordField('password', 'Password'),
          {name: 'again', label: 'Password again', type: 'password', required: true, autocomplete: 'new-password',
            validate: (v, all) => (v !== all.password ? 'The two passwords differ.' : '')},
        ],
        submitLabel: 'Create user',
        onSubmit: async (v) => {
          await post('/api/auth/users', {username: v.username, role: v.role, email: v.email || undefined,
            description: v.description || undefined, password: v.password});
          toast('User ' + v.username + ' created.');
        },
      }).then((done) => { if (done) load(); });
    }

    async function revoke(s) {
      const ok = await confirmDialog({title: 'Revoke this session', text: 'Its token stops working on every node.',
        confirmLabel: 'Revoke', danger: true});
      if (ok) run('Revoke session', () => del('/api/auth/sessions/' + seg(s.id)));
    }

    async function renderDetail() {
      const u = state.users.find((x) => x.id === state.selected);
      if (!u) {
        replace(detail);
        return;
      }
      const base = '/api/auth/users/' + seg(u.id);
      const history = h('div', null, h('p', {class: 'muted'}, 'Loading…'));
      const self = u.username === session.username;
      replace(detail, section('User ' + u.username,
        h('div', {class: 'actions'},
          button('Edit', () => formDialog({
            title: 'Edit ' + u.username,
            fields: [
              {name: 'role', label: 'Role', type: 'select', options: ROLES, value: u.role},
              {name: 'email', label: 'Email', type: 'email', value: u.email, pattern: EMAIL_RE, patternMessage: 'This is not an email address.'},
              {name: 'description', label: 'Description', value: u.description, maxLength: 256},
            ],
            onSubmit: (v) => put(base, v),
          }).then((done) => { if (done) load(); })),
          self ? null : button(u.status === 'active' ? 'Deactivate' : 'Activate',
            () => run('Status', () => put(base + '/status', {status: u.status === 'active' ? 'inactive' : 'active'}))),
          button('Reset password', () => formDialog({
            title: 'New password for ' + u.username, fields: [passwordField('newPassword', 'New password')],
            submitLabel: 'Set password',
            onSubmit: (v) => post('/api/auth/password/reset/' + seg(u.id), {newPassword: v.newPassword}),
          }).then((done) => { if (done) toast('Password of ' + u.username + ' set.'); })),
          self ? null : button('Delete user', async () => {
            if (await confirmDialog({title: 'Delete ' + u.username, text: 'Their sessions end too.', confirmLabel: 'Delete', danger: true})) {
              state.selected = null;
              run('Delete user', () => del(base));
            }
          }, {kind: 'danger'}),
          button('Close', () => { state.selected = null; renderDetail(); })),
        details([['id', u.id], ['user', u.username], ['role', u.role], ['status', badge(u.status)], ['email', u.email],
          ['description', u.description], ['created', fmtTime(u.createdAt)]]),
        h('h3', null, 'Recent logins'), history));
      try {
        const d = await get(base + '/login-history');
        const list = Array.isArray(d) ? d : (d && d.items) || [];
        replace(history, list.length ? h('ul', {class: 'plain'}, list.slice(0, 20).map((x) => h('li', null,
          fmtTime(x.time ?? x.loginTime ?? x.createdAt), ' · ', x.ipAddress ?? x.ip ?? '', ' · ',
          badge(x.success === false || x.result === 'failure' ? 'failure' : 'success'))))
          : h('p', {class: 'muted'}, 'No logins recorded.'));
      } catch (e) {
        replace(history, notice('error', errorText(e)));
      }
    }

    load();
    return null;
  },
};
