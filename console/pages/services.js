// services.js - the services with their instance counts by status, a page
// at a time.
//
// The node pages, sorts and searches (GET /api/management/services, via
// registry.fetchServicesPage): the browser holds one page of at most
// PAGE_SIZE services, whatever the size of the registry.  The search box
// sends q after a short pause; the page number and q are kept in the
// address (?q=&page=), so a reload or the back button keeps them.  Live
// pushes refetch the page shown, at most once a second.

import {h, replace} from '../lib/dom.js';
import * as registry from '../lib/registry.js';
import * as live from '../lib/live.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, fmtInt, button} from '../lib/ui.js';
import {navigate, href, setQuery} from '../lib/router.js';

const PAGE_SIZE = 100;
const DEBOUNCE_MS = 250;
const LIVE_REFETCH_MS = 1000;

function toRow(s) {
  const st = s.statuses || {};
  const up = st.up || 0;
  const down = st.down || 0;
  return {serviceId: s.serviceId, total: s.instances, up, down, other: s.instances - up - down,
    zones: (s.zones || []).join(', ')};
}

export default {
  title: 'Services',
  render(main, {query}) {
    const search = h('input', {id: 'svc-search', type: 'search', value: query.q || '', placeholder: 'Service id contains…',
      autocomplete: 'off'});
    const summary = h('p', {class: 'summary', role: 'status', 'aria-live': 'polite'}, 'Loading services…');
    const status = h('div');
    const pager = h('nav', {class: 'pager', 'aria-label': 'Service pages'});
    const open = (row) => navigate('/services/' + encodeURIComponent(row.serviceId));
    const table = vtable({
      label: 'Services',
      rowKey: (r) => r.serviceId,
      onActivate: open,
      minWidth: '44rem',
      emptyText: 'No service matches.',
      columns: [
        {key: 'serviceId', title: 'Service', width: 'minmax(14rem, 3fr)', sort: false,
          render: (r) => h('a', {href: href('/services/' + encodeURIComponent(r.serviceId)), tabindex: '-1'}, r.serviceId)},
        {key: 'total', title: 'Instances', width: 'minmax(6rem, 1fr)', className: 'num', sort: false},
        {key: 'up', title: 'Up', width: 'minmax(5rem, 1fr)', className: 'num', sort: false},
        {key: 'down', title: 'Down', width: 'minmax(5rem, 1fr)', className: 'num', sort: false},
        {key: 'other', title: 'Other', width: 'minmax(5rem, 1fr)', className: 'num', sort: false},
        {key: 'zones', title: 'Zones', width: 'minmax(8rem, 2fr)', sort: false},
      ],
    });
    main.append(pageHeader('Services'),
      h('div', {class: 'toolbar'}, h('label', {for: 'svc-search'}, 'Search'), search), summary, status, pager, table.el);

    let q = search.value.trim();
    let page = Math.max(1, Number.parseInt(query.page || '1', 10) || 1);
    let seq = 0;
    let gone = false;

    function showPager(d) {
      const pages = Math.max(1, Math.ceil(d.total / PAGE_SIZE));
      const first = d.services.length ? d.offset + 1 : 0;
      replace(pager,
        button('Previous', () => go(page - 1), {disabled: page <= 1}),
        h('span', {class: 'muted', id: 'svc-page'}, `Page ${fmtInt(page)} of ${fmtInt(pages)} · services ${fmtInt(first)}–${fmtInt(d.offset + d.services.length)}`),
        button('Next', () => go(page + 1), {disabled: d.offset + d.services.length >= d.total}));
    }

    async function load() {
      const mine = ++seq;
      try {
        const d = await registry.fetchServicesPage({q, offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE});
        if (gone || mine !== seq) return;
        if (!d.services.length && d.total && page > 1) { // the list shrank under us
          go(Math.ceil(d.total / PAGE_SIZE));
          return;
        }
        replace(status, null);
        table.setRows(d.services.map(toRow));
        summary.textContent = (q ? `${fmtInt(d.total)} of ${fmtInt(d.allServices)} services match`
          : `${fmtInt(d.total)} services`) + `, ${fmtInt(d.totalInstances)} instances`;
        showPager(d);
      } catch (e) {
        if (gone || mine !== seq) return;
        replace(status, notice('error', 'Reading the services failed: ' + errorText(e)));
      }
    }

    function go(n) {
      page = Math.max(1, n);
      setQuery({q, page: page > 1 ? page : ''});
      load();
    }

    let debounce = 0;
    search.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        if (search.value.trim() === q) return;
        q = search.value.trim();
        go(1);
      }, DEBOUNCE_MS);
    });

    let refetch = 0;
    const off = live.subscribe(() => {
      if (!refetch) refetch = setTimeout(() => { refetch = 0; load(); }, LIVE_REFETCH_MS);
    });
    load();
    return () => {
      gone = true;
      off();
      clearTimeout(debounce);
      clearTimeout(refetch);
    };
  },
};
