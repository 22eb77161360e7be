package passkeys_test

import (
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
