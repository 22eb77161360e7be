#!/usr/bin/env bash
# A first look at the login sample: starts Twofold on 127.0.0.1:8080 with its data in
# ./demo-data, points the application's OneTouch callbacks at the sample, and runs the sample on
# 127.0.0.1:3000 until Ctrl-C, then stops Twofold. Run it from the repository root (make demo),
# with the twofold binary as its argument (default ./twofold).
set -euo pipefail

TWOFOLD=${1:-./twofold}
DATA=./demo-data
TWOFOLD_ADDR=127.0.0.1:8080
SAMPLE_ADDR=127.0.0.1:3000
TWOFOLD_URL=http://$TWOFOLD_ADDR
SAMPLE_URL=http://$SAMPLE_ADDR

if [ ! -x "$TWOFOLD" ]; then
	echo "demo: no twofold binary at $TWOFOLD (build it with: make build)" >&2
	exit 1
fi
if curl -fsS -o /dev/null "$TWOFOLD_URL/healthz" 2>/dev/null; then
	echo "demo: something already answers on $TWOFOLD_URL: stop it first" >&2
	exit 1
fi
mkdir -p "$DATA"
work=$(mktemp -d)
twofold_pid=
stop() {
	if [ -n "$twofold_pid" ] && kill -0 "$twofold_pid" 2>/dev/null; then
		echo "demo: stopping Twofold"
		kill -TERM "$twofold_pid" 2>/dev/null || true
		wait "$twofold_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "demo: building the sample"
go build -o "$work/login" ./examples/login

echo "demo: starting Twofold on $TWOFOLD_URL (log: $DATA/twofold.log)"
"$TWOFOLD" serve --addr "$TWOFOLD_ADDR" --data-dir "$DATA" --callback-allow-hosts "$SAMPLE_ADDR" >>"$DATA/twofold.log" 2>&1 &
twofold_pid=$!
for i in $(seq 100); do
	if ! kill -0 "$twofold_pid" 2>/dev/null; then
		echo "demo: Twofold stopped at start (is $TWOFOLD_ADDR in use?); its log:" >&2
		tail -n 20 "$DATA/twofold.log" >&2
		exit 1
	fi
	if curl -fsS -o /dev/null "$TWOFOLD_URL/healthz" 2>/dev/null; then
		break
	fi
	if [ "$i" = 100 ]; then
		echo "demo: Twofold did not answer on $TWOFOLD_URL" >&2
		exit 1
	fi
	sleep 0.1
done

key=$("$TWOFOLD" app show 1 --show-key --json --data-dir "$DATA" | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p')
if [ -z "$key" ]; then
	echo "demo: could not read the API key of application 1" >&2
	exit 1
fi
"$TWOFOLD" app update 1 --callback-url "$SAMPLE_URL/authy/callback" --data-dir "$DATA" >/dev/null

# A user as after a move from Authy: known to Twofold by phone and id (registering the same phone
# again answers the same id), in the sample's table with that id, and with no authenticator.
moved=$(curl -fsS -H "X-Authy-API-Key: $key" "$TWOFOLD_URL/protected/json/users/new" \
	-d 'user[email]=moved@example.com' -d 'user[cellphone]=201-555-0100' -d 'user[country_code]=1' |
	sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
if [ -z "$moved" ]; then
	echo "demo: could not register the moved user" >&2
	exit 1
fi
printf 'email,password,country_code,phone,authy_id\nmoved@example.com,moved from authy,1,201-555-0100,%s\n' "$moved" >"$work/users.csv"

cat <<MSG

  Open $SAMPLE_URL and sign up, or log in as a user moved from Authy:
  moved@example.com, password "moved from authy" (asked to add the app after the SMS code).

  Codes sent "by SMS" stay on this machine; read them with:
      $TWOFOLD outbox --data-dir $DATA

  Add the authenticator from the profile page: "Open the web authenticator in this browser"
  adds the account to Twofold's web authenticator ($TWOFOLD_URL/authenticator/), or run the
  command the page shows for the command-line one, then:
      $TWOFOLD device watch             # approve or deny log-ins

  Ctrl-C stops the sample and Twofold. Start afresh with: rm -rf $DATA

MSG
TWOFOLD_URL=$TWOFOLD_URL TWOFOLD_API_KEY=$key SAMPLE_ADDR=$SAMPLE_ADDR SAMPLE_PUBLIC_URL=$SAMPLE_URL SAMPLE_SEED_USERS=$work/users.csv "$work/login" || true
