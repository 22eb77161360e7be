'use strict';

// Drives a running Twofold server with the real Authy client libraries from the npm registry:
// authy-client 1.1.4 and authy (node-authy) 1.4.0. Started by TestAuthyClientsCompat
// (cmd/twofold/compat_test.go), which passes:
//
//   TWOFOLD_URL      base URL of the server (http://127.0.0.1:PORT)
//   TWOFOLD_API_KEY  API key of an application
//   TWOFOLD_ORACLE   base URL of the test's code oracle: GET /code?to=+1... answers with the
//                    newest code sent to that recipient, as read from `twofold outbox`
//
// Prints one line per check ("ok   ..." or "FAIL ...") and exits non-zero if any check failed.
// The last line is "ALL CHECKS PASSED" when everything passed.

const crypto = require('crypto');

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

async function main() {
  console.log(`node ${process.version}, server ${url}`);
  await step('authy-client flow', authyClient);
  await step('authy flow', nodeAuthy);
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
