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

// "Use a passkey": ask the page for a ceremony, let the browser sign its challenge with the
// user's passkey, and post the answer with the form (a normal submit, so the step goes on as
// after a code). Without passkeys in the browser, or when the user cancels, the page says so
// and the button can be pressed again.
const passkey = document.getElementById('passkey-form');
if (passkey) {
  const works = window.PublicKeyCredential !== undefined && typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';
  const failed = () => {
    let error = document.getElementById('error');
    if (!error) {
      error = document.createElement('p');
      error.className = 'error';
      error.id = 'error';
      error.setAttribute('role', 'alert');
      passkey.before(error);
    }
    error.textContent = passkey.dataset.failed;
    delete passkey.dataset.sent;
    for (const b of passkey.querySelectorAll('button')) b.removeAttribute('aria-disabled');
  };
  passkey.addEventListener('submit', async (e) => {
    if (passkey.elements.credential.value) return; // filled in: this is the real post
    e.preventDefault();
    if (passkey.dataset.sent) return;
    if (!works) {
      failed();
      return;
    }
    try {
      const res = await fetch(passkey.dataset.optionsUrl, {
        method: 'POST', credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
        body: new URLSearchParams({ csrf: passkey.elements.csrf.value }),
      });
      const begun = await res.json();
      if (!begun.ceremony || !begun.options || !begun.options.publicKey) throw new Error(begun.error || 'no ceremony');
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(begun.options.publicKey);
      const credential = await navigator.credentials.get({ publicKey });
      passkey.elements.ceremony.value = begun.ceremony;
      passkey.elements.credential.value = JSON.stringify(credential.toJSON());
      passkey.submit();
    } catch {
      failed();
    }
  });
}
