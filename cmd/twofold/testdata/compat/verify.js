'use strict';

// Drives a running Twofold server's Twilio Verify v2 API with the official twilio package from
// the npm registry (6.3.1), changing only where it sends requests: client.verify.baseUrl, the
// public property of the Verify domain (src/base/Domain.ts), as docs/verify-v2.md tells Node
// applications to do. Started by TestTwilioVerifyCompat (cmd/twofold/compat_verify_test.go),
// which passes:
//
//   TWOFOLD_URL          base URL of the server (http://127.0.0.1:PORT)
//   TWILIO_ACCOUNT_SID   the application's account SID (twofold app twilio-credentials create)
//   TWILIO_AUTH_TOKEN    its auth token
//   TWILIO_API_KEY       an API key SID (twofold app twilio-credentials create-key)
//   TWILIO_API_SECRET    its secret
//   TWOFOLD_ORACLE       base URL of the test's oracle: GET /code?to=+1... answers with the
//                        newest code sent to that recipient, as read from `twofold outbox`
//
// Prints one line per check ("ok   ..." or "FAIL ...") and exits non-zero if any check failed.
// The last line is "ALL CHECKS PASSED" when everything passed.

const crypto = require('crypto');
const http = require('http');
const twilio = require('twilio');

const base = mustEnv('TWOFOLD_URL');
const accountSid = mustEnv('TWILIO_ACCOUNT_SID');
const authToken = mustEnv('TWILIO_AUTH_TOKEN');
const apiKey = mustEnv('TWILIO_API_KEY');
const apiSecret = mustEnv('TWILIO_API_SECRET');
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

// pointed makes a client as an application would, and points its Verify domain at Twofold:
// the one line an existing Verify application adds.
function pointed(username, password, opts) {
  const client = twilio(username, password, opts);
  client.verify.baseUrl = base;
  return client;
}

// rejects runs fn, which must fail with a RestException of the given HTTP status and code.
async function rejects(name, fn, status, code) {
  try {
    const v = await fn();
    check(name, false, `succeeded: ${show(v)}`);
  } catch (e) {
    check(name, e.status === status && e.code === code && typeof e.message === 'string' && e.message !== '' &&
      e.moreInfo === `https://www.twilio.com/docs/errors/${code}`, `${e.status} ${e.code} ${e.message} ${e.moreInfo}`);
  }
}

function codeFor(to) {
  return new Promise((resolve, reject) => {
    http.get(`${oracle}/code?to=${encodeURIComponent(to)}`, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`oracle ${res.statusCode}: ${body}`))));
    }).on('error', reject);
  });
}

function wrong(code) {
  return String((Number(code[0]) + 1) % 10) + code.slice(1);
}

