// DOM helpers. The page never turns strings into markup (the CSP's Trusted Types rule forbids
// it): every element is built here, and text is always text.

// h builds an element: h('button', {type: 'button', onclick: f}, 'Save').
// Attributes starting with "on" are listeners; true/false toggle boolean attributes.
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// format fills {name} placeholders.
export function format(s, values = {}) {
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : ''));
}

// replace swaps el's content.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
// uid returns a fresh element id.
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

// field is a labelled input; hint and error texts are tied to it for screen readers.
export function field({ label, name, type = 'text', value = '', autocomplete, hint, required, inputmode, pattern, maxlength }) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h('input', {
    id, name, type, value: value ?? '', autocomplete, required, inputmode, pattern, maxlength,
    'aria-describedby': hintId,
  });
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint && h('p', { class: 'hint', id: hintId }, hint),
    input);
}

// formatDate shows a timestamp (ms or s) in the user's locale.
export function formatDate(value) {
  if (value === undefined || value === null || value === '') return '';
  let n = typeof value === 'number' ? value : Date.parse(value);
  if (typeof value === 'number' && value < 1e12) n = value * 1000;
  if (Number.isNaN(n)) return '';
  return new Date(n).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
