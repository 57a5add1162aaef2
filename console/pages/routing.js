// routing.js - groups of a service (tags, members) and its route rules
// (groups with weights, a preview of the split, publish / unpublish).
//
// Calls (MANAGEMENT.md §3.2.3, §3.2.4; groups addressed by numeric id):
//   GET    /api/routing/groups?serviceId=        POST /api/routing/groups
//   PUT    /api/routing/groups/{id}              DELETE /api/routing/groups/{id}
//   GET    /api/routing/groups/{id}/tags         POST .../tags {tags: [{key, value}]}
//   DELETE /api/routing/groups/{id}/tags/{key}
//   GET    /api/routing/groups/{id}/instances    POST .../instances {instanceId, regionId, zoneId, serviceId, operatorId}
//   DELETE /api/routing/groups/{id}/instances/{instanceId}?regionId=&zoneId=
//   GET    /api/routing/rules?serviceId=         POST /api/routing/rules {routeId, serviceId, name, description, strategy}
//   PUT    /api/routing/rules/{routeId}          DELETE /api/routing/rules/{routeId}
//   POST   /api/routing/rules/{routeId}/publish | /unpublish
//   GET    /api/routing/rules/{routeId}/groups   POST .../groups {groupId, weight}
//   PUT    /api/routing/rules/{routeId}/groups/{groupId} {weight}   DELETE the same

import {h, replace} from '../lib/dom.js';
import {ApiError, get, post, put, del, seg} from '../lib/api.js';
import * as registry from '../lib/registry.js';
import {canWrite, operatorId} from '../lib/auth.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, failure, toast, act, badge, button, fmtTime, plain, confirmDialog,
  formDialog, details, section, NAME_RE, NAME_MSG} from '../lib/ui.js';
import {setQuery} from '../lib/router.js';

const STRATEGIES = ['weighted-round-robin', 'close-by-visit', 'consistent-hash'];

function list(d) {
  if (Array.isArray(d)) return d;
  if (d && typeof d === 'object') return d.items || d.groups || d.rules || d.instances || [];
  return [];
}

function tagsOf(t) {
  if (Array.isArray(t)) return t.map((x) => [String(x.key ?? x.tagKey ?? ''), String(x.value ?? x.tagValue ?? '')]);
  if (t && typeof t === 'object') return Object.entries(t).map(([k, v]) => [k, String(v)]);
  return [];
}

function normGroup(g) {
  return {
    id: String(g.groupId ?? g.id ?? ''), key: g.groupKey ?? g.group_key ?? '', serviceId: g.serviceId ?? g.service_id ?? '',
    regionId: g.regionId ?? g.region_id ?? '', zoneId: g.zoneId ?? g.zone_id ?? '', name: g.name ?? '',
    groupType: plain(g.groupType ?? g.group_type ?? g.type), status: plain(g.status) || 'active',
    description: g.description ?? '', appId: g.appId ?? '', tags: tagsOf(g.tags ?? g.metadata),
    count: g.instance_count ?? g.instanceCount ?? null, createdAt: g.createdAt ?? g.created_at,
  };
}

function normRule(r) {
  return {
    routeId: String(r.routeId ?? r.route_id ?? r.id ?? ''), id: r.routeRuleId ?? r.id, serviceId: r.serviceId ?? r.service_id ?? '',
    name: r.name ?? '', description: r.description ?? '', status: plain(r.status) || 'inactive',
    strategy: plain(r.strategy), groups: list(r.groups), createdAt: r.createdAt ?? r.created_at,
  };
}

function weightCheck(v) {
  return Number.isInteger(v) && v >= 1 && v <= 100 ? '' : 'A weight is a whole number from 1 to 100.';
}