async function services(client) {
  const svc = await client.verify.v2.services.create({
    friendlyName: 'Compat Shop', codeLength: 6, lookupEnabled: true, 'totp.issuer': 'Compat Inc', 'totp.timeStep': 30,
    'push.includeDate': false, customCodeEnabled: false,
  });
  check('services.create: a VA sid and the account', /^VA[0-9a-f]{32}$/.test(svc.sid) && svc.accountSid === accountSid, show(svc));
  check('services.create: settings echoed', svc.friendlyName === 'Compat Shop' && svc.codeLength === 6 && svc.lookupEnabled === true &&
    svc.totp.issuer === 'Compat Inc' && svc.totp.time_step === 30 && svc.dtmfInputRequired === true, show(svc));
  check('services.create: dates parsed', svc.dateCreated instanceof Date && !isNaN(svc.dateCreated.getTime()), show(svc.dateCreated));
  check('services.create: url and links', svc.url.startsWith(base + '/v2/Services/' + svc.sid) &&
    svc.links.verifications === svc.url + '/Verifications', show(svc.links));

  const fetched = await client.verify.v2.services(svc.sid).fetch();
  check('services(sid).fetch', fetched.sid === svc.sid && fetched.friendlyName === 'Compat Shop', show(fetched));
  const updated = await client.verify.v2.services(svc.sid).update({ friendlyName: 'Compat Renamed', doNotShareWarningEnabled: true });
  check('services(sid).update', updated.friendlyName === 'Compat Renamed' && updated.doNotShareWarningEnabled === true &&
    updated.codeLength === 6, show(updated));

  const extra = [];
  for (let i = 0; i < 3; i++) {
    extra.push((await client.verify.v2.services.create({ friendlyName: `Compat ${i}` })).sid);
  }
  const listed = await client.verify.v2.services.list({ pageSize: 2 });
  const sids = listed.map((s) => s.sid);
  check('services.list pages through next_page_url', [svc.sid, ...extra].every((s) => sids.includes(s)) && sids.length === 4,
    show(sids));
  const page = await client.verify.v2.services.page({ pageSize: 2 });
  check('services.page: two and a next page', page.instances.length === 2 && typeof page.nextPageUrl === 'string', show(page.nextPageUrl));

  check('services(sid).remove', (await client.verify.v2.services(extra[0]).remove()) === true);
  await rejects('services(sid).fetch after remove: 20404', () => client.verify.v2.services(extra[0]).fetch(), 404, 20404);
  await rejects('services.create without a valid CodeLength: 60200',
    () => client.verify.v2.services.create({ friendlyName: 'Bad', codeLength: 11 }), 400, 60200);
  return svc.sid;
}

async function verifications(client, serviceSid) {
  const svc = client.verify.v2.services(serviceSid);
  const to = '+12015550142';
  const v = await svc.verifications.create({ to, channel: 'sms' });
  check('verifications.create: pending, a VE sid', /^VE[0-9a-f]{32}$/.test(v.sid) && v.status === 'pending' && v.valid === false &&
    v.to === to && v.channel === 'sms' && v.serviceSid === serviceSid && v.accountSid === accountSid, show(v));
  check('verifications.create: one send attempt', Array.isArray(v.sendCodeAttempts) && v.sendCodeAttempts.length === 1 &&
    /^VL[0-9a-f]{32}$/.test(v.sendCodeAttempts[0].attempt_sid), show(v.sendCodeAttempts));
  const code = await codeFor(to);
  check('the code is in twofold outbox', /^\d{6}$/.test(code), code);

  const again = await svc.verifications.create({ to, channel: 'sms' });
  check('a second send within its life: the same verification and code',
    again.sid === v.sid && again.sendCodeAttempts.length === 2 && (await codeFor(to)) === code, show(again));

  const fetched = await svc.verifications(v.sid).fetch();
  check('verifications(sid).fetch', fetched.sid === v.sid && fetched.status === 'pending', show(fetched));

  const bad = await svc.verificationChecks.create({ to, code: wrong(code) });
  check('a wrong code: pending, not valid', bad.status === 'pending' && bad.valid === false && bad.sid === v.sid, show(bad));
  const good = await svc.verificationChecks.create({ to, code });
  check('the right code: approved, valid', good.status === 'approved' && good.valid === true && good.to === to, show(good));
  await rejects('the right code again: 20404', () => svc.verificationChecks.create({ to, code }), 404, 20404);
  await rejects('fetch once approved: 20404', () => svc.verifications(v.sid).fetch(), 404, 20404);

  // Too many: five wrong checks, then even the right code is refused with 60202.
  const to2 = '+12015550143';
  const v2 = await svc.verifications.create({ to: to2, channel: 'sms' });
  const code2 = await codeFor(to2);
  let last;
  for (let i = 0; i < 5; i++) {
    last = await svc.verificationChecks.create({ verificationSid: v2.sid, code: wrong(code2) });
  }
  check('the fifth wrong code: max_attempts_reached', last.status === 'max_attempts_reached' && last.valid === false, show(last));
  await rejects('a sixth check: 60202 (429)', () => svc.verificationChecks.create({ verificationSid: v2.sid, code: code2 }), 429, 60202);

  // Cancel one.
  const to3 = '+12015550144';
  const v3 = await svc.verifications.create({ to: to3, channel: 'call' });
  const canceled = await svc.verifications(v3.sid).update({ status: 'canceled' });
  check('verifications(sid).update canceled', canceled.status === 'canceled' && canceled.sid === v3.sid, show(canceled));
  await rejects('a canceled verification: 20404', () => svc.verificationChecks.create({ to: to3, code: '123456' }), 404, 20404);

  await rejects('a channel Twofold does not serve: 60200', () => svc.verifications.create({ to: to3, channel: 'whatsapp' }), 400, 60200);
  const email = await svc.verifications.create({ to: 'compat@example.com', channel: 'email' });
  check('an email verification', email.channel === 'email' && email.status === 'pending', show(email));
}

