package main

import (
	"strings"
	"testing"
)

// The command-line authenticator of an approver shows where the group stands, live, and what it
// decided.
func TestDeviceWatchGroup(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	ana := s.register(s.key, "ana@example.com", "2015550101")
	bob := s.register(s.key, "bob@example.com", "2015550102")
	cy := s.register(s.key, "cy@example.com", "2015550103")
	enrolUser(t, s, a, ana)
	bobPhone, cyPhone := s.newDevice(s.key, bob), s.newDevice(s.key, cy)
	group := func(message string) map[string]any {
		return createGroup(t, s, map[string]any{"message": message, "quorum": 2, "requester_name": "Dan",
			"hidden_details": map[string]string{"ref": "T-1"}, "approvers": []any{map[string]any{"authy_id": ana, "name": "Ana"},
				map[string]any{"authy_id": bob, "name": "Bob"}, map[string]any{"authy_id": cy, "name": "Cy\u202e"}}})
	}

	w := a.start("watch")
	w.errOut.waitFor(t, "Waiting for approval requests")
	g := group("Pay 10,000 EUR")
	shown := w.out.waitFor(t, "approve? [y/n] ")
	if !strings.Contains(shown, "Pay 10,000 EUR\n  2 of 3 needed; asked by Dan\n") || strings.Contains(shown, "T-1") || strings.Contains(shown, "@example.com") {
		t.Errorf("a group request is shown as:\n%s", shown)
	}
	// Bob approves and Cy denies: the prompt says so as it happens, and asks again.
	if r := bobPhone.answer(s, groupMember(t, g, bob), "approved", "", ""); r.status != 200 {
		t.Fatalf("Bob's approval: %s", r.raw)
	}
	w.out.waitFor(t, "  Now 2 of 3 needed; approved by Bob; asked by Dan\napprove? [y/n] ")
	if r := cyPhone.answer(s, groupMember(t, g, cy), "denied", "", "no"); r.status != 200 {
		t.Fatalf("Cy's denial: %s", r.raw)
	}
	// (A name is printed without its control characters, as any text from the server.)
	w.out.waitFor(t, "  Now 2 of 3 needed; approved by Bob; denied by Cy\ufffd; asked by Dan\napprove? [y/n] ")
	w.send("y")
	if out := w.out.waitFor(t, "\n"); out != "Approved. Approved by the group: approved by you and Bob; denied by Cy\ufffd; asked by Dan.\n" {
		t.Errorf("after the deciding approval: %q", out)
	}

	// Decided by the others while it is asked about: dropped from the prompt, saying why.
	g = group("Raise the limit")
	w.out.waitFor(t, "Raise the limit")
	w.out.waitFor(t, "approve? [y/n] ")
	for _, d := range []struct {
		phone *device
		id    int64
	}{{bobPhone, bob}, {cyPhone, cy}} {
		if r := d.phone.answer(s, groupMember(t, g, d.id), "approved", "", ""); r.status != 200 {
			t.Fatalf("approval: %s", r.raw)
		}
	}
	w.out.waitFor(t, "The group decided before it was answered here: approved by the group (approved by Bob and Cy\ufffd; asked by Dan).\n")

	// Closed by the application.
	g = group("Open the vault")
	w.out.waitFor(t, "Open the vault")
	w.out.waitFor(t, "approve? [y/n] ")
	if r := s.do("POST", "/onetouch/json/approval_groups/"+g["uuid"].(string)+"/close", s.key, nil); r.status != 200 {
		t.Fatalf("close: %s", r.raw)
	}
	w.out.waitFor(t, "The request was closed before it was answered here.\n")
}
