package passkeys_test

import (
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestRegisterAndSignIn(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, p := f.register(f.app, f.ana, "Laptop")
		if p.Name != "Laptop" || p.UserID != f.ana.ID || len(p.PublicID) != 32 || p.AttestationFormat != "none" {
			t.Fatalf("registered %+v", p)
		}
		if got := f.audit.of(twofold.AuditPasskeyRegistered); len(got) != 1 || got[0].Details["passkey"] != p.PublicID {
			t.Fatalf("audit %+v", got)
		}
		// Second factor: the user is named.
		l, err := f.login(f.app, f.ana.ID, a)
		if err != nil {
			t.Fatal(err)
		}
		if l.UserID != f.ana.ID || l.Passkey.PublicID != p.PublicID || !l.UserVerified || l.Passkey.SignCount != 1 {
			t.Fatalf("login %+v", l)
		}
		// Usernameless: the user handle names the user.
		if l, err = f.login(f.app, 0, a); err != nil {
			t.Fatal(err)
		}
		if l.UserID != f.ana.ID || l.Passkey.SignCount != 2 {
			t.Fatalf("usernameless login %+v", l)
		}
		list, err := f.svc.List(t.Context(), f.app, f.ana.ID)
		if err != nil || len(list) != 1 || list[0].SignCount != 2 || list[0].LastUsedAt.IsZero() {
			t.Fatalf("list %+v %v", list, err)
		}
		if got := f.audit.of(twofold.AuditPasskeyUsed); len(got) != 2 || got[1].Details["usernameless"] != "true" {
			t.Fatalf("audit %+v", got)
		}
	})
}

// Names are trimmed, bounded and free of control characters; a user's passkeys are listed and
// removed by id.
func TestNamesAndRemoval(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	ctx := t.Context()
	for _, bad := range []string{strings.Repeat("x", 65), "a\x01b", "evil\u202egnp.exe"} {
		if _, err := f.svc.BeginRegistration(ctx, f.app, f.ana.ID, bad); twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	_, p := f.register(f.app, f.ana, "  My \t laptop ")
	if p.Name != "My laptop" {
		t.Fatalf("name %q", p.Name)
	}
	_, q := f.register(f.app, f.ana, "")
	if q.Name != "Passkey" {
		t.Fatalf("default name %q", q.Name)
	}
	if err := f.svc.Remove(ctx, f.app, f.ana.ID, p.PublicID); err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.List(ctx, f.app, f.ana.ID)
	if err != nil || len(list) != 1 || list[0].PublicID != q.PublicID {
		t.Fatalf("after removal: %+v %v", list, err)
	}
	if got := f.audit.of(twofold.AuditPasskeyRemoved); len(got) != 1 || got[0].Details["passkey"] != p.PublicID {
		t.Fatalf("audit %+v", got)
	}
	if _, err := f.svc.List(ctx, f.app, 999999); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("unknown user: %v", err)
	}
}
