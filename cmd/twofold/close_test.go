package main

import (
	"context"
	"net/url"
	"testing"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/audit"
)

// Closing an approval request (Twofold's addition, POST approval_requests/{uuid}/close), through
// the public Go client against a real server: the user logged in with a code instead, so the
// application closes the push, and the device's event stream drops it at once.
func TestCloseApprovalRequest(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	ctx := context.Background()
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	alice := s.register(s.key, "alice@example.com", "2015550123")

	// The registration link the login sample puts in its QR code, redeemed as a device.
	app, err := c.App(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := c.CreateRegistrationLink(ctx, alice)
	if err != nil || link.URL != s.url+"/authenticator/#register="+link.Token+"&app="+url.QueryEscape(app.Name) ||
		link.ExpiresAt.IsZero() {
		t.Fatalf("CreateRegistrationLink = %+v, %v", link, err)
	}
	phone := s.redeem(link.Token)
	events, closeStream := phone.stream(t, s, "")
	defer closeStream()

	a, err := c.CreateApprovalRequest(ctx, alice, client.ApprovalRequest{Message: "Log in to " + app.Name, SecondsToExpire: 120})
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.event != "approval_request" || ev.data["uuid"] != a.UUID {
		t.Fatalf("the device did not get the request: %+v", ev)
	}

	closed, err := c.CloseApprovalRequest(ctx, a.UUID)
	if err != nil || closed.UUID != a.UUID || closed.Status != "expired" || closed.Reason != "closed" {
		t.Fatalf("CloseApprovalRequest = %+v, %v; want expired, reason closed", closed, err)
	}
	// The device's stream says so at once, as it says of an answer elsewhere.
	if ev := nextEvent(t, events); ev.event != "approval_request_update" || ev.data["uuid"] != a.UUID || ev.data["status"] != "expired" {
		t.Fatalf("the device's stream after the close: %+v", ev)
	}
	if got := phone.call(s, "GET", "/device/v1/approval_requests?status=pending", nil); got.status != 200 || len(got.body["approval_requests"].([]any)) != 0 {
		t.Fatalf("pending requests of the device after the close: %s", got.raw)
	}
	expectError(t, phone.answer(s, a.UUID, "approved", "", ""), 409, "60079")
	if got, err := c.ApprovalRequest(ctx, a.UUID); err != nil || got.Status != "expired" {
		t.Fatalf("ApprovalRequest after the close = %+v, %v", got, err)
	}
	// Closing again: the same answer.
	if again, err := c.CloseApprovalRequest(ctx, a.UUID); err != nil || again.Status != "expired" || again.Reason != "closed" {
		t.Fatalf("closing again = %+v, %v", again, err)
	}

	// An answered request cannot be closed; it keeps its answer.
	answered, err := c.CreateApprovalRequest(ctx, alice, client.ApprovalRequest{Message: "Pay 10 EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if r := phone.answer(s, answered.UUID, "approved", "", ""); r.status != 200 {
		t.Fatalf("answer: %s", r.raw)
	}
	if _, err := c.CloseApprovalRequest(ctx, answered.UUID); !client.IsCode(err, client.CodeNotPending) {
		t.Fatalf("closing an approved request: %v, want 60079", err)
	}
	if got := s.requestStatus(answered.UUID); got["status"] != "approved" {
		t.Fatalf("the approved request after a close: %v", got)
	}

	// Another application's key finds no such request, and changes nothing.
	var other struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Other")
	victim := s.createRequest(s.key, alice, url.Values{"message": {"Log in"}})
	expectError(t, s.do("POST", "/onetouch/json/approval_requests/"+victim+"/close", other.APIKey, url.Values{}), 404, "60049")
	if got := s.requestStatus(victim); got["status"] != "pending" {
		t.Fatalf("after another application's close: %v", got)
	}
	expectError(t, s.do("POST", "/onetouch/json/approval_requests/00000000-0000-4000-8000-000000000000/close", s.key, url.Values{}), 404, "60049")

	// One close is recorded, by the application: not the repeat, nor the refused ones.
	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--action", "approval.closed")
	if len(entries) != 1 || entries[0].Actor != "api:app/1" || entries[0].Details["uuid"] != a.UUID || entries[0].UserID != alice {
		t.Fatalf("approval.closed entries: %+v", entries)
	}
}
