#!/usr/bin/env bash
# A first look at the samples: starts Twofold on 127.0.0.1:8080 with its data in ./demo-data,
# points the application's OneTouch callbacks at the login sample, runs the OIDC sample
# (examples/oidc-login, which hands the second factor to Twofold's hosted step) on 127.0.0.1:3001
# and the login sample on 127.0.0.1:3000 until Ctrl-C, then stops them and Twofold. Run it from
# the repository root (make demo), with the twofold binary as its argument (default ./twofold).
set -euo pipefail

TWOFOLD=${1:-./twofold}
DATA=./demo-data
TWOFOLD_ADDR=127.0.0.1:8080
SAMPLE_ADDR=127.0.0.1:3000
OIDC_ADDR=127.0.0.1:3001
TWOFOLD_URL=http://$TWOFOLD_ADDR
SAMPLE_URL=http://$SAMPLE_ADDR
# Passkeys are bound to a domain name, never an IP address: the browser opens the sample at
# localhost (a secure context over plain http), which is the application's relying party.
PASSKEY_URL=http://localhost:${SAMPLE_ADDR##*:}
OIDC_URL=http://$OIDC_ADDR

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
oidc_pid=
stop() {
	if [ -n "$oidc_pid" ] && kill -0 "$oidc_pid" 2>/dev/null; then
		kill -TERM "$oidc_pid" 2>/dev/null || true
		wait "$oidc_pid" 2>/dev/null || true
	fi
	if [ -n "$twofold_pid" ] && kill -0 "$twofold_pid" 2>/dev/null; then
		echo "demo: stopping Twofold"
		kill -TERM "$twofold_pid" 2>/dev/null || true
		wait "$twofold_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "demo: building the samples"
go build -o "$work/login" ./examples/login
go build -o "$work/oidc-login" ./examples/oidc-login

echo "demo: starting Twofold on $TWOFOLD_URL (log: $DATA/twofold.log)"
"$TWOFOLD" serve --addr "$TWOFOLD_ADDR" --public-url "$TWOFOLD_URL" --data-dir "$DATA" --callback-allow-hosts "$SAMPLE_ADDR" >>"$DATA/twofold.log" 2>&1 &
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
"$TWOFOLD" app update 1 --callback-url "$SAMPLE_URL/authy/callback" --data-dir "$DATA" \
	--passkey-rp-id localhost --passkey-origins "$PASSKEY_URL" --passkey-usernameless >/dev/null

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

# The OIDC sample: a step client of application 1 that names users by email (its secret is shown
# once, so it is kept in the data directory for the next run), and a user of the sample known to
# Twofold.
create_step_client() {
	"$TWOFOLD" oidc-client create --app 1 --name "OIDC login sample" --redirect-uri "$OIDC_URL/callback" \
		--user-match email --json --data-dir "$DATA"
}
client_file=$DATA/oidc-sample-client.json
if [ ! -s "$client_file" ]; then
	(umask 077 && create_step_client >"$client_file.new") && mv "$client_file.new" "$client_file"
fi
client_id=$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' "$client_file")
client_secret=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$client_file")
if [ -z "$client_id" ] || [ -z "$client_secret" ]; then
	echo "demo: no step client id and secret in $client_file (remove it to make a new client)" >&2
	exit 1
fi
ana=$(curl -fsS -H "X-Authy-API-Key: $key" "$TWOFOLD_URL/protected/json/users/new" \
	-d 'user[email]=ana@example.com' -d 'user[cellphone]=201-555-0101' -d 'user[country_code]=1' |
	sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
if [ -z "$ana" ]; then
	echo "demo: could not register the OIDC sample's user" >&2
	exit 1
fi
printf 'email,password,twofold_id\nana@example.com,two steps,%s\n' "$ana" >"$work/oidc-users.csv"
echo "demo: starting the OIDC sample on $OIDC_URL (log: $DATA/oidc-login.log)"
TWOFOLD_URL=$TWOFOLD_URL TWOFOLD_CLIENT_ID=$client_id TWOFOLD_CLIENT_SECRET=$client_secret SAMPLE_ADDR=$OIDC_ADDR \
	SAMPLE_USERS=$work/oidc-users.csv "$work/oidc-login" >>"$DATA/oidc-login.log" 2>&1 &
oidc_pid=$!

cat <<MSG

  Open $PASSKEY_URL and sign up, or log in as a user moved from Authy:
  moved@example.com, password "moved from authy" (asked to add the app after the SMS code).
  Add a passkey on the profile, then "Sign in with a passkey" (passkeys need the name
  localhost, not 127.0.0.1).

  Codes sent "by SMS" stay on this machine; read them with:
      $TWOFOLD outbox --data-dir $DATA

  The OIDC sample, $OIDC_URL, hands the whole second factor to Twofold's hosted step by
  OpenID Connect: log in as ana@example.com, password "two steps"; Twofold asks for a code
  (read it with the outbox command above) and sends you back signed in.

  Add the authenticator from the profile page: "Open the web authenticator in this browser"
  adds the account to Twofold's web authenticator ($TWOFOLD_URL/authenticator/), or run the
  command the page shows for the command-line one, then:
      $TWOFOLD device watch             # approve or deny log-ins

  Ctrl-C stops the samples and Twofold. Start afresh with: rm -rf $DATA

MSG
TWOFOLD_URL=$TWOFOLD_URL TWOFOLD_API_KEY=$key SAMPLE_ADDR=$SAMPLE_ADDR SAMPLE_PUBLIC_URL=$SAMPLE_URL SAMPLE_SEED_USERS=$work/users.csv "$work/login" || true
