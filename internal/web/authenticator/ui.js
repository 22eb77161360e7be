// Small DOM helpers shared by the page's modules.

export const $ = (sel, root = document) => root.querySelector(sel);

const PALETTE = ['#4338ca', '#0f766e', '#b45309', '#be185d', '#1d4ed8', '#7c3aed', '#15803d', '#c2410c'];

export function template(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

function hashOf(text) {
  let h = 0;
  for (const c of text) h = (Math.imul(h, 31) + c.codePointAt(0)) >>> 0;
  return h;
}

export function paintAvatar(node, name) {
  const label = (name || '?').trim();
  node.textContent = (Array.from(label)[0] || '?').toUpperCase();
  node.style.setProperty('--avatar', PALETTE[hashOf(label.toLowerCase()) % PALETTE.length]);
}

let toastTimer;

export function toast(message) {
  const t = $('#toast');
  t.textContent = message;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 2600);
}

export function announce(message) {
  const a = $('#announcer');
  a.textContent = '';
  // A new text node after a tick makes screen readers speak repeated messages too.
  setTimeout(() => {
    a.textContent = message;
  }, 50);
}

export function fact(dl, term, value) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}