async function credentials(serviceSid) {
  const byKey = pointed(apiKey, apiSecret, { accountSid });
  const list = await byKey.verify.v2.services.list();
  check('an API key lists the services', list.some((s) => s.sid === serviceSid) && list.every((s) => s.accountSid === accountSid),
    show(list.map((s) => s.sid)));
  await rejects('a wrong auth token: 20003 (401)', () => pointed(accountSid, '0'.repeat(32)).verify.v2.services.list(), 401, 20003);
  const svc = await byKey.verify.v2.services.create({ friendlyName: 'Compat key' });
  check('an API key creates a service', /^VA/.test(svc.sid));
  check('an API key removes it', (await byKey.verify.v2.services(svc.sid).remove()) === true);
}

// base32 decodes RFC 4648 base32 (no padding needed).
function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// totpCode computes an RFC 6238 code, independently of Twofold: at is in seconds.
function totpCode(secret, at, digits, step, alg) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / step)));
  const h = crypto.createHmac(alg, base32(secret)).update(counter).digest();
  const off = h[h.length - 1] & 0x0f;
  const v = h.readUInt32BE(off) & 0x7fffffff;
  return String(v % 10 ** digits).padStart(digits, '0');
}

async function totpFactors(client, serviceSid) {
  const identity = 'compat-entity-0001';
  const entity = client.verify.v2.services(serviceSid).entities(identity);
  const made = await client.verify.v2.services(serviceSid).entities.create({ identity });
  check('entities.create: a YE sid', /^YE[0-9a-f]{32}$/.test(made.sid) && made.identity === identity, show(made));
  const entities = await client.verify.v2.services(serviceSid).entities.list({ pageSize: 1 });
  check('entities.list', entities.some((e) => e.identity === identity), show(entities.map((e) => e.identity)));
  const f = await entity.newFactors.create({ friendlyName: 'Compat phone', factorType: 'totp', 'config.codeLength': 8,
    'config.alg': 'sha256' });
  check('newFactors.create totp: unverified, a YF sid, an otpauth uri', /^YF[0-9a-f]{32}$/.test(f.sid) && f.status === 'unverified' &&
    f.factorType === 'totp' && f.binding.uri.startsWith('otpauth://totp/') && f.binding.uri.includes('digits=8') &&
    f.config.code_length === 8 && f.config.alg === 'sha256', show(f));
  const now = Date.now() / 1000;
  const code = (at) => totpCode(f.binding.secret, at, 8, 30, 'sha256');
  const wrongCode = wrong(code(now));
  const still = await entity.factors(f.sid).update({ authPayload: wrongCode });
  check('factors(sid).update with a wrong code: unverified', still.status === 'unverified', show(still));
  // The previous step's code (within the skew) verifies the factor; the current one stays unspent.
  const verified = await entity.factors(f.sid).update({ authPayload: code(now - 30) });
  check('factors(sid).update with a first code computed in JS: verified', verified.status === 'verified', show(verified));

  const c = await entity.challenges.create({ factorSid: f.sid, authPayload: code(now) });
  check('challenges.create with a code: approved', /^YC[0-9a-f]{32}$/.test(c.sid) && c.status === 'approved' &&
    c.factorSid === f.sid && c.dateResponded instanceof Date, show(c));
  const replay = await entity.challenges.create({ factorSid: f.sid, authPayload: code(now) });
  check('the same code for another challenge: pending (spent)', replay.status === 'pending', show(replay));
  for (let i = 0; i < 4; i++) {
    await entity.challenges(replay.sid).update({ authPayload: wrongCode });
  }
  await rejects('a sixth code for one challenge: 60308 (429)', () => entity.challenges(replay.sid).update({ authPayload: wrongCode }), 429, 60308);

  const f2 = await entity.newFactors.create({ friendlyName: 'Compat second', factorType: 'totp' });
  for (let i = 0; i < 5; i++) {
    await entity.factors(f2.sid).update({ authPayload: '000000' });
  }
  await rejects('a sixth code verifying a factor: 60310 (429)', () => entity.factors(f2.sid).update({ authPayload: '000000' }), 429, 60310);

  const listed = await entity.factors.list();
  check('factors.list', listed.length === 2 && listed.some((x) => x.sid === f.sid && x.status === 'verified'), show(listed.map((x) => x.sid)));
  const approved = await entity.challenges.list({ status: 'approved' });
  check('challenges.list by status', approved.length === 1 && approved[0].sid === c.sid, show(approved.map((x) => x.sid)));
  check('factors(sid).remove', (await entity.factors(f2.sid).remove()) === true);
  await rejects('a removed factor: 20404', () => entity.factors(f2.sid).fetch(), 404, 20404);
  const otherService = serviceSid.slice(0, -1) + (serviceSid.endsWith('0') ? '1' : '0'); // never the service itself
  await rejects('another service\'s entity: 20404', () => client.verify.v2.services(otherService).entities(identity).fetch(), 404, 20404);
}

