// login.js - sign in with POST /api/auth/login {username, password}.
//
// On success the token is kept for this tab and the user goes back to
// where they were (?next=, a console route only).  A node without login
// (no auth API, or [auth] enabled = false) says so and links onwards.

import {h} from '../lib/dom.js';
import * as auth from '../lib/auth.js';
import {navigate, parse} from '../lib/router.js';
import {notice, errorText} from '../lib/ui.js';

function safeNext(next) {
  const n = String(next || '');
  return n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/login') ? n : '/';
}

export default {
  title: 'Sign in',
  render(main, {query}) {
    const next = safeNext(query.next);
    if (auth.session.mode !== 'on') {
      main.append(h('div', {class: 'login'}, h('h1', {tabindex: '-1'}, 'Artemis'),
        notice('info', 'This node runs without login.'), h('p', null, h('a', {href: '#' + next}, 'Open the console'))));
      return null;
    }
    const err = h('div', {class: 'form-error', role: 'alert'});
    const user = h('input', {id: 'login-user', name: 'username', autocomplete: 'username', required: true,
      'aria-describedby': 'login-err'});
    const pass = h('input', {id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password',
      required: true, 'aria-describedby': 'login-err'});
    const submit = h('button', {type: 'submit', class: 'btn btn-primary'}, 'Sign in');
    err.id = 'login-err';
    const form = h('form', {class: 'login', novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      if (!user.value.trim()) {
        err.textContent = 'Enter your user name.';
        user.focus();
        return;
      }
      if (!pass.value) {
        err.textContent = 'Enter your password.';
        pass.focus();
        return;
      }
      submit.disabled = true;
      try {
        await auth.login(user.value.trim(), pass.value);
        const target = parse('#' + next);
        navigate(target.path, target.query);
      } catch (e) {
        err.textContent = errorText(e);
        submit.disabled = false;
        pass.select();
      }
    }},
    h('h1', {tabindex: '-1'}, 'Sign in to Artemis'),
    query.expired ? notice('info', 'Your session has expired. Sign in again to continue.') : null,
    err,
    h('div', {class: 'field'}, h('label', {for: 'login-user'}, 'User name'), user),
    h('div', {class: 'field'}, h('label', {for: 'login-pass'}, 'Password'), pass),
    submit);
    main.append(form);
    user.focus();
    return null;
  },
};
