// Accounts: loading and storing them, their codes (with the countdown ring and copying), the
// account dialog (rename, remove), and adding otpauth:// accounts and Twofold devices.

import * as api from './api.js';
import * as store from './store.js';
import { base32Decode, display, groupCode, hotp, importSeed } from './totp.js';
import { $, fact, paintAvatar, template, toast } from './ui.js';

export const accounts = new Map(); // id → {rec, key, token, fingerprint, step, code, el, broken, revoked}

export const channel = 'BroadcastChannel' in window ? new BroadcastChannel('twofold-authenticator') : null;

// What the rest of the page does when accounts come and go.
export const hooks = {
  added: () => {}, // a device account was added: follow its requests
  removed: () => {}, // an account was removed: drop its requests and feed
};

/** The account's name on this device: the app's (or the name it was given here). */
export function displayName(a) {
  return a.rec.issuer || a.rec.label || 'Account';
}

/**
 * Which of the app's accounts it is: the user's email (or the site's id for them) as enrolled,
 * for a Twofold device; the account in an otpauth:// link. Two accounts of one app differ here.
 */
export function accountLabel(a) {
  return a.rec.issuer ? a.rec.label || '' : '';
}

/** The name and the account together, for sentences: "Acme Shop (alice@example.com)". */
export function fullName(a) {
  const label = accountLabel(a);
  return label ? `${displayName(a)} (${label})` : displayName(a);
}

function subtitle(a) {
  if (a.broken) return "Can't be read in this browser";
  if (a.revoked) return 'Removed by the site: remove it here too';
  return accountLabel(a) || (a.rec.kind === 'device' ? 'Codes and sign-in approvals' : '');
}

// ---------- accounts and codes ----------

