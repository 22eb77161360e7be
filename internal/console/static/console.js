// Twofold console: small enhancements over server-rendered pages. Everything works without
// this script except the live refresh and the push page's automatic continue.

const policy = window.trustedTypes
  ? window.trustedTypes.createPolicy('console', { createHTML: (s) => s }) // our own pages, fetched same-origin
  : { createHTML: (s) => s };

// Forms with data-confirm ask first.
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    e.preventDefault();
  }
});

// Typed-name confirmations enable their button only when the name matches.
for (const input of document.querySelectorAll('[data-must-equal]')) {
  const button = input.form && input.form.querySelector('button');
  const check = () => { if (button) button.disabled = input.value !== input.dataset.mustEqual; };
  input.addEventListener('input', check);
  check();
}

// Copy buttons.
for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    const field = document.querySelector(button.dataset.copy);
    if (!field) return;
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Press Ctrl+C';
    }
  });
}
for (const field of document.querySelectorAll('[data-select-on-focus]')) {
  field.addEventListener('focus', () => field.select());
}

// Filter forms apply as soon as a select changes.
for (const form of document.querySelectorAll('form[data-autosubmit]')) {
  form.addEventListener('change', (e) => {
    if (e.target instanceof HTMLSelectElement) form.requestSubmit();
  });
}

// Live lists: while "Live" is on, the list is fetched again every 5 seconds and swapped in.
const region = document.querySelector('[data-live-region]');
const toggle = document.querySelector('[data-live-toggle]');
if (region && toggle) {
  let timer = 0;
  const refresh = async () => {
    try {
      const res = await fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
      if (res.redirected || !res.ok) { toggle.checked = false; schedule(); return; }
      const doc = new DOMParser().parseFromString(policy.createHTML(await res.text()), 'text/html');
      const fresh = doc.querySelector('[data-live-region]');
      const current = document.querySelector('[data-live-region]');
      if (fresh && current) current.replaceWith(document.adoptNode(fresh));
    } catch { /* offline for a moment: try again later */ }
    schedule();
  };
  const schedule = () => {
    clearTimeout(timer);
    if (toggle.checked) timer = setTimeout(refresh, 5000);
  };
  toggle.addEventListener('change', schedule);
  schedule();
}

// The push page: poll the request's status, and continue by itself once it is approved.
const wait = document.querySelector('#push-wait');
if (wait) {
  const state = document.querySelector('#push-state');
  const say = { approved: 'Approved. Signing in…', denied: 'Denied on your device.', expired: 'The request expired.' };
  const poll = async () => {
    let status = 'pending';
    try {
      const res = await fetch('/console/signin/push/status?uuid=' + encodeURIComponent(wait.dataset.uuid), { credentials: 'same-origin' });
      if (res.status === 401 || res.status === 404) { location.assign('/console/signin'); return; }
      if (res.ok) status = (await res.json()).status;
    } catch { /* try again */ }
    if (status === 'pending') { setTimeout(poll, 1500); return; }
    state.textContent = say[status] || status;
    document.querySelector('#push-complete').requestSubmit();
  };
  setTimeout(poll, 1000);
}
