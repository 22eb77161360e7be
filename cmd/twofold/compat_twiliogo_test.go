package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	verify "github.com/twilio/twilio-go/rest/verify/v2"
)

// toTwofold is the twilio-go client.BaseClient that docs/verify-v2.md gives Go applications:
// the library's own client, with every request's scheme and host replaced by Twofold's. The
// path, parameters, headers and credentials are the library's.
type toTwofold struct {
	*client.Client
	base *url.URL // Twofold's base URL, such as https://twofold.example.com
}

func (c toTwofold) SendRequest(method, rawURL string, data url.Values, headers map[string]any, body ...byte) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u.Scheme, u.Host = c.base.Scheme, c.base.Host
	return c.Client.SendRequest(method, u.String(), data, headers, body...)
}

// newTwofoldClient is the snippet of docs/verify-v2.md: username and password are the account
// SID and auth token, or an API key SID and secret.
func newTwofoldClient(base, username, password, accountSID string) (*twilio.RestClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &client.Client{Credentials: client.NewCredentials(username, password)}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: toTwofold{Client: c, base: u}}), nil
}

// TestTwilioGoCompat drives the Verify API with the official github.com/twilio/twilio-go
// (v1.31.0, pinned in go.mod) through toTwofold, as docs/verify-v2.md tells Go applications to:
// a service made with an API key, an SMS verification whose code is read from twofold outbox,
// a wrong and a right check, one cancelled, a webhook managed, and Twilio's errors as the
// library reads them.
func TestTwilioGoCompat(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	var key twilioKeyJSON
	s.cliJSON(&key, "app", "twilio-credentials", "create-key", "1", "--name", "twilio-go")

	byToken, err := newTwofoldClient(s.url, acct.AccountSID, acct.AuthToken, acct.AccountSID)
	if err != nil {
		t.Fatal(err)
	}
	byKey, err := newTwofoldClient(s.url, key.SID, key.Secret, acct.AccountSID)
	if err != nil {
		t.Fatal(err)
	}

	svc, err := byKey.VerifyV2.CreateService(new(verify.CreateServiceParams).SetFriendlyName("Go Shop").SetCodeLength(6))
	if err != nil {
		t.Fatalf("CreateService with an API key: %v", err)
	}
	if svc.Sid == nil || len(*svc.Sid) != 34 || *svc.AccountSid != acct.AccountSID || *svc.FriendlyName != "Go Shop" || svc.CodeLength != 6 {
		t.Fatalf("CreateService: %+v", svc)
	}
	fetched, err := byToken.VerifyV2.FetchService(*svc.Sid)
	if err != nil || *fetched.Sid != *svc.Sid {
		t.Fatalf("FetchService: %v %+v", err, fetched)
	}

	const to = "+12015550178"
	v, err := byToken.VerifyV2.CreateVerification(*svc.Sid, new(verify.CreateVerificationParams).SetTo(to).SetChannel("sms"))
	if err != nil {
		t.Fatalf("CreateVerification: %v", err)
	}
	if *v.Status != "pending" || *v.To != to || *v.Channel != "sms" || *v.ServiceSid != *svc.Sid {
		t.Fatalf("CreateVerification: %+v", v)
	}
	code := s.lastCode(to)
	wrong := string('0'+(code[0]-'0'+1)%10) + code[1:]
	check, err := byToken.VerifyV2.CreateVerificationCheck(*svc.Sid, new(verify.CreateVerificationCheckParams).SetTo(to).SetCode(wrong))
	if err != nil || *check.Status != "pending" || *check.Valid {
		t.Fatalf("a wrong code: %v %+v", err, check)
	}
	check, err = byToken.VerifyV2.CreateVerificationCheck(*svc.Sid, new(verify.CreateVerificationCheckParams).SetTo(to).SetCode(code))
	if err != nil || *check.Status != "approved" || !*check.Valid || *check.Sid != *v.Sid {
		t.Fatalf("the right code: %v %+v", err, check)
	}
	// Approved, it is gone: Twilio's 20404, as twilio-go reads it.
	_, err = byToken.VerifyV2.FetchVerification(*svc.Sid, *v.Sid)
	wantTwilioError(t, "an approved verification", err, 404, 20404)

	const other = "+12015550179"
	v2, err := byKey.VerifyV2.CreateVerification(*svc.Sid, new(verify.CreateVerificationParams).SetTo(other).SetChannel("sms"))
	if err != nil {
		t.Fatalf("CreateVerification: %v", err)
	}
	canceled, err := byKey.VerifyV2.UpdateVerification(*svc.Sid, *v2.Sid, new(verify.UpdateVerificationParams).SetStatus("canceled"))
	if err != nil || *canceled.Status != "canceled" {
		t.Fatalf("cancel: %v %+v", err, canceled)
	}
	_, err = byKey.VerifyV2.CreateVerificationCheck(*svc.Sid, new(verify.CreateVerificationCheckParams).SetTo(other).SetCode(s.lastCode(other)))
	wantTwilioError(t, "checking a cancelled verification", err, 404, 20404)

	// Webhooks, as a Go application manages them.
	hook, err := byKey.VerifyV2.CreateWebhook(*svc.Sid, new(verify.CreateWebhookParams).SetFriendlyName("Go hook").
		SetEventTypes([]string{"factor.created", "challenge.denied"}).SetWebhookUrl("https://hooks.example.com/go").SetVersion("v2"))
	if err != nil || !strings.HasPrefix(*hook.Sid, "YW") || *hook.Status != "enabled" || len(*hook.EventTypes) != 2 || *hook.WebhookUrl != "https://hooks.example.com/go" {
		t.Fatalf("CreateWebhook: %v %+v", err, hook)
	}
	hook, err = byKey.VerifyV2.UpdateWebhook(*svc.Sid, *hook.Sid, new(verify.UpdateWebhookParams).SetStatus("disabled"))
	if err != nil || *hook.Status != "disabled" || *hook.FriendlyName != "Go hook" {
		t.Fatalf("UpdateWebhook: %v %+v", err, hook)
	}
	if hooks, err := byKey.VerifyV2.ListWebhook(*svc.Sid, nil); err != nil || len(hooks) != 1 || *hooks[0].Sid != *hook.Sid {
		t.Fatalf("ListWebhook: %v %+v", err, hooks)
	}
	if err := byKey.VerifyV2.DeleteWebhook(*svc.Sid, *hook.Sid); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	_, err = byKey.VerifyV2.FetchWebhook(*svc.Sid, *hook.Sid)
	wantTwilioError(t, "a deleted webhook", err, 404, 20404)

	services, err := byToken.VerifyV2.ListService(new(verify.ListServiceParams).SetPageSize(1))
	if err != nil || len(services) != 1 || *services[0].Sid != *svc.Sid {
		t.Fatalf("ListService: %v %+v", err, services)
	}
	if err := byToken.VerifyV2.DeleteService(*svc.Sid); err != nil {
		t.Fatalf("DeleteService: %v", err)
	}
	_, err = byToken.VerifyV2.FetchService(*svc.Sid)
	wantTwilioError(t, "a deleted service", err, 404, 20404)

	bad, err := newTwofoldClient(s.url, acct.AccountSID, "00000000000000000000000000000000", acct.AccountSID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.VerifyV2.ListService(nil)
	wantTwilioError(t, "a wrong auth token", err, 401, 20003)
}

func wantTwilioError(t *testing.T, what string, err error, status, code int) {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) || te.Status != status || te.Code != code || te.Message == "" {
		t.Errorf("%s: %v, want %d %d", what, err, status, code)
	}
}
