// The sample's only script (the Content-Security-Policy allows no inline script). It polls the
// sample's JSON endpoints: the wait pages for the answer to the OneTouch request (the second step,
// or a sign-in with the phone), the profile page for the authenticator's registration.
'use strict';

// poll asks url every ms milliseconds and hands the JSON answer to onAnswer until it returns
// false. Network failures and error statuses are retried.
function poll(url, ms, onAnswer) {
  const tick = async () => {
    let body = null;
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      body = await res.json();
    } catch {
      // A network blip or a page being left: ask again.
    }
    if (body === null || onAnswer(body) !== false) {
      setTimeout(tick, ms);
    }
  };
  setTimeout(tick, ms);
}

function setStatus(el, text) {
  el.replaceChildren(document.createTextNode(text));
}

const wait = document.getElementById('wait-status');
if (wait) {
  const finish = document.getElementById('finish');
  const words = {
    approved: 'Approved. Logging you in…',
    denied: 'The request was denied.',
    expired: 'The request expired.',
  };
  poll(wait.dataset.poll, 1500, (body) => {
    if (body.status === 'pending') {
      return true;
    }
    if (body.status === 'gone') {
      location.assign('/login');
      return false;
    }
    setStatus(wait, words[body.status] || 'Checking…');
    finish.requestSubmit(); // the server ends the log-in, whatever the answer was
    return false;
  });
}

// Sign in with the phone: the same, but the page does not say how it ended; the server does,
// once the finish form is posted.
const phone = document.getElementById('phone-status');
if (phone) {
  poll(phone.dataset.poll, 1500, (body) => {
    if (body.status === 'pending') {
      return true;
    }
    if (body.status === 'gone') {
      location.assign('/login');
      return false;
    }
    setStatus(phone, 'Checking…');
    document.getElementById('phone-finish').requestSubmit();
    return false;
  });
}

const enrol = document.getElementById('enrol');
if (enrol) {
  const status = document.getElementById('enrol-status');
  poll(enrol.dataset.poll, 1500, (body) => {
    switch (body.status) {
      case 'completed':
        document.getElementById('enrol-qr').hidden = true;
        document.getElementById('enrol-done').hidden = false;
        return false;
      case 'expired':
        setStatus(status, 'This code has expired. Reload the page for a new one.');
        return false;
      case 'gone':
        location.assign('/login');
        return false;
    }
    return true;
  });
}

// Select the whole enrolment command on a click, for copying.
const command = document.getElementById('enrol-command');
if (command) {
  command.addEventListener('focus', () => command.select());
}

// Passkeys: "Add a passkey" (the profile), "Sign in with a passkey" (the login page) and "Use a
// passkey" (the second step). Each form's submit posts its fields to the form's action, which
// answers the ceremony's options from Twofold ({"options": {"publicKey": ...}}); the browser makes
// or uses the passkey; its answer, PublicKeyCredential.toJSON(), is posted with the CSRF token to
// data-finish, which has Twofold verify it and says where to go ({"next": ...}) or what went
// wrong ({"problem": ...}). The ceremony's id never comes to the page: the server keeps it in the
// session. The forms stay hidden in browsers without passkeys, or without the JSON helpers.
const passkeysWork = window.PublicKeyCredential !== undefined &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

async function postForm(url, data) {
  const res = await fetch(url, {
    method: 'POST', body: new URLSearchParams(data), headers: { Accept: 'application/json' }, cache: 'no-store',
  });
  let body = {};
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  return body;
}

async function passkeyCeremony(form, problem) {
  const creating = form.dataset.passkey === 'create';
  const begin = await postForm(form.action, new FormData(form));
  if (!begin.options || !begin.options.publicKey) {
    throw new Error(begin.problem || 'Passkeys are not available right now.');
  }
  let credential;
  try {
    if (creating) {
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(begin.options.publicKey);
      credential = await navigator.credentials.create({ publicKey });
    } else {
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(begin.options.publicKey);
      credential = await navigator.credentials.get({ publicKey });
    }
  } catch (e) {
    // Cancelled, timed out, or no passkey for this site on this device.
    throw new Error(creating ? 'No passkey was made.' : 'No passkey was used. Try again, or use another way.');
  }
  const finish = new FormData();
  finish.set('csrf', form.elements.csrf.value);
  finish.set('credential', JSON.stringify(credential.toJSON()));
  const done = await postForm(form.dataset.finish, finish);
  if (!done.next) {
    throw new Error(done.problem || 'That did not work. Try again.');
  }
  problem.hidden = true;
  location.assign(done.next);
}

for (const form of document.querySelectorAll('form[data-passkey]')) {
  if (!passkeysWork) {
    continue;
  }
  form.hidden = false;
  const unsupported = document.getElementById('passkey-unsupported');
  if (unsupported) {
    unsupported.hidden = true;
  }
  const problem = form.querySelector('.problem');
  const button = form.querySelector('button[type=submit]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    try {
      await passkeyCeremony(form, problem);
    } catch (e) {
      setStatus(problem, e.message);
      problem.hidden = false;
      button.disabled = false;
    }
  });
}
