package main

import (
	"net/http/httptest"
	"testing"
)

// TestTwilioVerifyCompat runs the official twilio package from the npm registry (6.3.1, pinned
// in testdata/compat/package.json) against a running server's Verify API, through
// testdata/compat/verify.js. The script changes only where the package sends requests
// (client.verify.baseUrl, as docs/verify-v2.md says), with credentials made by
// `twofold app twilio-credentials`, and reads codes from `twofold outbox` through the oracle.
// Like TestAuthyClientsCompat it needs node and `npm ci --prefix cmd/twofold/testdata/compat`.
func TestTwilioVerifyCompat(t *testing.T) {
	node := compatNode(t, "twilio")

	s := startServer(t, "", "--rate-limit", "off")
	oracle := httptest.NewServer(compatCodeOracle(s))
	t.Cleanup(oracle.Close)
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	var key twilioKeyJSON
	s.cliJSON(&key, "app", "twilio-credentials", "create-key", "1", "--name", "compat")

	runCompatScript(t, node, "verify.js",
		"TWOFOLD_URL="+s.url,
		"TWILIO_ACCOUNT_SID="+acct.AccountSID,
		"TWILIO_AUTH_TOKEN="+acct.AuthToken,
		"TWILIO_API_KEY="+key.SID,
		"TWILIO_API_SECRET="+key.Secret,
		"TWOFOLD_ORACLE="+oracle.URL,
	)
}
