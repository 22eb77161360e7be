package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// A user's page shows how many recovery codes remain and when the set was made (never a code);
// an operator revokes the set with a form post (CSRF-checked, another application's user not
// reachable), recorded in the audit trail as theirs.
func TestRecoveryCodesInConsole(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	other, _, _ := f.apps.Create(ctx, appsCreate("Other"))
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	if _, err := f.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	page := "/console/apps/" + itoa(a.ID) + "/users/" + itoa(u.ID)
	b.get(page)
	b.contains(`id="recovery-codes"`, "None. The customer")
	b.lacks(`id="recovery-revoke"`)

	codes, _, err := f.rc.Generate(ctx, a, u.ID, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rc.Spend(ctx, a, u.ID, codes[0]); err != nil {
		t.Fatal(err)
	}
	b.get(page)
	b.expect(http.StatusOK, "")
	b.contains("7 of 8 remaining, generated", `id="recovery-revoke"`)
	for _, c := range codes {
		b.lacks(c, strings.ReplaceAll(c, "-", ""))
	}

	revoke := page + "/recovery_codes/revoke"
	b.post(revoke, nil, false) // no CSRF token: refused, nothing revoked
	if b.last.StatusCode != http.StatusForbidden {
		t.Fatalf("a revocation without the CSRF token: %d", b.last.StatusCode)
	}
	if rc, _ := f.rc.Remaining(ctx, a, u.ID); rc.Remaining != 7 {
		t.Fatalf("revoked without CSRF: %+v", rc)
	}
	b.get(page)
	b.post("/console/apps/"+itoa(other.ID)+"/users/"+itoa(u.ID)+"/recovery_codes/revoke", nil, true)
	b.expect(http.StatusNotFound, "")
	b.get(page)
	b.post(revoke, nil, true)
	b.expect(http.StatusSeeOther, page)
	b.get(page)
	b.contains("Recovery codes revoked (8 in the set)", "None. The customer")
	if _, err := f.rc.Spend(ctx, a, u.ID, codes[1]); twofold.ErrorCode(err) != twofold.CodeTokenInvalid {
		t.Fatalf("a revoked code: %v", err)
	}
	events, _ := f.audit.List(ctx, twofold.AuditFilter{UserID: u.ID, Action: twofold.AuditRecoveryCodesRevoked})
	if len(events) != 1 || !strings.HasPrefix(events[0].Actor, "operator:") || events[0].Details["count"] != "8" {
		t.Fatalf("audit: %+v", events)
	}
}
