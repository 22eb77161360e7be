"""Drives a running Twofold server's Twilio Verify v2 API with the official twilio Python package
(Debian's python3-twilio, twilio-python 7.7.1), changing only where it sends requests:
client.verify.base_url, the public attribute of every domain (twilio/base/domain.py), as the README
and docs/verify-v2.md tell Python applications to do. Started by TestTwilioPythonCompat
(cmd/twofold/compat_verify_test.go), which passes:

  TWOFOLD_URL          base URL of the server (http://127.0.0.1:PORT)
  TWILIO_ACCOUNT_SID   the application's account SID (twofold app twilio-credentials create)
  TWILIO_AUTH_TOKEN    its auth token
  TWOFOLD_ORACLE       base URL of the test's oracle: GET /code?to=+1... answers with the newest
                       code sent to that recipient, as read from `twofold outbox`
  WEBHOOK_URL          where the service's webhook is to point (the test's receiver)

Prints one line per check ("ok   ..." or "FAIL ...") and exits non-zero if any check failed. The
last line is "ALL CHECKS PASSED" when everything passed.
"""

import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import time
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

checks = 0
failures = 0


def env(name):
    v = os.environ.get(name)
    if not v:
        print(f"FAIL environment: {name} is not set")
        sys.exit(2)
    return v


BASE = env("TWOFOLD_URL")
ACCOUNT_SID = env("TWILIO_ACCOUNT_SID")
AUTH_TOKEN = env("TWILIO_AUTH_TOKEN")
ORACLE = env("TWOFOLD_ORACLE")
WEBHOOK_URL = env("WEBHOOK_URL")


def check(name, cond, detail=""):
    global checks, failures
    checks += 1
    if cond:
        print(f"ok   {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL {name}: {detail}", flush=True)
    return cond


def rejects(name, fn, status, code):
    """fn must fail with a TwilioRestException of the given HTTP status and Twilio code."""
    try:
        v = fn()
    except TwilioRestException as e:
        check(name, e.status == status and e.code == code and e.msg, f"{e.status} {e.code} {e.msg}")
        return
    check(name, False, f"succeeded: {v!r}")


def pointed(username, password, account_sid=None):
    """A client as an application makes it, its Verify domain pointed at Twofold: the one line an
    existing Verify application adds."""
    client = Client(username, password, account_sid)
    client.verify.base_url = BASE
    return client


def code_for(to):
    with urllib.request.urlopen(f"{ORACLE}/code?to={urllib.parse.quote(to)}") as r:
        return r.read().decode().strip()


def wrong(code):
    return str((int(code[0]) + 1) % 10) + code[1:]


