package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Recovery codes (migration 00031), part of runConformance: a code is spent once however the
// requests race, a regeneration replaces the whole set at once, and a set belongs to one user
// of one application.

func testRecoveryCodes(t *testing.T, open func(t *testing.T) *Store) {
	macs := func(prefix string, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte{prefix[0], byte(i), 0xff}
		}
		return out
	}
	t.Run("SpentOnceWhenRaced", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		set := macs("a", 10)
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, set, t0))
		var spent, reused atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				// Two keys' MACs, as after a master key rotation: the second is the stored one.
				res, _, err := s.SpendRecoveryCode(t.Context(), app.ID, u.ID, [][]byte{[]byte("other key"), set[3]}, t0.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				switch res {
				case twofold.RecoverySpent:
					spent.Add(1)
				case twofold.RecoveryReused:
					reused.Add(1)
				}
			})
		}
		wg.Wait()
		if spent.Load() != 1 || reused.Load() != workers-1 {
			t.Fatalf("spent %d, reused %d of %d parallel spends of one code; want 1 and the rest", spent.Load(), reused.Load(), workers)
		}
		rc, err := s.RecoveryCodes(t.Context(), app.ID, u.ID)
		if err != nil || rc.Total != 10 || rc.Remaining != 9 || !rc.CreatedAt.Equal(t0) {
			t.Fatalf("after one spend: %+v, %v", rc, err)
		}
	})
	t.Run("RegenerationReplacesTheSet", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		old, fresh := macs("o", 10), macs("n", 5)
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, old, t0))
		if res, _, err := s.SpendRecoveryCode(t.Context(), app.ID, u.ID, old[:1], t0); err != nil || res != twofold.RecoverySpent {
			t.Fatalf("spend an old code: %v, %v", res, err)
		}
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, fresh, t0.Add(time.Hour)))
		for i, m := range old {
			if res, _, err := s.SpendRecoveryCode(t.Context(), app.ID, u.ID, [][]byte{m}, t0.Add(2*time.Hour)); err != nil || res != twofold.RecoveryUnknown {
				t.Fatalf("old code %d after regeneration: %v, %v; want unknown", i, res, err)
			}
		}
		rc, err := s.RecoveryCodes(t.Context(), app.ID, u.ID)
		if err != nil || rc.Total != 5 || rc.Remaining != 5 || !rc.CreatedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("after regeneration: %+v, %v", rc, err)
		}
		res, rc, err := s.SpendRecoveryCode(t.Context(), app.ID, u.ID, fresh[4:], t0.Add(2*time.Hour))
		if err != nil || res != twofold.RecoverySpent || rc.Remaining != 4 {
			t.Fatalf("spend a new code: %v %+v %v", res, rc, err)
		}
	})
	t.Run("RegenerationRacesSpends", func(t *testing.T) {
		// Whatever the order, a reader sees a whole set: the old one or the new one.
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, macs("o", 10), t0))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, macs(string(rune('a'+i)), 5+i), t0))
			})
			wg.Go(func() {
				rc, err := s.RecoveryCodes(t.Context(), app.ID, u.ID)
				if err != nil || rc.Total != rc.Remaining || (rc.Total != 10 && (rc.Total < 5 || rc.Total > 12)) {
					t.Errorf("a set read during regenerations: %+v, %v", rc, err)
				}
			})
		}
		wg.Wait()
	})
	t.Run("IsolatedByUserAndApp", func(t *testing.T) {
		s := open(t)
		a, b := mkApp(t, s, "A"), mkApp(t, s, "B")
		ua := mkUser(t, s, a.ID, 1, "2015550100")
		ub := mkUser(t, s, b.ID, 1, "2015550100")
		set := macs("x", 5)
		must(t, s.ReplaceRecoveryCodes(t.Context(), a.ID, ua.ID, set, t0))
		// B's user has the same public id space; the same MACs reach nothing of A's.
		if res, _, err := s.SpendRecoveryCode(t.Context(), b.ID, ub.ID, set[:1], t0); err != nil || res != twofold.RecoveryUnknown {
			t.Fatalf("app B spends app A's code: %v, %v", res, err)
		}
		if res, _, err := s.SpendRecoveryCode(t.Context(), b.ID, ua.ID, set[:1], t0); err != nil || res != twofold.RecoveryUnknown {
			t.Fatalf("app B names app A's user: %v, %v", res, err)
		}
		if err := s.ReplaceRecoveryCodes(t.Context(), b.ID, ua.ID+1000, set, t0); !errors.Is(err, twofold.ErrNotFound) {
			t.Fatalf("a set for an unknown user: %v, want ErrNotFound", err)
		}
		if rc, err := s.RecoveryCodes(t.Context(), a.ID, ua.ID); err != nil || rc.Remaining != 5 {
			t.Fatalf("A's set after B's tries: %+v, %v", rc, err)
		}
	})
	t.Run("RevokedAndGoneWithTheUser", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, macs("r", 7), t0))
		if n, err := s.DeleteRecoveryCodes(t.Context(), app.ID, u.ID); err != nil || n != 7 {
			t.Fatalf("revoke: %d, %v", n, err)
		}
		if rc, err := s.RecoveryCodes(t.Context(), app.ID, u.ID); err != nil || rc != (twofold.RecoveryCodes{}) {
			t.Fatalf("after revocation: %+v, %v", rc, err)
		}
		must(t, s.ReplaceRecoveryCodes(t.Context(), app.ID, u.ID, macs("r", 7), t0))
		must(t, s.DeleteUser(t.Context(), app.ID, u.ID))
		var left int
		must(t, s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM recovery_codes`).Scan(&left))
		if left != 0 {
			t.Fatalf("%d recovery codes outlive their user", left)
		}
	})
}
