package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passkeys (migration 00032), part of runConformance: the application's relying-party
// settings round-trip; user handles are made once per user and found within their application;
// a ceremony is consumed once (of 20 at once, one), only in its application and kind, before
// it expires; a passkey's credential id is unique within its application; its counter moves
// only forward, by compare-and-set; passkeys go with their user and application.
func testPasskeys(t *testing.T, open func(t *testing.T) *Store) {
	mkPasskey := func(tb testing.TB, s *Store, u twofold.User, name string) twofold.Passkey {
		tb.Helper()
		p := twofold.Passkey{PublicID: fmt.Sprintf("%032x", name), AppID: u.AppID, UserID: u.ID, Name: name,
			CredentialID: []byte("cred:" + name), PublicKey: []byte{0xa5, 1, 2}, SignCount: 3, BackupEligible: true,
			Transports: []string{"internal", "hybrid"}, AAGUID: bytes.Repeat([]byte{7}, 16), AttestationFormat: "none", CreatedAt: t0}
		must(tb, s.InsertPasskey(tb.Context(), &p, 3))
		return p
	}
	t.Run("Settings", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		a.PasskeyRPID, a.PasskeyOrigins, a.PasskeyUV, a.PasskeyUsernameless = "shop.example",
			[]string{"https://shop.example", "https://login.shop.example:8443"}, twofold.UVRequired, true
		must(t, s.UpdateApp(ctx, a))
		got := noErr(s.GetApp(ctx, a.ID))(t)
		if got.PasskeyRPID != a.PasskeyRPID || !slices.Equal(got.PasskeyOrigins, a.PasskeyOrigins) || got.PasskeyUV != twofold.UVRequired || !got.PasskeyUsernameless {
			t.Fatalf("passkey settings: %+v", got.Settings)
		}
		if b := mkApp(t, s, "b"); b.PasskeyRPID != "" || b.PasskeyUserVerification() != twofold.UVPreferred || b.PasskeyUsernameless {
			t.Fatalf("new app's passkey settings: %+v", b.Settings)
		}
	})
	t.Run("Handles", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		ana, bo := mkUser(t, s, a.ID, 1, "2015550100"), mkUser(t, s, b.ID, 1, "2015550100")
		h := noErr(s.PasskeyHandle(ctx, a.ID, ana.ID, []byte("handle-1")))(t)
		same(t, "made", []byte("handle-1"), h)
		same(t, "kept", []byte("handle-1"), noErr(s.PasskeyHandle(ctx, a.ID, ana.ID, []byte("handle-2")))(t))
		wantErr(t, "unknown user", errOf(s.PasskeyHandle(ctx, a.ID, 999999, []byte("x"))), twofold.ErrNotFound)
		same(t, "found", ana.ID, noErr(s.UserByPasskeyHandle(ctx, a.ID, []byte("handle-1")))(t))
		wantErr(t, "in another application", errOf(s.UserByPasskeyHandle(ctx, b.ID, []byte("handle-1"))), twofold.ErrNotFound)
		// Racing first uses get the one handle.
		var wg sync.WaitGroup
		got := make([][]byte, 10)
		for i := range got {
			wg.Go(func() { got[i], _ = s.PasskeyHandle(ctx, b.ID, bo.ID, []byte{byte(i)}) })
		}
		wg.Wait()
		for _, g := range got {
			if len(g) != 1 || g[0] != got[0][0] {
				t.Fatalf("racing first uses: %v", got)
			}
		}
	})
	t.Run("Ceremonies", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		c := twofold.PasskeyCeremony{ID: fmt.Sprintf("%032x", 1), AppID: a.ID, UserID: 42, Kind: twofold.CeremonyAuthentication,
			Session: []byte(`{"challenge":"x"}`), Name: "n", CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
		must(t, s.InsertPasskeyCeremony(ctx, c))
		wantErr(t, "id taken", s.InsertPasskeyCeremony(ctx, c), twofold.ErrConflict)
		wantErr(t, "another application's", errOf(s.ConsumePasskeyCeremony(ctx, b.ID, c.ID, c.Kind, t0)), twofold.ErrNotFound)
		wantErr(t, "another kind", errOf(s.ConsumePasskeyCeremony(ctx, a.ID, c.ID, twofold.CeremonyRegistration, t0)), twofold.ErrNotFound)
		wantErr(t, "expired", errOf(s.ConsumePasskeyCeremony(ctx, a.ID, c.ID, c.Kind, c.ExpiresAt)), twofold.ErrNotFound)
		same(t, "consumed", c, noErr(s.ConsumePasskeyCeremony(ctx, a.ID, c.ID, c.Kind, t0))(t))
		wantErr(t, "again", errOf(s.ConsumePasskeyCeremony(ctx, a.ID, c.ID, c.Kind, t0)), twofold.ErrNotFound)

		c.ID = fmt.Sprintf("%032x", 2)
		must(t, s.InsertPasskeyCeremony(ctx, c))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 20 {
			wg.Go(func() {
				_, err := s.ConsumePasskeyCeremony(ctx, a.ID, c.ID, c.Kind, t0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won++
				} else if !errors.Is(err, twofold.ErrNotFound) {
					t.Errorf("consume: %v", err)
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("20 at once: %d consumed, want 1", won)
		}
		// Ceremonies long expired are dropped as new ones come.
		old := c
		old.ID, old.CreatedAt, old.ExpiresAt = fmt.Sprintf("%032x", 3), t0.Add(-3*time.Hour), t0.Add(-2*time.Hour)
		must(t, s.InsertPasskeyCeremony(ctx, old))
		c.ID = fmt.Sprintf("%032x", 4)
		must(t, s.InsertPasskeyCeremony(ctx, c))
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkey_ceremonies WHERE id = $1`, old.ID).Scan(&n))
		if n != 0 {
			t.Fatal("a ceremony expired two hours ago was kept")
		}
	})
	t.Run("Passkeys", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		ana, bo := mkUser(t, s, a.ID, 1, "2015550100"), mkUser(t, s, a.ID, 1, "2015550101")
		cy := mkUser(t, s, b.ID, 1, "2015550100")
		p1, p2 := mkPasskey(t, s, ana, "one"), mkPasskey(t, s, ana, "two")
		same(t, "listed", []twofold.Passkey{p1, p2}, noErr(s.ListPasskeys(ctx, a.ID, ana.ID))(t))
		same(t, "by credential", p2, noErr(s.PasskeyByCredentialID(ctx, a.ID, p2.CredentialID))(t))
		wantErr(t, "by credential in another application", errOf(s.PasskeyByCredentialID(ctx, b.ID, p2.CredentialID)), twofold.ErrNotFound)
		dup := p1
		dup.PublicID, dup.UserID = fmt.Sprintf("%032x", "dup"), bo.ID
		wantErr(t, "a credential id of the application's", s.InsertPasskey(ctx, &dup, 3), twofold.ErrConflict)
		dup.AppID, dup.UserID = b.ID, cy.ID
		must(t, s.InsertPasskey(ctx, &dup, 3)) // another application's own
		mkPasskey(t, s, ana, "three")
		four := p1
		four.PublicID, four.CredentialID = fmt.Sprintf("%032x", "four"), []byte("cred:four")
		wantErr(t, "past the most per user", s.InsertPasskey(ctx, &four, 3), twofold.ErrTooMany)
		four.UserID = 999999
		wantErr(t, "for an unknown user", s.InsertPasskey(ctx, &four, 3), twofold.ErrNotFound)

		// The counter moves only forward.
		for _, tc := range []struct {
			count uint32
			ok    bool
		}{{3, false}, {2, false}, {4, true}, {4, false}, {9, true}, {0, false}} {
			if got := noErr(s.UsePasskey(ctx, a.ID, p1.ID, tc.count, true, t0.Add(time.Hour)))(t); got != tc.ok {
				t.Errorf("use with count %d: %v, want %v", tc.count, got, tc.ok)
			}
		}
		if got := noErr(s.UsePasskey(ctx, b.ID, p1.ID, 100, true, t0))(t); got {
			t.Error("used through another application")
		}
		got := noErr(s.PasskeyByCredentialID(ctx, a.ID, p1.CredentialID))(t)
		if got.SignCount != 9 || !got.BackupState || !got.LastUsedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after uses: %+v", got)
		}
		// Counterless authenticators stay at 0.
		zero := mkPasskey(t, s, bo, "zero")
		if _, err := s.w.ExecContext(ctx, `UPDATE passkeys SET sign_count = 0 WHERE id = $1`, zero.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if !noErr(s.UsePasskey(ctx, a.ID, zero.ID, 0, false, t0))(t) {
				t.Fatal("a counterless passkey refused")
			}
		}
		// 20 uses at one count: one moves it.
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 20 {
			wg.Go(func() {
				ok, err := s.UsePasskey(ctx, a.ID, p2.ID, 50, false, t0)
				mu.Lock()
				defer mu.Unlock()
				must(t, err)
				if ok {
					won++
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("20 uses at one count: %d moved it, want 1", won)
		}

		wantErr(t, "removed through another user", errOf(s.DeletePasskey(ctx, a.ID, bo.ID, p1.PublicID)), twofold.ErrNotFound)
		wantErr(t, "removed through another application", errOf(s.DeletePasskey(ctx, b.ID, ana.ID, p1.PublicID)), twofold.ErrNotFound)
		same(t, "removed", p1.PublicID, noErr(s.DeletePasskey(ctx, a.ID, ana.ID, p1.PublicID))(t).PublicID)
		wantErr(t, "removed again", errOf(s.DeletePasskey(ctx, a.ID, ana.ID, p1.PublicID)), twofold.ErrNotFound)

		// Passkeys and handles go with their user, and with their application.
		noErr(s.PasskeyHandle(ctx, a.ID, ana.ID, []byte("h")))(t)
		must(t, s.DeleteUser(ctx, a.ID, ana.ID))
		wantErr(t, "a deleted user's passkey", errOf(s.PasskeyByCredentialID(ctx, a.ID, p2.CredentialID)), twofold.ErrNotFound)
		wantErr(t, "a deleted user's handle", errOf(s.UserByPasskeyHandle(ctx, a.ID, []byte("h"))), twofold.ErrNotFound)
		must(t, s.DeleteApp(ctx, b.ID))
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkeys WHERE app_id = $1`, b.ID).Scan(&n))
		if n != 0 {
			t.Fatalf("%d passkeys left of a deleted application", n)
		}
	})
}
