'use strict';

// Judges one webhook delivery with the official twilio package's validateRequest (6.3.1), as a
// Verify customer's endpoint would. Started by TestVerifyWebhooks (cmd/twofold/
// verifywebhooks_test.go), which passes:
//
//   TWILIO_AUTH_TOKEN   the application's auth token
//   WEBHOOK_URL         the webhook's URL, as configured
//   WEBHOOK_SIGNATURE   the X-Twilio-Signature header the delivery carried
//   WEBHOOK_PARAMS      the delivery's form parameters, as a JSON object of strings
//
// Prints "valid" or "invalid".

const twilio = require('twilio');

const params = JSON.parse(process.env.WEBHOOK_PARAMS);
const ok = twilio.validateRequest(process.env.TWILIO_AUTH_TOKEN, process.env.WEBHOOK_SIGNATURE, process.env.WEBHOOK_URL, params);
console.log(ok ? 'valid' : 'invalid');
