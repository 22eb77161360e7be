package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/browsertest"
)

// approverAnswers reads each approver's answer off the approvers of sel (data-approver and
// data-answer), by Authy id.
func (c *consoleEnv) approverAnswers(sel string) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	raw := c.p.eval(`JSON.stringify(Object.fromEntries([...document.querySelectorAll(` + strconv.Quote(sel+` [data-approver]`) +
		`)].map(e => [e.dataset.approver, e.dataset.answer])))`)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// TestConsoleApprovalGroups shows approval groups made through the API and answered with the
// approvers' real device keys: the application's list and each group's page name every
// approver's answer; an operator closes a pending group from its page; another application's
// group is not found under this one; the pages pass axe and fit a laptop and a phone. With
// TWOFOLD_SCREENSHOTS=1 it saves docs/screenshots/console-groups.png.
func TestConsoleApprovalGroups(t *testing.T) {
	c := newConsoleEnv(t, "ana.operator@example.com", nil)
	s, p := c.s, c.p
	id, key := c.newApp(longAppName)
	cl, err := client.New(s.url, key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	people := []string{"Ana Beatriz Carvalho", "Bob Okonkwo-Lindqvist", "Cy Nakamura", "Dan from the treasury team"}
	emails := []string{"ana.carvalho@treasury.acme-global-payments.example.com", "bob.okonkwo-lindqvist@acme-global-payments.example.com",
		"cy.nakamura@acme-global-payments.example.com", "dan.treasury-requests@acme-global-payments.example.com"}
	ids := make([]int64, len(people))
	phones := make([]*device, len(people))
	for i := range people {
		ids[i] = s.register(key, emails[i], fmt.Sprintf("20155502%02d", i))
		phones[i] = s.newDevice(key, ids[i])
	}
	ana, bob, cy, dan := 0, 1, 2, 3
	ask := func(message string, quorum int, who ...int) client.ApprovalGroup {
		t.Helper()
		req := client.ApprovalGroupRequest{Message: message, Quorum: quorum,
			Details:   map[string]string{"Amount": "10,000.00 EUR", "Beneficiary": "ACME Industrial Supplies GmbH, Frankfurt am Main"},
			Requester: client.Approver{AuthyID: ids[dan], Name: people[dan]}, ExcludeRequester: true}
		for _, i := range who {
			req.Approvers = append(req.Approvers, client.Approver{AuthyID: ids[i], Name: people[i]})
		}
		g, err := cl.CreateApprovalGroup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	answer := func(g client.ApprovalGroup, i int, status, reason string) {
		t.Helper()
		if r := phones[i].answer(s, memberRequest(t, g, ids[i]), status, "", reason); r.status != 200 {
			t.Fatalf("%s's answer: %s", people[i], r.raw)
		}
	}
	approved := ask("Pay 10,000.00 EUR to ACME Industrial Supplies GmbH for invoice 2026-0412", 2, ana, bob, cy, dan)
	answer(approved, ana, "approved", "")
	answer(approved, bob, "approved", "")
	denied := ask("Delete the production database of the EU payments cluster", 0, ana, bob, cy)
	answer(denied, cy, "denied", "Not during the quarter-end freeze; ask again on Monday")
	pending := ask("Raise the daily card limit of the operations account to 50,000 EUR", 1, ana, cy)

	_, otherKey := c.newApp("Other shop")
	zed := s.register(otherKey, "zed@example.com", "2015550299")
	s.newDevice(otherKey, zed)
	otherCl, _ := client.New(s.url, otherKey, client.WithHTTPClient(s.client))
	elsewhere, err := otherCl.CreateApprovalGroup(ctx, client.ApprovalGroupRequest{Message: "Another application's", Approvers: []client.Approver{{AuthyID: zed}}})
	if err != nil {
		t.Fatal(err)
	}

	c.signIn()
	groups := "/console/apps/" + id + "/groups"
	who := func(i int) string { return strconv.FormatInt(ids[i], 10) }

	p.section("the application's groups")
	p.do(chromedp.Navigate(s.url + "/console/apps/" + id))
	p.click("#app-groups")
	p.visible("#group-list")
	row := func(g client.ApprovalGroup) string { return `#group-list tr[data-group="` + g.UUID + `"]` }
	for _, tc := range []struct {
		g     client.ApprovalGroup
		state string
		want  map[string]string
	}{
		{approved, "approved", map[string]string{who(ana): "approved", who(bob): "approved", who(cy): "not answered"}},
		{denied, "denied", map[string]string{who(ana): "not answered", who(bob): "not answered", who(cy): "denied"}},
		{pending, "pending", map[string]string{who(ana): "not answered", who(cy): "not answered"}},
	} {
		if got := p.eval(`document.querySelector(` + strconv.Quote(row(tc.g)) + `).dataset.state`); got != tc.state {
			t.Errorf("%s: listed as %q, want %q", tc.g.Message, got, tc.state)
		}
		if got := c.approverAnswers(row(tc.g)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: answers %v, want %v", tc.g.Message, got, tc.want)
		}
	}
	if got := c.text(row(approved) + ` .quorum`); got != "2 of 2 approvals" {
		t.Errorf("the approved group's quorum: %q", got)
	}
	if got := c.text(row(denied) + ` [data-answer="denied"] .reason`); got != "— “Not during the quarter-end freeze; ask again on Monday”" {
		t.Errorf("the denial's reason: %q", got)
	}
	p.do(browsertest.Desktop.Emulate())
	p.screenshot("console-groups")
	c.check("approval groups", c.visit(groups, "#group-list"))
	p.colorScheme("dark")
	c.check("approval groups, dark", c.visit(groups, "#group-list"))
	p.colorScheme("")

	p.section("a group's page")
	p.click(row(approved) + " a.group-message")
	p.visible("#approver-list")
	if got := c.approverAnswers("#approver-list"); got[who(ana)] != "approved" || got[who(bob)] != "approved" || got[who(cy)] != "not answered" {
		t.Errorf("the approved group's page: %v", got)
	}
	if got := p.eval(`document.querySelector('#group-audit').getAttribute('href')`); got != "/console/audit?app="+id+"&action=approval_group.decided&since=all" {
		t.Errorf("the audit trail's link: %q", got)
	}
	c.check("approval group, denied", c.visit(groups+"/"+denied.UUID, "#approver-list"))
	c.check("approval group, pending", c.visit(groups+"/"+pending.UUID, "#group-close"))

	p.section("another application's group")
	p.do(chromedp.Navigate(s.url + groups + "/" + elsewhere.UUID))
	p.visible("main h1")
	if got := p.eval(`fetch(location.href).then(r => String(r.status))`); got != "404" {
		t.Errorf("another application's group under this one: %s", got)
	}
	if got := c.text("main h1"); got != "Not found" {
		t.Errorf("another application's group under this one: %q", got)
	}

	p.section("close the pending group")
	p.do(chromedp.Navigate(s.url + groups + "/" + pending.UUID))
	p.visible("#group-close")
	p.eval(`(window.confirm = (q) => { window.asked = q; return true; }, '')`)
	p.click("#group-close")
	p.visible(`#group-facts[data-state="closed"]`)
	if got := c.approverAnswers("#approver-list"); got[who(ana)] != "closed" || got[who(cy)] != "closed" {
		t.Errorf("the closed group's approvers: %v", got)
	}
	if g, err := cl.ApprovalGroup(ctx, pending.UUID); err != nil || g.Status != "expired" || g.Reason != "closed" {
		t.Fatalf("the closed group through the API: %+v %v", g, err)
	}
	if r := phones[ana].call(s, "GET", "/device/v1/approval_requests?status=pending", nil); len(r.body["approval_requests"].([]any)) != 0 {
		t.Errorf("an approver's device still shows the closed group's request: %s", r.raw)
	}
	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--limit", "500")
	var closedBy []string
	for _, e := range entries {
		if e.Action == "approval_group.decided" && e.Details["uuid"] == pending.UUID {
			closedBy = append(closedBy, e.Actor+" "+e.Details["reason"])
		}
	}
	if want := "operator:" + c.email + " closed"; len(closedBy) != 1 || closedBy[0] != want {
		t.Errorf("the close in the audit trail: %q, want [%q]", closedBy, want)
	}

	p.section("approvals link to their group")
	p.do(chromedp.Navigate(s.url + "/console/approvals?since=all&app=" + id))
	p.visible(`#approval-list .group-link[data-group="` + approved.UUID + `"]`)
	p.click(`#app-groups`)
	p.visible("#group-list")
}
