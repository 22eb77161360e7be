// Twofold Authenticator: the page. It wires the accounts (accounts.js), the sign-in requests
// (requests.js) and their live feeds (events.js) together, and handles adding accounts from
// enrolment links, pasted text and QR codes. The DOM is built from <template>s and text, never
// from HTML strings: the page runs under a strict CSP with Trusted Types.

import {
  hooks as accountHooks, accounts, bindAccounts, channel, clearAccounts, enrol, addOtpauth, fullName,
  loadAccounts, otpauthTwin, refreshAccount, refreshDevices, updateCodes, drawRings,
} from './accounts.js';
import * as api from './api.js';
import { DeviceFeed } from './events.js';
import { classify, fromFragment } from './links.js';
import {
  hooks as requestHooks, bindRequests, dropAllRequests, dropRequestsOf, hasPending, settleRequestsOf, snapshot, upsertRequest,
} from './requests.js';
import { $, announce, toast } from './ui.js';

const feeds = new Map(); // account id → DeviceFeed

const MAX_STREAMS = 4; // browsers allow ~6 connections per host over HTTP/1.1: poll the rest

function showFatal(message) {
  const f = $('#fatal');
  f.textContent = message;
  f.hidden = false;
  for (const id of ['#loading', '#empty', '#codes', '#requests']) $(id).hidden = true;
  $('#add-open').hidden = true;
}

async function reloadAll() {
  for (const feed of feeds.values()) feed.stop();
  feeds.clear();
  clearAccounts();
  dropAllRequests();
  await loadAccounts();
  startFeeds();
  refreshDevices();
}

// ---------- adding accounts ----------

const FINAL_REGISTRATION_ERRORS = {
  60035: 'This enrolment link has expired or was already used. Ask the site for a new one.',
  60037: 'This enrolment link was already used. Ask the site for a new one.',
  60086: 'This enrolment link has expired. Ask the site for a new one.',
  60101: "This enrolment link isn't valid. Ask the site for a new one.",
};

let pendingLink = null;

// sameApp lists the device accounts of the app a link names (its hint, before the server has
// said which account the link is for).
function sameApp(link) {
  const hint = (link.appHint || '').trim().toLowerCase();
  if (!hint) return [];
  return [...accounts.values()].filter((a) => a.rec.kind === 'device' &&
    [a.rec.device?.appName, a.rec.issuer].some((n) => (n || '').trim().toLowerCase() === hint));
}

const CONFIRM_BODY = document.getElementById('confirm-body').textContent;

function confirmRegistration(link) {
  pendingLink = link;
  $('#confirm-title').textContent = link.appHint ? `Add ${link.appHint} to this browser?` : 'Add this account to this browser?';
  $('#confirm-body').textContent = CONFIRM_BODY;
  const held = sameApp(link);
  const note = $('#confirm-note');
  note.textContent = held.length
    ? `This browser already has ${held.map(fullName).join(' and ')}. If the link is for ${held.length > 1 ? 'one of them' : 'that account'}, nothing will be added twice.`
    : '';
  note.hidden = held.length === 0;
  $('#confirm-origin').textContent = location.host;
  $('#confirm-error').textContent = '';
  const ok = $('#confirm-ok');
  ok.hidden = false;
  ok.disabled = false;
  ok.textContent = 'Add account';
  $('#confirm-cancel').textContent = 'Not now';
  const dialog = $('#confirm-dialog');
  if (!dialog.open) dialog.showModal();
  ok.focus();
}

