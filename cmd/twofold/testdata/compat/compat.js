'use strict';

// Drives a running Twofold server with the real Authy client libraries from the npm registry:
// authy-client 1.1.4 and authy (node-authy) 1.4.0. Started by TestAuthyClientsCompat
// (cmd/twofold/compat_test.go), which passes:
//
//   TWOFOLD_URL      base URL of the server (http://127.0.0.1:PORT)
//   TWOFOLD_API_KEY  API key of an application
//   TWOFOLD_ORACLE   base URL of the test's oracle: GET /code?to=+1... answers with the
//                    newest code sent to that recipient, as read from `twofold outbox`;
//                    POST /callback-url?url=...&method=POST|GET runs
//                    `twofold app update 1 --callback-url URL --callback-method METHOD`
//
// OneTouch: the script plays the user's authenticator through Twofold's device API
// (/device/v1, spec section 8 and cmd/twofold/onetouch_test.go) and the customer's callback
// endpoint (a local HTTP server whose requests are checked with authy-client's verifyCallback).
//
// Prints one line per check ("ok   ..." or "FAIL ...") and exits non-zero if any check failed.
// The last line is "ALL CHECKS PASSED" when everything passed.

const crypto = require('crypto');
const http = require('http');
// qs is what express parses query strings with by default ("extended"), and what authy-client
// itself canonicalizes callbacks with; it is loaded from where authy-client finds it (it is a
// dependency of authy-client, not of this package). Used to hand a GET callback's query to
// verifyCallback as its body, as an express app would pass req.query.
const qs = require(require.resolve('qs', { paths: [require.resolve('authy-client')] }));

const url = mustEnv('TWOFOLD_URL');
const key = mustEnv('TWOFOLD_API_KEY');
const oracle = mustEnv('TWOFOLD_ORACLE');

