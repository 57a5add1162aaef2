// ui.js - the console's shared pieces: page headings, notices, toasts,
// dialogs with validated forms, badges and formatting.
//
// Dialogs are native <dialog> elements opened with showModal(): the
// browser keeps focus inside, Escape cancels, focus returns to the opener.
// A form validates every field before anything is sent; when the node
// refuses, its message is shown in the dialog, which stays open.

import {h, clear, nextId} from './dom.js';
import {ApiError} from './api.js';

export function pageHeader(title, ...extra) {
  return h('header', {class: 'page-head'}, h('h1', {tabindex: '-1'}, title), ...extra);
}

export function notice(kind, ...text) {
  return h('div', {class: 'notice notice-' + kind, role: kind === 'error' ? 'alert' : 'status'}, ...text);
}

export function errorText(e) {
  if (e instanceof ApiError) return e.message + (e.request ? ' (' + e.request + ')' : '');
  return String(e && e.message ? e.message : e);
}

// The page needs an endpoint this node does not answer (404).
export function unavailable(what, request) {
  return notice('info', h('strong', null, what + ' is not available on this node. '),
    'It answered 404 to ', h('code', null, request || 'the request'),
    ': the console offers this page once the node serves that API.');
}

// The notice for a failed load: "not available" for a 404, else the error.
export function failure(what, e) {
  return e instanceof ApiError && e.missing ? unavailable(what, e.request) : notice('error', errorText(e));
}

let toastBox = null;

export function toast(text, kind = 'ok') {
  if (!toastBox) {
    toastBox = h('div', {class: 'toasts', role: 'status', 'aria-live': 'polite'});
    document.body.append(toastBox);
  }
  const t = h('div', {class: 'toast toast-' + kind}, text);
  toastBox.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 4000);
}

// Run a write, say how it went, then refresh the page (after()).
export async function act(what, fn, after) {
  try {
    await fn();
    toast(what + ': done.');
  } catch (e) {
    toast(what + ' failed: ' + errorText(e), 'error');
  }
  if (after) await after();
}

export function badge(status) {
  const st = String(status ?? 'unknown').toLowerCase();
  const cls = ['up', 'active', 'enabled', 'success', 'live', 'published', 'in service'].includes(st) ? 'ok'
    : ['down', 'inactive', 'disabled', 'failure', 'offline', 'pulled out'].includes(st) ? 'bad' : 'warn';
  return h('span', {class: 'badge badge-' + cls}, st);
}

export function button(label, onclick, {kind = '', title, disabled} = {}) {
  return h('button', {type: 'button', class: 'btn' + (kind ? ' btn-' + kind : ''), onclick, title,
    disabled: !!disabled}, label);
}

// ---- formatting ---------------------------------------------------------------

export function toMs(v) {
  if (v === null || v === undefined || v === '') return NaN;
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  if (/^\d+$/.test(String(v))) return toMs(Number(v));
  const t = Date.parse(String(v).replace(' ', 'T'));
  return Number.isFinite(t) ? t : NaN;
}

export function fmtTime(v) {
  const ms = toMs(v);
  if (!Number.isFinite(ms)) return v ? String(v) : '–';
  return new Date(ms).toLocaleString();
}

export function ago(ms) {
  if (!Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

export function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString() : '–';
}

// A string field of a record, whether the node sent it plain or as the
// Rust console's object form ({status: "active"}, {strategy: ...}).
export function plain(v) {
  if (v && typeof v === 'object') return String(v.status ?? v.strategy ?? v.type ?? v.value ?? '');
  return v === undefined || v === null ? '' : String(v);
}

// ---- dialogs -------------------------------------------------------------------

function openDialog(dialog) {
  document.body.append(dialog);
  dialog.addEventListener('close', () => dialog.remove());
  dialog.showModal();
}

export function confirmDialog({title, text, confirmLabel = 'Confirm', danger = false}) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = button(confirmLabel, () => { answer = true; dialog.close(); }, {kind: danger ? 'danger' : 'primary'});
    const cancel = button('Cancel', () => dialog.close());
    const titleId = nextId('dlg');
    const dialog = h('dialog', {class: 'dialog', 'aria-labelledby': titleId},
      h('h2', {id: titleId}, title), h('p', null, text), h('div', {class: 'dialog-actions'}, cancel, ok));
    dialog.addEventListener('close', () => resolve(answer));
    openDialog(dialog);
    cancel.focus();
  });
}

function fieldInput(f, id, errId) {
  const common = {id, name: f.name, 'aria-describedby': errId + (f.hint ? ' ' + id + '-hint' : ''),
    required: !!f.required, autocomplete: f.autocomplete || 'off'};
  if (f.type === 'select') {
    return h('select', common, (f.options || []).map((o) => {
      const opt = typeof o === 'object' ? o : {value: o, label: o};
      return h('option', {value: opt.value, selected: String(opt.value) === String(f.value ?? '')}, opt.label);
    }));
  }
  if (f.type === 'textarea') {
    const ta = h('textarea', {...common, rows: f.rows || 4, placeholder: f.placeholder});
    ta.value = f.value ?? '';
    return ta;
  }
  if (f.type === 'checkbox') return h('input', {...common, type: 'checkbox', checked: !!f.value, required: false});
  let list = null;
  if (f.list && f.list.length) list = id + '-list';
  const input = h('input', {...common, type: f.type || 'text', placeholder: f.placeholder, list,
    min: f.min, max: f.max, step: f.step, inputmode: f.inputmode});
  input.value = f.value ?? '';
  return input;
}

