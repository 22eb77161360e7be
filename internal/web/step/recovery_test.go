package step_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// "Use a recovery code" over plain forms: offered only to a user who has codes, a code typed
// in any spelling passes the step, and the same code in another sign-in is refused as used.
// A user whose only way left is a recovery code (no device for a push-only client) gets its form
// rather than "nothing to offer".
func TestRecoveryCodeOverForms(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	choose := b.do("GET", page.url.Path+"?via=choose", nil)
	if strings.Contains(choose.body, `id="opt-recovery_code"`) {
		t.Fatal("a recovery code offered to a user without any")
	}
	codes, _, err := f.rc.Generate(t.Context(), f.app, f.user.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	choose = b.do("GET", page.url.Path+"?via=choose", nil)
	if !strings.Contains(choose.body, `id="opt-recovery_code"`) || !strings.Contains(choose.body, "Use a recovery code") {
		t.Fatalf("the choices lack the recovery code:\n%s", choose.body)
	}
	form := b.do("GET", page.url.Path+"?via=recovery_code", nil)
	if form.status != http.StatusOK || !strings.Contains(form.body, `id="recovery-form"`) {
		t.Fatalf("the recovery code's page: %d\n%s", form.status, form.body)
	}
	token := csrfOf(t, form)
	wrong := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"recovery_code"}, "code": {"zzzz-zzzz-zzzz"}})
	if wrong.status != http.StatusUnprocessableEntity || !strings.Contains(wrong.body, `id="recovery-form"`) || !strings.Contains(wrong.body, `aria-invalid="true"`) {
		t.Fatalf("a wrong recovery code: %d\n%s", wrong.status, wrong.body)
	}
	typed := strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))
	done := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"recovery_code"}, "code": {typed}})
	if done.status != http.StatusSeeOther {
		t.Fatalf("a recovery code: %d\n%s", done.status, done.body)
	}
	if back, _ := url.Parse(done.header.Get("Location")); back.Query().Get("code") == "" {
		t.Fatalf("went back to %s", back)
	}

	b2 := f.browser()
	page2 := b2.begin()
	form2 := b2.do("GET", page2.url.Path+"?via=recovery_code", nil)
	again := b2.do("POST", page2.url.Path+"/code", url.Values{"csrf": {csrfOf(t, form2)}, "via": {"recovery_code"}, "code": {codes[0]}})
	if again.status != http.StatusUnprocessableEntity || !strings.Contains(again.body, "That recovery code was used already") {
		t.Fatalf("a used recovery code: %d\n%s", again.status, again.body)
	}
	if rc, _ := f.rc.Status(t.Context(), f.app, f.user.ID); rc.Remaining != 4 {
		t.Fatalf("remaining %d", rc.Remaining)
	}
}

func TestRecoveryCodeOnlyWayLeft(t *testing.T) {
	f := newFixture(t, twofold.FactorPush) // the user has no device: no push to offer
	if _, _, err := f.rc.Generate(t.Context(), f.app, f.user.ID, 5); err != nil {
		t.Fatal(err)
	}
	page := f.browser().begin()
	if !strings.Contains(page.body, `id="recovery-form"`) {
		t.Fatalf("the only way left is not offered:\n%s", page.body)
	}
}
