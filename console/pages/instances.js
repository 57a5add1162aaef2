// instances.js - the instances of one service: every field, metadata,
// lease age, and the operations on them.
//
// Calls:
//   instances   registry.fetchService(): POST /api/management/service.json,
//               else POST /artemis/api/discovery/service.json
//   operations  GET /api/management/all-instance-operations.json?regionId=
//               GET /api/management/all-server-operations.json?regionId=
//   leases      POST /artemis/api/status/leases.json {serviceIds: [id]}
//               (at most every LEASES_MS: the node rate-limits it)
//   pull-out/in POST /api/management/instance/operate-instance.json
//               {instanceKey, operation: "pullout"|"pullin", operationComplete, operatorId}
//               POST /api/management/server/operate-server.json
//               {serverId, regionId, operation, operationComplete, operatorId}
//   unregister  POST /api/registry/unregister.json {instances: [...]}
// Live: pushes for this service update the table in place.

import {h, replace, safeLink} from '../lib/dom.js';
import {call, optional, pool} from '../lib/api.js';
import * as registry from '../lib/registry.js';
import * as live from '../lib/live.js';
import {canWrite, operatorId} from '../lib/auth.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, fmtInt, badge, button, details, section, confirmDialog, toast, toMs, ago,
  unavailable} from '../lib/ui.js';
import {href, setQuery} from '../lib/router.js';

const LEASES_MS = 10000;
const LEASE_KEYS = new Set(['creationTime', 'renewalTime', 'ttl']);
const FIELDS = ['regionId', 'zoneId', 'groupId', 'serviceId', 'instanceId', 'machineName', 'ip', 'port', 'protocol',
  'url', 'healthCheckUrl', 'status'];

function leaseNames(inst) {
  const base = [inst.regionId, inst.zoneId, inst.serviceId].map((x) => String(x || '')).join('/');
  const id = String(inst.instanceId || '');
  const names = [base + '/' + id];
  if (inst.groupId) names.push(base + '/' + inst.groupId + '/' + id);
  return names.map((n) => n.toLowerCase());
}

function opsKey(regionId, instanceId) {
  return (String(regionId || '') + '\u0000' + String(instanceId || '')).toLowerCase();
}

function metaText(meta) {
  if (!meta || typeof meta !== 'object') return '';
  return Object.entries(meta).filter(([k]) => !LEASE_KEYS.has(k)).map(([k, v]) => k + '=' + v).join(', ');
}

