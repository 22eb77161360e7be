// Accounts: loading and storing them, their codes (with the countdown ring and copying), the
// account dialog (rename, remove), and adding otpauth:// accounts and Twofold devices.

import * as api from './api.js';
import * as store from './store.js';
import { base32Decode, groupCode, hotp, importSeed, timeStep } from './totp.js';
import { $, fact, paintAvatar, template, toast } from './ui.js';

export const accounts = new Map(); // id → {rec, key, token, step, code, el, broken, revoked}

export const channel = 'BroadcastChannel' in window ? new BroadcastChannel('twofold-authenticator') : null;

// What the rest of the page does when accounts come and go.
export const hooks = {
  added: () => {}, // a device account was added: follow its requests
  removed: () => {}, // an account was removed: drop its requests and feed
};

export function displayName(a) {
  return a.rec.issuer || a.rec.label || 'Account';
}

function subtitle(a) {
  if (a.broken) return "Can't be read in this browser";
  if (a.revoked) return 'Removed by the site: remove it here too';
  if (a.rec.kind === 'device') return 'Codes and sign-in approvals';
  return a.rec.issuer ? a.rec.label : '';
}

function spelled(code) {
  return code.split('').join(' ');
}

// ---------- accounts and codes ----------

async function adopt(rec, secrets) {
  const a = { rec, key: null, token: '', step: -1, code: '', el: null, broken: false, revoked: false };
  try {
    a.key = await importSeed(base32Decode(secrets.secret), rec.algorithm || 'SHA-1');
    a.token = secrets.token || '';
  } catch {
    a.broken = true;
  }
  accounts.set(rec.id, a);
  return a;
}

export async function loadAccounts() {
  const recs = await store.listAccounts();
  recs.sort((x, y) => x.createdAt - y.createdAt);
  for (const rec of recs) {
    let secrets = { secret: '' };
    try {
      secrets = await store.unseal(rec.id, rec.sealed);
    } catch {
      // sealed under a key this browser no longer has: shown as broken
    }
    await adopt(rec, secrets);
  }
  renderAccounts();
  updateCodes();
}

/** Forgets every account on the page (not in storage), to load them again. */
export function clearAccounts() {
  for (const a of accounts.values()) a.el?.remove();
  accounts.clear();
}

function changed() {
  store.persist();
  channel?.postMessage('accounts-changed');
}

function buildAccount(a) {
  const node = template('t-account');
  node.dataset.id = a.rec.id;
  node.dataset.kind = a.rec.kind;
  $('.more', node).addEventListener('click', () => openAccount(a));
  $('.code', node).addEventListener('click', () => copyCode(a));
  $('.code', node).setAttribute('aria-label', `Code for ${displayName(a)}: loading`);
  a.ringBar = $('.ring-bar', node);
  a.ringSecs = $('.ring-secs', node);
  a.el = node;
  refreshAccount(a);
  return node;
}

export function refreshAccount(a) {
  const node = a.el;
  const name = displayName(a);
  paintAvatar($('.avatar', node), name);
  $('.account-issuer', node).textContent = name;
  $('.more', node).setAttribute('aria-label', `Options for ${name}`);
  if (a.code) $('.code', node).setAttribute('aria-label', `${spelled(a.code)}. Copy the code for ${name}`);
  const sub = subtitle(a);
  $('.account-label', node).textContent = sub;
  $('.account-label', node).hidden = !sub;
  node.classList.toggle('broken', a.broken);
  node.classList.toggle('revoked', a.revoked);
  $('.code', node).disabled = a.broken;
}

export function renderAccounts() {
  const list = $('#account-list');
  for (const a of accounts.values()) {
    if (!a.el) buildAccount(a);
    list.append(a.el); // keeps insertion order: oldest first
  }
  $('#loading').hidden = true;
  $('#codes').hidden = accounts.size === 0;
  $('#empty').hidden = accounts.size !== 0;
}

