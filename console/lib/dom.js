// dom.js - building the page without ever parsing markup.
//
// Every element of the console is made here with createElement, and every
// piece of text goes in through text nodes: nothing a user or an instance
// supplied is parsed as HTML.  innerHTML and friends are refused outright,
// and links to data-supplied addresses are made only for http(s) URLs.

const SVG_NS = 'http://www.w3.org/2000/svg';
const FORBIDDEN = new Set(['innerHTML', 'outerHTML', 'srcdoc']);

function setProps(el, props, svg) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (FORBIDDEN.has(k) || /^on/i.test(k) && typeof v !== 'function') {
      throw new Error('dom: refusing property ' + k);
    }
    if (k === 'class') {
      if (svg) el.setAttribute('class', v); else el.className = v;
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k.startsWith('on')) {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'style') {
      for (const [p, val] of Object.entries(v)) el.style.setProperty(p, val);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (!svg && (k === 'value' || k === 'checked' || k === 'selected' || k === 'indeterminate')) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('div', {class: 'x', onclick: fn}, 'text', child, [more]) -> element.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props, false);
  append(el, children);
  return el;
}

// The same for SVG elements (charts).
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props, true);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A link for an address an instance registered: only http(s) becomes a
// link; anything else (javascript:, data:, ...) stays plain text.
export function safeLink(url) {
  const text = String(url ?? '');
  if (/^https?:\/\//i.test(text)) {
    return h('a', {href: text, target: '_blank', rel: 'noopener noreferrer'}, text);
  }
  return document.createTextNode(text);
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return (prefix || 'id') + '-' + uid;
}
