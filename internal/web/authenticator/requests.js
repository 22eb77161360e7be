// Sign-in requests: cards that arrive live, Approve and Deny (with a reason, or with the number
// the sign-in page shows), signed with the device's key. A request an approval group asks of
// this account says where the group stands ("2 of 3 needed · approved by Ana · asked by Dan"),
// live as the others answer, and what the group decided.

import * as api from './api.js';
import { accountLabel, accounts, displayName } from './accounts.js';
import { $, announce, fact, paintAvatar, template, toast } from './ui.js';

export const requests = new Map(); // uuid → {uuid, accountId, view, state, el, expiresAt}

const BASE_TITLE = document.title;

// What the rest of the page does when the server no longer knows a device.
export const hooks = {
  revoked: () => {},
};

function pickLogo(logos) {
  if (!Array.isArray(logos)) return '';
  const rank = { default: 0, high: 1, med: 2, low: 3 };
  const usable = logos.filter((l) => {
    try {
      const u = new URL(l.url);
      return u.protocol === 'https:' || u.origin === location.origin; // what the CSP allows
    } catch {
      return false;
    }
  });
  usable.sort((x, y) => (rank[x.res] ?? 9) - (rank[y.res] ?? 9));
  return usable[0]?.url || '';
}

function whenText(iso) {
  const t = Date.parse(iso || '');
  if (Number.isNaN(t)) return '';
  const ago = (api.serverNow() - t) / 1000;
  if (ago < 60) return 'Just now';
  if (ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  return new Date(t).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

function expiryText(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s >= 7200) return `Expires in ${Math.floor(s / 3600)} h`;
  if (s >= 600) return `Expires in ${Math.floor(s / 60)} min`;
  return `Expires in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// appOf and accountOf say whose a request is: the app's name (as the server has it now), and
// which of its accounts on this device: the account's email as enrolled, else its name here
// when it was renamed (two accounts of one app differ by one or the other).
function appOf(r, a) {
  return r.view.app_name || displayName(a);
}

function accountOf(r, a) {
  const label = accountLabel(a);
  if (label) return label;
  return displayName(a) !== appOf(r, a) ? displayName(a) : '';
}

// whose is "Acme Shop (alice@example.com)", for sentences.
function whose(r, a) {
  const account = accountOf(r, a);
  return account ? `${appOf(r, a)} (${account})` : appOf(r, a);
}

// The reason a device sends for "I didn't request this" (onetouch.NotRequestedReason): the
// server and the site act on it, so it is this exact text.
export const NOT_REQUESTED = 'not requested';

const LIST = new Intl.ListFormat('en', { type: 'conjunction' });

/** The line a group request shows: "2 of 3 needed · approved by Ana · denied by Cy · asked by Dan". */
export function groupLine(g) {
  const parts = [];
  if (g.status === 'pending') parts.push(`${g.quorum} of ${g.size} needed`);
  const by = (status) => LIST.format((g.approvers || []).filter((x) => x.status === status).map((x) => (x.you ? 'you' : x.name)));
  const approved = by('approved');
  const denied = by('denied');
  if (approved) parts.push(`approved by ${approved}`);
  if (denied) parts.push(`denied by ${denied}`);
  if (g.requester_name) parts.push(`asked by ${g.requester_name}`);
  return parts.join(' · ');
}

const GROUP_DECISIONS = { approved: 'Approved by the group', denied: 'Denied by the group', expired: 'Expired' };

// outcomeOf is what became of a request that is no longer pending, as the server tells it: a
// member's request closed because its group was decided says what the group decided.
function outcomeOf(view) {
  if (view.status !== 'expired') return view.status;
  if (view.reason === 'closed') return 'closed';
  if (view.group && view.reason === 'group decided' && view.group.status !== 'expired') return `group-${view.group.status}`;
  return 'expired';
}

function paintGroup(r) {
  const g = r.view.group;
  const box = $('.request-group', r.el);
  box.hidden = !g;
  if (!g) return;
  const line = groupLine(g);
  const el = $('.group-line', box);
  if (el.textContent !== line) el.textContent = line;
}

function kindOf(r) {
  return r.view.group ? 'Approval request' : 'Sign-in request';
}

function buildRequest(r, a) {
  const v = r.view;
  const node = template('t-request');
  const appName = appOf(r, a);
  const account = accountOf(r, a);
  node.dataset.uuid = r.uuid;
  node.dataset.group = v.group ? 'yes' : 'no';
  node.setAttribute('aria-label', `${kindOf(r)} from ${whose(r, a)}`);
  const avatar = $('.avatar', node);
  paintAvatar(avatar, appName);
  const logo = pickLogo(v.logos);
  if (logo) {
    const img = $('.request-logo', node);
    img.addEventListener('load', () => {
      img.hidden = false;
      avatar.hidden = true;
    });
    img.addEventListener('error', () => {
      img.hidden = true;
      avatar.hidden = false;
    });
    img.referrerPolicy = 'no-referrer';
    img.src = logo;
  }
  $('.request-app', node).textContent = appName;
  $('.request-account', node).textContent = account ? `For ${account}` : '';
  $('.request-account', node).hidden = !account;
  $('.request-message', node).textContent = v.message || kindOf(r);
  const dl = $('.request-details', node);
  const details = Object.entries(v.details || {}).slice(0, 20);
  for (const [k, val] of details) fact(dl, k, val);
  dl.hidden = details.length === 0;
  if (v.number_required) {
    const box = $('.request-number', node);
    box.hidden = false;
    const input = $('.number-input', box);
    input.id = `number-${r.uuid}`;
    $('.number-label', box).htmlFor = input.id;
    input.setAttribute('aria-describedby', errorId(r));
    input.addEventListener('input', () => {
      input.value = input.value.replace(/\D/g, '').slice(0, 2);
      input.removeAttribute('aria-invalid');
      // The warning that one more miss denies stays until the next answer.
      if (!r.missed) $('.request-error', node).textContent = '';
    });
  }
  $('.request-error', node).id = errorId(r);
  const form = $('.request-form', node);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    answer(r, 'approved', '');
  });
  $('.deny', node).addEventListener('click', () => answer(r, 'denied', ''));
  $('.deny-reason', node).addEventListener('click', () => openDeny(r));
  $('.not-requested', node).addEventListener('click', () => answer(r, 'denied', NOT_REQUESTED));
  r.el = node;
  paintGroup(r);
  tickRequest(r);
  return node;
}

function errorId(r) {
  return `request-error-${r.uuid}`;
}

function requestExpiry(view) {
  const t = Date.parse(view.expires_at || '');
  return Number.isNaN(t) ? 0 : t;
}

export function upsertRequest(accountId, view) {
  const known = requests.get(view.uuid);
  if (view.status !== 'pending') {
    if (known && known.state === 'pending') {
      known.view = view;
      settle(known, outcomeOf(view), false);
    }
    return;
  }
  if (known) {
    if (known.state !== 'pending' && known.state !== 'sending') return;
    known.view = view;
    paintGroup(known); // another approver answered
    return;
  }
  const a = accounts.get(accountId);
  if (!a) return;
  const r = { uuid: view.uuid, accountId, view, state: 'pending', expiresAt: requestExpiry(view) };
  requests.set(r.uuid, r);
  $('#request-list').prepend(buildRequest(r, a));
  updateRequestsSection();
  announce(`${kindOf(r)} from ${whose(r, a)}: ${view.message || ''}${view.group ? `. ${groupLine(view.group)}` : ''}`);
}

export function snapshot(accountId, list) {
  const pending = new Set();
  for (const view of [...list].reverse()) {
    // oldest first, so the newest ends on top
    pending.add(view.uuid);
    upsertRequest(accountId, view);
  }
  for (const r of requests.values()) {
    if (r.accountId === accountId && r.state === 'pending' && !pending.has(r.uuid)) settle(r, 'gone', false);
  }
}

/** Drops the requests of an account from the page at once (the account is gone). */
export function dropRequestsOf(accountId) {
  for (const r of [...requests.values()]) {
    if (r.accountId === accountId) {
      r.el.remove();
      requests.delete(r.uuid);
    }
  }
  updateRequestsSection();
}

/** Closes the requests of an account that can no longer answer them. */
export function settleRequestsOf(accountId) {
  for (const r of requests.values()) if (r.accountId === accountId) settle(r, 'gone', false);
}

/** Whether requests of the account wait on screen. */
export function hasPending(accountId) {
  return [...requests.values()].some((r) => r.accountId === accountId && r.state === 'pending');
}

const OUTCOMES = {
  approved: ['Approved', 'Approved on another device'],
  denied: ['Denied', 'Denied on another device'],
  mismatch: ["Denied: the number didn't match twice", ''],
  expired: ['Expired', 'Expired'],
  closed: ['Closed', 'Closed'],
  'group-approved': ['Approved by the group', 'Approved by the group'],
  'group-denied': ['Denied by the group', 'Denied by the group'],
  gone: ['No longer waiting', 'No longer waiting'],
};

// What a request was, for the sentences that say what became of it:
// "Sign in to Acme Shop, Acme Shop (alice@example.com)".
function requestText(r) {
  const a = accounts.get(r.accountId);
  const message = r.view.message || kindOf(r);
  return a ? `“${message}”, ${whose(r, a)}` : `“${message}”`;
}

function settle(r, outcome, byMe) {
  if (r.state !== 'pending' && r.state !== 'sending') return;
  r.state = outcome;
  const node = r.el;
  node.dataset.state = outcome;
  const hadFocus = node.contains(document.activeElement);
  const out = $('.request-outcome', node);
  const [mine, theirs] = OUTCOMES[outcome] || OUTCOMES.gone;
  const title = byMe ? mine : theirs || mine;
  $('.outcome-title', out).textContent = title;
  $('.outcome-what', out).textContent = requestText(r);
  // A group request says where the group ended, or stands after this answer.
  const g = r.view.group;
  const groupOut = $('.outcome-group', out);
  groupOut.hidden = !g;
  if (g) {
    // After this device's own answer, what the group then decided; else the title says it.
    const mine = outcome === 'approved' || outcome === 'denied';
    const decided = mine && g.status !== 'pending' ? GROUP_DECISIONS[g.status] : '';
    const text = [decided, groupLine(g)].filter(Boolean).join(' · ');
    groupOut.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  }
  $('use', out).setAttribute('href', outcome === 'approved' || outcome === 'group-approved' ? '#i-check' : '#i-x');
  out.hidden = false;
  out.tabIndex = -1;
  $('.request-form', node).hidden = true;
  if (hadFocus) out.focus();
  if (byMe) {
    toast(`${title}: ${requestText(r)}`);
    announce(`${title}: ${requestText(r)}${g && !groupOut.hidden ? `. ${groupOut.textContent}` : ''}`);
  } else if (g || hadFocus) {
    announce(`${title}: ${requestText(r)}`);
  }
  updateRequestsSection();
  setTimeout(() => {
    const focusInside = node.contains(document.activeElement);
    node.remove();
    requests.delete(r.uuid);
    updateRequestsSection();
    if (focusInside) {
      const next = $('#request-list .request[data-state="pending"] .approve');
      (next || $('#main')).focus();
    }
  }, byMe && outcome !== 'mismatch' ? 4000 : 6000); // time to read what was answered; a surprise, more
}

export function updateRequestsSection() {
  const waiting = [...requests.values()].filter((r) => r.state === 'pending' || r.state === 'sending');
  $('#requests').hidden = requests.size === 0;
  // Approvals asked of a group are not sign-ins: the heading and title then say so.
  const groups = [...requests.values()].some((r) => r.view.group);
  $('#requests-title').textContent = groups ? 'Requests to approve' : 'Sign-in requests';
  const kind = waiting.some((r) => r.view.group) ? 'Approval request' : 'Sign-in request';
  document.title = waiting.length ? `(${waiting.length}) ${kind} · ${BASE_TITLE}` : BASE_TITLE;
}

function setBusy(r, busy) {
  r.state = busy ? 'sending' : 'pending';
  r.el.dataset.state = r.state;
  for (const b of r.el.querySelectorAll('button, input')) b.disabled = busy;
  r.el.setAttribute('aria-busy', String(busy));
}

function requestError(r, message) {
  $('.request-error', r.el).textContent = message;
}

async function answer(r, status, reason) {
  if (r.state !== 'pending') return;
  const a = accounts.get(r.accountId);
  if (!a) return;
  let number = '';
  if (status === 'approved' && r.view.number_required) {
    const input = $('.number-input', r.el);
    number = input.value.trim();
    if (!/^\d{2}$/.test(number)) {
      requestError(r, 'Enter the 2-digit number shown on the sign-in page first.');
      input.focus();
      return;
    }
  }
  requestError(r, '');
  setBusy(r, true);
  try {
    const timestamp = Math.floor(api.serverNow() / 1000);
    const signature = await api.signAnswer(a.rec.signingKey, r.uuid, status, timestamp, number, reason);
    const res = await api.answerRequest(a.token, r.uuid, { status, timestamp, signature, number, reason });
    if (res && res.approval_request && res.approval_request.uuid === r.uuid) r.view = res.approval_request; // the group after this answer
    settle(r, status, true);
  } catch (err) {
    const code = err instanceof api.ApiError ? err.code : '';
    if (code === '60080') {
      await numberMissed(r, a); // still busy: a live update of the request must not settle it meanwhile
      return;
    }
    setBusy(r, false);
    if (code === '60079') {
      await settleAsServer(r, a); // decided meanwhile: by another device, or by the group
    } else if (code === '60049') {
      settle(r, 'gone', true);
    } else if (code === '60072') {
      hooks.revoked(a);
      requestError(r, 'This browser is no longer registered with the site.');
    } else if (code === '60087') {
      requestError(r, "The server didn't accept this device's signature. Check that this device's date and time are right, then try again.");
    } else {
      requestError(r, err.message || 'Something went wrong. Try again.');
    }
  }
}

// settleAsServer settles a request the server refused an answer to as no longer pending, with
// what became of it ("Approved by the group").
async function settleAsServer(r, a) {
  let now = null;
  try {
    now = (await api.getRequest(a.token, r.uuid)).approval_request;
  } catch {
    // can't tell: it is gone all the same
  }
  if (!now || now.uuid !== r.uuid || now.status === 'pending') {
    settle(r, 'gone', true);
    return;
  }
  r.view = now;
  const outcome = outcomeOf(now);
  settle(r, OUTCOMES[outcome] ? outcome : 'gone', false);
}

// numberMissed handles a wrong matching number. The server forgives one: the request is then
// still pending, and the card asks again; the second denies it.
async function numberMissed(r, a) {
  let now = { status: 'denied', reason: 'number mismatch' };
  try {
    now = (await api.getRequest(a.token, r.uuid)).approval_request || now;
  } catch {
    now = { status: 'unknown' }; // can't tell: ask again; the server has the last word
  }
  if (now.status === 'denied' && now.reason === 'number mismatch') {
    settle(r, 'mismatch', true);
    return;
  }
  if (now.status !== 'pending' && now.status !== 'unknown') {
    if (now.uuid === r.uuid) r.view = now;
    const outcome = outcomeOf(now);
    settle(r, OUTCOMES[outcome] ? outcome : 'gone', false); // answered elsewhere meanwhile
    return;
  }
  setBusy(r, false);
  r.missed = true;
  const input = $('.number-input', r.el);
  input.value = '';
  requestError(r, "That number doesn't match the one on the sign-in page. Check it and enter it again: another wrong number denies the sign-in.");
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

function tickRequest(r) {
  if (r.state !== 'pending' && r.state !== 'sending') return;
  $('.request-when', r.el).textContent = whenText(r.view.created_at);
  const exp = $('.request-expiry', r.el);
  if (!r.expiresAt) {
    exp.textContent = '';
    return;
  }
  const left = r.expiresAt - api.serverNow();
  if (left <= 0 && r.state === 'pending') settle(r, 'expired', false);
  else exp.textContent = expiryText(left);
}

let denying = null;

function openDeny(r) {
  if (r.state !== 'pending') return;
  denying = r;
  $('#deny-title').textContent = r.view.group ? 'Deny this request?' : 'Deny this sign-in?';
  $('#deny-what').textContent = requestText(r);
  const form = $('#deny-form');
  form.reset();
  $('#deny-other-box').hidden = true;
  $('#deny-dialog').showModal();
}

export function bindRequests() {
  const denyForm = $('#deny-form');
  denyForm.addEventListener('change', () => {
    const other = denyForm.elements.reason.value === 'other';
    $('#deny-other-box').hidden = !other;
    if (other) $('#deny-other').focus();
  });
  denyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const choice = denyForm.elements.reason.value;
    const reason = (choice === 'other' ? $('#deny-other').value.trim() : choice).slice(0, 200);
    const r = denying;
    denying = null;
    $('#deny-dialog').close();
    if (r) answer(r, 'denied', reason);
  });
  $('#deny-cancel').addEventListener('click', () => $('#deny-dialog').close());
  setInterval(() => {
    for (const r of requests.values()) tickRequest(r);
  }, 1000);
}

/** Drops every request from the page (the accounts are being loaded again). */
export function dropAllRequests() {
  for (const r of requests.values()) r.el.remove();
  requests.clear();
  updateRequestsSection();
}