async function acceptRegistration() {
  const link = pendingLink;
  if (!link) return;
  const ok = $('#confirm-ok');
  ok.disabled = true;
  ok.textContent = 'Adding…';
  $('#confirm-error').textContent = '';
  try {
    const { account: a, duplicate, replaced } = await enrol(link);
    pendingLink = null;
    if (duplicate) {
      // Said in the dialog, which stays until it is read: nothing happened that a toast
      // would show.
      $('#confirm-error').textContent = '';
      $('#confirm-title').textContent = 'Already in this browser';
      $('#confirm-body').textContent = `${fullName(a)} is already in this browser, so nothing was added. Its code and sign-in requests are here as before.`;
      $('#confirm-note').hidden = true;
      ok.hidden = true;
      $('#confirm-cancel').textContent = 'Close';
      $('#confirm-cancel').focus();
      showAccount(a);
      return;
    }
    $('#confirm-dialog').close();
    const said = replaced
      ? `${fullName(a)} added again: it replaces the one the site had removed`
      : `${fullName(a)} added to this browser`;
    toast(said);
    announce(`${said}. Its code is on screen.`);
    a.el.scrollIntoView({ block: 'nearest' });
  } catch (err) {
    const final = err instanceof api.ApiError && FINAL_REGISTRATION_ERRORS[err.code];
    $('#confirm-error').textContent = final || err.message;
    ok.disabled = false;
    ok.textContent = 'Try again';
    if (final) {
      pendingLink = null;
      ok.hidden = true;
      $('#confirm-cancel').textContent = 'Close';
      $('#confirm-cancel').focus();
    }
  }
}

function showAddError(message, link) {
  const p = $('#add-error');
  p.replaceChildren(message);
  if (link) {
    const a = document.createElement('a');
    a.href = link.url;
    a.rel = 'noopener noreferrer';
    a.textContent = ` Open it on ${link.host}`;
    p.append(a);
  }
}

// showAccount brings an account into view and marks it for a moment.
function showAccount(a) {
  if (!a.el) return;
  a.el.scrollIntoView({ block: 'nearest' });
  a.el.classList.add('spotlight');
  setTimeout(() => a.el?.classList.remove('spotlight'), 2400);
}

// addAnyway is the otpauth:// text the user was warned about and may add on a second Add.
let addAnyway = '';

async function handleLinkText(text) {
  let link;
  try {
    link = classify(text);
  } catch (err) {
    showAddError(err.message);
    $('#add-input').focus();
    return;
  }
  if (link.kind === 'elsewhere') {
    showAddError(`This enrolment link belongs to another Twofold server, ${link.host}. Accounts live with their server.`, link);
    return;
  }
  if (link.kind === 'register') {
    closeAdd();
    confirmRegistration(link);
    return;
  }
  const submit = $('#add-submit');
  submit.disabled = true;
  try {
    const twin = await otpauthTwin(link.key);
    if (twin?.same) {
      showAddError(`${fullName(twin.same)} is already in this browser, with this very key: nothing was added.`);
      showAccount(twin.same);
      return;
    }
    if (twin?.named && addAnyway !== text.trim()) {
      addAnyway = text.trim();
      showAddError(`This browser already has ${fullName(twin.named)}, with another key. If the site gave you a new QR code, the old codes stop working: add this one, check its code works, then remove the old one.`);
      submit.textContent = 'Add anyway';
      return;
    }
    const a = await addOtpauth(link.key);
    closeAdd();
    toast(`${fullName(a)} added`);
    announce(`${fullName(a)} added. Its code is on screen.`);
    a.el.scrollIntoView({ block: 'nearest' });
  } catch (err) {
    showAddError(`Couldn't add the account: ${err.message}`);
  } finally {
    submit.disabled = false;
  }
}

function resetAddAnyway() {
  addAnyway = '';
  $('#add-submit').textContent = 'Add';
}

function openAdd() {
  resetAddAnyway();
  $('#add-error').replaceChildren();
  $('#add-input').value = '';
  $('#add-dialog').showModal();
  $('#add-input').focus();
  setupScan();
}

function closeAdd() {
  stopScan();
  if ($('#add-dialog').open) $('#add-dialog').close();
}

// ---------- QR scanning (BarcodeDetector, where the browser has it) ----------

