// canary.js - canary configurations: which caller IPs (or CIDR blocks) a
// service routes to its canary group, and whether that is on.
//
// Calls (MANAGEMENT.md §3.2.5):
//   GET    /api/management/canary/configs
//   POST   /api/management/canary/config {serviceId, ipWhitelist}
//   POST   /api/management/canary/enable {serviceId, enabled: true}
//   POST   /api/management/canary/disable {serviceId}
//   POST   /api/management/canary/{serviceId}/whitelist/add|remove {ips}
//   DELETE /api/management/canary/config/{serviceId}

import {h, replace} from '../lib/dom.js';
import {ApiError, get, post, del, seg} from '../lib/api.js';
import * as registry from '../lib/registry.js';
import {canWrite, operatorId} from '../lib/auth.js';
import {vtable} from '../lib/table.js';
import {pageHeader, failure, toast, act, badge, button, fmtTime, confirmDialog, formDialog, details, section,
  isIpOrCidr, splitList} from '../lib/ui.js';

function normConfig(c) {
  const ips = c.ipWhitelist ?? c.ip_whitelist ?? c.ips ?? [];
  return {
    serviceId: String(c.serviceId ?? c.service_id ?? ''), ips: Array.isArray(ips) ? ips.map(String) : splitList(ips),
    enabled: !!(c.enabled ?? c.isEnabled), updatedAt: c.updatedAt ?? c.updated_at ?? c.createdAt,
  };
}

function ipsField(value) {
  return {name: 'ips', label: 'Caller IPs or CIDR blocks (one per line)', type: 'textarea', required: true, value,
    validate: (v) => {
      const list = splitList(v);
      if (!list.length) return 'Give at least one address.';
      const bad = list.filter((x) => !isIpOrCidr(x));
      return bad.length ? 'Not an IP address or CIDR block: ' + bad.slice(0, 3).join(', ') : '';
    }};
}

export default {
  title: 'Canary',
  render(main) {
    const writer = canWrite();
    const state = {configs: [], selected: null, absent: null};
    const messages = h('div');
    const actions = h('div', {class: 'actions'});
    const detail = h('div');
    const table = vtable({
      label: 'Canary configurations', rowKey: (c) => c.serviceId, sortKey: 'serviceId', minWidth: '44rem',
      emptyText: 'No canary configuration.', onActivate: (c) => { state.selected = c.serviceId; renderDetail(); },
      columns: [
        {key: 'serviceId', title: 'Service', width: 'minmax(12rem, 2fr)'},
        {key: 'enabled', title: 'State', width: 'minmax(7rem, 1fr)', render: (c) => badge(c.enabled ? 'enabled' : 'disabled')},
        {key: 'ips', title: 'Whitelist', width: 'minmax(14rem, 3fr)', value: (c) => c.ips.join(', '), className: 'clip'},
        {key: 'updatedAt', title: 'Updated', width: 'minmax(10rem, 1.5fr)', render: (c) => fmtTime(c.updatedAt)},
      ],
    });
    main.append(pageHeader('Canary'), messages, actions, table.el, detail);

    async function load() {
      try {
        const d = await get('/api/management/canary/configs');
        state.configs = (Array.isArray(d) ? d : (d && d.configs) || []).map(normConfig);
        state.absent = null;
        replace(messages);
      } catch (e) {
        state.configs = [];
        if (e instanceof ApiError && e.missing) state.absent = e.request;
        replace(messages, failure('Canary', e));
      }
      replace(actions, writer && !state.absent ? button('New canary configuration', create, {kind: 'primary'}) : null);
      table.setRows(state.configs);
      renderDetail();
    }

    const run = (what, fn) => act(what, fn, load);

    function create() {
      const m = registry.snapshot();
      formDialog({
        title: 'New canary configuration',
        intro: 'Callers from these addresses are routed to the service\'s canary group; everyone else away from it.',
        fields: [
          {name: 'serviceId', label: 'Service', required: true, maxLength: 128,
            list: m.loaded ? [...m.services.keys()].sort() : []},
          ipsField(''),
        ],
        submitLabel: 'Create and enable',
        onSubmit: async (v) => {
          await post('/api/management/canary/config', {serviceId: v.serviceId, ipWhitelist: splitList(v.ips), operatorId: operatorId()});
          state.selected = v.serviceId;
          toast('Canary for ' + v.serviceId + ' enabled.');
        },
      }).then((done) => { if (done) load(); });
    }

    function renderDetail() {
      const c = state.configs.find((x) => x.serviceId === state.selected);
      if (!c) {
        replace(detail);
        return;
      }
      const base = '/api/management/canary/';
      const acts = writer ? [
        c.enabled ? button('Disable', () => run('Disable', () => post(base + 'disable', {serviceId: c.serviceId, operatorId: operatorId()})))
          : button('Enable', () => run('Enable', () => post(base + 'enable', {serviceId: c.serviceId, enabled: true, operatorId: operatorId()}))),
        button('Add addresses', () => formDialog({
          title: 'Add addresses to ' + c.serviceId, fields: [ipsField('')], submitLabel: 'Add',
          onSubmit: (v) => post(base + seg(c.serviceId) + '/whitelist/add', {ips: splitList(v.ips), operatorId: operatorId()}),
        }).then((done) => { if (done) load(); })),
        button('Delete configuration', async () => {
          if (await confirmDialog({title: 'Delete the canary of ' + c.serviceId, text: 'Every caller is routed as usual again.',
            confirmLabel: 'Delete', danger: true})) {
            state.selected = null;
            run('Delete configuration', () => del(base + 'config/' + seg(c.serviceId)));
          }
        }, {kind: 'danger'}),
      ] : [];
      replace(detail, section('Canary of ' + c.serviceId,
        h('div', {class: 'actions'}, ...acts, button('Close', () => { state.selected = null; renderDetail(); })),
        details([['service', c.serviceId], ['state', badge(c.enabled ? 'enabled' : 'disabled')], ['updated', fmtTime(c.updatedAt)]]),
        h('h3', null, 'Whitelist'),
        c.ips.length ? h('ul', {class: 'chips'}, c.ips.map((ip) => h('li', null, ip, writer ? button('Remove', () =>
          run('Remove ' + ip, () => post(base + seg(c.serviceId) + '/whitelist/remove', {ips: [ip], operatorId: operatorId()})),
        {title: 'Remove ' + ip}) : null))) : h('p', {class: 'muted'}, 'The whitelist is empty.')));
    }

    load();
    return null;
  },
};