def totp(secret, at, digits=6, step=30, alg=hashlib.sha1):
    """An RFC 6238 code computed independently of Twofold."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    h = hmac.new(key, struct.pack(">Q", int(at // step)), alg).digest()
    off = h[-1] & 0x0F
    v = struct.unpack(">I", h[off : off + 4])[0] & 0x7FFFFFFF
    return str(v % 10**digits).zfill(digits)


def services(client):
    svc = client.verify.v2.services.create(friendly_name="Python Shop", code_length=6)
    check("services.create: a VA sid and the account", svc.sid.startswith("VA") and len(svc.sid) == 34 and svc.account_sid == ACCOUNT_SID, svc)
    fetched = client.verify.v2.services(svc.sid).fetch()
    check("services(sid).fetch", fetched.friendly_name == "Python Shop" and fetched.code_length == 6, fetched)
    updated = client.verify.v2.services(svc.sid).update(friendly_name="Python Renamed")
    check("services(sid).update", updated.friendly_name == "Python Renamed", updated)
    for i in range(2):
        client.verify.v2.services.create(friendly_name=f"Python {i}")
    listed = client.verify.v2.services.list(page_size=2)
    check("services.list pages through next_page_url", len(listed) == 3 and svc.sid in [s.sid for s in listed], [s.sid for s in listed])
    rejects("services.create with CodeLength 11: 60200", lambda: client.verify.v2.services.create(friendly_name="Bad", code_length=11), 400, 60200)
    return svc.sid


def verifications(client, service_sid):
    svc = client.verify.v2.services(service_sid)
    to = "+12015550152"
    v = svc.verifications.create(to=to, channel="sms")
    check("verifications.create: pending", v.sid.startswith("VE") and v.status == "pending" and v.to == to and v.channel == "sms", v)
    code = code_for(to)
    check("the code is in twofold outbox", len(code) == 6 and code.isdigit(), code)
    bad = svc.verification_checks.create(to=to, code=wrong(code))
    check("a wrong code: pending, not valid", bad.status == "pending" and bad.valid is False, bad)
    good = svc.verification_checks.create(to=to, code=code)
    check("the right code: approved, valid", good.status == "approved" and good.valid is True, good)
    rejects("the right code again: 20404", lambda: svc.verification_checks.create(to=to, code=code), 404, 20404)

    to2 = "+12015550153"
    v2 = svc.verifications.create(to=to2, channel="sms")
    code2 = code_for(to2)
    last = None
    for _ in range(5):
        last = svc.verification_checks.create(verification_sid=v2.sid, code=wrong(code2))
    check("the fifth wrong code: max_attempts_reached", last.status == "max_attempts_reached", last)
    rejects("a sixth check: 60202 (429)", lambda: svc.verification_checks.create(verification_sid=v2.sid, code=code2), 429, 60202)

    v3 = svc.verifications.create(to="+12015550154", channel="call")
    canceled = svc.verifications(v3.sid).update(status="canceled")
    check("verifications(sid).update canceled", canceled.status == "canceled", canceled)


def webhooks(client, service_sid):
    hook = client.verify.v2.services(service_sid).webhooks.create(
        friendly_name="Python hook", event_types=["factor.created", "factor.verified"], webhook_url=WEBHOOK_URL)
    check("webhooks.create", hook.sid.startswith("YW") and hook.status == "enabled" and hook.webhook_url == WEBHOOK_URL, hook)


def totp_factors(client, service_sid):
    identity = "python-entity-0001"
    entity = client.verify.v2.services(service_sid).entities(identity)
    client.verify.v2.services(service_sid).entities.create(identity=identity)
    f = entity.new_factors.create(friendly_name="Python phone", factor_type="totp")
    check("new_factors.create totp: unverified, an otpauth uri", f.sid.startswith("YF") and f.status == "unverified" and
          f.binding["uri"].startswith("otpauth://totp/"), f)
    now = time.time()
    verified = entity.factors(f.sid).update(auth_payload=totp(f.binding["secret"], now - 30))
    check("factors(sid).update with a first code computed in Python: verified", verified.status == "verified", verified)
    c = entity.challenges.create(factor_sid=f.sid, auth_payload=totp(f.binding["secret"], now))
    check("challenges.create with a code: approved", c.status == "approved", c)
    replay = entity.challenges.create(factor_sid=f.sid, auth_payload=totp(f.binding["secret"], now))
    check("the same code again: pending (spent)", replay.status == "pending", replay)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def push_factors(client, service_sid):
    identity = "python-entity-0002"
    entity = client.verify.v2.services(service_sid).entities(identity)
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    f = entity.new_factors.create(friendly_name="Python device", factor_type="push", binding_alg="ES256",
                                  binding_public_key=base64.b64encode(der).decode(), config_sdk_version="1.0.0",
                                  config_app_id="com.example.python", config_notification_platform="none")
    check("new_factors.create push with a P-256 key: unverified", f.factor_type == "push" and f.status == "unverified", f)
    c = entity.challenges.create(factor_sid=f.sid, details_message="Sign in to Python?",
                                 details_fields=[json.dumps({"label": "IP", "value": "192.0.2.7"})])
    check("challenges.create push: pending with its details", c.status == "pending" and c.details["message"] == "Sign in to Python?", c)

    # The device's fetch, as the Verify Push SDKs make it: the signed fields are named in a header
    # the helper library does not return.
    req = urllib.request.Request(c.url, headers={"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()})
    with urllib.request.urlopen(req) as r:
        fields = r.headers["Twilio-Verify-Signature-Fields"].split(",")
        body = json.load(r)
    claims = {"status": "approved"}
    for name in fields:
        claims[name] = body[name]
    signing_input = b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    r_, s_ = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    jwt = signing_input + "." + b64url(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
    answered = entity.challenges(c.sid).update(auth_payload=jwt)
    check("challenges(sid).update with the device's signed answer: approved", answered.status == "approved", answered)
    read = entity.challenges(c.sid).fetch()
    check("challenges(sid).fetch reads it back approved", read.status == "approved", read)
    rejects("the same answer replayed: 60200", lambda: entity.challenges(c.sid).update(auth_payload=jwt), 400, 60200)


def main():
    client = pointed(ACCOUNT_SID, AUTH_TOKEN)
    service_sid = services(client)
    verifications(client, service_sid)
    webhooks(client, service_sid)
    totp_factors(client, service_sid)
    push_factors(client, service_sid)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an unexpected failure is a failed check, with its cause
        import traceback

        print("FAIL uncaught: " + "".join(traceback.format_exception(e)).replace("\n", " | "))
        sys.exit(1)
    if failures:
        print(f"{failures} of {checks} checks FAILED")
        sys.exit(1)
    print(f"ALL CHECKS PASSED ({checks})")