// fingerprintOf names a secret without keeping it: the same account added twice has the same.
async function fingerprintOf(secret) {
  const seed = base32Decode(secret);
  const digest = await crypto.subtle.digest('SHA-256', seed);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function adopt(rec, secrets) {
  const a = { rec, key: null, token: '', fingerprint: '', step: -1, code: '', el: null, broken: false, revoked: false };
  try {
    a.key = await importSeed(base32Decode(secrets.secret), rec.algorithm || 'SHA-1');
    a.fingerprint = await fingerprintOf(secrets.secret);
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
  node.dataset.digits = a.rec.digits;
  $('.more', node).addEventListener('click', () => openAccount(a));
  $('.code', node).addEventListener('click', () => copyCode(a));
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
  // The code button's name is its visible digits after this text (WCAG's "label in name").
  $('.code-for', node).textContent = `Copy the code for ${fullName(a)}: `;
  $('.more', node).setAttribute('aria-label', `Options for ${fullName(a)}`);
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

// shown is which code the account shows now, and for how long (totp.display). A device's codes
// are checked by this server: its clock, and the window of steps it accepts. Other services:
// our clock, and each step's code for its own period.
function shown(a) {
  if (a.rec.kind === 'device') return display(api.serverNow(), a.rec.period, a.rec.window || 0);
  return display(Date.now(), a.rec.period, 0);
}

export async function updateCodes() {
  await Promise.all([...accounts.values()].map(async (a) => {
    if (!a.key || !a.el) return;
    const { step } = shown(a);
    if (step === a.step) return;
    a.step = step;
    const code = await hotp(a.key, step, a.rec.digits);
    if (a.step !== step) return; // a newer step won the race
    a.code = code;
    const button = $('.code', a.el);
    $('.code-digits', a.el).textContent = groupCode(code);
    button.dataset.ready = '1';
    button.dataset.code = code;
  }));
}

export function drawRings() {
  for (const a of accounts.values()) {
    if (!a.key || !a.ringBar) continue;
    const { length, left } = shown(a);
    a.ringBar.style.setProperty('stroke-dashoffset', String(100 - (left / length) * 100));
    const secs = Math.ceil(left / 1000);
    if (a.ringSecs.textContent !== String(secs)) {
      a.ringSecs.textContent = String(secs);
      a.el.classList.toggle('ending', secs <= Math.min(5, Math.ceil(length / 4000)));
      if (left > length - 1000) updateCodes();
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
    toast(`Code for ${fullName(a)} copied`);
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

let inDialog = null; // the account in the dialog

let removeArmed = false;

let removeLocalOnly = false;

function openAccount(a) {
  inDialog = a;
  removeArmed = false;
  removeLocalOnly = false;
  const name = displayName(a);
  paintAvatar($('#account-avatar'), name);
  $('#account-title').textContent = name;
  $('#account-label').textContent = subtitle(a);
  $('#account-name').value = name;
  const facts = $('#account-facts');
  facts.replaceChildren();
  if (accountLabel(a)) fact(facts, 'Account', accountLabel(a));
  if (a.rec.kind === 'device') {
    fact(facts, 'Kind', 'Twofold device: codes and one-tap sign-in approvals');
    if (a.rec.device?.appName && a.rec.device.appName !== name) fact(facts, 'App', a.rec.device.appName);
    fact(facts, 'This device', a.rec.device?.name || 'This browser');
    fact(facts, 'Server', new URL(api.API_ROOT).host);
  } else {
    fact(facts, 'Kind', 'Authenticator code (works offline)');
  }
  fact(facts, 'Codes', `${a.rec.digits} digits, each shown for ${shown(a).length / 1000} seconds`);
  fact(facts, 'Added', new Date(a.rec.createdAt).toLocaleDateString(undefined, { dateStyle: 'medium' }));
  $('#account-remove-confirm').hidden = true;
  $('#account-remove').textContent = 'Remove';
  $('#account-error').textContent = '';
  $('#account-dialog').showModal();
}

async function removeShown() {
  const a = inDialog;
  if (!a) return;
  const name = fullName(a);
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
  const a = inDialog;
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

// ---------- what the server says of its devices ----------

// deviceRecord is what an account keeps of the server's view of its device.
function deviceRecord(d) {
  return { id: d.id, authyId: d.authy_id, appId: d.app_id, appName: d.app_name, name: d.name };
}

/**
 * Brings the device accounts up to date with the server: which account each is (devices added
 * before the server said so), the app's name, and the window of steps the server accepts
 * codes in (which says how long a code can be shown). Best effort: offline, nothing changes.
 */
export async function refreshDevices() {
  await Promise.all([...accounts.values()].map(async (a) => {
    if (a.rec.kind !== 'device' || !a.token || a.revoked || a.broken) return;
    let d;
    try {
      d = (await api.deviceInfo(a.token)).device;
    } catch {
      return; // offline, or no longer registered (the live feed says so)
    }
    if (!d || !accounts.has(a.rec.id)) return;
    const rec = { ...a.rec, label: d.account || a.rec.label || '', window: d.totp_window ?? a.rec.window };
    rec.device = { ...deviceRecord(d), name: a.rec.device?.name || d.name };
    // An account not renamed here follows the app's name.
    if (d.app_name && a.rec.issuer === a.rec.device?.appName) rec.issuer = d.app_name;
    if (JSON.stringify(rec) === JSON.stringify(a.rec)) return;
    try {
      await store.saveAccount(rec);
    } catch {
      return;
    }
    a.rec = rec;
    a.step = -1; // the window may show another step's code
    if (a.el) refreshAccount(a);
  }));
  updateCodes();
}

// ---------- adding accounts ----------

const sameText = (x, y) => (x || '').trim().toLowerCase() === (y || '').trim().toLowerCase();

/**
 * What this browser already holds of an otpauth:// account: {same} when it has the very
 * secret (adding it again would change nothing), {named} when an account of that issuer and
 * name has another secret (a site that gave a new one: the old one's codes stop working).
 */
export async function otpauthTwin(key) {
  const fingerprint = await fingerprintOf(key.secret);
  for (const a of accounts.values()) {
    if (a.fingerprint === fingerprint) return { same: a };
  }
  for (const a of accounts.values()) {
    if (a.rec.kind === 'totp' && sameText(a.rec.issuer, key.issuer) && sameText(a.rec.label, key.account)) return { named: a };
  }
  return null;
}

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

// deviceTwin is the device account of this browser for the same user of the same app.
function deviceTwin(d) {
  for (const a of accounts.values()) {
    if (a.rec.kind === 'device' && a.rec.device?.appId === d.app_id && a.rec.device?.authyId === d.authy_id) return a;
  }
  return null;
}

// stillRegistered tells whether the server still knows an account's device; a failure to ask
// counts as yes, so that an account that works is never replaced for want of a connection.
async function stillRegistered(a) {
  if (a.revoked || a.broken || !a.token) return false;
  try {
    await api.deviceInfo(a.token);
    return true;
  } catch (err) {
    return !(err instanceof api.ApiError && err.status === 401);
  }
}

/**
 * Registers this browser with an enrolment link and adds the account. Returns {account} for a
 * new account; {account, duplicate: true} when this browser already holds that account (the
 * same user of the same app) and its device still works: the device just registered is
 * removed again and nothing is added; {account, replaced} when the account held here was one
 * the site had removed: the new registration takes its place (and its name on this device).
 */
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
  const twin = deviceTwin(d);
  if (twin && (await stillRegistered(twin))) {
    // Two devices of one account in one browser would show two codes and every request twice.
    await api.removeDevice(res.access_token).catch(() => {});
    return { account: twin, duplicate: true };
  }
  const id = crypto.randomUUID();
  const rec = {
    id, kind: 'device', issuer: d.app_name || 'Twofold', label: d.account || '', digits: res.totp.digits,
    period: res.totp.period, window: d.totp_window || 0, algorithm: 'SHA-1', createdAt: Date.now(), signingKey: privateKey,
    device: deviceRecord(d),
  };
  if (twin && twin.rec.issuer !== twin.rec.device?.appName) rec.issuer = twin.rec.issuer; // its name here
  const secrets = { secret: res.totp.secret, token: res.access_token };
  try {
    rec.sealed = await store.seal(id, secrets);
    await store.saveAccount(rec);
  } catch (err) {
    api.removeDevice(res.access_token).catch(() => {}); // leave no device behind that nobody holds
    throw new Error(`This browser couldn't store the account (${err.message}). Nothing was added.`);
  }
  if (twin) {
    await store.removeAccount(twin.rec.id).catch(() => {}); // a dead device: the next start shows it again at worst
    forget(twin);
  }
  const a = await adopt(rec, secrets);
  api.subscribePush(res.access_token).catch(() => {}); // notifications while closed, if allowed
  renderAccounts();
  hooks.added(a);
  updateCodes();
  changed();
  return { account: a, replaced: twin };
}
