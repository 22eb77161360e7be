// Twofold's hosted step: the page works without this script (a push then needs its Continue
// button). With it, the push page polls the request's status and goes on by itself once the
// request is answered, and each form is sent once.

document.documentElement.dataset.js = 'on'; // for tests and styles: the script runs

const state = document.getElementById('push-state');
const cont = document.getElementById('continue-form');

if (state && cont) {
  const say = state.querySelector('.say');
  let delay = 1500;
  const poll = async () => {
    let status = 'pending';
    try {
      const res = await fetch(state.dataset.statusUrl, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      if (res.ok || res.status === 404) status = (await res.json()).status;
      delay = 1500;
    } catch {
      delay = Math.min(delay * 2, 15000); // offline for a moment: try again, less often
    }
    if (status === 'pending' || status === 'none') {
      setTimeout(poll, delay);
      return;
    }
    const text = state.dataset[status];
    if (text && say) say.textContent = text; // the live region tells screen readers
    cont.requestSubmit();
  };
  setTimeout(poll, delay);
}

// A step that has passed goes on to the application by itself.
const auto = document.querySelector('form[data-autosubmit]');
if (auto) auto.requestSubmit();

// Each form is sent once: a second click while the first is on its way does nothing.
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.sent) {
    e.preventDefault();
    return;
  }
  form.dataset.sent = '1';
  for (const b of form.querySelectorAll('button')) b.setAttribute('aria-disabled', 'true');
});

// Back to a page the browser kept: its forms can be sent again.
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return;
  for (const form of document.querySelectorAll('form[data-sent]')) {
    delete form.dataset.sent;
    for (const b of form.querySelectorAll('button')) b.removeAttribute('aria-disabled');
  }
});

// A page that reports an error puts the focus where the user acts next.
const error = document.getElementById('error');
const code = document.getElementById('code');
if (error && code) code.select();