function readField(f, el) {
  if (f.type === 'checkbox') return el.checked;
  const v = el.value.trim();
  if (f.type === 'number') return v === '' ? '' : Number(v);
  return v;
}

// Check one field: a message, or '' when it is fine.
export function checkField(f, v, values) {
  if (f.required && (v === '' || v === null || v === undefined)) return f.label + ' is required.';
  if (v === '' || v === null || v === undefined) return '';
  if (f.type === 'number') {
    if (!Number.isFinite(v) || (f.integer !== false && !Number.isInteger(v))) return f.label + ' must be a whole number.';
    if (f.min !== undefined && v < f.min) return f.label + ' must be at least ' + f.min + '.';
    if (f.max !== undefined && v > f.max) return f.label + ' must be at most ' + f.max + '.';
  }
  if (typeof v === 'string' && f.maxLength && v.length > f.maxLength) return f.label + ' is longer than ' + f.maxLength + ' characters.';
  if (f.pattern && typeof v === 'string' && !f.pattern.test(v)) return f.patternMessage || f.label + ' is not valid.';
  if (f.validate) return f.validate(v, values) || '';
  return '';
}

// A modal form.  onSubmit(values) may throw: its message stays on screen.
// Resolves with onSubmit's result, or null when cancelled.
export function formDialog({title, intro, fields, submitLabel = 'Save', onSubmit}) {
  return new Promise((resolve) => {
    let result = null;
    const titleId = nextId('dlg');
    const failure = h('div', {class: 'form-error', role: 'alert'});
    const inputs = new Map();
    const errors = new Map();
    const rows = fields.map((f) => {
      const id = nextId('f');
      const errId = id + '-err';
      const input = fieldInput(f, id, errId);
      const err = h('p', {class: 'field-error', id: errId});
      inputs.set(f.name, input);
      errors.set(f.name, err);
      const lists = f.list && f.list.length ? h('datalist', {id: id + '-list'}, f.list.slice(0, 500).map((v) => h('option', {value: v}))) : null;
      const hint = f.hint ? h('p', {class: 'field-hint', id: id + '-hint'}, f.hint) : null;
      if (f.type === 'checkbox') {
        return h('div', {class: 'field field-check'}, input, h('label', {for: id}, f.label), hint, err);
      }
      return h('div', {class: 'field'}, h('label', {for: id}, f.label + (f.required ? ' *' : '')), input, lists, hint, err);
    });
    const submit = h('button', {type: 'submit', class: 'btn btn-primary'}, submitLabel);
    const cancel = button('Cancel', () => dialog.close());
    const form = h('form', {novalidate: true, onsubmit: (ev) => { ev.preventDefault(); send(); }},
      intro ? h('p', null, intro) : null, failure, rows, h('div', {class: 'dialog-actions'}, cancel, submit));
    const dialog = h('dialog', {class: 'dialog', 'aria-labelledby': titleId}, h('h2', {id: titleId}, title), form);

    function values() {
      const v = {};
      for (const f of fields) v[f.name] = readField(f, inputs.get(f.name));
      return v;
    }

    async function send() {
      const v = values();
      let first = null;
      for (const f of fields) {
        const msg = checkField(f, v[f.name], v);
        const input = inputs.get(f.name);
        errors.get(f.name).textContent = msg;
        input.setAttribute('aria-invalid', msg ? 'true' : 'false');
        if (msg && !first) first = input;
      }
      clear(failure);
      if (first) {
        first.focus();
        return;
      }
      submit.disabled = true;
      try {
        result = await onSubmit(v);
        if (result === undefined) result = true;
        dialog.close();
      } catch (e) {
        failure.textContent = errorText(e);
        submit.disabled = false;
      }
    }

    dialog.addEventListener('close', () => resolve(result));
    openDialog(dialog);
    const firstInput = inputs.get(fields[0].name);
    if (firstInput) firstInput.focus();
  });
}

// A definition list of label/value pairs (values: strings or nodes).
export function details(pairs) {
  return h('dl', {class: 'details'}, pairs.map(([k, v]) => [h('dt', null, k),
    h('dd', null, v instanceof Node ? v : v === null || v === undefined || v === '' ? '–' : String(v))]));
}

// Keep an element's contents in step with async loads: loader(into).
export function section(title, ...content) {
  const id = nextId('sec');
  return h('section', {class: 'panel', 'aria-labelledby': id}, h('h2', {id}, title), ...content);
}

// Input validators shared by forms.
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const NAME_MSG = 'Use letters, digits, ".", "_", ":" and "-" (up to 128 characters).';

export function isIpOrCidr(v) {
  const s = String(v).trim();
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined) return false;
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(addr);
  const v6 = !v4 && /^[0-9A-Fa-f:.]+$/.test(addr) && addr.includes(':') && (addr.match(/::/g) || []).length <= 1;
  if (!v4 && !v6) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (v4 ? 32 : 128);
}

export function splitList(v) {
  return String(v || '').split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
}
