'use strict';

// Checks users moved into a Twofold server (by `twofold import from-authy`) through the real
// Authy client library a customer's code uses, npm authy-client 1.1.4, with only the host
// changed. Started by TestImportFromAuthyEndToEnd (cmd/twofold/import_e2e_test.go), which passes:
//
//   TWOFOLD_URL      base URL of the server the users moved to
//   TWOFOLD_API_KEY  API key of the application they moved into
//   TWOFOLD_USERS    JSON: [{"authy_id": 5, "last4": "0123", "country_code": 1,
//                    "totp": "123456" or "" (a code of the seed they had), "registered": bool}]
//
// For each user: getUserStatus (the same id, phone, whether an authenticator is registered),
// requestSms (sent: the test reads the outbox for the recipient), and, for a user with a seed,
// verifyToken with the code computed from the original seed, which must pass once and then be
// refused as a replay. Prints "ok ..." / "FAIL ..." lines and, when everything passed,
// "ALL CHECKS PASSED".

const { Client } = require('authy-client');

const url = process.env.TWOFOLD_URL;
const key = process.env.TWOFOLD_API_KEY;
const users = JSON.parse(process.env.TWOFOLD_USERS || '[]');

let failures = 0;
function check(name, cond, detail) {
  if (cond) {
    console.log(`ok   ${name}`);
  } else {
    failures++;
    console.log(`FAIL ${name}${detail === undefined ? '' : ': ' + detail}`);
  }
}

function show(v) {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
}

async function main() {
  if (!url || !key || users.length === 0) {
    console.log('FAIL environment: TWOFOLD_URL, TWOFOLD_API_KEY and TWOFOLD_USERS are required');
    process.exit(2);
  }
  const client = new Client({ key }, { host: url });
  for (const u of users) {
    const c = `user ${u.authy_id}:`;
    let st;
    try {
      st = await client.getUserStatus({ authyId: u.authy_id });
    } catch (e) {
      check(`${c} getUserStatus`, false, 'threw ' + show(e.message || e));
      continue;
    }
    check(`${c} status.authy_id is the id it had`, st.status.authy_id === u.authy_id, show(st));
    check(`${c} status.country_code`, Number(st.status.country_code) === u.country_code, show(st));
    check(`${c} status.phone_number ends in ${u.last4}`, String(st.status.phone_number).endsWith(u.last4), show(st));
    check(`${c} status.registered ${u.registered}`, st.status.registered === u.registered, show(st));
    if (!u.registered) {
      check(`${c} no authenticator among status.devices`, !(st.status.devices || []).includes('authenticator'), show(st));
    }
    try {
      const sms = await client.requestSms({ authyId: u.authy_id }, { force: true });
      check(`${c} requestSms sent`, sms.message === 'SMS token was sent', show(sms));
      check(`${c} requestSms to the number ending ${u.last4.slice(2)}`, String(sms.cellphone).endsWith(u.last4.slice(2)), show(sms));
    } catch (e) {
      check(`${c} requestSms`, false, 'threw ' + show(e.message || e));
    }
    if (u.totp) {
      try {
        const ok = await client.verifyToken({ authyId: u.authy_id, token: u.totp });
        check(`${c} the code of the original seed verifies`, ok.token === 'is valid', show(ok));
      } catch (e) {
        check(`${c} the code of the original seed verifies`, false, 'threw ' + show(e.message || e));
      }
      try {
        const again = await client.verifyToken({ authyId: u.authy_id, token: u.totp });
        check(`${c} the same code a second time is refused`, false, 'succeeded with ' + show(again));
      } catch (e) {
        check(`${c} the same code a second time is refused`, e.code === 'TOKEN_INVALID' || /invalid/i.test(e.message), show(e.message));
      }
    }
  }
  if (failures === 0) {
    console.log('ALL CHECKS PASSED');
  }
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log('FAIL unexpected: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
