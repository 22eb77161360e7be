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