// The split a rule's weights give, as a bar and in words.
export function splitPreview(parts) {
  const total = parts.reduce((a, p) => a + (p.weight > 0 ? p.weight : 0), 0);
  const bar = h('div', {class: 'split', role: 'img'});
  const words = [];
  parts.forEach((p, i) => {
    const pct = total ? (100 * Math.max(0, p.weight)) / total : 0;
    const part = h('div', {class: 'split-seg c' + (i % 6), title: p.label + ': ' + pct.toFixed(1) + ' %'},
      pct >= 8 ? p.label : '');
    part.style.setProperty('width', pct + '%');
    bar.append(part);
    words.push(p.label + ' ' + pct.toFixed(pct % 1 ? 1 : 0) + ' %');
  });
  const text = total ? words.join(' · ') : 'No weights yet.';
  bar.setAttribute('aria-label', 'Traffic split: ' + text);
  return h('div', {class: 'split-box'}, bar, h('p', {class: 'split-text'}, text));
}

export default {
  title: 'Routing',
  render(main, {query}) {
    const writer = canWrite();
    const state = {serviceId: query.service || '', groups: [], rules: [], group: null, rule: null, absent: null};
    const svcInput = h('input', {id: 'rt-service', type: 'search', value: state.serviceId, list: 'rt-services',
      placeholder: 'All services', autocomplete: 'off'});
    const svcList = h('datalist', {id: 'rt-services'});
    const messages = h('div');
    const groupActions = h('div', {class: 'actions'});
    const ruleActions = h('div', {class: 'actions'});
    const groupDetail = h('div');
    const ruleDetail = h('div');
    const groupsTable = vtable({
      label: 'Groups', rowKey: (g) => g.id, sortKey: 'name', minWidth: '52rem', emptyText: 'No groups.',
      onActivate: (g) => { state.group = g.id; renderGroup(); },
      columns: [
        {key: 'name', title: 'Group', width: 'minmax(9rem, 1.5fr)'},
        {key: 'serviceId', title: 'Service', width: 'minmax(9rem, 1.5fr)'},
        {key: 'zone', title: 'Region / zone', width: 'minmax(9rem, 1.5fr)', value: (g) => g.regionId + ' / ' + g.zoneId},
        {key: 'groupType', title: 'Type', width: 'minmax(6rem, 1fr)'},
        {key: 'status', title: 'Status', width: 'minmax(6rem, 1fr)', render: (g) => badge(g.status)},
        {key: 'tags', title: 'Tags', width: 'minmax(8rem, 2fr)', value: (g) => g.tags.map(([k, v]) => k + '=' + v).join(', '),
          className: 'clip'},
      ],
    });
    const rulesTable = vtable({
      label: 'Route rules', rowKey: (r) => r.routeId, sortKey: 'routeId', minWidth: '50rem', emptyText: 'No route rules.',
      onActivate: (r) => { state.rule = r.routeId; renderRule(); },
      columns: [
        {key: 'routeId', title: 'Rule', width: 'minmax(9rem, 1.5fr)'},
        {key: 'name', title: 'Name', width: 'minmax(8rem, 1.5fr)'},
        {key: 'serviceId', title: 'Service', width: 'minmax(9rem, 1.5fr)'},
        {key: 'strategy', title: 'Strategy', width: 'minmax(10rem, 1.5fr)'},
        {key: 'status', title: 'Published', width: 'minmax(7rem, 1fr)',
          render: (r) => badge(r.status === 'active' ? 'published' : 'unpublished')},
      ],
    });
    main.append(pageHeader('Routing'),
      h('form', {class: 'toolbar', onsubmit: (ev) => { ev.preventDefault(); pick(svcInput.value.trim()); }},
        h('label', {for: 'rt-service'}, 'Service'), svcInput, svcList, h('button', {type: 'submit', class: 'btn'}, 'Show')),
      messages,
      section('Groups', groupActions, groupsTable.el, groupDetail),
      section('Route rules', ruleActions, rulesTable.el, ruleDetail));

    const offModel = registry.watch((m) => {
      if (!m.loaded) return;
      replace(svcList, [...m.services.keys()].sort().slice(0, 1000).map((id) => h('option', {value: id})));
    });

    function pick(id) {
      state.serviceId = id;
      state.group = null;
      state.rule = null;
      setQuery({service: id});
      load();
    }

    async function load() {
      try {
        const q = state.serviceId ? {serviceId: state.serviceId} : undefined;
        const [g, r] = await Promise.all([get('/api/routing/groups', q), get('/api/routing/rules', q)]);
        state.groups = list(g).map(normGroup);
        state.rules = list(r).map(normRule);
        replace(messages);
      } catch (e) {
        if (e instanceof ApiError && e.missing) state.absent = e.request;
        replace(messages, failure('Routing', e));
      }
      renderActions();
      groupsTable.setRows(state.groups);
      rulesTable.setRows(state.rules);
      renderGroup();
      renderRule();
    }

    function renderActions() {
      replace(groupActions, writer && !state.absent ? button('New group', newGroup, {kind: 'primary'}) : null);
      replace(ruleActions, writer && !state.absent ? button('New rule', newRule, {kind: 'primary'}) : null);
    }

    const run = (what, fn) => act(what, fn, load);

    function newGroup() {
      registry.node().then((n) => formDialog({
        title: 'New group',
        fields: [
          {name: 'serviceId', label: 'Service', required: true, value: state.serviceId, maxLength: 128,
            list: [...svcList.options].map((o) => o.value)},
          {name: 'name', label: 'Name', required: true, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'regionId', label: 'Region', required: true, value: n.regionId, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'zoneId', label: 'Zone', required: true, value: n.zoneId, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'groupType', label: 'Type', type: 'select', options: ['physical', 'logical'], value: 'physical'},
          {name: 'appId', label: 'App id', maxLength: 128},
          {name: 'description', label: 'Description', type: 'textarea', maxLength: 1024},
        ],
        submitLabel: 'Create group',
        onSubmit: async (v) => {
          const g = normGroup(await post('/api/routing/groups', {...v, operatorId: operatorId()}));
          toast('Group ' + v.name + ' created.');
          state.group = g.id || null;
        },
      })).then((done) => { if (done) load(); });
    }

    function newRule() {
      formDialog({
        title: 'New route rule',
        fields: [
          {name: 'serviceId', label: 'Service', required: true, value: state.serviceId, maxLength: 128,
            list: [...svcList.options].map((o) => o.value)},
          {name: 'routeId', label: 'Rule id', required: true, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'name', label: 'Name', required: true, maxLength: 128},
          {name: 'strategy', label: 'Strategy', type: 'select', options: STRATEGIES, value: STRATEGIES[0]},
          {name: 'description', label: 'Description', type: 'textarea', maxLength: 1024},
        ],
        submitLabel: 'Create rule',
        onSubmit: async (v) => {
          await post('/api/routing/rules', {...v, operatorId: operatorId()});
          toast('Rule ' + v.routeId + ' created (unpublished).');
          state.rule = v.routeId;
        },
      }).then((done) => { if (done) load(); });
    }

    // ---- one group -------------------------------------------------------------

    async function renderGroup() {
      const g = state.groups.find((x) => x.id === state.group);
      if (!g) {
        replace(groupDetail);
        return;
      }
      const base = '/api/routing/groups/' + seg(g.id);
      const tagsBox = h('div', null, h('p', {class: 'muted'}, 'Loading tags…'));
      const membersBox = h('div', null, h('p', {class: 'muted'}, 'Loading members…'));
      const acts = writer ? [
        button('Edit', () => editGroup(g)),
        button(g.status === 'active' ? 'Deactivate' : 'Activate',
          () => run('Group status', () => put(base, {status: g.status === 'active' ? 'inactive' : 'active', operatorId: operatorId()}))),
        button('Add tag', () => addTag(g)),
        button('Add member', () => addMember(g)),
        button('Delete group', async () => {
          if (await confirmDialog({title: 'Delete group ' + g.name, text: 'Rules lose this group too.', confirmLabel: 'Delete', danger: true})) {
            state.group = null;
            run('Delete group', () => del(base));
          }
        }, {kind: 'danger'}),
      ] : [];
      replace(groupDetail, section('Group ' + g.name,
        h('div', {class: 'actions'}, ...acts, button('Close', () => { state.group = null; renderGroup(); })),
        details([['id', g.id], ['key', g.key], ['service', g.serviceId], ['region / zone', g.regionId + ' / ' + g.zoneId],
          ['type', g.groupType], ['status', badge(g.status)], ['app id', g.appId], ['description', g.description],
          ['created', fmtTime(g.createdAt)]]),
        h('h3', null, 'Tags'), tagsBox, h('h3', null, 'Members'), membersBox));
      try {
        const tags = tagsOf(await get(base + '/tags'));
        replace(tagsBox, tags.length ? h('ul', {class: 'chips'}, tags.map(([k, v]) => h('li', null, k + '=' + v,
          writer ? button('Remove', () => run('Remove tag', () => del(base + '/tags/' + seg(k))), {title: 'Remove tag ' + k}) : null)))
          : h('p', {class: 'muted'}, 'No tags.'));
      } catch (e) {
        replace(tagsBox, notice('error', errorText(e)));
      }
      try {
        const members = list(await get(base + '/instances', {regionId: g.regionId}));
        replace(membersBox, members.length ? h('ul', {class: 'chips'}, members.map((m) => {
          const id = String(m.instanceId ?? m.instance_id ?? '');
          return h('li', null, id, m.ip ? ' (' + m.ip + (m.port ? ':' + m.port : '') + ')' : '',
            writer ? button('Remove', () => run('Remove member', () => del(base + '/instances/' + seg(id),
              {regionId: m.regionId || g.regionId, zoneId: m.zoneId || g.zoneId})), {title: 'Remove ' + id}) : null);
        })) : h('p', {class: 'muted'}, 'No instances belong to this group.'));
      } catch (e) {
        replace(membersBox, notice('error', errorText(e)));
      }
    }

    function editGroup(g) {
      formDialog({
        title: 'Edit group ' + g.name,
        fields: [
          {name: 'description', label: 'Description', type: 'textarea', value: g.description, maxLength: 1024},
          {name: 'status', label: 'Status', type: 'select', options: ['active', 'inactive'], value: g.status},
        ],
        onSubmit: (v) => put('/api/routing/groups/' + seg(g.id), {...v, operatorId: operatorId()}),
      }).then((done) => { if (done) load(); });
    }

    function addTag(g) {
      formDialog({
        title: 'Add a tag to ' + g.name,
        fields: [
          {name: 'key', label: 'Key', required: true, pattern: NAME_RE, patternMessage: NAME_MSG},
          {name: 'value', label: 'Value', required: true, maxLength: 512},
        ],
        submitLabel: 'Add tag',
        onSubmit: (v) => post('/api/routing/groups/' + seg(g.id) + '/tags', {tags: [{key: v.key, value: v.value}], operatorId: operatorId()}),
      }).then((done) => { if (done) load(); });
    }

    function addMember(g) {
      const svc = registry.snapshot().services.get(g.serviceId);
      const m = svc ? [...svc.values()].map((i) => String(i.instanceId)) : [];
      formDialog({
        title: 'Add an instance to ' + g.name,
        fields: [{name: 'instanceId', label: 'Instance id', required: true, maxLength: 256, list: m}],
        submitLabel: 'Add member',
        onSubmit: (v) => post('/api/routing/groups/' + seg(g.id) + '/instances', {instanceId: v.instanceId, regionId: g.regionId,
          zoneId: g.zoneId, serviceId: g.serviceId, operatorId: operatorId()}),
      }).then((done) => { if (done) load(); });
    }

    // ---- one rule ---------------------------------------------------------------

    async function renderRule() {
      const r = state.rules.find((x) => x.routeId === state.rule);
      if (!r) {
        replace(ruleDetail);
        return;
      }
      const base = '/api/routing/rules/' + seg(r.routeId);
      const weightsBox = h('div', null, h('p', {class: 'muted'}, 'Loading groups…'));
      const published = r.status === 'active';
      const acts = writer ? [
        button(published ? 'Unpublish' : 'Publish', () => run(published ? 'Unpublish' : 'Publish',
          () => post(base + (published ? '/unpublish' : '/publish'), {operatorId: operatorId()})), {kind: 'primary'}),
        button('Edit', () => editRule(r)),
        button('Add group', () => addRuleGroup(r)),
        button('Delete rule', async () => {
          if (await confirmDialog({title: 'Delete rule ' + r.routeId, text: 'Its weights go with it.', confirmLabel: 'Delete', danger: true})) {
            state.rule = null;
            run('Delete rule', () => del(base));
          }
        }, {kind: 'danger'}),
      ] : [];
      replace(ruleDetail, section('Rule ' + r.routeId,
        h('div', {class: 'actions'}, ...acts, button('Close', () => { state.rule = null; renderRule(); })),
        details([['rule id', r.routeId], ['name', r.name], ['service', r.serviceId], ['strategy', r.strategy],
          ['status', badge(published ? 'published' : 'unpublished')], ['description', r.description],
          ['created', fmtTime(r.createdAt)]]),
        h('h3', null, 'Groups and weights'), weightsBox));
      let parts;
      try {
        parts = list(await get(base + '/groups')).map((x) => {
          const gid = String(x.groupId ?? x.group_id ?? '');
          const g = state.groups.find((y) => y.id === gid);
          return {groupId: gid, label: g ? g.name : x.groupKey || gid, weight: Number(x.weight ?? x.unreleasedWeight ?? 0)};
        });
      } catch (e) {
        replace(weightsBox, notice('error', errorText(e)));
        return;
      }
      const preview = h('div');
      const draw = () => replace(preview, splitPreview(parts));
      const rows = parts.map((p) => {
        if (!writer) return h('li', {class: 'weight-row'}, h('span', null, p.label), h('span', {class: 'num'}, String(p.weight)));
        const id = 'w-' + r.routeId + '-' + p.groupId;
        const input = h('input', {id, type: 'number', min: 1, max: 100, step: 1, value: String(p.weight),
          'aria-describedby': id + '-err'});
        const err = h('span', {class: 'field-error', id: id + '-err'});
        input.addEventListener('input', () => {
          p.weight = Number(input.value);
          err.textContent = weightCheck(p.weight);
          draw();
        });
        return h('li', {class: 'weight-row'}, h('label', {for: id}, p.label), input, err,
          button('Save', () => {
            const msg = weightCheck(Number(input.value));
            err.textContent = msg;
            if (msg) {
              input.focus();
              return;
            }
            run('Weight', () => put(base + '/groups/' + seg(p.groupId), {weight: Number(input.value), operatorId: operatorId()}));
          }),
          button('Remove', () => run('Remove group from rule', () => del(base + '/groups/' + seg(p.groupId))), {kind: 'danger'}));
      });
      draw();
      replace(weightsBox, parts.length ? h('ul', {class: 'weights'}, rows) : h('p', {class: 'muted'}, 'No groups in this rule yet.'),
        h('h3', null, 'Split preview'), preview);
    }

    function editRule(r) {
      formDialog({
        title: 'Edit rule ' + r.routeId,
        fields: [
          {name: 'name', label: 'Name', required: true, value: r.name, maxLength: 128},
          {name: 'strategy', label: 'Strategy', type: 'select', options: STRATEGIES, value: r.strategy},
          {name: 'description', label: 'Description', type: 'textarea', value: r.description, maxLength: 1024},
        ],
        onSubmit: (v) => put('/api/routing/rules/' + seg(r.routeId), {...v, operatorId: operatorId()}),
      }).then((done) => { if (done) load(); });
    }

    function addRuleGroup(r) {
      const options = state.groups.filter((g) => !r.serviceId || g.serviceId === r.serviceId)
        .map((g) => ({value: g.id, label: g.name + ' (' + g.regionId + '/' + g.zoneId + ')'}));
      if (!options.length) {
        toast('Service ' + r.serviceId + ' has no groups yet: create one first.', 'error');
        return;
      }
      formDialog({
        title: 'Add a group to ' + r.routeId,
        fields: [
          {name: 'groupId', label: 'Group', type: 'select', options, value: options[0].value, required: true},
          {name: 'weight', label: 'Weight (1–100)', type: 'number', required: true, min: 1, max: 100, value: 50},
        ],
        submitLabel: 'Add group',
        onSubmit: (v) => post('/api/routing/rules/' + seg(r.routeId) + '/groups', {groupId: Number(v.groupId) || v.groupId,
          weight: v.weight, operatorId: operatorId()}),
      }).then((done) => { if (done) load(); });
    }

    load();
    return () => offModel();
  },
};
