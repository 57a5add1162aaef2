// table.js - a virtualised table: only the rows in view exist in the DOM.
//
// A 100,000-row list costs what its ~30 visible rows cost.  The scroll box
// is an ARIA grid: it takes focus, the arrow keys, Page Up/Down, Home and
// End move the active row (aria-activedescendant), Enter opens it and
// Space selects it when the table is selectable.  Column headers sort.
// Row height is fixed (CSS --vt-row) so the position of any row is known
// without measuring.

import {h, clear, nextId} from './dom.js';

const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: 'base'});
const OVERSCAN = 6;

function compare(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return collator.compare(String(a ?? ''), String(b ?? ''));
}

export function vtable(opts) {
  const {
    columns, label, rowKey, onActivate, onSelect,
    selectable = false, rowHeight = 36, minWidth = '40rem', emptyText = 'Nothing to show.',
  } = opts;
  const id = nextId('vt');
  const selection = opts.selection || new Set();
  let data = [];
  let rows = [];
  let sortKey = opts.sortKey || null;
  let sortDir = opts.sortDir || 1;
  let active = -1;
  let frame = 0;

  const tracks = (selectable ? ['2.75rem'] : []).concat(columns.map((c) => c.width || 'minmax(8rem, 1fr)'));
  const scroller = h('div', {
    class: 'vt-scroll', role: 'grid', tabindex: '0', 'aria-label': label,
    'aria-multiselectable': selectable ? 'true' : null, 'aria-colcount': String(tracks.length),
  });
  scroller.style.setProperty('--vt-cols', tracks.join(' '));
  scroller.style.setProperty('--vt-row', rowHeight + 'px');
  scroller.style.setProperty('--vt-minw', minWidth);
  const head = h('div', {class: 'vt-head', role: 'row', 'aria-rowindex': '1'});
  const spacer = h('div', {class: 'vt-spacer', role: 'rowgroup'});
  const empty = h('p', {class: 'vt-empty', hidden: true}, emptyText);
  const allBox = selectable ? h('input', {type: 'checkbox', 'aria-label': 'Select every row shown', tabindex: '-1',
    onchange: () => toggleAll(allBox.checked)}) : null;
  scroller.append(head, spacer);
  const root = h('div', {class: 'vt'}, scroller, empty);

  function headers() {
    clear(head);
    if (selectable) head.append(h('div', {role: 'columnheader', class: 'vt-check'}, allBox));
    for (const c of columns) {
      const sorted = sortKey === c.key;
      const cell = h('div', {role: 'columnheader', class: c.className || null,
        'aria-sort': sorted ? (sortDir > 0 ? 'ascending' : 'descending') : null});
      if (c.sort !== false) {
        cell.append(h('button', {type: 'button', class: 'vt-sort', tabindex: '-1',
          onclick: () => sortBy(c.key)}, c.title, sorted ? (sortDir > 0 ? ' ▲' : ' ▼') : ''));
      } else {
        cell.append(c.title);
      }
      head.append(cell);
    }
  }

  function sortValue(c, row) {
    return c.sortValue ? c.sortValue(row) : c.value ? c.value(row) : row[c.key];
  }

  function applySort() {
    dataVersion += 1;
    rows = data.slice();
    const c = columns.find((x) => x.key === sortKey);
    if (c) rows.sort((a, b) => sortDir * compare(sortValue(c, a), sortValue(c, b)));
  }

  function sortBy(key) {
    if (sortKey === key) sortDir = -sortDir; else { sortKey = key; sortDir = 1; }
    applySort();
    headers();
    render();
  }

  function syncAllBox() {
    if (!allBox) return;
    let n = 0;
    for (const r of rows) if (selection.has(rowKey(r))) n += 1;
    allBox.checked = rows.length > 0 && n === rows.length;
    allBox.indeterminate = n > 0 && n < rows.length;
  }

  function toggle(row) {
    const k = rowKey(row);
    if (selection.has(k)) selection.delete(k); else selection.add(k);
    syncAllBox();
    render();
    if (onSelect) onSelect(selection);
  }

  function toggleAll(on) {
    for (const r of rows) {
      if (on) selection.add(rowKey(r)); else selection.delete(rowKey(r));
    }
    syncAllBox();
    render();
    if (onSelect) onSelect(selection);
  }

  function cellContent(c, row) {
    const v = c.render ? c.render(row) : c.value ? c.value(row) : row[c.key];
    return v instanceof Node ? v : document.createTextNode(v === undefined || v === null ? '' : String(v));
  }

  // Rendered rows by index: kept across renders while their data is the
  // same, so a row under the pointer survives a focus or selection change
  // (a click whose target vanished between mousedown and mouseup is lost).
  let rendered = new Map();
  let dataVersion = 0;

  function rowEl(i) {
    const row = rows[i];
    const el = h('div', {
      class: 'vt-row', role: 'row', id: id + '-r' + i, 'aria-rowindex': String(i + 2),
      onclick: (ev) => {
        if (ev.target.closest('a, button, input')) return;
        setActive(i, false);
        if (onActivate) onActivate(row);
      },
    });
    el.style.transform = 'translateY(' + i * rowHeight + 'px)';
    if (selectable) {
      el.append(h('div', {role: 'gridcell', class: 'vt-check'}, h('input', {
        type: 'checkbox', tabindex: '-1', 'aria-label': 'Select ' + (opts.rowLabel ? opts.rowLabel(row) : ''),
        onchange: () => toggle(row),
      })));
    }
    for (const c of columns) el.append(h('div', {role: 'gridcell', class: c.className || null}, cellContent(c, row)));
    return el;
  }

  function paint(el, i) {
    const picked = selectable && selection.has(rowKey(rows[i]));
    el.className = 'vt-row' + (i === active ? ' active' : '') + (picked ? ' picked' : '');
    if (selectable) {
      el.setAttribute('aria-selected', String(picked));
      el.querySelector('input').checked = picked;
    }
  }

  function render() {
    frame = 0;
    spacer.style.height = rows.length * rowHeight + 'px';
    scroller.setAttribute('aria-rowcount', String(rows.length + 1));
    empty.hidden = rows.length > 0;
    const top = Math.max(0, scroller.scrollTop - head.offsetHeight);
    const view = scroller.clientHeight || rowHeight * 20;
    const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + view) / rowHeight) + OVERSCAN);
    const next = new Map();
    for (let i = first; i < last; i++) {
      const old = rendered.get(i);
      const key = rowKey(rows[i]);
      const el = old && old.key === key && old.version === dataVersion ? old.el : rowEl(i);
      paint(el, i);
      next.set(i, {el, key, version: dataVersion});
    }
    for (const [i, r] of rendered) if (next.get(i)?.el !== r.el) r.el.remove();
    for (const {el} of next.values()) if (el.parentNode !== spacer) spacer.append(el);
    rendered = next;
    if (active >= first && active < last) scroller.setAttribute('aria-activedescendant', id + '-r' + active);
    else scroller.removeAttribute('aria-activedescendant');
    syncAllBox();
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function setActive(i, scroll = true) {
    if (!rows.length) return;
    active = Math.max(0, Math.min(rows.length - 1, i));
    if (scroll) {
      const y = active * rowHeight;
      const headH = head.offsetHeight;
      const view = scroller.clientHeight - headH;
      if (y < scroller.scrollTop) scroller.scrollTop = y;
      else if (y + rowHeight > scroller.scrollTop + view) scroller.scrollTop = y + rowHeight - view;
    }
    render();
  }

  scroller.addEventListener('scroll', schedule, {passive: true});
  scroller.addEventListener('focus', () => {
    if (active < 0 && rows.length) setActive(0);
  });
  scroller.addEventListener('keydown', (ev) => {
    const page = Math.max(1, Math.floor((scroller.clientHeight - head.offsetHeight) / rowHeight) - 1);
    const keys = {
      ArrowDown: () => setActive(active + 1), ArrowUp: () => setActive(active - 1),
      PageDown: () => setActive(active + page), PageUp: () => setActive(active - page),
      Home: () => setActive(0), End: () => setActive(rows.length - 1),
      Enter: () => { if (rows[active] && onActivate) onActivate(rows[active]); },
      ' ': () => { if (selectable && rows[active]) toggle(rows[active]); },
    };
    const fn = keys[ev.key];
    if (!fn || ev.target !== scroller) return;
    ev.preventDefault();
    fn();
  });
  if (typeof ResizeObserver === 'function') new ResizeObserver(schedule).observe(scroller);

  headers();
  return {
    el: root,
    setRows(next) {
      const key = active >= 0 && rows[active] ? rowKey(rows[active]) : null;
      data = next;
      applySort();
      if (key !== null) {
        const i = rows.findIndex((r) => rowKey(r) === key);
        active = i >= 0 ? i : Math.min(active, rows.length - 1);
      }
      render();
    },
    rows: () => rows,
    selection,
    clearSelection() {
      selection.clear();
      render();
      if (onSelect) onSelect(selection);
    },
    focus() {
      scroller.focus();
    },
  };
}
