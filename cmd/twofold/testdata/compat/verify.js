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
