package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The operator sets an application's passkey settings on its settings page, sees a user's
// passkeys on the user's page and removes one (a form with its CSRF token; audited as theirs).
func TestUserPasskeys(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	settings := "/console/apps/" + itoa(a.ID) + "/settings"
	form := url.Values{"name": {"Shop"}, "callback_method": {"POST"}, "sms_enabled": {"on"}, "call_enabled": {"on"},
		"passkey_rp_id": {"shop.example"}, "passkey_origins": {"https://evil.example"}, "passkey_user_verification": {"required"},
		"passkey_usernameless": {"on"}}
	b.get(settings)
	b.contains(`name="passkey_rp_id"`, `name="passkey_usernameless"`)
	b.post(settings, form, true)
	b.expect(http.StatusUnprocessableEntity, "")
	b.contains("Passkey origin")
	form.Set("passkey_origins", "https://login.shop.example, https://shop.example")
	b.get(settings)
	b.post(settings, form, true)
	b.expect(http.StatusSeeOther, "/console/apps/"+itoa(a.ID))
	a, _ = f.apps.Get(ctx, a.ID)
	if a.PasskeyRPID != "shop.example" || strings.Join(a.PasskeyOrigins, " ") != "https://login.shop.example https://shop.example" ||
		a.PasskeyUV != twofold.UVRequired || !a.PasskeyUsernameless {
		t.Fatalf("saved: %+v", a.Settings)
	}

	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	bob := twofold.User{AppID: a.ID, Email: "bob@example.com", CountryCode: 1, Phone: "2015550124", CreatedAt: f.clock.Now()}
	for _, x := range []*twofold.User{&u, &bob} {
		if _, err := f.st.CreateUser(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	auth := passkeytest.New("https://login.shop.example")
	auth.BackedUp = true
	c, err := f.passkeys.BeginRegistration(ctx, a, u.ID, "Ada's <laptop>")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := auth.Register(c.Options)
	p, err := f.passkeys.FinishRegistration(ctx, a, u.ID, c.ID, resp, "")
	if err != nil {
		t.Fatal(err)
	}
	page := "/console/apps/" + itoa(a.ID) + "/users/" + itoa(u.ID)
	b.get(page)
	b.expect(http.StatusOK, "")
	b.contains(`data-passkey="`+p.PublicID+`"`, "Ada&#39;s &lt;laptop&gt;", "never", "backed up (synced)")

	remove := page + "/passkeys/" + p.PublicID + "/delete"
	b.post(remove, nil, false) // no CSRF token
	if list, _ := f.passkeys.List(ctx, a, u.ID); len(list) != 1 {
		t.Fatal("removed without the form's token")
	}
	b.get(page)
	b.post("/console/apps/"+itoa(a.ID)+"/users/"+itoa(bob.ID)+"/passkeys/"+p.PublicID+"/delete", nil, true)
	b.expect(http.StatusNotFound, "")
	b.get(page)
	b.post(remove, nil, true)
	b.expect(http.StatusSeeOther, page)
	b.get(page)
	b.contains("Passkey removed", "No passkey.")
	if list, _ := f.passkeys.List(ctx, a, u.ID); len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}
	events, _ := f.audit.List(ctx, twofold.AuditFilter{UserID: u.ID, Action: twofold.AuditPasskeyRemoved})
	if len(events) != 1 || !strings.HasPrefix(events[0].Actor, "operator:") || events[0].Details["passkey"] != p.PublicID {
		t.Fatalf("audit: %+v", events)
	}
}
