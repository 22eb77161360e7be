"""Judges one webhook delivery with the official twilio Python package's RequestValidator
(Debian's python3-twilio, 7.7.1), as a Verify customer's endpoint would. Started by
TestTwilioPythonCompat (cmd/twofold/compat_verify_test.go), which passes:

  TWILIO_AUTH_TOKEN   the application's auth token
  WEBHOOK_URL         the webhook's URL, as configured
  WEBHOOK_SIGNATURE   the X-Twilio-Signature header the delivery carried
  WEBHOOK_PARAMS      the delivery's form parameters, as a JSON object of strings

Prints "valid" or "invalid".
"""

import json
import os

from twilio.request_validator import RequestValidator

params = json.loads(os.environ["WEBHOOK_PARAMS"])
ok = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"]).validate(os.environ["WEBHOOK_URL"], params, os.environ["WEBHOOK_SIGNATURE"])
print("valid" if ok else "invalid")
