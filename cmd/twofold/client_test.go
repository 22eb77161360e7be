package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
)

// The public Go client against a real server: every call a customer's application makes.
func TestGoClient(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-failures", "3/1h")
	ctx := context.Background()
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	app, err := c.App(ctx)
	if err != nil || app.ID != 1 || app.Name == "" {
		t.Fatalf("App = %+v, %v", app, err)
	}

	id, err := c.RegisterUser(ctx, client.NewUser{Email: "ana@example.com", Phone: "(201) 555-0123", CountryCode: "+1"})
	if err != nil || id == 0 {
		t.Fatalf("RegisterUser = %d, %v", id, err)
	}
	if again, err := c.RegisterUser(ctx, client.NewUser{Email: "ana@example.com", Phone: "2015550123", CountryCode: "1"}); err != nil || again != id {
		t.Fatalf("registering again = %d, %v; want %d", again, err, id)
	}
	_, err = c.RegisterUser(ctx, client.NewUser{Email: "not an email", Phone: "2015550123", CountryCode: "1"})
	if !client.IsCode(err, client.CodeUserInvalid) {
		t.Fatalf("invalid user: %v", err)
	}
	st, err := c.UserStatus(ctx, id)
	if err != nil || st.AuthyID != id || st.Registered || len(st.Devices) != 0 || st.CountryCode != 1 || st.CanApprove() {
		t.Fatalf("UserStatus = %+v, %v", st, err)
	}

	// Codes by SMS and voice, verified once.
	sent, err := c.RequestSMS(ctx, id, client.SendOptions{Locale: "es"})
	if err != nil || sent.Ignored || sent.Cellphone != "+1-XXX-XXX-XX23" {
		t.Fatalf("RequestSMS = %+v, %v", sent, err)
	}
	code := s.lastCode("2015550123")
	if err := c.Verify(ctx, id, code, client.VerifyOptions{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := c.Verify(ctx, id, code, client.VerifyOptions{}); !client.IsCode(err, client.CodeTokenReused) {
		t.Fatalf("Verify again: %v", err)
	}
	if _, err := c.RequestCall(ctx, id, client.SendOptions{Action: "pay", ActionMessage: "a payment"}); err != nil {
		t.Fatalf("RequestCall: %v", err)
	}
	if err := c.Verify(ctx, id, s.lastCode("2015550123"), client.VerifyOptions{}); !client.IsCode(err, client.CodeTokenInvalid) {
		t.Fatalf("a code sent for an action verified without it: %v", err)
	}
	for _, bad := range []string{"12a4567", "../../app/details", ""} {
		if err := c.Verify(ctx, id, bad, client.VerifyOptions{}); !client.IsCode(err, client.CodeTokenInvalid) {
			t.Fatalf("Verify(%q): %v", bad, err)
		}
	}
	for range 4 { // --limit-failures 3/1h: at most this many more wrong tries are judged
		if err = c.Verify(ctx, id, "0000000", client.VerifyOptions{}); !client.IsCode(err, client.CodeTokenInvalid) {
			break
		}
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != client.CodeRateLimited || apiErr.HTTPStatus != http.StatusTooManyRequests || apiErr.RetryAfter <= 0 {
		t.Fatalf("past the failure limit: %#v", err)
	}

	// The tutorial's QR code, for this existing phone user (Twofold's authy_id), scanned by the
	// CLI authenticator.
	reg, err := c.RegistrationStatus(ctx, "user-7")
	if err != nil || reg.Status != "pending" {
		t.Fatalf("RegistrationStatus before = %+v, %v", reg, err)
	}
	jwt, err := client.RegistrationJWT(s.key, client.RegistrationClaims{AppID: app.ID, AppName: app.Name,
		CustomUserID: "user-7", AuthyID: id}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthenticator(t)
	var added accountJSON
	a.json(&added, "enrol", client.RegistrationQR(jwt), "--server", s.url)
	if added.AuthyID != id {
		t.Fatalf("the device joined user %d, want %d", added.AuthyID, id)
	}
	reg, err = c.RegistrationStatus(ctx, "user-7")
	if err != nil || reg.Status != "completed" || reg.AuthyID != id {
		t.Fatalf("RegistrationStatus after = %+v, %v", reg, err)
	}
	if st, _ := c.UserStatus(ctx, id); !st.Registered || len(st.Devices) == 0 || !st.CanApprove() || st.DetailedDevices[0].OSType == "" {
		t.Fatalf("UserStatus after registration = %+v", st)
	}
	if sent, err := c.RequestSMS(ctx, id, client.SendOptions{}); err != nil || !sent.Ignored || sent.Device == "" {
		t.Fatalf("SMS to a user with a device = %+v, %v", sent, err)
	}
	// The same custom id cannot be moved to another user, nor an unknown user named.
	other, _ := c.RegisterUser(ctx, client.NewUser{Email: "bo@example.com", Phone: "2015550124", CountryCode: "1"})
	for _, claims := range []client.RegistrationClaims{
		{AppID: app.ID, AppName: app.Name, CustomUserID: "user-7", AuthyID: other},
		{AppID: app.ID, AppName: app.Name, CustomUserID: "user-8", AuthyID: 999999},
	} {
		jwt, _ := client.RegistrationJWT(s.key, claims, time.Now())
		a.fails([]string{"60101"}, "enrol", client.RegistrationQR(jwt), "--server", s.url)
	}

	// OneTouch: ask, answer on the device, read the answer.
	req, err := c.CreateApprovalRequest(ctx, id, client.ApprovalRequest{Message: "Log in to Shop",
		Details: map[string]string{"From": "Lisbon"}, HiddenDetails: map[string]string{"ip": "192.0.2.1"}, SecondsToExpire: 120})
	if err != nil || req.UUID == "" || req.Status != "pending" {
		t.Fatalf("CreateApprovalRequest = %+v, %v", req, err)
	}
	a.must("approve", req.UUID)
	got, err := c.ApprovalRequest(ctx, req.UUID)
	if err != nil || got.Status != "approved" || got.Details["From"] != "Lisbon" || got.HiddenDetails["ip"] != "192.0.2.1" {
		t.Fatalf("ApprovalRequest = %+v, %v", got, err)
	}
	for _, bad := range []string{"00000000-0000-0000-0000-000000000000", "../users/1", ""} {
		if _, err := c.ApprovalRequest(ctx, bad); !client.IsCode(err, client.CodeNoRequest) {
			t.Fatalf("ApprovalRequest(%q): %v", bad, err)
		}
	}

	// Removing the user; a wrong key.
	if err := c.RemoveUser(ctx, other); err != nil {
		t.Fatalf("RemoveUser: %v", err)
	}
	if _, err := c.UserStatus(ctx, other); !client.IsCode(err, client.CodeUserNotFound) {
		t.Fatalf("status of a removed user: %v", err)
	}
	wrong, _ := client.New(s.url, "wrong-key-0123456789012345678901", client.WithHTTPClient(s.client))
	if _, err := wrong.App(ctx); !client.IsCode(err, client.CodeInvalidAPIKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := c.UserStatus(ctx, 1<<40); !client.IsCode(err, client.CodeUserNotFound) {
		t.Fatalf("unknown user %s: %v", strconv.FormatInt(1<<40, 10), err)
	}
}