function nowFor(a) {
  // A device's codes are checked by this server: use its clock. Other services: ours.
  return a.rec.kind === 'device' ? api.serverNow() : Date.now();
}

export async function updateCodes() {
  await Promise.all([...accounts.values()].map(async (a) => {
    if (!a.key || !a.el) return;
    const step = timeStep(nowFor(a), a.rec.period);
    if (step === a.step) return;
    a.step = step;
    const code = await hotp(a.key, step, a.rec.digits);
    if (a.step !== step) return; // a newer step won the race
    a.code = code;
    const button = $('.code', a.el);
    $('.code-digits', a.el).textContent = groupCode(code);
    button.dataset.ready = '1';
    button.dataset.code = code;
    button.setAttribute('aria-label', `${spelled(code)}. Copy the code for ${displayName(a)}`);
  }));
}

export function drawRings() {
  for (const a of accounts.values()) {
    if (!a.key || !a.ringBar) continue;
    const period = a.rec.period * 1000;
    const left = period - (nowFor(a) % period);
    a.ringBar.style.setProperty('stroke-dashoffset', String(100 - (left / period) * 100));
    const secs = Math.ceil(left / 1000);
    if (a.ringSecs.textContent !== String(secs)) {
      a.ringSecs.textContent = String(secs);
      a.el.classList.toggle('ending', secs <= Math.min(5, Math.ceil(a.rec.period / 4)));
      if (secs === a.rec.period || left > period - 1000) updateCodes();
    }
  }
  requestAnimationFrame(drawRings);
}

async function copyCode(a) {
  if (!a.code) return;
  const digits = $('.code-digits', a.el);
  try {
    await navigator.clipboard.writeText(a.code);
    a.el.classList.add('copied');
    setTimeout(() => a.el.classList.remove('copied'), 900);
    toast(`Code for ${displayName(a)} copied`);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(digits);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    toast('Copying is blocked here: the code is selected, copy it yourself');
  }
}

// ---------- account dialog ----------

let shown = null; // the account in the dialog

let removeArmed = false;

let removeLocalOnly = false;

function openAccount(a) {
  shown = a;
  removeArmed = false;
  removeLocalOnly = false;
  const name = displayName(a);
  paintAvatar($('#account-avatar'), name);
  $('#account-title').textContent = name;
  $('#account-label').textContent = subtitle(a);
  $('#account-name').value = name;
  const facts = $('#account-facts');
  facts.replaceChildren();
  if (a.rec.kind === 'device') {
    fact(facts, 'Kind', 'Twofold device: codes and one-tap sign-in approvals');
    fact(facts, 'This device', a.rec.device?.name || 'This browser');
    fact(facts, 'Server', new URL(api.API_ROOT).host);
  } else {
    fact(facts, 'Kind', 'Authenticator code (works offline)');
    if (a.rec.label && a.rec.issuer) fact(facts, 'Account', a.rec.label);
  }
  fact(facts, 'Codes', `${a.rec.digits} digits, new every ${a.rec.period} seconds`);
  fact(facts, 'Added', new Date(a.rec.createdAt).toLocaleDateString(undefined, { dateStyle: 'medium' }));
  $('#account-remove-confirm').hidden = true;
  $('#account-remove').textContent = 'Remove';
  $('#account-error').textContent = '';
  $('#account-dialog').showModal();
}