// rawGet is the device's fetch of a challenge, as the Verify Push SDKs make it: the answer's
// headers matter (Twilio-Verify-Signature-Fields), which the helper library does not return.
function rawGet(url) {
  return new Promise((resolve, reject) => {
    const auth = Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    http.get(url, { headers: { Authorization: `Basic ${auth}` } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ headers: res.headers, body: JSON.parse(body) }));
    }).on('error', reject);
  });
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// signAnswer is what the Verify Push SDK does: a JWT, ES256 by the factor's key, over the listed
// fields and the chosen status.
function signAnswer(privateKey, fetched, status) {
  const claims = { status };
  for (const name of fetched.headers['twilio-verify-signature-fields'].split(',')) {
    claims[name] = fetched.body[name];
  }
  const input = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT' })) + '.' + b64url(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return input + '.' + b64url(sig);
}

async function pushFactors(client, serviceSid) {
  const identity = 'compat-entity-0002';
  const entity = client.verify.v2.services(serviceSid).entities(identity);
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const thief = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const f = await entity.newFactors.create({ friendlyName: 'Compat device', factorType: 'push', 'binding.alg': 'ES256',
    'binding.publicKey': publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), 'config.sdkVersion': '1.0.0',
    'config.appId': 'com.example.compat', 'config.notificationPlatform': 'none' });
  check('newFactors.create push with a P-256 key from node: unverified', f.factorType === 'push' && f.status === 'unverified' &&
    f.config.notification_platform === 'none', show(f));
  const c = await entity.challenges.create({ factorSid: f.sid, 'details.message': 'Sign in to Compat?',
    'details.fields': [{ label: 'IP', value: '192.0.2.1' }], hiddenDetails: { ip: '192.0.2.1' },
    expirationDate: new Date(Date.now() + 10 * 60 * 1000) });
  check('challenges.create push: pending with its details', c.status === 'pending' && c.details.message === 'Sign in to Compat?' &&
    c.details.fields[0].value === '192.0.2.1' && c.hiddenDetails.ip === '192.0.2.1' && c.factorType === 'push', show(c));
  const fetched = await rawGet(c.url);
  check('the device reads Twilio-Verify-Signature-Fields', typeof fetched.headers['twilio-verify-signature-fields'] === 'string', show(fetched.headers));
  await rejects('an answer signed by another key: 60200', () => entity.challenges(c.sid).update({ authPayload: signAnswer(thief.privateKey, fetched, 'approved') }), 400, 60200);
  const answer = signAnswer(privateKey, fetched, 'approved');
  const answered = await entity.challenges(c.sid).update({ authPayload: answer });
  check('challenges(sid).update with the device\'s signed answer: approved', answered.status === 'approved', show(answered));
  const read = await entity.challenges(c.sid).fetch();
  check('challenges(sid).fetch reads it back approved', read.status === 'approved' && read.dateResponded instanceof Date, show(read));
  await rejects('the same answer replayed: 60200', () => entity.challenges(c.sid).update({ authPayload: answer }), 400, 60200);
  const factor = await entity.factors(f.sid).fetch();
  check('the first approved challenge verified the factor', factor.status === 'verified', show(factor));
}