const scan = { supported: null, stream: null, timer: 0, detector: null };

async function scanSupported() {
  if (scan.supported === null) {
    scan.supported = false;
    if ('BarcodeDetector' in window && navigator.mediaDevices?.getUserMedia) {
      try {
        scan.supported = (await window.BarcodeDetector.getSupportedFormats()).includes('qr_code');
      } catch {
        scan.supported = false;
      }
    }
  }
  return scan.supported;
}

async function setupScan() {
  const ok = await scanSupported();
  $('#scan-start').hidden = !ok || !!scan.stream;
  const note = $('#scan-note');
  note.hidden = ok;
  note.textContent = ok ? '' : "This browser can't scan QR codes. Paste the link below instead — or, on a phone, point the camera app at an enrolment QR code and open the link it shows.";
}

async function startScan() {
  const note = $('#scan-note');
  try {
    scan.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: 'environment' } }, audio: false });
  } catch (err) {
    note.hidden = false;
    note.textContent = err && err.name === 'NotAllowedError'
      ? 'Camera access is blocked. Allow it in the site settings, or paste the link instead.'
      : "Couldn't start the camera. Paste the link instead.";
    return;
  }
  const video = $('#scan-video');
  video.srcObject = scan.stream;
  $('#scan-view').hidden = false;
  $('#scan-start').hidden = true;
  note.hidden = true;
  await video.play().catch(() => {});
  scan.detector = new window.BarcodeDetector({ formats: ['qr_code'] });
  const tick = async () => {
    if (!scan.stream) return;
    try {
      const found = await scan.detector.detect(video);
      const text = found.find((f) => f.rawValue)?.rawValue;
      if (text) {
        stopScan();
        $('#add-input').value = text;
        handleLinkText(text);
        return;
      }
    } catch {
      // a frame that could not be read: try the next
    }
    scan.timer = setTimeout(tick, 250);
  };
  tick();
}

function stopScan() {
  clearTimeout(scan.timer);
  if (scan.stream) for (const track of scan.stream.getTracks()) track.stop();
  scan.stream = null;
  $('#scan-video').srcObject = null;
  $('#scan-view').hidden = true;
  $('#scan-start').hidden = !scan.supported;
}

// ---------- live feeds ----------

function startFeed(a) {
  if (a.rec.kind !== 'device' || !a.token || a.revoked || feeds.has(a.rec.id)) return;
  const streaming = [...feeds.values()].filter((f) => f.streaming).length < MAX_STREAMS;
  const feed = new DeviceFeed(a.token, {
    snapshot: (list) => snapshot(a.rec.id, list),
    request: (view) => upsertRequest(a.rec.id, view),
    state: () => updateConn(),
    unauthorized: () => revoke(a),
    wantsRecheck: () => hasPending(a.rec.id),
  });
  feed.streaming = streaming;
  feeds.set(a.rec.id, feed);
  feed.start(streaming);
  updateConn();
}

function startFeeds() {
  for (const a of accounts.values()) startFeed(a);
}

function revoke(a) {
  a.revoked = true;
  feeds.get(a.rec.id)?.stop();
  feeds.delete(a.rec.id);
  settleRequestsOf(a.rec.id);
  if (a.el) refreshAccount(a);
  updateConn();
}

const CONN = {
  live: ['Live', 'Sign-in requests arrive instantly'],
  connecting: ['Connecting…', 'Connecting to the server for sign-in requests'],
  polling: ['Checking…', 'The live connection is down: checking for sign-in requests every few seconds'],
  offline: ['Offline', 'Offline: codes still work; sign-in requests will arrive when the connection is back'],
};

