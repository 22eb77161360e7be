package console_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The lists name users as people know them: by email, else the customer's own id; the Authy
// id stays beside the name. A user deleted since is said to be, not shown as a bare number.
func TestListsNameUsers(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana.operator@example.com", true)
	b := f.browser()
	b.signIn(o)
	ctx := t.Context()
	consoleApp, opUser, err := f.factors.User(ctx, o.op)
	if err != nil {
		t.Fatal(err)
	}
	f.audit.Record(ctx, twofold.AuditEvent{Actor: "console", Action: twofold.AuditVerificationOK, AppID: consoleApp.ID, UserID: opUser.ID})
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	ada := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	qr := twofold.User{AppID: a.ID, CustomUserID: "shop-customer-42", CreatedAt: f.clock.Now()}
	gone := twofold.User{AppID: a.ID, Email: "gone@example.com", CountryCode: 1, Phone: "2015550124", CreatedAt: f.clock.Now()}
	for _, u := range []*twofold.User{&ada, &gone} {
		if _, err := f.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.CreateCustomUser(ctx, &qr); err != nil {
		t.Fatal(err)
	}
	for i, u := range []twofold.User{ada, qr, gone} {
		r := twofold.ApprovalRequest{UUID: "00000000-0000-4000-8000-00000000000" + itoa(int64(i)), AppID: a.ID, UserID: u.ID,
			Message: "Sign in to Shop", Status: twofold.Pending, CreatedAt: f.clock.Now()}
		if err := f.st.CreateApprovalRequest(ctx, &r, 0); err != nil {
			t.Fatal(err)
		}
		m := twofold.Message{SID: "SM" + itoa(int64(i)), AppID: a.ID, UserID: u.ID, Channel: twofold.SMS, To: "+12015550123",
			BodySealed: []byte("sealed"), Status: twofold.MessageSent, Provider: "outbox", CreatedAt: f.clock.Now()}
		if err := f.st.InsertMessage(ctx, &m); err != nil {
			t.Fatal(err)
		}
		f.audit.Record(ctx, twofold.AuditEvent{Actor: "app:" + itoa(a.ID), Action: twofold.AuditUserCreated, AppID: a.ID, UserID: u.ID})
	}
	if err := f.st.DeleteUser(ctx, a.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	link := func(u twofold.User, label string) string {
		return `<a href="/console/apps/` + itoa(a.ID) + `/users/` + itoa(u.ID) + `" class="long">` + label + `</a> <span class="muted mono" title="Authy id">#` + itoa(u.ID) + `</span>`
	}
	deleted := `<span class="muted">deleted user</span> <span class="muted mono" title="Authy id">#` + itoa(gone.ID) + `</span>`
	for _, page := range []string{"/console/approvals", "/console/outbox", "/console/audit"} {
		b.get(page)
		b.contains(link(ada, "ada@example.com"), link(qr, "shop-customer-42"))
		if page != "/console/approvals" { // a deleted user's requests go with them; messages and entries stay
			b.contains(deleted)
		}
		// No user is shown by number alone.
		if m := regexp.MustCompile(`>` + itoa(ada.ID) + `</a>`).FindString(b.body); m != "" {
			t.Errorf("%s shows a user as a bare number: %s", page, m)
		}
	}
	// The operators (users of the console's own application) are named too, without a link.
	b.get("/console/audit")
	if !strings.Contains(b.body, `<span class="long">ana.operator@example.com</span> <span class="muted mono" title="Authy id">#`+itoa(opUser.ID)+`</span>`) {
		t.Errorf("the audit trail does not name the operator's console user:\n%s", b.body)
	}
}

// The users list says which second factors each user has besides codes sent to them.
func TestUsersListShowsFactors(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	var us []twofold.User
	for _, phone := range []string{"2015550123", "2015550124", "2015550125"} {
		u := twofold.User{AppID: a.ID, Email: phone + "@example.com", CountryCode: 1, Phone: phone, CreatedAt: f.clock.Now()}
		if _, err := f.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	if _, err := f.verify.Enroll(ctx, a, us[0].ID, "", 0); err != nil { // an authenticator app
		t.Fatal(err)
	}
	for range 2 { // two devices
		token, _, err := f.devices.RegistrationToken(ctx, a.ID, us[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		f.registerDevice(token)
	}
	b.get("/console/apps/" + itoa(a.ID) + "/users")
	row := func(u twofold.User) string {
		m := regexp.MustCompile(`(?s)<tr data-user="` + itoa(u.ID) + `">.*?</tr>`).FindString(b.body)
		if m == "" {
			t.Fatalf("no row for user %d:\n%s", u.ID, b.body)
		}
		return m
	}
	for i, want := range []string{`data-factor="authenticator">authenticator app<`, `data-factor="device">2 devices<`, `data-factor="none">codes only<`} {
		if r := row(us[i]); !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(r) {
			t.Errorf("user %d's row lacks %s:\n%s", i, want, r)
		}
	}
	b.get("/console/apps/" + itoa(a.ID) + "/users/" + itoa(us[0].ID))
	b.contains(`<dd id="user-authenticator">enrolled (TOTP)</dd>`)
}