// webhooks manages a service's webhooks as an application would (deliveries are judged by
// validate-webhook.js in TestVerifyWebhooksNodeValidateRequest).
async function webhooks(client, serviceSid) {
  const hooks = client.verify.v2.services(serviceSid).webhooks;
  const hook = await hooks.create({ friendlyName: 'Compat hook', eventTypes: ['factor.created', 'challenge.approved'],
    webhookUrl: 'https://hooks.example.com/verify?x=1' });
  check('webhooks.create: a YW sid and its settings', /^YW[0-9a-f]{32}$/.test(hook.sid) && hook.serviceSid === serviceSid &&
    hook.accountSid === accountSid && hook.status === 'enabled' && hook.version === 'v2' && hook.webhookMethod === 'POST' &&
    hook.webhookUrl === 'https://hooks.example.com/verify?x=1' && show(hook.eventTypes) === show(['factor.created', 'challenge.approved']) &&
    hook.dateCreated instanceof Date, show(hook));
  const updated = await hooks(hook.sid).update({ status: 'disabled', eventTypes: ['*'], versionParam: 'v1' });
  check('webhooks(sid).update', updated.status === 'disabled' && show(updated.eventTypes) === '["*"]' && updated.version === 'v1' &&
    updated.friendlyName === 'Compat hook', show(updated));
  const fetched = await hooks(hook.sid).fetch();
  check('webhooks(sid).fetch', fetched.sid === hook.sid && fetched.status === 'disabled', show(fetched));
  const more = [];
  for (let i = 0; i < 2; i++) {
    more.push((await hooks.create({ friendlyName: `Compat hook ${i}`, eventTypes: ['*'], webhookUrl: 'https://hooks.example.com/' + i })).sid);
  }
  const listed = (await hooks.list({ pageSize: 2 })).map((h) => h.sid);
  check('webhooks.list pages through next_page_url', show(listed) === show([hook.sid, ...more]), show(listed));
  await rejects('webhooks.create with an unknown event: 60200', () => hooks.create({ friendlyName: 'Bad', eventTypes: ['factor.eaten'],
    webhookUrl: 'https://hooks.example.com/' }), 400, 60200);
  check('webhooks(sid).remove', (await hooks(hook.sid).remove()) === true);
  await rejects('a removed webhook: 20404', () => hooks(hook.sid).fetch(), 404, 20404);
}

async function main() {
  const client = pointed(accountSid, authToken);
  const serviceSid = await services(client);
  await verifications(client, serviceSid);
  await webhooks(client, serviceSid);
  await credentials(serviceSid);
  await totpFactors(client, serviceSid);
  await pushFactors(client, serviceSid);
}

main().then(() => {
  if (failures === 0) {
    console.log(`ALL CHECKS PASSED (${checks})`);
  } else {
    console.log(`${failures} of ${checks} checks FAILED`);
    process.exitCode = 1;
  }
}, (e) => {
  console.log(`FAIL uncaught: ${e && e.stack ? e.stack : show(e)}`);
  process.exitCode = 1;
});