function updateConn() {
  const conn = $('#conn');
  const states = [...feeds.values()].map((f) => f.status);
  if (states.length === 0) {
    conn.hidden = true;
    return;
  }
  let s = 'connecting';
  if (navigator.onLine === false || states.includes('offline')) s = 'offline';
  else if (states.every((x) => x === 'live' || x === 'polling') && states.includes('live')) s = states.includes('polling') ? 'polling' : 'live';
  else if (states.every((x) => x === 'polling')) s = 'polling';
  conn.hidden = false;
  conn.dataset.state = s;
  $('#conn-text').textContent = CONN[s][0];
  conn.title = CONN[s][1];
}

// ---------- start ----------

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  let url = 'sw.js';
  if (window.trustedTypes) {
    const policy = window.trustedTypes.createPolicy('twofold', {
      createScriptURL: (u) => {
        if (u !== 'sw.js') throw new TypeError('unexpected script URL');
        return u;
      },
    });
    url = policy.createScriptURL('sw.js');
  }
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (hadController) $('#update').hidden = false;
  });
  navigator.serviceWorker.register(url, { scope: './' }).catch(() => {
    // no offline copy: the app still works online
  });
}

function handleFragment() {
  if (!location.hash || location.hash === '#main') return;
  let link = null;
  let problem = '';
  try {
    link = fromFragment(location.hash);
  } catch (err) {
    problem = err.message;
  }
  // The token is single use, but it should not linger in the address bar or history.
  history.replaceState(null, '', location.pathname + location.search);
  if (link) confirmRegistration(link);
  else if (problem) {
    openAdd();
    showAddError(problem);
  }
}

function bind() {
  $('#add-open').addEventListener('click', openAdd);
  $('#empty-add').addEventListener('click', openAdd);
  $('#add-cancel').addEventListener('click', closeAdd);
  $('#add-dialog').addEventListener('close', stopScan);
  $('#add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    handleLinkText($('#add-input').value);
  });
  $('#add-input').addEventListener('input', () => {
    $('#add-error').replaceChildren();
    resetAddAnyway();
  });
  $('#scan-start').addEventListener('click', startScan);
  $('#scan-stop').addEventListener('click', stopScan);

  $('#confirm-ok').addEventListener('click', acceptRegistration);
  $('#confirm-cancel').addEventListener('click', () => $('#confirm-dialog').close());
  $('#confirm-dialog').addEventListener('close', () => {
    pendingLink = null;
  });

  bindAccounts();
  bindRequests();
  $('#update-reload').addEventListener('click', () => location.reload());

  // A click on the backdrop of a sheet closes it, as on phones.
  for (const dialog of document.querySelectorAll('dialog.sheet')) {
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close();
    });
  }

  window.addEventListener('hashchange', handleFragment);
  window.addEventListener('online', () => {
    for (const f of feeds.values()) f.wake();
    updateConn();
  });
  window.addEventListener('offline', updateConn);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    updateCodes();
    for (const f of feeds.values()) if (f.running) f.refreshQuietly();
  });
  accountHooks.added = startFeed;
  accountHooks.removed = (a) => {
    feeds.get(a.rec.id)?.stop();
    feeds.delete(a.rec.id);
    dropRequestsOf(a.rec.id);
    updateConn();
  };
  requestHooks.revoked = revoke;
  channel?.addEventListener('message', (e) => {
    if (e.data === 'accounts-changed') reloadAll();
  });
}

async function main() {
  if (!window.isSecureContext || !window.crypto?.subtle || !('indexedDB' in window)) {
    showFatal('The authenticator needs a secure connection. Open it over https:// (or on localhost) in an up-to-date browser.');
    return;
  }
  bind();
  registerServiceWorker();
  try {
    await loadAccounts();
    startFeeds();
    refreshDevices();
  } catch (err) {
    showFatal(`This browser's storage can't be opened, so no accounts can be kept here (${err.message}). Private windows sometimes block it.`);
    return;
  }
  setInterval(updateCodes, 1000);
  requestAnimationFrame(drawRings);
  handleFragment();
  document.documentElement.dataset.ready = '1';
}

main();