async function removeShown() {
  const a = shown;
  if (!a) return;
  const name = displayName(a);
  if (!removeArmed) {
    removeArmed = true;
    $('#account-remove-text').textContent = a.rec.kind === 'device' && !a.revoked
      ? `Remove ${name} from this browser? It will stop getting ${name}'s sign-in requests, and its codes will stop working.`
      : `Remove ${name} from this browser? Make sure you can still sign in another way: the secret can't be recovered.`;
    $('#account-remove-confirm').hidden = false;
    $('#account-remove').textContent = 'Remove for good';
    return;
  }
  const button = $('#account-remove');
  button.disabled = true;
  try {
    if (a.rec.kind === 'device' && a.token && !a.revoked && !removeLocalOnly) {
      try {
        await api.removeDevice(a.token);
      } catch (err) {
        if (!(err instanceof api.ApiError && (err.status === 401 || err.status === 404))) {
          removeLocalOnly = true;
          $('#account-error').textContent = `${err.message} Tap "Remove here only" to remove it from this browser anyway.`;
          button.textContent = 'Remove here only';
          return;
        }
      }
    }
    await store.removeAccount(a.rec.id);
    forget(a);
    $('#account-dialog').close();
    toast(`${name} removed`);
    changed();
  } catch (err) {
    $('#account-error').textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

async function renameShown() {
  const a = shown;
  const input = $('#account-name');
  const name = input.value.trim().slice(0, 60);
  if (!a || !accounts.has(a.rec.id) || name === displayName(a)) return;
  if (!name) {
    input.value = displayName(a);
    return;
  }
  const before = a.rec.issuer;
  a.rec.issuer = name;
  try {
    await store.saveAccount(a.rec);
  } catch (err) {
    a.rec.issuer = before;
    input.value = displayName(a);
    $('#account-error').textContent = `Couldn't rename it: ${err.message}`;
    return;
  }
  refreshAccount(a);
  paintAvatar($('#account-avatar'), name);
  $('#account-title').textContent = name;
  changed();
}

function forget(a) {
  a.el?.remove();
  accounts.delete(a.rec.id);
  renderAccounts();
  hooks.removed(a);
}

export function bindAccounts() {
  $('#account-remove').addEventListener('click', removeShown);
  $('#account-name').addEventListener('change', renameShown);
  $('#account-name').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') e.currentTarget.blur();
  });
  $('#account-close').addEventListener('click', () => $('#account-dialog').close());
}

// ---------- adding accounts ----------

export async function addOtpauth(key) {
  const id = crypto.randomUUID();
  const rec = {
    id, kind: 'totp', issuer: key.issuer, label: key.account, digits: key.digits, period: key.period,
    algorithm: key.algorithm, createdAt: Date.now(),
  };
  rec.sealed = await store.seal(id, { secret: key.secret });
  await store.saveAccount(rec);
  const a = await adopt(rec, { secret: key.secret });
  renderAccounts();
  updateCodes();
  changed();
  return a;
}

export async function enrol(link) {
  const { privateKey, publicKey } = await api.newDeviceKey();
  // The server says what this browser runs on, in Authy's terms (an Android phone is
  // "android"), from its User-Agent; an iPad's Safari presents itself as a Mac, which has no
  // touch screen, so the touch points tell them apart.
  const body = {
    public_key: await api.publicKeyBase64(publicKey), name: api.deviceName(), os_type: 'web',
    touch_points: navigator.maxTouchPoints || 0,
  };
  if (link.jwt) body.jwt = link.jwt;
  else body.registration_token = link.token;
  const res = await api.registerDevice(body);
  const d = res.device || {};
  const id = crypto.randomUUID();
  const rec = {
    id, kind: 'device', issuer: d.app_name || 'Twofold', label: '', digits: res.totp.digits, period: res.totp.period,
    algorithm: 'SHA-1', createdAt: Date.now(), signingKey: privateKey,
    device: { id: d.id, authyId: d.authy_id, appId: d.app_id, appName: d.app_name, name: d.name },
  };
  const secrets = { secret: res.totp.secret, token: res.access_token };
  try {
    rec.sealed = await store.seal(id, secrets);
    await store.saveAccount(rec);
  } catch (err) {
    api.removeDevice(res.access_token).catch(() => {}); // leave no device behind that nobody holds
    throw new Error(`This browser couldn't store the account (${err.message}). Nothing was added.`);
  }
  const a = await adopt(rec, secrets);
  api.subscribePush(res.access_token).catch(() => {}); // notifications while closed, if allowed
  renderAccounts();
  hooks.added(a);
  updateCodes();
  changed();
  return a;
}
