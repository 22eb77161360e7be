package passkeys_test

import (
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Assertions an attacker could make, each refused with 401/60172 and recorded as a failed
// verification, and none of them moving the passkey's counter.
func TestForgedAssertionsAreRefused(t *testing.T) {
	flip := func(b []byte, i int, bit byte) { b[i] ^= bit }
	tests := []struct {
		name   string
		setup  func(a *passkeytest.Authenticator)
		tamper func(s *passkeytest.Assertion)
	}{
		{name: "signature changed", tamper: func(s *passkeytest.Assertion) { flip(s.Signature, len(s.Signature)-1, 1) }},
		{name: "UV flag set after signing", setup: func(a *passkeytest.Authenticator) { a.UV = false },
			tamper: func(s *passkeytest.Assertion) { flip(s.AuthData, 32, passkeytest.FlagUV) }},
		{name: "counter raised after signing", tamper: func(s *passkeytest.Assertion) { flip(s.AuthData, 36, 0x40) }},
		{name: "client data changed after signing", tamper: func(s *passkeytest.Assertion) {
			s.ClientData = []byte(string(s.ClientData[:len(s.ClientData)-1]) + `,"extra":1}`)
		}},
		{name: "another challenge", tamper: func(s *passkeytest.Assertion) { s.ClientData[30] ^= 1 }},
		{name: "wrong origin", setup: func(a *passkeytest.Authenticator) { a.Origin = "https://shop.example.evil.test" }},
		{name: "origin of the rp id not listed", setup: func(a *passkeytest.Authenticator) { a.Origin = "https://shop.example" }},
		{name: "wrong rp id hash", setup: func(a *passkeytest.Authenticator) { a.RPID = "evil.test" }},
		{name: "another user's handle", tamper: func(s *passkeytest.Assertion) { s.UserHandle = []byte("somebody else entirely") }},
	}
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				a, p := f.register(f.app, f.ana, "")
				if tc.setup != nil {
					tc.setup(a)
				}
				before := len(f.audit.of(twofold.AuditVerificationFailed))
				c, err := f.svc.BeginLogin(t.Context(), f.app, f.ana.ID)
				if err != nil {
					t.Fatal(err)
				}
				s, err := a.Sign(c.Options)
				if err != nil {
					t.Fatal(err)
				}
				if tc.tamper != nil {
					tc.tamper(&s)
				}
				_, err = f.svc.FinishLogin(t.Context(), f.app, c.ID, s.JSON())
				if code := twofold.ErrorCode(err); code != twofold.CodePasskeyInvalid {
					t.Fatalf("FinishLogin: %v, want 60172", err)
				}
				if got := f.audit.of(twofold.AuditVerificationFailed); len(got) != before+1 || got[len(got)-1].Details["method"] != "passkey" {
					t.Errorf("failures recorded: %+v", got)
				}
				list, _ := f.svc.List(t.Context(), f.app, f.ana.ID)
				for _, q := range list {
					if q.PublicID == p.PublicID && (q.SignCount != 0 || !q.LastUsedAt.IsZero()) {
						t.Errorf("a refused assertion moved the passkey: %+v", q)
					}
				}
				if err := f.svc.Remove(t.Context(), f.app, f.ana.ID, p.PublicID); err != nil {
					t.Fatal(err)
				}
				f.clock.Advance(16 * time.Minute)
			})
		}
	})
}

