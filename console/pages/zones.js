// zones.js - zone operations: pull a whole zone (or one service in it) out
// of discovery and back in.
//
// Calls (MANAGEMENT.md §3.2.2):
//   GET  /api/management/zone/operations?regionId=
//   POST /api/management/zone/pull-out {zoneId, regionId, serviceId?, operatorId}
//   POST /api/management/zone/pull-in  {zoneId, regionId, serviceId?, operation (the row's), operatorId}
//   GET  /api/management/zone/status/{zoneId}/{regionId}
// The zones the registry knows (from the registry model) are listed with
// their instance counts so an operator sees what a pull-out would hide.

import {h, replace} from '../lib/dom.js';
import {ApiError, get, post, seg} from '../lib/api.js';
import * as registry from '../lib/registry.js';
import {canWrite, operatorId} from '../lib/auth.js';
import {vtable} from '../lib/table.js';
import {pageHeader, errorText, failure, toast, badge, button, fmtTime, fmtInt, confirmDialog, formDialog,
  details, section, NAME_RE, NAME_MSG} from '../lib/ui.js';

function normOp(o) {
  return {
    zoneId: String(o.zoneId ?? o.zone_id ?? ''), regionId: String(o.regionId ?? o.region_id ?? ''),
    serviceId: String(o.serviceId ?? o.service_id ?? ''), operation: String(o.operation ?? 'pullout'),
    operatorId: String(o.operatorId ?? o.operator_id ?? ''), time: o.operationTime ?? o.operation_time,
  };
}

const opKey = (o) => [o.regionId, o.zoneId, o.serviceId].join('\u0000').toLowerCase();

