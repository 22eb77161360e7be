package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// guess is what a verification does in a decision with the failure limit l on: read the window;
// when it is full, refuse; else judge the token (always wrong here) and count the failure. It
// reports whether the token was judged.
func guess(ctx context.Context, s *Store, appID, userID int64, name string, l twofold.Limit) (bool, error) {
	judged := false
	err := s.Decide(ctx, appID, userID, func(d twofold.Decision) error {
		judged = false
		n, _, _, err := d.Window(twofold.LimitWindow{Name: name, Since: t0.Add(-l.Window)})
		if err != nil || n >= int64(l.N) {
			return err
		}
		judged = true
		h, err := d.Hit(name, t0, l)
		if err == nil && h.Refused {
			err = errors.New("the window read in the decision had room, but Hit refused")
		}
		return err
	})
	return judged, err
}

// testDecisions covers Decide (decision.go): decisions of one user are serialised, so a limit
// read and counted in one holds under a burst, with other counts of that limit (Hit in a
// decision) mixed in; a decision is undone whole, its audit entry with it; its entries chain with
// AppendAudit's.
func testDecisions(t *testing.T, open func(t *testing.T) *Store) {
	l := twofold.Limit{N: 5, Window: time.Hour}

	t.Run("LimitHoldsUnderABurst", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		var judged, counted atomic.Int32
		race(workers, func(i int) {
			if i%4 == 0 {
				// A passkey's try: counted first, in a decision of its own.
				var h twofold.LimitHit
				err := s.Decide(t.Context(), a.ID, u.ID, func(d twofold.Decision) error {
					var err error
					h, err = d.Hit("failures:u", t0, l)
					return err
				})
				if err != nil {
					t.Error(err)
				}
				if !h.Refused {
					counted.Add(1)
				}
				return
			}
			ok, err := guess(t.Context(), s, a.ID, u.ID, "failures:u", l)
			if err != nil {
				t.Error(err)
			}
			if ok {
				judged.Add(1)
			}
		})
		if n := judged.Load() + counted.Load(); n != int32(l.N) {
			t.Errorf("%d tokens judged and %d tries counted by %d parallel decisions, want %d in all", judged.Load(), counted.Load(), workers, l.N)
		}
	})

	t.Run("UndoneWhole", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		au, av := mkAuthenticator(t, s, u), mkAuthenticator(t, s, v)
		boom := errors.New("boom")
		errs := make([]error, 2)
		race(2, func(i int) {
			usr, auth := []twofold.User{u, v}[i], []twofold.Authenticator{au, av}[i]
			errs[i] = s.Decide(ctx, a.ID, usr.ID, func(d twofold.Decision) error {
				if ok, err := d.AdvanceStep(auth.Version, 100); err != nil || !ok {
					return fmt.Errorf("advance: %v, %v", ok, err)
				}
				if _, err := d.Hit("failures:"+fmt.Sprint(usr.ID), t0, l); err != nil {
					return err
				}
				e := twofold.AuditEvent{At: t0, Actor: "system", Action: twofold.AuditVerificationOK, AppID: a.ID, UserID: usr.ID}
				if err := d.Audit(twofold.AuditEntry{Event: e, Chain: testChain}); err != nil {
					return err
				}
				if i == 0 {
					return boom
				}
				return nil
			})
		})
		if !errors.Is(errs[0], boom) || errs[1] != nil {
			t.Fatalf("decisions returned %v and %v, want boom and nil", errs[0], errs[1])
		}
		for i, want := range []int64{au.LastStep, 100} {
			usr := []twofold.User{u, v}[i]
			got, err := s.GetAuthenticator(ctx, a.ID, usr.ID)
			must(t, err)
			if got.LastStep != want {
				t.Errorf("user %d: last step %d, want %d", usr.ID, got.LastStep, want)
			}
			st, err := s.CheckState(ctx, a.ID, usr.ID, t0, twofold.LimitWindow{Name: "failures:" + fmt.Sprint(usr.ID), Since: t0.Add(-time.Hour)})
			must(t, err)
			if st.Failures != int64(i) {
				t.Errorf("user %d: %d failures counted, want %d", usr.ID, st.Failures, i)
			}
		}
		log, err := s.ListAudit(ctx, twofold.AuditFilter{})
		must(t, err)
		if len(log) != 1 || log[0].UserID != v.ID {
			t.Fatalf("audit trail %+v, want the one entry of the decision that committed", log)
		}
		checkChain(t, log)
	})

	t.Run("EntriesChainWithAppends", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		race(workers, func(i int) {
			e := twofold.AuditEvent{At: t0.Add(time.Duration(i)), Actor: "system", Action: twofold.AuditVerificationFailed,
				AppID: a.ID, UserID: u.ID, Details: map[string]string{"n": fmt.Sprint(i)}}
			var err error
			if i%2 == 0 {
				err = s.AppendAudit(ctx, &e, testChain)
			} else {
				err = s.Decide(ctx, a.ID, u.ID, func(d twofold.Decision) error {
					return d.Audit(twofold.AuditEntry{Event: e, Chain: testChain})
				})
			}
			if err != nil {
				t.Error(err)
			}
		})
		log, err := s.ListAudit(ctx, twofold.AuditFilter{Limit: 2 * workers})
		must(t, err)
		if len(log) != workers {
			t.Fatalf("%d entries, want %d", len(log), workers)
		}
		checkChain(t, log)
	})
}

// testCodesWithoutSMS covers CodesWithoutSMS: the first device registered names it, else an
// authenticator app, else nothing; another user's (or application's) devices do not count.
func testCodesWithoutSMS(t *testing.T, open func(t *testing.T) *Store) {
	s, ctx := open(t), t.Context()
	a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
	u, v, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002"), mkUser(t, s, b.ID, 1, "5550000001")
	want := func(usr twofold.User, what string) {
		t.Helper()
		got, err := s.CodesWithoutSMS(ctx, usr.AppID, usr.ID)
		must(t, err)
		if got != what {
			t.Errorf("CodesWithoutSMS(user %d of app %d) = %q, want %q", usr.ID, usr.AppID, got, what)
		}
	}
	want(u, "")
	mkAuthenticator(t, s, u)
	want(u, "authenticator")
	first := mkDevice(t, s, u, "phone", t0)
	second := newDevice(fmt.Sprint(u.ID, ":tablet"))
	second.OSType = "ios"
	must(t, s.RegisterDevice(ctx, mkToken(t, s, u, "tablet", t0.Add(ttl)), t0.Add(time.Minute), &second))
	want(u, first.OSType)
	want(v, "")
	want(w, "")
	wantErr(t, "CodesWithoutSMS of no user", errOf(s.CodesWithoutSMS(ctx, a.ID, 999999)), nil)
}
