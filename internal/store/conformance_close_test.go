package store

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testCloseApprovalRequest: an application closes its pending request before its time (the
// user logged in another way). The request becomes expired, now; only a pending request of that
// application is closed, once, and a close and an answer racing for it have one winner.
func testCloseApprovalRequest(t *testing.T, open func(t *testing.T) *Store) {
	closeReq := func(tb testing.TB, s *Store, appID int64, r twofold.ApprovalRequest, at time.Time) bool {
		tb.Helper()
		return noErr(s.CloseApprovalRequest(tb.Context(), appID, r.ID, "closed", at))(tb)
	}
	closed := func(r twofold.ApprovalRequest, at time.Time) twofold.ApprovalRequest {
		r.Status, r.Reason, r.ExpiresAt, r.ProcessedAt, r.UpdatedAt = twofold.Expired, "closed", at, at, at
		return r
	}

	t.Run("OnceAndOnlyPending", func(t *testing.T) {
		s := open(t)
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		at := t0.Add(time.Minute)
		for _, tc := range []struct {
			name  string
			ttl   time.Duration
			setup func(r twofold.ApprovalRequest) // what happened to the request before the close
			app   int64                           // whose close it is
			want  bool
		}{
			{"pending", ttl, nil, a.ID, true},
			{"pending, never expiring", 0, nil, a.ID, true},
			{"another application's", ttl, nil, b.ID, false},
			{"approved", ttl, func(r twofold.ApprovalRequest) { finish(t, s, r, twofold.Approved, t0.Add(time.Second), nil) }, a.ID, false},
			{"denied", ttl, func(r twofold.ApprovalRequest) { finish(t, s, r, twofold.Denied, t0.Add(time.Second), nil) }, a.ID, false},
			{"expired", time.Second, func(r twofold.ApprovalRequest) { finish(t, s, r, twofold.Expired, t0.Add(time.Second), nil) }, a.ID, false},
			{"closed already", ttl, func(r twofold.ApprovalRequest) { closeReq(t, s, a.ID, r, t0.Add(time.Second)) }, a.ID, false},
		} {
			r := mkRequest(t, s, u, t0, tc.ttl)
			if tc.setup != nil {
				tc.setup(r)
			}
			before := getRequest(t, s, r)
			if got := closeReq(t, s, tc.app, r, at); got != tc.want {
				t.Errorf("%s: CloseApprovalRequest = %v, want %v", tc.name, got, tc.want)
			}
			want := before
			if tc.want {
				want = closed(before, at)
			}
			same(t, tc.name+": request after CloseApprovalRequest", want, getRequest(t, s, r))
		}
		// A close queues no callback: the application did it.
		same(t, "callbacks", []twofold.Callback(nil), recentCallbacks(t, s, a.ID))
	})

	t.Run("FinalAndFreesItsPendingSlot", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		r := mkRequest(t, s, u, t0, ttl)
		next := newRequest(u, t0, ttl)
		wantErr(t, "a second request with one pending (max 1)", s.CreateApprovalRequest(ctx, &next, 1), ErrTooMany)
		if !closeReq(t, s, a.ID, r, t0.Add(time.Second)) {
			t.Fatal("the pending request was not closed")
		}
		for _, st := range []twofold.ApprovalStatus{twofold.Approved, twofold.Denied, twofold.Expired} {
			if finish(t, s, r, st, t0.Add(time.Hour), nil) {
				t.Errorf("a %s change of a closed request won", st)
			}
		}
		same(t, "closed request after later changes", closed(r, t0.Add(time.Second)), getRequest(t, s, r))
		must(t, s.CreateApprovalRequest(ctx, &next, 1))
		if n := len(noErr(s.DueExpiries(ctx, t0.Add(time.Hour), 10))(t)); n != 1 {
			t.Errorf("%d due expiries an hour on, want 1: the new request, not the closed one", n)
		}
	})

	// The close and its audit entry commit together; a close that loses appends nothing.
	t.Run("AuditInSameTransaction", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		r := mkRequest(t, s, u, t0, ttl)
		at := t0.Add(time.Second)
		entry := testEntry(twofold.AuditApprovalClosed, a.ID, u.ID, map[string]string{"uuid": r.UUID})
		if v := recovered(func() { s.CloseApprovalRequest(ctx, a.ID, r.ID, "closed", at, entry, panicking()) }); v == nil {
			t.Fatal("an entry whose chaining panicked did not fail the close")
		}
		same(t, "request after a close whose entry failed", r, getRequest(t, s, r))
		if log := trail(t, s); len(log) != 0 {
			t.Fatalf("audit trail %+v after a close whose entry failed, want none", log)
		}
		for i, want := range []bool{true, false} {
			if won := noErr(s.CloseApprovalRequest(ctx, a.ID, r.ID, "closed", at, entry))(t); won != want {
				t.Fatalf("close %d = %v, want %v", i+1, won, want)
			}
		}
		if won := noErr(s.CloseApprovalRequest(ctx, a.ID+1, r.ID, "closed", at, entry))(t); won {
			t.Fatal("another application closed the request")
		}
		same(t, "request after the close", closed(r, at), getRequest(t, s, r))
		if log := trail(t, s); len(log) != 1 || log[0].Action != twofold.AuditApprovalClosed || log[0].Details["uuid"] != r.UUID {
			t.Fatalf("audit trail %+v, want the close's entry, once", log)
		}
	})

	t.Run("RacesAnAnswer", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		var winners []string // what the winner of each round appended
		for round := range 4 {
			r := mkRequest(t, s, u, t0, ttl)
			var closes, answers atomic.Int32
			exactlyOne(t, workers, fmt.Sprint("round ", round, ": close or answer"), func(i int) (bool, error) {
				if i%2 == 0 {
					closing := testEntry(twofold.AuditApprovalClosed, a.ID, u.ID, map[string]string{"uuid": r.UUID})
					won, err := s.CloseApprovalRequest(t.Context(), a.ID, r.ID, "closed", t0.Add(time.Second), closing)
					if won {
						closes.Add(1)
					}
					return won, err
				}
				x := r
				x.Status, x.DeviceID, x.ProcessedAt = twofold.Approved, int64(i), t0.Add(time.Second)
				cb := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}
				answer := testEntry(twofold.AuditApprovalApproved, a.ID, u.ID, map[string]string{"uuid": r.UUID})
				won, err := s.FinishApprovalRequest(t.Context(), x, &cb, answer)
				if won {
					answers.Add(1)
				}
				return won, err
			})
			got := getRequest(t, s, r)
			if closes.Load() == 1 {
				winners = append(winners, twofold.AuditApprovalClosed+" "+r.UUID)
			} else {
				winners = append(winners, twofold.AuditApprovalApproved+" "+r.UUID)
			}
			switch {
			case closes.Load() == 1 && (got.Status != twofold.Expired || got.Reason != "closed"):
				t.Errorf("round %d: the close won but the request is %s (%q)", round, got.Status, got.Reason)
			case answers.Load() == 1 && got.Status != twofold.Approved:
				t.Errorf("round %d: the answer won but the request is %s", round, got.Status)
			}
		}
		// One entry per round, the winner's: the losers appended nothing.
		var appended []string
		for _, e := range trail(t, s) {
			appended = append(appended, e.Action+" "+e.Details["uuid"])
		}
		same(t, "audit trail", winners, appended)
	})
}