export default {
  title: 'Zones',
  render(main) {
    const writer = canWrite();
    const state = {ops: [], absent: null, model: null};
    const messages = h('div');
    const actions = h('div', {class: 'actions'});
    const statusBox = h('div');
    const opsTable = vtable({
      label: 'Zone operations', rowKey: opKey, sortKey: 'zoneId', minWidth: '52rem',
      emptyText: 'No zone is pulled out.',
      columns: [
        {key: 'zoneId', title: 'Zone', width: 'minmax(8rem, 1fr)'},
        {key: 'regionId', title: 'Region', width: 'minmax(8rem, 1fr)'},
        {key: 'serviceId', title: 'Service', width: 'minmax(10rem, 1.5fr)', value: (o) => o.serviceId || 'every service'},
        {key: 'operation', title: 'Operation', width: 'minmax(7rem, 1fr)'},
        {key: 'operatorId', title: 'By', width: 'minmax(7rem, 1fr)'},
        {key: 'time', title: 'Since', width: 'minmax(10rem, 1.5fr)', render: (o) => fmtTime(o.time)},
        {key: 'act', title: '', width: 'minmax(7rem, 1fr)', sort: false,
          render: (o) => (writer ? button('Pull in', () => pullIn(o)) : '')},
      ],
    });
    const zonesTable = vtable({
      label: 'Zones in the registry', rowKey: (z) => z.regionId + '/' + z.zoneId, sortKey: 'zoneId', minWidth: '36rem',
      emptyText: 'No instances registered.',
      columns: [
        {key: 'zoneId', title: 'Zone', width: 'minmax(8rem, 1fr)'},
        {key: 'regionId', title: 'Region', width: 'minmax(8rem, 1fr)'},
        {key: 'instances', title: 'Instances', width: 'minmax(6rem, 1fr)', className: 'num', render: (z) => fmtInt(z.instances)},
        {key: 'services', title: 'Services', width: 'minmax(6rem, 1fr)', className: 'num', render: (z) => fmtInt(z.services)},
        {key: 'state', title: 'State', width: 'minmax(8rem, 1fr)', render: (z) => badge(z.state)},
      ],
    });
    main.append(pageHeader('Zones'), messages, actions,
      section('Zone operations', opsTable.el), section('Zones in the registry', zonesTable.el), statusBox);

    function renderZones() {
      const zones = new Map();
      if (state.model && state.model.loaded) {
        for (const [sid, m] of state.model.services) {
          for (const i of m.values()) {
            const k = (i.regionId || '') + '/' + (i.zoneId || '');
            if (!zones.has(k)) zones.set(k, {regionId: i.regionId || '', zoneId: i.zoneId || '', instances: 0, svc: new Set()});
            const z = zones.get(k);
            z.instances += 1;
            z.svc.add(sid);
          }
        }
      }
      const whole = new Set(state.ops.filter((o) => !o.serviceId).map((o) => (o.regionId + '/' + o.zoneId).toLowerCase()));
      const some = new Set(state.ops.filter((o) => o.serviceId).map((o) => (o.regionId + '/' + o.zoneId).toLowerCase()));
      zonesTable.setRows([...zones.values()].map((z) => {
        const k = (z.regionId + '/' + z.zoneId).toLowerCase();
        return {...z, services: z.svc.size, state: whole.has(k) ? 'pulled out' : some.has(k) ? 'partly out' : 'in service'};
      }));
    }

    async function load() {
      const n = await registry.node();
      try {
        state.ops = (await get('/api/management/zone/operations', {regionId: n.regionId}) || []).map(normOp);
        state.absent = null;
        replace(messages);
      } catch (e) {
        state.ops = [];
        if (e instanceof ApiError && e.missing) state.absent = e.request;
        replace(messages, failure('Zone operations', e));
      }
      replace(actions, writer && !state.absent ? button('Pull out a zone', pullOut, {kind: 'primary'}) : null,
        !state.absent ? button('Check a zone', checkZone) : null);
      opsTable.setRows(state.ops);
      renderZones();
    }

    function knownZones() {
      const z = new Set();
      if (state.model && state.model.loaded) for (const m of state.model.services.values()) for (const i of m.values()) z.add(String(i.zoneId || ''));
      return [...z].filter(Boolean).sort();
    }

    async function pullOut() {
      const n = await registry.node();
      const services = state.model && state.model.loaded ? [...state.model.services.keys()].sort() : [];
      const done = await formDialog({
        title: 'Pull out a zone',
        intro: 'Discovery stops returning the zone\'s instances (of one service, or of every service) until it is pulled in.',
        fields: [
          {name: 'zoneId', label: 'Zone', required: true, pattern: NAME_RE, patternMessage: NAME_MSG, list: knownZones()},
          {name: 'regionId', label: 'Region', required: true, value: n.regionId, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'serviceId', label: 'Service (empty: every service)', maxLength: 128, list: services},
        ],
        submitLabel: 'Pull out',
        onSubmit: async (v) => {
          const body = {zoneId: v.zoneId, regionId: v.regionId, operation: 'pullout', operatorId: operatorId()};
          if (v.serviceId) body.serviceId = v.serviceId;
          await post('/api/management/zone/pull-out', body);
          toast('Zone ' + v.zoneId + ' pulled out.');
        },
      });
      if (done) load();
    }

    async function pullIn(o) {
      const ok = await confirmDialog({title: 'Pull in zone ' + o.zoneId,
        text: 'Discovery returns its instances' + (o.serviceId ? ' of ' + o.serviceId : '') + ' again.', confirmLabel: 'Pull in'});
      if (!ok) return;
      try {
        // The operation to end is the row's own: the node keys zone
        // operations by it ("pullin" would end a "pullin" operation).
        const body = {zoneId: o.zoneId, regionId: o.regionId, operation: o.operation, operatorId: operatorId()};
        if (o.serviceId) body.serviceId = o.serviceId;
        await post('/api/management/zone/pull-in', body);
        toast('Zone ' + o.zoneId + ' pulled in.');
      } catch (e) {
        toast('Pull in failed: ' + errorText(e), 'error');
      }
      load();
    }

    async function checkZone() {
      const n = await registry.node();
      formDialog({
        title: 'Check a zone',
        fields: [
          {name: 'zoneId', label: 'Zone', required: true, pattern: NAME_RE, patternMessage: NAME_MSG, list: knownZones()},
          {name: 'regionId', label: 'Region', required: true, value: n.regionId, pattern: NAME_RE, patternMessage: NAME_MSG},
        ],
        submitLabel: 'Check',
        onSubmit: async (v) => {
          const d = await get('/api/management/zone/status/' + seg(v.zoneId) + '/' + seg(v.regionId));
          const down = d && (d.isDown ?? d.is_down);
          replace(statusBox, section('Zone ' + v.zoneId, details([
            ['region', d.regionId ?? d.region_id ?? v.regionId], ['state', badge(down ? 'down' : 'up')],
            ['operation', d.operation || '–'], ['by', d.operatorId ?? d.operator_id ?? '–']])));
        },
      });
    }

    const off = registry.watch((m) => { state.model = m; renderZones(); });
    load();
    return () => off();
  },
};
