// services.js - every service with its instance counts by status.
//
// From the registry model (registry.js: POST /api/management/services.json,
// else the live list of every instance, then live pushes).  The search
// filters service ids as you type and is kept in the address (?q=), so a
// reload or the back button keeps it.  The table is virtualised.

import {h, replace} from '../lib/dom.js';
import * as registry from '../lib/registry.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, fmtInt} from '../lib/ui.js';
import {navigate, href, setQuery} from '../lib/router.js';

export default {
  title: 'Services',
  render(main, {query}) {
    const search = h('input', {id: 'svc-search', type: 'search', value: query.q || '', placeholder: 'Service id contains…',
      autocomplete: 'off'});
    const summary = h('p', {class: 'summary', role: 'status', 'aria-live': 'polite'});
    const status = h('div');
    const open = (row) => navigate('/services/' + encodeURIComponent(row.serviceId));
    const table = vtable({
      label: 'Services',
      rowKey: (r) => r.serviceId,
      onActivate: open,
      sortKey: 'serviceId',
      minWidth: '44rem',
      emptyText: 'No service matches.',
      columns: [
        {key: 'serviceId', title: 'Service', width: 'minmax(14rem, 3fr)',
          render: (r) => h('a', {href: href('/services/' + encodeURIComponent(r.serviceId)), tabindex: '-1'}, r.serviceId)},
        {key: 'total', title: 'Instances', width: 'minmax(6rem, 1fr)', className: 'num'},
        {key: 'up', title: 'Up', width: 'minmax(5rem, 1fr)', className: 'num'},
        {key: 'down', title: 'Down', width: 'minmax(5rem, 1fr)', className: 'num'},
        {key: 'other', title: 'Other', width: 'minmax(5rem, 1fr)', className: 'num'},
        {key: 'zones', title: 'Zones', width: 'minmax(8rem, 2fr)', value: (r) => r.zones},
      ],
    });
    main.append(pageHeader('Services'),
      h('div', {class: 'toolbar'}, h('label', {for: 'svc-search'}, 'Search'), search), summary, status, table.el);

    let model = null;
    let all = [];

    function rebuild() {
      all = [];
      for (const [serviceId, m] of model.services) {
        const c = registry.countService(m.values());
        all.push({serviceId, total: c.total, up: c.up, down: c.down, other: c.other, zones: [...c.zones].sort().join(', ')});
      }
    }

    function filter() {
      const q = search.value.trim().toLowerCase();
      const rows = q ? all.filter((r) => r.serviceId.toLowerCase().includes(q)) : all;
      table.setRows(rows);
      const n = rows.reduce((a, r) => a + r.total, 0);
      summary.textContent = model && model.loaded
        ? `${fmtInt(rows.length)} of ${fmtInt(all.length)} services, ${fmtInt(n)} instances`
        : 'Loading services…';
    }

    let debounce = 0;
    search.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        setQuery({q: search.value.trim()});
        filter();
      }, 120);
    });

    const off = registry.watch((m) => {
      model = m;
      replace(status, m.error ? notice('error', 'Reading the services failed: ' + errorText(m.error)) : null);
      if (m.loaded) rebuild();
      filter();
    });
    filter();
    return () => {
      off();
      clearTimeout(debounce);
    };
  },
};