let checks = 0;
let failures = 0;

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.log(`FAIL environment: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

function check(name, cond, detail) {
  checks++;
  if (cond) {
    console.log(`ok   ${name}`);
  } else {
    failures++;
    console.log(`FAIL ${name}${detail === undefined ? '' : ': ' + detail}`);
  }
  return cond;
}

function show(v) {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
}

// describe renders an error with everything the client libraries attach to it: authy-client's
// HttpError/AssertionFailedError carry code, body, data and errors (the failed assertions).
function describe(e) {
  if (!(e instanceof Error)) return show(e);
  const out = { name: e.name, message: e.message };
  for (const k of Object.keys(e)) out[k] = e[k];
  return show(out);
}

// step runs one client call; a throw counts as a failed check and the step yields undefined.
async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    check(name, false, 'threw ' + describe(e));
    return undefined;
  }
}

// rejects runs a call that must fail and returns the error (undefined if it succeeded).
async function rejects(name, fn) {
  try {
    const res = await fn();
    check(name + ' fails', false, 'succeeded with ' + show(res));
    return undefined;
  } catch (e) {
    return e;
  }
}

// authyError checks an authy-client HttpError: HTTP status, message, and the Authy envelope.
function authyError(name, e, status, message, errorCode) {
  if (e === undefined) return;
  check(`${name}: HTTP ${status}`, e.code === status, describe(e));
  check(`${name}: message ${show(message)}`, e.message === message, describe(e));
  const body = e.body || {};
  check(`${name}: error_code ${show(errorCode)}`, body.error_code === errorCode, show(body));
  check(`${name}: success false`, body.success === false, show(body));
}

// codeFor asks the test's oracle for the newest code sent to a recipient by channel (sms, call).
async function codeFor(to, channel) {
  const res = await fetch(`${oracle}/code?to=${encodeURIComponent(to)}&channel=${channel}`);
  const text = (await res.text()).trim();
  if (res.status !== 200) throw new Error(`oracle: no code for ${to}: ${res.status} ${text}`);
  return text;
}

// otherCode returns a well-formed code of the same length that is not code.
function otherCode(code) {
  return code.split('').map((d) => String((Number(d) + 5) % 10)).join('');
}

// ---- RFC 6238 TOTP, for the generic-authenticator enrolment ----------------------------------

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`invalid base32 character ${show(c)}`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp({ secret, digits, period, algorithm }, nowMs) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000 / period)));
  const h = crypto.createHmac(algorithm, secret).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

function parseOtpauth(uri) {
  const u = new URL(uri);
  if (u.protocol !== 'otpauth:' || u.host !== 'totp') throw new Error(`not an otpauth TOTP URI: ${uri}`);
  const p = u.searchParams;
  if (!p.get('secret')) throw new Error(`no secret in ${uri}`);
  return {
    secret: base32Decode(p.get('secret')),
    digits: Number(p.get('digits') || 6),
    period: Number(p.get('period') || 30),
    algorithm: (p.get('algorithm') || 'SHA1').toLowerCase(),
  };
}

// ---- authy-client 1.1.4 -----------------------------------------------------------------------

async function authyClient() {
  const version = require('authy-client/package.json').version;
  check(`authy-client version is 1.1.4 (got ${version})`, version === '1.1.4');
  const { Client } = require('authy-client');
  const client = new Client({ key }, { host: url });
  const c = 'authy-client';

  const reg = await step(`${c} registerUser`, () =>
    client.registerUser({ countryCode: 'US', email: 'compat-a@example.com', phone: '(201) 555-0123' }));
  if (!reg) return;
  const authyId = reg.user.id;
  check(`${c} registerUser: user.id is a number (${authyId})`, typeof authyId === 'number', show(reg));

  const again = await step(`${c} registerUser again`, () =>
    client.registerUser({ countryCode: 'US', email: 'compat-a@example.com', phone: '2015550123' }));
  if (again) check(`${c} registerUser again: same authy id`, again.user.id === authyId, show(again));

  const st = await step(`${c} getUserStatus`, () => client.getUserStatus({ authyId }, { ip: '1.2.3.4' }));
  if (st) {
    check(`${c} getUserStatus: status.authy_id`, st.status.authy_id === authyId, show(st));
    check(`${c} getUserStatus: country_code 1`, st.status.country_code === 1, show(st));
    check(`${c} getUserStatus: phone_number masked, last 4 digits 0123`, /^[X-]+0123$/.test(st.status.phone_number), show(st));
    check(`${c} getUserStatus: not yet confirmed`, st.status.confirmed === false, show(st));
    check(`${c} getUserStatus: devices is an array`, Array.isArray(st.status.devices), show(st));
  }

  const sms = await step(`${c} requestSms force`, () => client.requestSms({ authyId }, { force: true }));
  if (sms) {
    check(`${c} requestSms: message "SMS token was sent"`, sms.message === 'SMS token was sent', show(sms));
    check(`${c} requestSms: cellphone masked +1-XXX-XXX-XX23`, sms.cellphone === '+1-XXX-XXX-XX23', show(sms));
    check(`${c} requestSms: not ignored`, sms.ignored === undefined || sms.ignored === false, show(sms));
  }

  const code = await step(`${c} oracle: SMS code for +12015550123`, () => codeFor('+12015550123', 'sms'));
  if (code) {
    check(`${c} SMS code has 6-8 digits (${code.length})`, /^\d{6,8}$/.test(code), code);
    const ok = await step(`${c} verifyToken SMS code`, () => client.verifyToken({ authyId, token: code }, { force: true }));
    if (ok) {
      check(`${c} verifyToken: message "Token is valid."`, ok.message === 'Token is valid.', show(ok));
      check(`${c} verifyToken: token "is valid"`, ok.token === 'is valid', show(ok));
    }
    const reused = await rejects(`${c} verifyToken same SMS code`, () =>
      client.verifyToken({ authyId, token: code }, { force: true }));
    authyError(`${c} verifyToken same SMS code`, reused, 401, 'Token is invalid. Token was used recently.', '60019');

    const wrong = await rejects(`${c} verifyToken wrong code`, () =>
      client.verifyToken({ authyId, token: otherCode(code) }, { force: true }));
    authyError(`${c} verifyToken wrong code`, wrong, 401, 'Token is invalid', '60020');
  }

  const st2 = await step(`${c} getUserStatus after a verified code`, () => client.getUserStatus({ authyId }));
  if (st2) check(`${c} getUserStatus: confirmed after a verified code`, st2.status.confirmed === true, show(st2));

  const call = await step(`${c} requestCall force`, () => client.requestCall({ authyId }, { force: true }));
  if (call) {
    check(`${c} requestCall: message "Call started..."`, call.message === 'Call started...', show(call));
    check(`${c} requestCall: cellphone masked`, call.cellphone === '+1-XXX-XXX-XX23', show(call));
  }
  const callCode = await step(`${c} oracle: call code for +12015550123`, () => codeFor('+12015550123', 'call'));
  if (callCode) {
    await step(`${c} verifyToken call code`, () => client.verifyToken({ authyId, token: callCode }, { force: true }))
      .then((r) => r && check(`${c} verifyToken call code`, r.token === 'is valid', show(r)));
  }

  const act = await step(`${c} registerActivity`, () =>
    client.registerActivity({ authyId, data: { reason: 'x' }, type: 'password_reset' }, { ip: '1.2.3.4' }));
  if (act) check(`${c} registerActivity: message "Activity was created."`, act.message === 'Activity was created.', show(act));

  await authenticator(client, authyId);

  const details = await step(`${c} getApplicationDetails`, () => client.getApplicationDetails({ ip: '1.2.3.4' }));
  if (details) {
    check(`${c} getApplicationDetails: message`, details.message === 'Application information.', show(details));
    check(`${c} getApplicationDetails: app.app_id is an integer`, Number.isInteger(details.app.app_id), show(details));
  }

  const stats = await step(`${c} getApplicationStatistics`, () => client.getApplicationStatistics({ ip: '1.2.3.4' }));
  if (stats) {
    check(`${c} getApplicationStatistics: message`, stats.message === 'Monthly statistics.', show(stats));
    check(`${c} getApplicationStatistics: count == stats.length`, stats.count === stats.stats.length, show(stats));
    check(`${c} getApplicationStatistics: total_users >= 1`, stats.total_users >= 1, show(stats));
    const sum = (k) => stats.stats.reduce((n, m) => n + m[k], 0);
    check(`${c} getApplicationStatistics: sms_count >= 1`, sum('sms_count') >= 1, show(stats));
    check(`${c} getApplicationStatistics: calls_count >= 1`, sum('calls_count') >= 1, show(stats));
    check(`${c} getApplicationStatistics: auths_count >= 3`, sum('auths_count') >= 3, show(stats));
    check(`${c} getApplicationStatistics: api_calls_count >= 10`, sum('api_calls_count') >= 10, show(stats));
  }

  const del = await step(`${c} deleteUser`, () => client.deleteUser({ authyId }, { ip: '1.2.3.4' }));
  if (del) check(`${c} deleteUser: success`, del.success === true, show(del));

  const gone = await rejects(`${c} getUserStatus of deleted user`, () => client.getUserStatus({ authyId }));
  authyError(`${c} getUserStatus of deleted user`, gone, 404, 'User not found.', '60026');
}

// authenticator enrols a generic TOTP authenticator (no authy-client method exists for it) and
// verifies codes computed here with authy-client.
async function authenticator(client, authyId) {
  const c = 'authy-client';
  const enrol = await step('secret: POST users/{id}/secret', async () => {
    const res = await fetch(`${url}/protected/json/users/${authyId}/secret`, {
      method: 'POST',
      headers: { 'X-Authy-API-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ qr_size: 300, label: 'compat' }),
    });
    const body = await res.json();
    if (res.status !== 200 || body.success !== true) throw new Error(`HTTP ${res.status}: ${show(body)}`);
    return body;
  });
  if (!enrol) return;
  check('secret: uri is otpauth://totp/...', typeof enrol.uri === 'string' && enrol.uri.startsWith('otpauth://totp/'), show(enrol));
  check('secret: qr_code is a URL', typeof enrol.qr_code === 'string' && /^https?:\/\//.test(enrol.qr_code), show(enrol));

  if (typeof enrol.qr_code === 'string') {
    await step('secret: GET qr_code without API key', async () => {
      const res = await fetch(enrol.qr_code);
      const img = Buffer.from(await res.arrayBuffer());
      check('secret: qr_code answers 200', res.status === 200, `${res.status} ${img.toString('utf8', 0, 200)}`);
      check('secret: qr_code Content-Type image/png', res.headers.get('content-type') === 'image/png', res.headers.get('content-type'));
      check('secret: qr_code body is a PNG', img.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])), img.subarray(0, 8).toString('hex'));
    });
  }

  const params = await step('secret: parse otpauth URI', () => parseOtpauth(enrol.uri));
  if (!params) return;
  check(`secret: ${params.digits} digits, ${params.period}s period, ${params.algorithm}`,
    params.digits >= 6 && params.digits <= 8 && params.period > 0 && params.secret.length >= 10, show(enrol.uri));

  const token = totp(params, Date.now());
  const ok = await step(`${c} verifyToken TOTP code`, () => client.verifyToken({ authyId, token }, { force: true }));
  if (ok) check(`${c} verifyToken TOTP code: token "is valid"`, ok.token === 'is valid' && ok.message === 'Token is valid.', show(ok));
  const reused = await rejects(`${c} verifyToken same TOTP code`, () => client.verifyToken({ authyId, token }, { force: true }));
  authyError(`${c} verifyToken same TOTP code`, reused, 401, 'Token is invalid. Token was used recently.', '60019');

  // With an authenticator enrolled, an SMS without force is not needed (spec 3.1).
  const ignored = await step(`${c} requestSms without force, authenticator enrolled`, () => client.requestSms({ authyId }));
  if (ignored) check(`${c} requestSms without force: ignored`, ignored.ignored === true, show(ignored));
}

// ---- npm authy 1.4.0 (node-authy) -------------------------------------------------------------

// call runs a node-authy method, whose callbacks are (err, body).
function call(authy, method, ...args) {
  return new Promise((resolve) => authy[method](...args, (err, body) => resolve({ err, body })));
}

async function nodeAuthy() {
  const version = require('authy/package.json').version;
  check(`authy version is 1.4.0 (got ${version})`, version === '1.4.0');
  const authy = require('authy')(key, url);
  const c = 'authy';

  const reg = await call(authy, 'register_user', 'compat-b@example.com', '775-461-5609', '1', false);
  if (!check(`${c} register_user`, !reg.err && reg.body && reg.body.user && typeof reg.body.user.id === 'number', show(reg))) return;
  const id = reg.body.user.id;

  const st = await call(authy, 'user_status', id);
  check(`${c} user_status`, !st.err && st.body.status && st.body.status.authy_id === id && st.body.message === 'User status.', show(st));
  if (!st.err) check(`${c} user_status: phone_number ends in 5609`, /5609$/.test(st.body.status.phone_number), show(st));

  const sms = await call(authy, 'request_sms', id, true);
  check(`${c} request_sms force`, !sms.err && sms.body.success === true && sms.body.message === 'SMS token was sent', show(sms));

  const code = await step(`${c} oracle: SMS code for +17754615609`, () => codeFor('+17754615609', 'sms'));
  if (code) {
    const ok = await call(authy, 'verify', id, code);
    check(`${c} verify right code`, !ok.err && ok.body.token === 'is valid' && ok.body.message === 'Token is valid.', show(ok));
    const again = await call(authy, 'verify', id, code);
    check(`${c} verify same code again fails`, !!again.err && !again.body, show(again));
    if (again.err) {
      check(`${c} verify same code again: message`, again.err.message === 'Token is invalid. Token was used recently.', show(again.err));
    }
  }

  const del = await call(authy, 'delete_user', id);
  check(`${c} delete_user`, !del.err && del.body.success === true, show(del));

  const gone = await call(authy, 'user_status', id);
  check(`${c} user_status of deleted user fails with "User not found."`, !!gone.err && gone.err.message === 'User not found.', show(gone));
}

// ---- Phone Verification and Phone Intelligence (spec section 5) -------------------------------

// Numbers used nowhere else in this script, one per library, so that per-number send limits
// and pending verifications of one flow do not touch the other.
const PV_CLIENT_PHONE = '201-555-0177';
const PV_NODE_PHONE = '201-555-0178';

async function phonesAuthyClient() {
  const { Client } = require('authy-client');
  const client = new Client({ key }, { host: url });
  const c = 'authy-client phones';
  const to = '+1' + PV_CLIENT_PHONE.replace(/-/g, '');

  const started = await step(`${c} startPhoneVerification sms`, () =>
    client.startPhoneVerification({ countryCode: 'US', phone: PV_CLIENT_PHONE, via: 'sms' }));
  if (started) {
    check(`${c} startPhoneVerification: success`, started.success === true, show(started));
    check(`${c} startPhoneVerification: message "Text message sent to ..."`,
      typeof started.message === 'string' && started.message.startsWith('Text message sent to'), show(started));
  }

  const code = await step(`${c} oracle: SMS code for ${to}`, () => codeFor(to, 'sms'));
  if (code) {
    check(`${c} verification code has 4-10 digits (${code.length})`, /^\d{4,10}$/.test(code), code);
    const wrong = await rejects(`${c} verifyPhone wrong code`, () =>
      client.verifyPhone({ countryCode: 'US', phone: PV_CLIENT_PHONE, token: otherCode(code) }));
    authyError(`${c} verifyPhone wrong code`, wrong, 401, 'Verification code is incorrect', '60022');

    const ok = await step(`${c} verifyPhone right code`, () =>
      client.verifyPhone({ countryCode: 'US', phone: PV_CLIENT_PHONE, token: code }));
    if (ok) {
      check(`${c} verifyPhone: message "Verification code is correct."`, ok.message === 'Verification code is correct.', show(ok));
      check(`${c} verifyPhone: success`, ok.success === true, show(ok));
    }
  }

  const info = await step(`${c} getPhoneInformation`, () =>
    client.getPhoneInformation({ countryCode: 'US', phone: PV_CLIENT_PHONE }, { ip: '1.2.3.4' }));
  if (info) {
    check(`${c} getPhoneInformation: message "Phone number information as of ... UTC"`,
      /^Phone number information as of \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/.test(info.message), show(info));
    check(`${c} getPhoneInformation: ported is a boolean`, typeof info.ported === 'boolean', show(info));
    check(`${c} getPhoneInformation: provider is a string`, typeof info.provider === 'string', show(info));
    check(`${c} getPhoneInformation: type is one of voip, landline, cellphone, unknown`,
      ['voip', 'landline', 'cellphone', 'unknown'].includes(info.type), show(info));
  }
}

// phones runs a node-authy phones() method, whose callbacks are (err, body).
function phonesCall(authy, method, ...args) {
  return new Promise((resolve) => authy.phones()[method](...args, (err, body) => resolve({ err, body })));
}

async function phonesNodeAuthy() {
  const authy = require('authy')(key, url);
  const c = 'authy phones';
  const to = '+1' + PV_NODE_PHONE.replace(/-/g, '');

  const started = await phonesCall(authy, 'verification_start', PV_NODE_PHONE, '1', 'sms');
  check(`${c} verification_start sms`, !started.err && started.body && started.body.success === true &&
    typeof started.body.message === 'string' && started.body.message.startsWith('Text message sent to'), show(started));

  const pending = await phonesCall(authy, 'verification_status', PV_NODE_PHONE, '1');
  check(`${c} verification_status: pending`, !pending.err && pending.body && pending.body.success === true &&
    pending.body.message === 'Phone Verification status.' && pending.body.status === 'pending', show(pending));

  const code = await step(`${c} oracle: SMS code for ${to}`, () => codeFor(to, 'sms'));
  if (code) {
    const wrong = await phonesCall(authy, 'verification_check', PV_NODE_PHONE, '1', otherCode(code));
    check(`${c} verification_check wrong code fails with error_code 60022`, !!wrong.err && !wrong.body &&
      wrong.err.error_code === '60022' && wrong.err.message === 'Verification code is incorrect' && wrong.err.success === false,
      show(wrong));

    const ok = await phonesCall(authy, 'verification_check', PV_NODE_PHONE, '1', code);
    check(`${c} verification_check right code`, !ok.err && ok.body && ok.body.success === true &&
      ok.body.message === 'Verification code is correct.', show(ok));

    const verified = await phonesCall(authy, 'verification_status', PV_NODE_PHONE, '1');
    check(`${c} verification_status: verified`, !verified.err && verified.body && verified.body.success === true &&
      verified.body.status === 'verified', show(verified));
  }

  const info = await phonesCall(authy, 'info', PV_NODE_PHONE, '1');
  check(`${c} info`, !info.err && info.body && info.body.success === true &&
    /^Phone number information as of \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/.test(info.body.message) &&
    typeof info.body.ported === 'boolean' && typeof info.body.provider === 'string' && typeof info.body.type === 'string', show(info));
}

// ---- OneTouch: the authenticator, the customer's callback endpoint ---------------------------

// How long to wait for a callback the server should be sending; once one has not come, later
// waits are short, so that a server that sends none fails in seconds, not minutes.
const CALLBACK_WAIT_MS = 15000;
const CALLBACK_WAIT_AFTER_MISS_MS = 3000;
let callbackMissed = false;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const same = require('util').isDeepStrictEqual;

// sameHash compares a details hash; an empty one may come back as {} or null (both occur in
// Authy's own callbacks, spec 4.3).
function sameHash(got, want) {
  if (Object.keys(want).length === 0 && got === null) return true;
  return same(got, want);
}

// withTimeout settles like p, or rejects once ms have passed.
function withTimeout(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// jsonRequest sends a JSON request to the server and returns its status, text and parsed body.
async function jsonRequest(method, path, { headers = {}, body } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(url + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    parsed = undefined;
  }
  return { status: res.status, text, body: parsed };
}

// setCallback points application 1's OneTouch callbacks at target, sent with method (POST: JSON
// body; GET: canonical query), through the test's oracle (`twofold app update`).
async function setCallback(target, method) {
  const res = await fetch(`${oracle}/callback-url?url=${encodeURIComponent(target)}&method=${method}`, { method: 'POST' });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`oracle: set callback URL: ${res.status} ${text}`);
  return text;
}

// Device is the user's authenticator on Twofold's device API: an ECDSA P-256 key pair, and the
// access token it got by registering its public key with a token from sdk/registrations.
class Device {
  constructor(privateKey, registration) {
    this.privateKey = privateKey;
    this.registration = registration;
    this.token = registration.access_token;
    this.id = registration.device && registration.device.id;
  }

  call(method, path, body) {
    return jsonRequest(method, `/device/v1${path}`, { headers: { Authorization: `Bearer ${this.token}` }, body });
  }

  pending() {
    return this.call('GET', '/approval_requests?status=pending');
  }

  // answer signs ["twofold-onetouch-v1", uuid, status, timestamp, number, reason] joined by
  // newlines with the device key (DER or, with dsaEncoding 'ieee-p1363', raw r||s) and sends it.
  answer(uuid, status, { reason = '', number = '', dsaEncoding = 'der' } = {}) {
    const timestamp = Math.floor(Date.now() / 1000);
    const msg = ['twofold-onetouch-v1', uuid, status, String(timestamp), number, reason].join('\n');
    const signature = crypto.sign('sha256', Buffer.from(msg, 'utf8'), { key: this.privateKey, dsaEncoding }).toString('base64');
    const body = { status, timestamp, signature };
    if (number) body.number = number;
    if (reason) body.reason = reason;
    return this.call('POST', `/approval_requests/${encodeURIComponent(uuid)}`, body);
  }
}

// registerDevice gets a registration token for authyId with the app's API key (no client library
// has a method for sdk/registrations) and registers a fresh key pair with it.
async function registerDevice(authyId, name) {
  const tok = await jsonRequest('POST', '/protected/json/sdk/registrations', {
    headers: { 'X-Authy-API-Key': key }, body: { authy_id: authyId },
  });
  if (tok.status !== 200 || !tok.body || typeof tok.body.registration_token !== 'string') {
    throw new Error(`sdk/registrations: HTTP ${tok.status} ${tok.text}`);
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const reg = await jsonRequest('POST', '/device/v1/registrations', {
    body: {
      registration_token: tok.body.registration_token,
      public_key: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      name,
      os_type: 'node',
    },
  });
  if (reg.status !== 200 || !reg.body || typeof reg.body.access_token !== 'string') {
    throw new Error(`device/v1/registrations: HTTP ${reg.status} ${reg.text}`);
  }
  return new Device(privateKey, reg.body);
}

// callbackReceiver is the customer's OneTouch callback endpoint on 127.0.0.1:0. Every request is
// handed to authy-client's verifyCallback the way an express app hands it req: body (the JSON
// body for POST; the parsed query for GET, as req.query), headers (lower-case names, as node
// gives them), method, protocol, hostname, url (path and query). It records the outcome and
// answers 200 either way, so the server does not retry.
async function callbackReceiver() {
  const { Client } = require('authy-client');
  const verifier = new Client({ key }, { host: url });
  const all = [];
  let waiters = [];

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const cb = { method: req.method, url: req.url, headers: req.headers, raw, query: '', verified: false };
      try {
        const q = req.url.indexOf('?');
        cb.query = q < 0 ? '' : req.url.slice(q + 1);
        const query = qs.parse(cb.query);
        cb.body = req.method === 'POST' ? JSON.parse(raw) : query;
        cb.request = {
          body: cb.body,
          headers: req.headers,
          host: req.headers.host,
          hostname: String(req.headers.host).replace(/:\d+$/, ''),
          method: req.method,
          originalUrl: req.url,
          path: q < 0 ? req.url : req.url.slice(0, q),
          protocol: 'http',
          query,
          url: req.url,
        };
        await verifier.verifyCallback(cb.request);
        cb.verified = true;
      } catch (e) {
        cb.error = describe(e);
      }
      all.push(cb);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('OK');
      const uuid = cb.body && cb.body.uuid;
      const ready = waiters.filter((w) => w.uuid === uuid);
      waiters = waiters.filter((w) => w.uuid !== uuid);
      for (const w of ready) w.resolve(cb);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  check(`callback receiver: listening on ${base}`, true);

  return {
    url: base,
    all,
    verifier,
    // waitFor resolves with the first callback for uuid, whether it came already or comes later.
    waitFor(uuid, what) {
      const have = all.find((cb) => cb.body && cb.body.uuid === uuid);
      if (have) return Promise.resolve(have);
      const ms = callbackMissed ? CALLBACK_WAIT_AFTER_MISS_MS : CALLBACK_WAIT_MS;
      return withTimeout(new Promise((resolve) => waiters.push({ uuid, resolve })), ms, what).catch((e) => {
        waiters = waiters.filter((w) => w.uuid !== uuid);
        callbackMissed = true;
        throw e;
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

// checkPostCallback checks a POST callback: verified by authy-client, and carrying the request's
// data (spec 4.3); then that authy-client rejects it once altered or under another key.
async function checkPostCallback(name, receiver, cb, want) {
  check(`${name}: POST ${want.path}`, cb.method === 'POST' && cb.url === want.path, `${cb.method} ${cb.url}`);
  check(`${name}: Content-Type application/json`, /^application\/json/.test(cb.headers['content-type'] || ''), cb.headers['content-type']);
  check(`${name}: X-Authy-Signature and X-Authy-Signature-Nonce present`,
    typeof cb.headers['x-authy-signature'] === 'string' && /^\d+$/.test(cb.headers['x-authy-signature-nonce'] || ''), show(cb.headers));
  check(`${name}: authy-client verifyCallback accepts it`, cb.verified, cb.error);
  const b = cb.body || {};
  const ar = b.approval_request || {};
  const tx = ar.transaction || {};
  check(`${name}: status ${want.status}, uuid, callback_action`,
    b.status === want.status && b.uuid === want.uuid && b.callback_action === 'approval_request_status' && tx.status === want.status && tx.uuid === want.uuid,
    cb.raw);
  check(`${name}: authy_id ${want.authyId}, device_uuid "${want.deviceId}"`, b.authy_id === want.authyId && b.device_uuid === String(want.deviceId), cb.raw);
  check(`${name}: signature is a string`, typeof b.signature === 'string' && b.signature.length > 0, cb.raw);
  check(`${name}: transaction message, details, hidden_details`,
    tx.message === want.message && sameHash(tx.details, want.details) && sameHash(tx.hidden_details, want.hidden), cb.raw);
  check(`${name}: transaction reason ${show(want.reason)}`, tx.reason === want.reason, cb.raw);
  check(`${name}: logos ${want.logos === null ? 'null' : 'as sent'}`, same(ar.logos, want.logos), cb.raw);

  if (!cb.request) return;
  // Negative controls: the verification is real.
  const altered = { ...cb.request, body: { ...cb.body, status: want.status === 'approved' ? 'denied' : 'approved' } };
  const e1 = await rejects(`${name}: verifyCallback of the callback with its status flipped`, () => receiver.verifier.verifyCallback(altered));
  if (e1) check(`${name}: verifyCallback rejects it with its status flipped (Signature)`, signatureViolation(e1), describe(e1));
  const { Client } = require('authy-client');
  const otherKey = new Client({ key: 'x'.repeat(32) }, { host: url });
  const e2 = await rejects(`${name}: verifyCallback under another API key`, () => otherKey.verifyCallback(cb.request));
  if (e2) check(`${name}: verifyCallback rejects it under another API key (Signature)`, signatureViolation(e2), describe(e2));
}

// signatureViolation tells whether authy-client's ValidationFailedError is about the signature.
function signatureViolation(e) {
  const v = e && e.errors && e.errors.headers && e.errors.headers['x-authy-signature'];
  return e.name === 'ValidationFailedError' && Array.isArray(v) && v.some((x) => x.__class__ === 'Violation' && x.assert && x.assert.__class__ === 'Signature');
}

// checkApproval checks the approval_request of a getApprovalRequest/check_approval_status answer.
function checkApproval(name, ar, want) {
  if (!check(`${name}: approval_request present`, ar && typeof ar === 'object', show(ar))) return;
  check(`${name}: status ${want.status}`, ar.status === want.status, show(ar));
  check(`${name}: uuid, _authy_id, _user_email`, ar.uuid === want.uuid && ar._authy_id === want.authyId && ar._user_email === want.email, show(ar));
  if (want.status === 'pending') {
    check(`${name}: processed_at null`, ar.processed_at === null, show(ar));
  } else {
    check(`${name}: processed_at is an ISO time`, ISO_RE.test(ar.processed_at || ''), show(ar));
  }
  check(`${name}: created_at, updated_at are ISO times`, ISO_RE.test(ar.created_at || '') && ISO_RE.test(ar.updated_at || ''), show(ar));
  if (want.notified !== undefined) check(`${name}: notified ${want.notified}`, ar.notified === want.notified, show(ar));
  if (want.ttl !== undefined) check(`${name}: seconds_to_expire ${want.ttl}`, ar.seconds_to_expire === want.ttl, show(ar));
  if (want.message !== undefined) {
    check(`${name}: message, details, hidden_details as sent`,
      ar.message === want.message && sameHash(ar.details, want.details) && sameHash(ar.hidden_details, want.hidden), show(ar));
  }
  if (want.logos !== undefined) check(`${name}: logos as sent`, same(ar.logos, want.logos), show(ar));
  if (want.reason !== undefined) check(`${name}: reason ${show(want.reason)}`, ar.reason === want.reason, show(ar));
}

// ---- OneTouch with authy-client 1.1.4 ---------------------------------------------------------

async function oneTouchAuthyClient(receiver) {
  const { Client } = require('authy-client');
  const client = new Client({ key }, { host: url });
  const c = 'authy-client OneTouch';
  const email = 'compat-ot@example.com';

  const reg = await step(`${c}: registerUser`, () => client.registerUser({ countryCode: 'US', email, phone: '(201) 555-0188' }));
  if (!reg) return;
  const authyId = reg.user.id;

  // Without a device the customer is told to fall back to SMS (spec 4.1: 60050).
  const noDevice = await rejects(`${c}: createApprovalRequest without a device`, () =>
    client.createApprovalRequest({ authyId, message: 'Login requested' }));
  if (noDevice) {
    check(`${c}: createApprovalRequest without a device: HttpError 400, error_code 60050`,
      noDevice.code === 400 && (noDevice.body || {}).error_code === '60050' && (noDevice.body || {}).success === false, describe(noDevice));
  }

  const postPath = '/authy/callback?source=compat';
  const configured = await step(`${c}: oracle: callback POST ${receiver.url}${postPath}`, () => setCallback(receiver.url + postPath, 'POST'));
  if (configured === undefined) return;

  const phone = await step(`${c}: device registers (sdk/registrations token, P-256 SPKI key)`, () => registerDevice(authyId, 'compat phone'));
  if (!phone) return;
  const r = phone.registration;
  check(`${c}: device registration: device.id, access_token, totp`,
    Number.isInteger(phone.id) && typeof r.totp === 'object' && typeof r.totp.secret === 'string' && /^otpauth:\/\/totp\//.test(r.totp.uri || ''), show(r));

  const st = await step(`${c}: getUserStatus with a device`, () => client.getUserStatus({ authyId }));
  if (st) check(`${c}: getUserStatus: registered, devices ["node"]`, st.status.registered === true && same(st.status.devices, ['node']), show(st));

  // 1. Approved, with details, hidden details and a logo; a POST callback.
  const visible = { 'Account Number': '981266321', location: 'California, USA', username: 'Bill Smith' };
  const hidden = { ip_address: '10.10.3.203' };
  const logos = [{ res: 'default', url: 'https://example.com/a.png' }];
  const message = 'Login requested for a CapTrade Bank account.';
  const created = await step(`${c}: createApprovalRequest`, () =>
    client.createApprovalRequest({ authyId, details: { hidden, visible }, logos, message }, { ttl: 120 }));
  if (!created) return;
  const uuid = created.approval_request.uuid;
  check(`${c}: createApprovalRequest: uuid ${uuid}`, UUID_RE.test(uuid), show(created));
  const want = { uuid, authyId, email, message, details: visible, hidden, logos, ttl: 120 };

  const pending = await step(`${c}: getApprovalRequest while pending`, () => client.getApprovalRequest({ id: uuid }));
  if (pending) checkApproval(`${c}: getApprovalRequest while pending`, pending.approval_request, { ...want, status: 'pending', notified: false });

  const list = await step(`${c}: device lists pending requests`, () => phone.pending());
  if (list) {
    const views = (list.body && list.body.approval_requests) || [];
    const view = views.find((v) => v.uuid === uuid);
    check(`${c}: device sees the request: message, details, logo`,
      list.status === 200 && views.length === 1 && view && view.message === message && same(view.details, visible) && same(view.logos, logos), list.text);
    check(`${c}: device does not see hidden details`, !list.text.includes('10.10.3.203') && !list.text.includes('hidden'), list.text);
  }
  const seen = await step(`${c}: getApprovalRequest once the device saw it`, () => client.getApprovalRequest({ id: uuid }));
  if (seen) check(`${c}: getApprovalRequest: notified true once the device saw it`, seen.approval_request.notified === true, show(seen));

  const approve = await step(`${c}: device approves (DER signature)`, () => phone.answer(uuid, 'approved'));
  if (approve) {
    check(`${c}: device approves: HTTP 200, status approved`,
      approve.status === 200 && approve.body.approval_request && approve.body.approval_request.status === 'approved', approve.text);
  }
  const approved = await step(`${c}: getApprovalRequest after approval`, () => client.getApprovalRequest({ id: uuid }));
  if (approved) checkApproval(`${c}: getApprovalRequest after approval`, approved.approval_request, { ...want, status: 'approved', notified: true });

  const cb1 = await step(`${c}: approved callback arrives`, () => receiver.waitFor(uuid, 'the approved callback'));
  if (cb1) {
    await checkPostCallback(`${c}: approved callback`, receiver, cb1,
      { ...want, status: 'approved', deviceId: phone.id, path: postPath, reason: '' });
  }

  // 2. Denied with a reason, signed in raw r||s form; no logos, no ttl (the server's default of
  // one day); special characters in the details go through the signature's canonical encoding.
  const visible2 = { amount: '$500.00', recipient: 'Café Zoë / ACME', reference: 'a+b=c&d (50%)' };
  const message2 = 'Transfer $500';
  const reason = 'I did not request this';
  const created2 = await step(`${c}: createApprovalRequest without logos or ttl`, () =>
    client.createApprovalRequest({ authyId, details: { visible: visible2 }, message: message2 }));
  if (!created2) return;
  const uuid2 = created2.approval_request.uuid;
  const want2 = { uuid: uuid2, authyId, email, message: message2, details: visible2, hidden: {}, ttl: 86400 };
  const pending2 = await step(`${c}: getApprovalRequest (2) while pending`, () => client.getApprovalRequest({ id: uuid2 }));
  if (pending2) checkApproval(`${c}: getApprovalRequest (2) while pending`, pending2.approval_request, { ...want2, status: 'pending' });

  const deny = await step(`${c}: device denies with a reason (raw r||s signature)`, () =>
    phone.answer(uuid2, 'denied', { reason, dsaEncoding: 'ieee-p1363' }));
  if (deny) {
    check(`${c}: device denies: HTTP 200, status denied`,
      deny.status === 200 && deny.body.approval_request && deny.body.approval_request.status === 'denied', deny.text);
  }
  const denied = await step(`${c}: getApprovalRequest after denial`, () => client.getApprovalRequest({ id: uuid2 }));
  if (denied) checkApproval(`${c}: getApprovalRequest after denial`, denied.approval_request, { ...want2, status: 'denied', reason });

  const again = await step(`${c}: device answers the denied request again`, () => phone.answer(uuid2, 'approved'));
  if (again) {
    check(`${c}: a second answer is refused: HTTP 409, error_code 60079`,
      again.status === 409 && again.body && again.body.error_code === '60079' && again.body.success === false, again.text);
  }

  const cb2 = await step(`${c}: denied callback arrives`, () => receiver.waitFor(uuid2, 'the denied callback'));
  if (cb2) {
    await checkPostCallback(`${c}: denied callback`, receiver, cb2,
      { ...want2, status: 'denied', deviceId: phone.id, path: postPath, reason, logos: null });
  }

  // 3. GET mode: the same fields in the query string. authy-client skips verification of GET
  // callbacks (its SignatureAssert returns true for GET; README "GET requests cannot be
  // validated"), so the signature is also checked here by the algorithm of spec 4.4.
  const getPath = '/authy/callback-get';
  const configuredGet = await step(`${c}: oracle: callback GET ${receiver.url}${getPath}`, () => setCallback(receiver.url + getPath, 'GET'));
  if (configuredGet === undefined) return;
  const created3 = await step(`${c}: createApprovalRequest (GET callback)`, () =>
    client.createApprovalRequest({ authyId, details: { visible: { username: 'Bill Smith' } }, logos, message: 'Login (GET callback)' }, { ttl: 120 }));
  if (!created3) return;
  const uuid3 = created3.approval_request.uuid;
  const approve3 = await step(`${c}: device approves (GET callback)`, () => phone.answer(uuid3, 'approved'));
  if (approve3) check(`${c}: device approves (GET callback): HTTP 200`, approve3.status === 200, approve3.text);
  const approved3 = await step(`${c}: getApprovalRequest (GET callback) after approval`, () => client.getApprovalRequest({ id: uuid3 }));
  if (approved3) check(`${c}: getApprovalRequest (GET callback): approved`, approved3.approval_request.status === 'approved', show(approved3));

  const cb3 = await step(`${c}: GET callback arrives`, () => receiver.waitFor(uuid3, 'the GET callback'));
  if (cb3) {
    const params = new URLSearchParams(cb3.query);
    check(`${c}: GET callback: GET ${getPath}?..., no body`, cb3.method === 'GET' && cb3.url.startsWith(getPath + '?') && cb3.raw === '', `${cb3.method} ${cb3.url} ${show(cb3.raw)}`);
    check(`${c}: GET callback: query has status=approved`, params.get('status') === 'approved' && params.getAll('status').length === 1, cb3.query);
    check(`${c}: GET callback: query has uuid, authy_id, callback_action, device_uuid`,
      params.get('uuid') === uuid3 && params.get('authy_id') === String(authyId) &&
      params.get('callback_action') === 'approval_request_status' && params.get('device_uuid') === String(phone.id), cb3.query);
    const tx = ((cb3.body || {}).approval_request || {}).transaction || {};
    check(`${c}: GET callback: bracketed approval_request[transaction][...] parses back (qs)`,
      tx.message === 'Login (GET callback)' && same(tx.details, { username: 'Bill Smith' }) && tx.status === 'approved', show(cb3.body));
    check(`${c}: GET callback: authy-client verifyCallback accepts it`, cb3.verified, cb3.error);
    if (cb3.request) {
      const forged = { ...cb3.request, headers: { ...cb3.request.headers, 'x-authy-signature': 'forged' } };
      const skipped = await step(`${c}: GET callback: verifyCallback with a forged signature`, () => receiver.verifier.verifyCallback(forged));
      check(`${c}: GET callback: authy-client skips signature verification for GET (a forged signature passes)`, skipped === forged, show(skipped));
    }
    const nonce = cb3.headers['x-authy-signature-nonce'];
    const data = `${nonce}|GET|${receiver.url}${getPath}|${cb3.query}`;
    const expected = crypto.createHmac('sha256', key).update(data).digest('base64');
    check(`${c}: GET callback: X-Authy-Signature = HMAC-SHA256(key, nonce|GET|url|query) (spec 4.4, checked here)`,
      cb3.headers['x-authy-signature'] === expected, `got ${cb3.headers['x-authy-signature']}, want ${expected} over ${data}`);
  }
  await step(`${c}: oracle: callback back to POST`, () => setCallback(receiver.url + postPath, 'POST'));

  // 4. ttl 0: "If set to `0`, the approval request won't expire" (authy-client README,
  // createApprovalRequest options.ttl; spec 4.1: "0 will never expire"). It must be answerable.
  const created4 = await step(`${c}: createApprovalRequest with ttl 0 (never expires)`, () =>
    client.createApprovalRequest({ authyId, message: 'Login (never expires)' }, { ttl: 0 }));
  if (!created4) return;
  const uuid4 = created4.approval_request.uuid;
  const want4 = { uuid: uuid4, authyId, email, message: 'Login (never expires)', details: {}, hidden: {}, ttl: 0 };
  const pending4 = await step(`${c}: getApprovalRequest (ttl 0) while pending`, () => client.getApprovalRequest({ id: uuid4 }));
  if (pending4) checkApproval(`${c}: getApprovalRequest (ttl 0) while pending`, pending4.approval_request, { ...want4, status: 'pending' });
  const approve4 = await step(`${c}: device approves the ttl 0 request`, () => phone.answer(uuid4, 'approved'));
  const answered4 = !!approve4 && check(`${c}: device approves the ttl 0 request: HTTP 200, status approved`,
    approve4.status === 200 && !!approve4.body.approval_request && approve4.body.approval_request.status === 'approved', approve4.text);
  const approved4 = await step(`${c}: getApprovalRequest (ttl 0) after approval`, () => client.getApprovalRequest({ id: uuid4 }));
  if (approved4) checkApproval(`${c}: getApprovalRequest (ttl 0) after approval`, approved4.approval_request, { ...want4, status: 'approved' });
  if (answered4) {
    const cb4 = await step(`${c}: ttl 0 approved callback arrives`, () => receiver.waitFor(uuid4, 'the ttl 0 callback'));
    if (cb4) {
      await checkPostCallback(`${c}: ttl 0 approved callback`, receiver, cb4,
        { ...want4, status: 'approved', deviceId: phone.id, path: postPath, reason: '', logos: null });
    }
  }
}

// ---- OneTouch with npm authy 1.4.0 (node-authy) -----------------------------------------------

async function oneTouchNodeAuthy(receiver) {
  const authy = require('authy')(key, url);
  const c = 'authy OneTouch';
  const email = 'compat-ot-b@example.com';
  const postPath = '/authy/node-authy';
  const configured = await step(`${c}: oracle: callback POST ${receiver.url}${postPath}`, () => setCallback(receiver.url + postPath, 'POST'));
  if (configured === undefined) return;

  const reg = await call(authy, 'register_user', email, '775-461-5610', '1', false);
  if (!check(`${c}: register_user`, !reg.err && reg.body && reg.body.user && typeof reg.body.user.id === 'number', show(reg))) return;
  const id = reg.body.user.id;
  const phone = await step(`${c}: device registers`, () => registerDevice(id, 'compat phone b'));
  if (!phone) return;

  // send_approval_request(id, user_payload {message, details, seconds_to_expire}, hidden_details,
  // logos, callback): a form body with details[...] and indexed logos[N][res|url].
  const details = { 'Account Number': '123', location: 'Lisbon, PT' };
  const hidden = { ip: '1.2.3.4' };
  const logos = [{ res: 'default', url: 'https://example.com/a.png' }, { res: 'low', url: 'https://example.com/b.png' }];
  const message = 'Login requested';
  const sent = await call(authy, 'send_approval_request', id, { message, details, seconds_to_expire: 120 }, hidden, logos);
  if (!check(`${c}: send_approval_request`,
    !sent.err && sent.body && sent.body.success === true && sent.body.approval_request && UUID_RE.test(sent.body.approval_request.uuid || ''), show(sent))) return;
  const uuid = sent.body.approval_request.uuid;
  const want = { uuid, authyId: id, email, message, details, hidden, logos, ttl: 120 };

  const st = await call(authy, 'check_approval_status', uuid);
  if (check(`${c}: check_approval_status while pending`, !st.err && st.body && st.body.success === true, show(st))) {
    checkApproval(`${c}: check_approval_status while pending`, st.body.approval_request, { ...want, status: 'pending', notified: false });
  }

  const approve = await step(`${c}: device approves`, () => phone.answer(uuid, 'approved'));
  if (approve) check(`${c}: device approves: HTTP 200`, approve.status === 200, approve.text);
  const st2 = await call(authy, 'check_approval_status', uuid);
  if (check(`${c}: check_approval_status after approval`, !st2.err && st2.body && st2.body.success === true, show(st2))) {
    checkApproval(`${c}: check_approval_status after approval`, st2.body.approval_request, { ...want, status: 'approved' });
  }
  const cb = await step(`${c}: approved callback arrives`, () => receiver.waitFor(uuid, 'the approved callback'));
  if (cb) {
    await checkPostCallback(`${c}: approved callback (verified with authy-client)`, receiver, cb,
      { ...want, status: 'approved', deviceId: phone.id, path: postPath, reason: '' });
  }

  // Denied, with no details, hidden details or logos.
  const sent2 = await call(authy, 'send_approval_request', id, { message: 'Second login' }, null, null);
  if (!check(`${c}: send_approval_request without details or logos`,
    !sent2.err && sent2.body && sent2.body.approval_request && UUID_RE.test(sent2.body.approval_request.uuid || ''), show(sent2))) return;
  const uuid2 = sent2.body.approval_request.uuid;
  const deny = await step(`${c}: device denies`, () => phone.answer(uuid2, 'denied'));
  if (deny) check(`${c}: device denies: HTTP 200`, deny.status === 200, deny.text);
  const st3 = await call(authy, 'check_approval_status', uuid2);
  if (check(`${c}: check_approval_status after denial`, !st3.err && st3.body && st3.body.success === true, show(st3))) {
    checkApproval(`${c}: check_approval_status after denial`, st3.body.approval_request,
      { uuid: uuid2, authyId: id, email, status: 'denied', message: 'Second login', details: {}, hidden: {}, ttl: 86400 });
  }
  const cb2 = await step(`${c}: denied callback arrives`, () => receiver.waitFor(uuid2, 'the denied callback'));
  if (cb2) {
    await checkPostCallback(`${c}: denied callback (verified with authy-client)`, receiver, cb2,
      { uuid: uuid2, authyId: id, message: 'Second login', details: {}, hidden: {}, logos: null, status: 'denied', deviceId: phone.id, path: postPath, reason: '' });
  }

  const unknown = await call(authy, 'check_approval_status', '00000000-0000-0000-0000-000000000000');
  check(`${c}: check_approval_status of an unknown uuid fails with error_code 60049`,
    !!unknown.err && !unknown.body && unknown.err.error_code === '60049' && unknown.err.success === false, show(unknown));
}

async function main() {
  console.log(`node ${process.version}, server ${url}`);
  await step('authy-client flow', authyClient);
  await step('authy flow', nodeAuthy);
  await step('authy-client phone verification flow', phonesAuthyClient);
  await step('authy phone verification flow', phonesNodeAuthy);
  const receiver = await step('callback receiver: listen on 127.0.0.1:0', () => callbackReceiver());
  if (receiver) {
    try {
      await step('authy-client OneTouch flow', () => oneTouchAuthyClient(receiver));
      await step('authy OneTouch flow', () => oneTouchNodeAuthy(receiver));
      const bad = receiver.all.filter((cb) => !cb.verified);
      check(`callbacks: all ${receiver.all.length} callbacks received passed authy-client verifyCallback`,
        receiver.all.length > 0 && bad.length === 0,
        show(bad.map((cb) => ({ method: cb.method, url: cb.url, error: cb.error, body: cb.raw }))));
    } finally {
      await receiver.close();
    }
  }
  if (checks === 0) check('any check ran', false);
  if (failures > 0) {
    console.log(`${failures} of ${checks} checks FAILED`);
    process.exit(1);
  }
  console.log(`ALL CHECKS PASSED (${checks})`);
}

main().catch((e) => {
  console.log(`FAIL unexpected error: ${describe(e)}`);
  process.exit(1);
});
