package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// TestWebAuthenticatorGroups drives the web authenticator of an approver of approval groups
// (issue 19) against a real server, the other approvers answering with their devices' real
// keys: the card says where the group stands and follows it live, says what the group decided,
// and "I didn't request this" denies with the reason the server acts on. Every screen is
// checked with axe-core and for fitting, at both widths; TWOFOLD_SCREENSHOTS=1 saves
// docs/screenshots/request-group.png and request-group-decided.png at the phone's.
func TestWebAuthenticatorGroups(t *testing.T) {
	for _, vp := range browsertest.Viewports {
		t.Run(vp.Name, func(t *testing.T) { groupsAt(t, vp) })
	}
}

func groupsAt(t *testing.T, vp browsertest.Viewport) {
	s := startServer(t, "", "--rate-limit", "off")
	if _, err := s.cli("app", "update", "1", "--name", "Acme Payments"); err != nil {
		t.Fatal(err)
	}
	ana := s.register(s.key, "ana@example.com", "2015550101")
	bob := s.register(s.key, "bob@example.com", "2015550102")
	cy := s.register(s.key, "cy@example.com", "2015550103")
	bobPhone, cyPhone := s.newDevice(s.key, bob), s.newDevice(s.key, cy)

	ctx, cancel := context.WithTimeout(newBrowser(t), 3*time.Minute)
	defer cancel()
	sc := &screens{page: &page{t: t, ctx: ctx, began: time.Now()}, vp: vp, s: s}
	defer watchConsole(t, ctx, cancel)()
	screenshot := func(name string) {
		if vp == browsertest.Phone {
			sc.screenshot(name)
		}
	}
	// lineIs waits for the card's group line to read want.
	lineIs := func(card, want string) {
		t.Helper()
		sc.do(chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector(%q)?.textContent === %q`, card+" .group-line", want),
			chromedp.WithPollingTimeout(15*time.Second)))
	}
	team := func(quorum int, message string) (map[string]any, string) {
		t.Helper()
		g := createGroup(t, s, map[string]any{"message": message, "details": map[string]string{"Amount": "€12,400.00", "Payee": "Northwind Traders"},
			"hidden_details": map[string]string{"ref": "T-1"}, "quorum": quorum, "requester_name": "Dan",
			"approvers": []any{map[string]any{"authy_id": ana, "name": "Ana"}, map[string]any{"authy_id": bob, "name": "Bob"},
				map[string]any{"authy_id": cy, "name": "Cy"}}})
		return g, fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, groupMember(t, g, ana))
	}

	sc.section("enrol")
	sc.do(vp.Emulate())
	sc.enrolLink(ana)
	sc.click("#confirm-ok")
	sc.visible(`#account-list li[data-kind="device"] .code[data-ready]`)
	sc.visible(`#conn[data-state="live"]`)

	sc.section("a group of 2 of 3, live")
	g, card := team(2, "Pay €12,400.00 to Northwind Traders")
	sc.visible(card + " .approve")
	lineIs(card, "2 of 3 needed · asked by Dan")
	if got := sc.text(card + " .request-details"); strings.Contains(got, "T-1") || !strings.Contains(got, "Northwind Traders") {
		t.Errorf("the group request's details: %q", got)
	}
	sc.check("group request")
	// Bob approves with his phone's key: the page follows, without a reload.
	if r := bobPhone.answer(s, groupMember(t, g, bob), "approved", "", ""); r.status != 200 {
		t.Fatalf("Bob's approval: %s", r.raw)
	}
	lineIs(card, "2 of 3 needed · approved by Bob · asked by Dan")
	// Cy says no; two approvals can still be had.
	if r := cyPhone.answer(s, groupMember(t, g, cy), "denied", "", "wrong payee"); r.status != 200 {
		t.Fatalf("Cy's denial: %s", r.raw)
	}
	lineIs(card, "2 of 3 needed · approved by Bob · denied by Cy · asked by Dan")
	if strings.Contains(sc.text(card), "wrong payee") {
		t.Errorf("the card shows another approver's reason")
	}
	sc.check("group request, answered by others")
	screenshot("request-group")
	sc.colorScheme("dark")
	sc.check("group request, dark")
	sc.colorScheme("")
	// Ana's approval is the second: the group is approved, and the card says so.
	sc.click(card + " .approve")
	sc.visible(card + `[data-state="approved"] .outcome-group`)
	if got := sc.text(card + " .outcome-group"); got != "Approved by the group · approved by you and Bob · denied by Cy · asked by Dan" {
		t.Errorf("after the deciding approval the card says %q", got)
	}
	if got := s.get("/onetouch/json/approval_groups/" + g["uuid"].(string)).body["approval_group"].(map[string]any); got["status"] != "approved" || got["approvals"] != float64(2) {
		t.Fatalf("the group after Ana's approval: %v", got)
	}
	sc.gone(card)

	sc.section("decided by the others")
	g, card = team(2, "Raise the card limit to €50,000")
	sc.visible(card + " .approve")
	for _, who := range []struct {
		phone *device
		id    int64
	}{{bobPhone, bob}, {cyPhone, cy}} {
		if r := who.phone.answer(s, groupMember(t, g, who.id), "approved", "", ""); r.status != 200 {
			t.Fatalf("approval: %s", r.raw)
		}
	}
	sc.visible(card + `[data-state="group-approved"] .request-outcome`)
	if got := sc.text(card + " .outcome-title"); got != "Approved by the group" {
		t.Errorf("a group decided by the others: %q", got)
	}
	if got := sc.text(card + " .outcome-group"); got != "Approved by Bob and Cy · asked by Dan" {
		t.Errorf("a group decided by the others, its line: %q", got)
	}
	if hidden := sc.eval(`String(document.querySelector('` + card + ` .request-form').hidden)`); hidden != "true" {
		t.Errorf("a decided group's card still offers its buttons")
	}
	screenshot("request-group-decided")
	sc.check("group decided by the others")
	sc.gone(card)

	sc.section("denied by the group, and closed")
	g, card = team(3, "Delete the production database")
	sc.visible(card + " .approve")
	if r := bobPhone.answer(s, groupMember(t, g, bob), "denied", "", ""); r.status != 200 {
		t.Fatalf("Bob's denial: %s", r.raw)
	}
	sc.visible(card + `[data-state="group-denied"] .request-outcome`)
	if got := sc.text(card + " .outcome-title"); got != "Denied by the group" {
		t.Errorf("a group denied: %q", got)
	}
	if got := sc.text(card + " .outcome-group"); got != "Denied by Bob · asked by Dan" {
		t.Errorf("a group denied, its line: %q", got)
	}
	g, card = team(1, "Open the vault")
	sc.visible(card + " .approve")
	if r := s.do("POST", "/onetouch/json/approval_groups/"+g["uuid"].(string)+"/close", s.key, nil); r.status != 200 {
		t.Fatalf("close: %s", r.raw)
	}
	sc.visible(card + `[data-state="closed"] .request-outcome`)
	if got := sc.text(card + " .outcome-title"); got != "Closed" {
		t.Errorf("a group closed: %q", got)
	}
	if got := sc.text(card + " .outcome-group"); got != "Asked by Dan" {
		t.Errorf("a group closed, its line: %q", got)
	}

	sc.section("I didn't request this")
	// On any request, a group's or not: a denial with the reason "not requested".
	plain := s.createRequest(s.key, ana, url.Values{"message": {"Sign in to Acme Payments"}, "details[Location]": {"Lagos, Nigeria"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, plain)
	sc.visible(card + " .not-requested")
	sc.check("request with I didn't request this")
	sc.click(card + " .not-requested")
	sc.visible(card + `[data-state="denied"] .request-outcome`)
	if got := s.requestStatus(plain); got["status"] != "denied" || got["reason"] != "not requested" {
		t.Fatalf("after I didn't request this: %v", got)
	}
	g, card = team(1, "Approve the refund")
	sc.click(card + " .not-requested")
	sc.visible(card + `[data-state="denied"]`)
	if got := sc.text(card + " .outcome-group"); got != "1 of 3 needed · denied by you · asked by Dan" {
		t.Errorf("after I didn't request this, the group's line: %q", got)
	}
	if member := s.requestStatus(groupMember(t, g, ana)); member["status"] != "denied" || member["reason"] != "not requested" {
		t.Fatalf("a group request after I didn't request this: %v", member)
	}
}