// A ceremony is answered once: again in sequence, and of 20 answers at once exactly one wins.
func TestReplayedCeremonyIsRefused(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, _ := f.register(f.app, f.ana, "")
		for _, user := range []int64{f.ana.ID, 0} {
			c, _ := f.svc.BeginLogin(t.Context(), f.app, user)
			resp, _ := a.Assert(c.Options)
			if _, err := f.svc.FinishLogin(t.Context(), f.app, c.ID, resp); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.FinishLogin(t.Context(), f.app, c.ID, resp); twofold.ErrorCode(err) != twofold.CodePasskeyCeremonyNotFound {
				t.Fatalf("replayed: %v", err)
			}
		}
		c, _ := f.svc.BeginLogin(t.Context(), f.app, 0)
		resp, _ := a.Assert(c.Options)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, spent := 0, 0
		for range 20 {
			wg.Go(func() {
				_, err := f.svc.FinishLogin(t.Context(), f.app, c.ID, resp)
				mu.Lock()
				defer mu.Unlock()
				switch twofold.ErrorCode(err) {
				case twofold.CodeInternal:
					if err == nil {
						wins++
						return
					}
					t.Errorf("parallel finish: %v", err)
				case twofold.CodePasskeyCeremonyNotFound:
					spent++
				default:
					t.Errorf("parallel finish: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || spent != 19 {
			t.Fatalf("20 answers at once: %d won, %d refused as spent; want 1 and 19", wins, spent)
		}
		// A registration ceremony replayed, too.
		b := passkeytest.New(origin)
		rc, _ := f.svc.BeginRegistration(t.Context(), f.app, f.bo.ID, "")
		reg, _ := b.Register(rc.Options)
		if _, err := f.svc.FinishRegistration(t.Context(), f.app, f.bo.ID, rc.ID, reg, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.FinishRegistration(t.Context(), f.app, f.bo.ID, rc.ID, reg, ""); twofold.ErrorCode(err) != twofold.CodePasskeyCeremonyNotFound {
			t.Fatalf("registration replayed: %v", err)
		}
	})
}

// A ceremony is bound to its application, its kind, its user, and expires.
func TestCeremonyBindings(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, _ := f.register(f.app, f.ana, "")
		ctx := t.Context()
		want := func(what string, err error, code twofold.Code) {
			t.Helper()
			if twofold.ErrorCode(err) != code {
				t.Errorf("%s: %v, want %d", what, err, code)
			}
		}
		c, _ := f.svc.BeginLogin(ctx, f.app, f.ana.ID)
		resp, _ := a.Assert(c.Options)
		_, err := f.svc.FinishLogin(ctx, f.other, c.ID, resp)
		want("another application's ceremony", err, twofold.CodePasskeyCeremonyNotFound)

		rc, _ := f.svc.BeginRegistration(ctx, f.app, f.ana.ID, "")
		_, err = f.svc.FinishLogin(ctx, f.app, rc.ID, resp)
		want("a registration ceremony finished as a sign-in", err, twofold.CodePasskeyCeremonyNotFound)

		rc, _ = f.svc.BeginRegistration(ctx, f.app, f.ana.ID, "")
		reg, _ := passkeytest.New(origin).Register(rc.Options)
		_, err = f.svc.FinishRegistration(ctx, f.app, f.bo.ID, rc.ID, reg, "")
		want("another user's registration ceremony", err, twofold.CodePasskeyCeremonyNotFound)

		c, _ = f.svc.BeginLogin(ctx, f.app, f.ana.ID)
		resp, _ = a.Assert(c.Options)
		f.clock.Advance(5*time.Minute + time.Second)
		_, err = f.svc.FinishLogin(ctx, f.app, c.ID, resp)
		want("an expired ceremony", err, twofold.CodePasskeyCeremonyNotFound)

		_, err = f.svc.FinishLogin(ctx, f.app, "../../etc", resp)
		want("a malformed ceremony id", err, twofold.CodePasskeyCeremonyNotFound)
	})
}

// A counter that does not move forward is a cloned authenticator: refused and reported.
func TestClonedAuthenticatorIsRefused(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, p := f.register(f.app, f.ana, "")
		a.Counter = 5
		if _, err := f.login(f.app, f.ana.ID, a); err != nil { // counter 6
			t.Fatal(err)
		}
		clone := *a
		clone.Counter = 2 // the clone signs 3: behind the 6 stored
		if _, err := f.login(f.app, f.ana.ID, &clone); twofold.ErrorCode(err) != twofold.CodePasskeyCloned {
			t.Fatalf("clone: %v, want 60175", err)
		}
		clone.Counter = 5 // the same count again (6) is no step forward either
		if _, err := f.login(f.app, 0, &clone); twofold.ErrorCode(err) != twofold.CodePasskeyCloned {
			t.Fatalf("clone at the same count: %v, want 60175", err)
		}
		got := f.audit.of(twofold.AuditPasskeyCloneDetected)
		if len(got) != 2 || got[0].Details["passkey"] != p.PublicID || got[0].Details["stored_count"] != "6" ||
			got[0].Details["presented_count"] != "3" || got[0].UserID != f.ana.ID {
			t.Fatalf("clone reports: %+v", got)
		}
		if failed := f.audit.of(twofold.AuditVerificationFailed); len(failed) != 2 || failed[0].Details["why"] != "cloned" {
			t.Fatalf("failures: %+v", failed)
		}
		if l, err := f.login(f.app, f.ana.ID, a); err != nil || l.Passkey.SignCount != 7 { // the original goes on
			t.Fatalf("original after the clone: %+v %v", l, err)
		}
		// Copies answering 20 ceremonies at once with one count: the counter moves by
		// compare-and-set, so exactly one is taken and the rest are clones.
		var answers [][]byte
		var ids []string
		for range 20 {
			c, _ := f.svc.BeginLogin(t.Context(), f.app, f.ana.ID)
			dup := *a
			resp, _ := dup.Assert(c.Options) // count 8 each
			answers, ids = append(answers, resp), append(ids, c.ID)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, cloned, limited := 0, 0, 0
		for i := range answers {
			wg.Go(func() {
				_, err := f.svc.FinishLogin(t.Context(), f.app, ids[i], answers[i])
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case twofold.ErrorCode(err) == twofold.CodePasskeyCloned:
					cloned++
				case twofold.ErrorCode(err) == twofold.CodeRateLimited: // the user's failure limit filled
					limited++
				default:
					t.Errorf("copy %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if won != 1 || cloned == 0 || cloned+limited != 19 {
			t.Fatalf("20 copies at one count: %d taken, %d refused as clones, %d past the failure limit; want 1 and 19", won, cloned, limited)
		}
		f.clock.Advance(16 * time.Minute)
		// An authenticator without a counter (always 0) is not a clone.
		z, _ := f.register(f.app, f.bo, "")
		z.Frozen = true
		for range 2 {
			if _, err := f.login(f.app, f.bo.ID, z); err != nil {
				t.Fatalf("counterless authenticator: %v", err)
			}
		}
	})
}

// Application B knows nothing of application A's passkeys, even with the same rp id.
func TestPasskeysAreIsolatedByApplication(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, p := f.register(f.app, f.ana, "")
		if _, err := f.login(f.other, 0, a); twofold.ErrorCode(err) != twofold.CodePasskeyInvalid {
			t.Fatalf("A's passkey usernameless at B: %v", err)
		}
		if _, err := f.login(f.other, f.otherU.ID, a); twofold.ErrorCode(err) != twofold.CodeNoPasskeys {
			t.Fatalf("A's passkey for B's user without passkeys: %v", err)
		}
		f.register(f.other, f.otherU, "")
		if _, err := f.login(f.other, f.otherU.ID, a); twofold.ErrorCode(err) != twofold.CodePasskeyInvalid {
			t.Fatalf("A's passkey for B's user: %v", err)
		}
		if _, err := f.svc.BeginLogin(t.Context(), f.other, f.ana.ID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
			t.Fatalf("A's user at B: %v", err)
		}
		if err := f.svc.Remove(t.Context(), f.other, f.ana.ID, p.PublicID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
			t.Fatalf("A's passkey removed through B: %v", err)
		}
		if err := f.svc.Remove(t.Context(), f.other, f.otherU.ID, p.PublicID); twofold.ErrorCode(err) != twofold.CodePasskeyNotFound {
			t.Fatalf("A's passkey removed as B's user's: %v", err)
		}
		// The same authenticator registered at A twice is refused; at B it is B's own.
		if _, err := f.registerWith(f.app, f.bo, a, ""); twofold.ErrorCode(err) != twofold.CodePasskeyRegistration {
			t.Fatalf("one credential for two users of A: %v", err)
		}
	})
}

// Policies of the application: usernameless only where allowed, user verification when
// required (and always for usernameless), no passkeys without a relying party.
func TestApplicationPolicies(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		ctx := t.Context()
		a, _ := f.register(f.app, f.ana, "")
		no, required, empty := false, twofold.UVRequired, ""
		app, err := f.apps.Update(ctx, f.app.ID, apps.Update{PasskeyUsernameless: &no})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.BeginLogin(ctx, app, 0); twofold.ErrorCode(err) != twofold.CodeUsernamelessDisabled {
			t.Fatalf("usernameless when not allowed: %v", err)
		}
		a.UV = false
		if l, err := f.login(app, f.ana.ID, a); err != nil || l.UserVerified {
			t.Fatalf("preferred, not verified: %+v %v", l, err)
		}
		yes := true
		app, _ = f.apps.Update(ctx, f.app.ID, apps.Update{PasskeyUsernameless: &yes})
		if _, err := f.login(app, 0, a); twofold.ErrorCode(err) != twofold.CodePasskeyInvalid {
			t.Fatalf("usernameless without user verification: %v", err)
		}
		app, _ = f.apps.Update(ctx, f.app.ID, apps.Update{PasskeyUV: &required})
		if _, err := f.login(app, f.ana.ID, a); twofold.ErrorCode(err) != twofold.CodePasskeyInvalid {
			t.Fatalf("required, not verified: %v", err)
		}
		a.UV = true
		if l, err := f.login(app, f.ana.ID, a); err != nil || !l.UserVerified {
			t.Fatalf("required, verified: %+v %v", l, err)
		}
		app, _ = f.apps.Update(ctx, f.app.ID, apps.Update{PasskeyRPID: &empty, PasskeyOrigins: &[]string{}})
		if _, err := f.svc.BeginRegistration(ctx, app, f.ana.ID, ""); twofold.ErrorCode(err) != twofold.CodePasskeysNotConfigured {
			t.Fatalf("no rp id: %v", err)
		}
		if _, err := f.svc.BeginLogin(ctx, app, f.ana.ID); twofold.ErrorCode(err) != twofold.CodePasskeysNotConfigured {
			t.Fatalf("no rp id: %v", err)
		}
	})
}

// Failed assertions fill the user's failure limit (counted before judging): past it even a
// valid assertion is refused with 60003.
func TestFailuresCountAgainstTheLimit(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixture(t, open(t))
		a, _ := f.register(f.app, f.ana, "")
		bad := *a
		bad.Origin = "https://evil.test"
		for i := range 5 {
			if _, err := f.login(f.app, f.ana.ID, &bad); twofold.ErrorCode(err) != twofold.CodePasskeyInvalid {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if _, err := f.login(f.app, f.ana.ID, a); twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("past the limit: %v, want 60003", err)
		}
		if _, err := f.login(f.app, 0, a); twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("usernameless past the limit: %v, want 60003", err)
		}
		f.clock.Advance(16 * time.Minute)
		if _, err := f.login(f.app, f.ana.ID, a); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
}
