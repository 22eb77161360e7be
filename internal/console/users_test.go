package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestUsers(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	other, _, _ := f.apps.Create(ctx, appsCreate("Other"))
	mk := func(app twofold.App, email, phone string) twofold.User {
		u := twofold.User{AppID: app.ID, Email: email, CountryCode: 1, Phone: phone, CreatedAt: f.clock.Now()}
		if _, err := f.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ada := mk(a, "ada@example.com", "2015550123")
	bob := mk(a, "bob@example.com", "2015550199")
	stranger := mk(other, "eve@example.com", "2015550123")

	users := "/console/apps/" + itoa(a.ID) + "/users"
	for _, tc := range []struct {
		q          string
		want, not_ []int64
	}{
		{"", []int64{ada.ID, bob.ID}, []int64{stranger.ID}},
		{"ADA@", []int64{ada.ID}, []int64{bob.ID}},
		{"+1 201-555-0199", []int64{bob.ID}, []int64{ada.ID}},
		{itoa(ada.ID), []int64{ada.ID}, nil},
		{"nobody", nil, []int64{ada.ID, bob.ID}},
	} {
		b.get(users + "?q=" + url.QueryEscape(tc.q))
		b.expect(http.StatusOK, "")
		for _, id := range tc.want {
			b.contains(`data-user="` + itoa(id) + `"`)
		}
		for _, id := range tc.not_ {
			b.lacks(`data-user="` + itoa(id) + `"`)
		}
	}
	b.get(users + "?q=nobody")
	b.contains("No user matches “nobody”")

	// A user's page: devices, requests, messages (without their codes).
	token, _, err := f.devices.RegistrationToken(ctx, a.ID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := f.registerDevice(token)
	r := twofold.ApprovalRequest{UUID: "req-1", AppID: a.ID, UserID: ada.ID, Message: "Sign in to Shop", Status: twofold.Pending, CreatedAt: f.clock.Now()}
	f.st.CreateApprovalRequest(ctx, &r, 0)
	m := twofold.Message{SID: "SM1", AppID: a.ID, UserID: ada.ID, Channel: twofold.SMS, To: "+12015550123",
		BodySealed: []byte("sealed"), Status: twofold.MessageSent, Provider: "twilio", ProviderID: "SMabc", Delivery: "delivered", CreatedAt: f.clock.Now()}
	f.st.InsertMessage(ctx, &m)
	page := users + "/" + itoa(ada.ID)
	b.get(page)
	b.expect(http.StatusOK, "")
	b.contains("ada@example.com", "1 2015550123", "ops phone", "Sign in to Shop", "pending", "twilio", "delivered", `data-device="`+itoa(p.dev.ID)+`"`)
	b.lacks("sealed")

	// Another application's user is not found through this one.
	b.get(users + "/" + itoa(stranger.ID))
	b.expect(http.StatusNotFound, "")

	// Removing a device: only the user's own.
	b.get(page)
	b.post(page+"/devices/"+itoa(p.dev.ID+100)+"/delete", nil, true)
	b.expect(http.StatusNotFound, "")
	b.get(page)
	b.post(users+"/"+itoa(bob.ID)+"/devices/"+itoa(p.dev.ID)+"/delete", nil, true)
	b.expect(http.StatusNotFound, "")
	b.get(page)
	b.post(page+"/devices/"+itoa(p.dev.ID)+"/delete", nil, true)
	b.expect(http.StatusSeeOther, page)
	b.get(page)
	b.contains("Device removed", "No registered device.")
	if devs, _ := f.st.ListDevices(ctx, a.ID, ada.ID); len(devs) != 0 {
		t.Fatalf("devices left: %+v", devs)
	}

	// Deleting the user, after confirming.
	b.get(page + "/delete")
	b.contains("Delete ada@example.com (Authy id " + itoa(ada.ID) + ")")
	b.post(page+"/delete", nil, true)
	b.expect(http.StatusSeeOther, users)
	if _, err := f.st.GetUser(ctx, a.ID, ada.ID); err == nil {
		t.Fatal("the user is still there")
	}
	b.get(page)
	b.expect(http.StatusNotFound, "")
	events, _ := f.audit.List(ctx, twofold.AuditFilter{UserID: ada.ID})
	var actions []string
	for _, e := range events {
		if strings.HasPrefix(e.Actor, "operator:") {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, " ") != "device.removed user.deleted" {
		t.Fatalf("audit by the operator: %v (%+v)", actions, events)
	}
}

func TestLists(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	f.st.CreateUser(ctx, &u)
	old := f.clock.Now().Add(-48 * time.Hour)
	for i, r := range []twofold.ApprovalRequest{
		{UUID: "fresh-denied", Message: "Fresh login", Status: twofold.Denied, CreatedAt: f.clock.Now().Add(-time.Minute)},
		{UUID: "old-approved", Message: "Ancient login", Status: twofold.Approved, CreatedAt: old},
	} {
		r.AppID, r.UserID, r.Status = a.ID, u.ID, twofold.Pending
		if err := f.st.CreateApprovalRequest(ctx, &r, 0); err != nil {
			t.Fatal(i, err)
		}
		r.Status, r.ProcessedAt = []twofold.ApprovalStatus{twofold.Denied, twofold.Approved}[i], r.CreatedAt.Add(12*time.Second)
		f.st.FinishApprovalRequest(ctx, r, nil)
	}
	for i, m := range []twofold.Message{
		{SID: "SM-ok", Channel: twofold.SMS, Status: twofold.MessageSent, Provider: "twilio"},
		{SID: "EM-bad", Channel: twofold.Email, Status: twofold.MessageFailed, Provider: "smtp", Error: "mailbox unavailable"},
	} {
		m.AppID, m.UserID, m.To, m.BodySealed, m.CreatedAt = a.ID, u.ID, "ada@example.com", []byte("secret 1234567"), f.clock.Now().Add(-time.Duration(i)*time.Minute)
		f.st.InsertMessage(ctx, &m)
	}

	for _, tc := range []struct {
		path      string
		has, lack []string
	}{
		{"/console/approvals", []string{"Fresh login", "denied", "12 s"}, []string{"Ancient login"}},
		{"/console/approvals?since=7d", []string{"Fresh login", "Ancient login"}, nil},
		{"/console/approvals?since=all&status=approved", []string{"Ancient login"}, []string{"Fresh login"}},
		{"/console/approvals?app=" + itoa(a.ID) + "&status=bogus", []string{"Fresh"}, nil},
		{"/console/approvals?app=" + itoa(a.ID+50), []string{"Fresh"}, nil}, // an unknown app filters nothing
		{"/console/outbox", []string{"twilio", "smtp", "mailbox unavailable"}, []string{"1234567"}},
		{"/console/outbox?channel=email", []string{"mailbox unavailable"}, []string{"twilio"}},
		{"/console/outbox?status=sent", []string{"twilio"}, []string{"mailbox unavailable"}},
		{"/console/callbacks", []string{"No callback matches."}, nil},
		{"/console/audit", []string{"app.created", "operator.login"}, nil},
		{"/console/audit?action=operator.login", []string{`data-action="operator.login"`}, []string{`data-action="app.created"`}},
		{"/console/activity", []string{"Verifications", "Codes sent", "Approval answer times", "<svg"}, nil},
		{"/console/activity?app=" + itoa(a.ID), []string{"approved <strong>1</strong>", "denied <strong>1</strong>"}, nil},
	} {
		b.get(tc.path)
		if b.last.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", tc.path, b.last.StatusCode)
			continue
		}
		for _, s := range tc.has {
			if !strings.Contains(b.body, s) {
				t.Errorf("%s lacks %q", tc.path, s)
			}
		}
		for _, s := range tc.lack {
			if strings.Contains(b.body, s) {
				t.Errorf("%s shows %q", tc.path, s)
			}
		}
	}
}

func TestAuditPageWithoutATrail(t *testing.T) {
	f := newFixture(t, console.Config{})
	// A console without an audit trail still works, and says so.
	deps := console.Deps{Operators: f.ops, Factors: f.factors, Apps: f.apps, Queries: f.st}
	f.h = console.New(deps, console.Config{Now: f.clock.Now})
	b := f.signedIn()
	b.get("/console/audit")
	b.expect(http.StatusOK, "")
	b.contains("keeps no audit trail")
}
