// audit.js - the audit log: who changed what, when; filters and paging.
//
// Call (MANAGEMENT.md §3.2.6):
//   GET /api/management/audit/logs?operationType=&operatorId=&targetId=&from=&to=&limit=&offset=
// from/to are epoch seconds (the Rust API's time unit); newest first.  The
// filters live in the address, so the back button and a return from the
// login page keep them.  A page that comes back full has a next page.

import {h, replace} from '../lib/dom.js';
import {get} from '../lib/api.js';
import {vtable} from '../lib/table.js';
import {pageHeader, failure, badge, button, toMs, fmtTime, section} from '../lib/ui.js';
import {navigate} from '../lib/router.js';

// The node's record types (mgmt/: one per kind of key written).
const TYPES = ['', 'instance', 'server', 'zone', 'group', 'group-tag', 'group-instance', 'group-operation', 'route-rule',
  'route-rule-group', 'service-instance', 'canary', 'user', 'session'];
const SIZES = ['50', '100', '200'];

function normLog(l) {
  const d = l.details;
  return {
    id: String(l.logId ?? l.id ?? ''), type: String(l.operationType ?? l.resourceType ?? ''),
    target: String(l.targetId ?? l.resourceId ?? ''), operation: String(l.operation ?? l.action ?? ''),
    action: l.operation !== undefined && l.action !== undefined ? String(l.action) : '',
    operator: String(l.operatorId ?? ''), time: l.operationTime ?? l.timestamp, result: l.result ? String(l.result) : '',
    details: d === undefined || d === null ? '' : typeof d === 'string' ? d : JSON.stringify(d, null, 2),
  };
}

function localInput(v) {
  const ms = Number(v) * 1000;
  if (!Number.isFinite(ms) || !v) return '';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export default {
  title: 'Audit log',
  render(main, {query}) {
    const limit = SIZES.includes(query.limit) ? Number(query.limit) : 50;
    const offset = Math.max(0, Number.parseInt(query.offset || '0', 10) || 0);
    const field = (id, label, input) => h('div', {class: 'field'}, h('label', {for: id}, label), input);
    const type = h('select', {id: 'au-type'}, TYPES.map((t) => h('option', {value: t, selected: (query.operationType || '') === t}, t || 'any')));
    const operator = h('input', {id: 'au-operator', value: query.operatorId || '', autocomplete: 'off', maxlength: 128});
    const target = h('input', {id: 'au-target', value: query.targetId || '', autocomplete: 'off', maxlength: 256});
    const from = h('input', {id: 'au-from', type: 'datetime-local', value: localInput(query.from)});
    const to = h('input', {id: 'au-to', type: 'datetime-local', value: localInput(query.to)});
    const size = h('select', {id: 'au-size'}, SIZES.map((s) => h('option', {value: s, selected: String(limit) === s}, s)));
    const formErr = h('p', {class: 'field-error', role: 'alert'});
    const messages = h('div');
    const pager = h('nav', {class: 'pager', 'aria-label': 'Audit log pages'});
    const detail = h('div');
    let rows = [];
    const table = vtable({
      label: 'Audit records', rowKey: (r) => r.id, minWidth: '66rem', emptyText: 'No audit records match.',
      onActivate: (r) => renderDetail(r),
      columns: [
        {key: 'time', title: 'Time', width: 'minmax(13rem, 1.5fr)', sortValue: (r) => toMs(r.time), render: (r) => fmtTime(r.time)},
        {key: 'type', title: 'Type', width: 'minmax(9.5rem, 1fr)'},
        {key: 'operation', title: 'Operation', width: 'minmax(7rem, 1fr)'},
        {key: 'action', title: 'Action', width: 'minmax(6.5rem, 0.7fr)'},
        {key: 'target', title: 'Target', width: 'minmax(12rem, 2fr)', className: 'clip'},
        {key: 'operator', title: 'By', width: 'minmax(7rem, 1fr)'},
        {key: 'result', title: 'Result', width: 'minmax(6rem, 1fr)', render: (r) => (r.result ? badge(r.result) : '')},
        {key: 'details', title: 'Details', width: 'minmax(12rem, 2fr)', className: 'clip', value: (r) => r.details.replace(/\s+/g, ' ')},
      ],
    });

    function apply(newOffset) {
      const f = from.value ? Math.floor(new Date(from.value).getTime() / 1000) : '';
      const t = to.value ? Math.floor(new Date(to.value).getTime() / 1000) : '';
      if (f !== '' && t !== '' && f > t) {
        formErr.textContent = '"From" is after "to".';
        from.focus();
        return;
      }
      formErr.textContent = '';
      navigate('/audit', {operationType: type.value, operatorId: operator.value.trim(), targetId: target.value.trim(),
        from: f, to: t, limit: size.value === '50' ? '' : size.value, offset: newOffset || ''});
    }

    const form = h('form', {class: 'filters', onsubmit: (ev) => { ev.preventDefault(); apply(0); }},
      field('au-type', 'Type', type), field('au-operator', 'Operator', operator), field('au-target', 'Target', target),
      field('au-from', 'From', from), field('au-to', 'To', to), field('au-size', 'Per page', size),
      h('div', {class: 'field'}, h('button', {type: 'submit', class: 'btn btn-primary'}, 'Filter')), formErr);
    main.append(pageHeader('Audit log'), form, messages, pager, table.el, detail);

    function renderDetail(r) {
      replace(detail, section('Record ' + r.id, h('div', {class: 'actions'}, button('Close', () => replace(detail))),
        h('pre', {class: 'json'}, r.details || '(no details)')));
    }

    async function load() {
      const q = {operationType: query.operationType, operatorId: query.operatorId, targetId: query.targetId,
        from: query.from, to: query.to, limit, offset};
      try {
        const d = await get('/api/management/audit/logs', q);
        rows = (Array.isArray(d) ? d : (d && (d.logs || d.items)) || []).map(normLog);
        replace(messages);
      } catch (e) {
        rows = [];
        replace(messages, failure('The audit log', e));
      }
      table.setRows(rows);
      const page = Math.floor(offset / limit) + 1;
      replace(pager,
        button('Previous', () => apply(Math.max(0, offset - limit)), {disabled: offset === 0}),
        h('span', {class: 'muted'}, `Page ${page} · records ${rows.length ? offset + 1 : 0}–${offset + rows.length}`),
        button('Next', () => apply(offset + limit), {disabled: rows.length < limit}));
    }

    load();
    return null;
  },
};