export default {
  title: 'Instances',
  render(main, {params, query}) {
    const serviceId = params.id;
    document.title = serviceId + ' · Artemis';
    const state = {
      instances: new Map(), source: null, ops: new Map(), serverOps: new Set(), mgmt: null,
      leases: new Map(), leasesAt: 0, detail: null, error: null, loaded: false,
    };
    const search = h('input', {id: 'inst-search', type: 'search', value: query.q || '', autocomplete: 'off',
      placeholder: 'Id, address, status, zone, metadata…'});
    const statusSel = h('select', {id: 'inst-status'}, ['all', 'up', 'down', 'other', 'pulled out']
      .map((v) => h('option', {value: v, selected: (query.status || 'all') === v}, v)));
    const summary = h('p', {class: 'summary', role: 'status', 'aria-live': 'polite'});
    const messages = h('div');
    const actions = h('div', {class: 'actions'});
    const detail = h('div');
    const table = vtable({
      label: 'Instances of ' + serviceId,
      selectable: canWrite(),
      rowKey: (r) => r.key,
      rowLabel: (r) => r.inst.instanceId,
      onActivate: (r) => { state.detail = r.key; renderDetail(); },
      onSelect: () => renderActions(),
      sortKey: 'instanceId',
      minWidth: '65rem',
      emptyText: 'No instance matches.',
      columns: [
        {key: 'instanceId', title: 'Instance', width: 'minmax(12rem, 2fr)', value: (r) => r.inst.instanceId},
        {key: 'status', title: 'Status', width: 'minmax(11rem, 1.2fr)', value: (r) => r.status,
          render: (r) => h('span', null, badge(r.status), r.pulled ? h('span', {class: 'tag'}, r.pulled) : null)},
        {key: 'address', title: 'Address', width: 'minmax(10rem, 1.5fr)',
          value: (r) => (r.inst.ip || '') + (r.inst.port ? ':' + r.inst.port : '')},
        {key: 'zoneId', title: 'Zone', width: 'minmax(6rem, 1fr)', value: (r) => r.inst.zoneId},
        {key: 'groupId', title: 'Group', width: 'minmax(6rem, 1fr)', value: (r) => r.inst.groupId},
        {key: 'renewed', title: 'Renewed', width: 'minmax(7rem, 1fr)', sortValue: (r) => -(r.renewedMs || 0),
          render: (r) => ago(r.renewedMs)},
        {key: 'metadata', title: 'Metadata', width: 'minmax(12rem, 3fr)', value: (r) => metaText(r.inst.metadata),
          className: 'clip'},
      ],
    });
    main.append(
      pageHeader(serviceId, h('p', {class: 'crumbs'}, h('a', {href: href('/services')}, 'Services'), ' / ', serviceId)),
      messages,
      h('div', {class: 'toolbar'}, h('label', {for: 'inst-search'}, 'Search'), search,
        h('label', {for: 'inst-status'}, 'Status'), statusSel, actions),
      summary, table.el, detail);

    function lease(inst) {
      const m = inst.metadata || {};
      if (m.renewalTime || m.creationTime) return {creationTime: m.creationTime, renewalTime: m.renewalTime, ttl: m.ttl};
      for (const n of leaseNames(inst)) if (state.leases.has(n)) return state.leases.get(n);
      return null;
    }

    function rowOf(key, inst) {
      const ops = state.ops.get(opsKey(inst.regionId, inst.instanceId)) || [];
      const serverDown = state.serverOps.has(opsKey(inst.regionId, inst.ip));
      const pulled = ops.length ? 'pulled out' : serverDown ? 'server pulled out' : '';
      const status = pulled ? 'down' : registry.effectiveStatus(inst);
      const l = lease(inst);
      return {key, inst, status, pulled, ops, serverDown, lease: l, renewedMs: l ? toMs(l.renewalTime) : NaN};
    }

    function matches(r, q, st) {
      if (st === 'pulled out' && !r.pulled) return false;
      if (st === 'up' && r.status !== 'up') return false;
      if (st === 'down' && r.status !== 'down') return false;
      if (st === 'other' && (r.status === 'up' || r.status === 'down')) return false;
      if (!q) return true;
      const i = r.inst;
      const hay = [i.instanceId, i.ip, i.port, r.status, i.zoneId, i.groupId, i.url, i.machineName, metaText(i.metadata)]
        .join(' ').toLowerCase();
      return hay.includes(q);
    }

    let all = [];
    function refreshRows() {
      all = [];
      for (const [key, inst] of state.instances) all.push(rowOf(key, inst));
      const q = search.value.trim().toLowerCase();
      const st = statusSel.value;
      const rows = all.filter((r) => matches(r, q, st));
      table.setRows(rows);
      const up = all.filter((r) => r.status === 'up').length;
      const down = all.filter((r) => r.status === 'down').length;
      summary.textContent = state.loaded
        ? `${fmtInt(rows.length)} of ${fmtInt(all.length)} instances shown · ${fmtInt(up)} up · ${fmtInt(down)} down · ${fmtInt(all.length - up - down)} other`
        : 'Loading instances…';
      for (const k of [...table.selection]) if (!state.instances.has(k)) table.selection.delete(k);
      renderActions();
      renderDetail();
    }

    let renderTimer = 0;
    function scheduleRows() {
      if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = 0; refreshRows(); }, 150);
    }

    function renderMessages() {
      replace(messages,
        state.error ? notice('error', 'Reading the instances failed: ' + errorText(state.error)) : null,
        state.mgmt === false && canWrite()
          ? unavailable('Pull-in and pull-out', 'GET /api/management/all-instance-operations.json') : null);
    }

    function selectedRows() {
      return all.filter((r) => table.selection.has(r.key));
    }

    function renderActions() {
      replace(actions);
      if (!canWrite()) return;
      const n = table.selection.size;
      const label = (verb) => verb + (n ? ' (' + n + ')' : '');
      if (state.mgmt) {
        actions.append(button(label('Pull out'), () => operateMany(selectedRows(), 'pullout'), {disabled: !n}),
          button(label('Pull in'), () => operateMany(selectedRows(), 'pullin'), {disabled: !n}));
      }
      actions.append(button(label('Unregister'), () => unregister(selectedRows()), {kind: 'danger', disabled: !n}));
    }

    function renderDetail() {
      const r = state.detail && all.find((x) => x.key === state.detail);
      if (!r) {
        replace(detail);
        return;
      }
      const i = r.inst;
      const meta = Object.entries(i.metadata || {}).filter(([k]) => !LEASE_KEYS.has(k));
      const l = r.lease;
      const acts = [];
      if (canWrite()) {
        if (state.mgmt) {
          acts.push(r.ops.length ? button('Pull in', () => operateMany([r], 'pullin')) : button('Pull out', () => operateMany([r], 'pullout')));
          if (i.ip) {
            acts.push(r.serverDown ? button('Pull in server ' + i.ip, () => operateServer(i, 'pullin'))
              : button('Pull out server ' + i.ip, () => operateServer(i, 'pullout')));
          }
        }
        acts.push(button('Unregister', () => unregister([r]), {kind: 'danger'}));
      }
      replace(detail, section('Instance ' + i.instanceId,
        h('div', {class: 'actions'}, ...acts, button('Close', () => { state.detail = null; renderDetail(); table.focus(); })),
        h('div', {class: 'detail-grid'},
          h('div', null, h('h3', null, 'Fields'), details(FIELDS.map((f) => [f,
            f === 'url' || f === 'healthCheckUrl' ? safeLink(i[f] ?? '') : i[f]]))),
          h('div', null,
            h('h3', null, 'State'), details([
              ['shown as', badge(r.status)],
              ['operations', r.ops.length ? r.ops.join(', ') : 'none'],
              ['server', r.serverDown ? 'pulled out' : 'in service'],
              ['lease created', l ? String(l.creationTime ?? '–') : '–'],
              ['lease renewed', l ? String(l.renewalTime ?? '–') + ' (' + ago(r.renewedMs) + ')' : '–'],
              ['lease ttl', l && l.ttl ? l.ttl + ' ms' : '–'],
            ]),
            h('h3', null, 'Metadata'),
            meta.length ? details(meta) : h('p', {class: 'muted'}, 'No metadata.')))));
    }

    // Pushes that arrive while the service is fetched are held and applied
    // after it (live.ready(): the socket is open before the first fetch).
    let holding = 0;
    let held = [];

    async function loadInstances() {
      await live.ready();
      holding += 1;
      try {
        const {service, source} = await registry.fetchService(serviceId);
        state.source = source;
        state.instances = new Map((service.instances || []).map((i) => [registry.instanceKey(i), i]));
        state.error = null;
      } catch (e) {
        state.error = e;
      }
      holding -= 1;
      if (!holding) {
        const replay = held;
        held = [];
        for (const msg of replay) onLive(msg);
      }
      state.loaded = true;
      renderMessages();
      refreshRows();
    }

    async function loadOps() {
      const n = await registry.node();
      try {
        const d = await optional('instance-operations', () => call('GET', '/api/management/all-instance-operations.json',
          {query: {regionId: n.regionId}}));
        state.mgmt = !!d;
        state.ops = new Map();
        if (d) {
          for (const o of d.allInstanceOperations || []) {
            const k = o.instanceKey || {};
            if ((o.operations || []).length) state.ops.set(opsKey(k.regionId, k.instanceId), o.operations.map(String));
          }
          for (const o of d.instanceOperationRecords || []) {
            const k = typeof o.instanceKey === 'object' && o.instanceKey ? o.instanceKey : o;
            const key = opsKey(k.regionId, k.instanceId);
            if (!state.ops.has(key) && String(o.operation).toLowerCase() !== 'pullin') state.ops.set(key, [String(o.operation)]);
          }
          const s = await call('GET', '/api/management/all-server-operations.json', {query: {regionId: n.regionId}});
          state.serverOps = new Set();
          for (const o of s.allServerOperations || []) {
            const k = o.serverKey || {};
            if ((o.operations || []).length) state.serverOps.add(opsKey(k.regionId, k.serverId));
          }
          for (const o of s.serverOperationRecords || []) state.serverOps.add(opsKey(o.regionId, o.serverId));
        }
      } catch (e) {
        state.error = e;
      }
      renderMessages();
      renderActions();
      scheduleRows();
    }

    async function loadLeases(force) {
      if (!force && Date.now() - state.leasesAt < LEASES_MS) return;
      state.leasesAt = Date.now();
      try {
        const d = await call('POST', '/artemis/api/status/leases.json', {body: {serviceIds: [serviceId]}});
        state.leases = new Map();
        for (const l of (d.leases && d.leases[serviceId]) || []) state.leases.set(String(l.instance).toLowerCase(), l);
        scheduleRows();
      } catch {
        // rate-limited or refused: keep the ages we have
      }
    }

    function instanceKeyOf(i) {
      return {regionId: i.regionId, zoneId: i.zoneId, serviceId: i.serviceId, instanceId: i.instanceId, groupId: i.groupId};
    }

    async function operateMany(rows, operation) {
      if (!rows.length) return;
      const verb = operation === 'pullout' ? 'Pull out' : 'Pull in';
      if (rows.length > 1 || operation === 'pullout') {
        const ok = await confirmDialog({title: verb + ' ' + rows.length + (rows.length === 1 ? ' instance' : ' instances'),
          text: operation === 'pullout' ? 'Discovery stops returning them until they are pulled in again.'
            : 'Discovery returns them again.', confirmLabel: verb, danger: operation === 'pullout'});
        if (!ok) return;
      }
      const res = await pool(rows, 4, (r) => call('POST', '/api/management/instance/operate-instance.json', {body: {
        instanceKey: instanceKeyOf(r.inst), operation, operationComplete: operation === 'pullin', operatorId: operatorId(),
      }}), (done, total) => { summary.textContent = `${verb}: ${done} of ${total}…`; });
      report(verb, res);
      await loadOps();
      loadInstances();
    }

    async function operateServer(inst, operation) {
      const verb = operation === 'pullout' ? 'Pull out' : 'Pull in';
      const ok = await confirmDialog({title: verb + ' server ' + inst.ip,
        text: 'This applies to every instance registered with the address ' + inst.ip + ' in region ' + inst.regionId + '.',
        confirmLabel: verb, danger: operation === 'pullout'});
      if (!ok) return;
      try {
        await call('POST', '/api/management/server/operate-server.json', {body: {serverId: inst.ip, regionId: inst.regionId,
          operation, operationComplete: operation === 'pullin', operatorId: operatorId()}});
        toast(verb + ' server ' + inst.ip + ': done.');
      } catch (e) {
        toast(verb + ' server failed: ' + errorText(e), 'error');
      }
      await loadOps();
      loadInstances();
    }

    async function unregister(rows) {
      if (!rows.length) return;
      const ok = await confirmDialog({title: 'Unregister ' + rows.length + (rows.length === 1 ? ' instance' : ' instances'),
        text: 'Their leases end now. An instance that keeps sending heartbeats registers itself again.',
        confirmLabel: 'Unregister', danger: true});
      if (!ok) return;
      const chunks = [];
      for (let i = 0; i < rows.length; i += 1000) chunks.push(rows.slice(i, i + 1000).map((r) => r.inst));
      const res = await pool(chunks, 2, async (instances) => {
        const d = await call('POST', '/api/registry/unregister.json', {body: {instances}});
        const failed = d.failedInstances || [];
        if (failed.length) throw new Error(failed.length + ' refused: ' + (failed[0].errorMessage || failed[0].errorCode));
        return instances.length;
      });
      report('Unregister', res);
      for (const r of rows) table.selection.delete(r.key);
      setTimeout(loadInstances, 400);
    }

    function report(verb, results) {
      const bad = results.filter((r) => !r.ok);
      if (bad.length) toast(`${verb}: ${results.length - bad.length} done, ${bad.length} failed: ${errorText(bad[0].error)}`, 'error');
      else toast(`${verb}: done.`);
    }

    let debounce = 0;
    const onFilter = () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        setQuery({q: search.value.trim(), status: statusSel.value === 'all' ? '' : statusSel.value});
        refreshRows();
      }, 120);
    };
    search.addEventListener('input', onFilter);
    statusSel.addEventListener('change', onFilter);

    let reloadTimer = 0;
    function scheduleReload(withOps) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => {
        loadInstances();
        if (withOps) loadOps();
      }, 300);
    }

    function onLive(msg) {
      if (holding) {
        held.push(msg);
        return;
      }
      if (msg.kind === 'resync') {
        scheduleReload(true);
        return;
      }
      if (msg.serviceId !== serviceId) return;
      if (msg.kind === 'change' && msg.changeType === 'new') {
        state.instances.set(registry.instanceKey(msg.instance), msg.instance);
        scheduleRows();
      } else if (msg.kind === 'change' && msg.changeType === 'delete' && state.source === 'discovery') {
        state.instances.delete(registry.instanceKey(msg.instance));
        scheduleRows();
      } else {
        scheduleReload(msg.kind === 'event');
      }
      loadLeases(false);
    }
    const off = live.subscribe(onLive);
    const ageTimer = setInterval(() => { loadLeases(false); scheduleRows(); }, LEASES_MS);

    refreshRows();
    loadInstances();
    loadOps();
    loadLeases(true);
    return () => {
      off();
      clearInterval(ageTimer);
      clearTimeout(renderTimer);
      clearTimeout(reloadTimer);
      clearTimeout(debounce);
    };
  },
};
