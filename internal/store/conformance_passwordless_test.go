package store

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passwordless sign-in's part of runConformance: a row per request begun, the approval request
// beside it in one transaction when one is sent, and the subject's lookup in one read.

// newPasswordless is a passwordless request of app created at created, expiring after ttl,
// with the approval request r of u (nil for a phantom) sharing its uuid.
func newPasswordless(app twofold.App, u *twofold.User, created time.Time, ttl time.Duration) (twofold.PasswordlessRequest, *twofold.ApprovalRequest) {
	p := twofold.PasswordlessRequest{UUID: fmt.Sprintf("00000000-0000-4000-9000-%012d", reqSeq.Add(1)), AppID: app.ID, Number: "42",
		CreatedAt: created, ExpiresAt: created.Add(ttl)}
	if u == nil {
		return p, nil
	}
	r := newRequest(*u, created, ttl)
	r.UUID, r.Number = p.UUID, p.Number
	return p, &r
}

func mkPasswordless(t *testing.T, s *Store, app twofold.App, u *twofold.User, created time.Time, ttl time.Duration, maxPending int) (twofold.PasswordlessRequest, *twofold.ApprovalRequest, bool) {
	t.Helper()
	p, r := newPasswordless(app, u, created, ttl)
	sent, err := s.CreatePasswordless(t.Context(), &p, r, maxPending)
	must(t, err)
	if p.ID == 0 || p.Sent != sent {
		t.Fatalf("CreatePasswordless left %+v (sent %v)", p, sent)
	}
	return p, r, sent
}

func testPasswordless(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("SentAndPhantom", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		u := mkUser(t, s, app.ID, 1, "2015550101")
		sentReq, r, sent := mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 5)
		phantom, _, phantomSent := mkPasswordless(t, s, app, nil, t0, 2*time.Minute, 5)
		if !sent || phantomSent {
			t.Fatalf("sent %v, phantom sent %v", sent, phantomSent)
		}
		// The approval request went in with the passwordless row, under the same uuid.
		got, err := s.GetApprovalRequest(ctx, app.ID, sentReq.UUID)
		must(t, err)
		if got.UserID != u.ID || got.Number != "42" || got.Status != twofold.Pending {
			t.Fatalf("approval request %+v", got)
		}
		wantErr(t, "a phantom's approval request", errOf(s.GetApprovalRequest(ctx, app.ID, phantom.UUID)), twofold.ErrNotFound)

		for _, tc := range []struct {
			p    twofold.PasswordlessRequest
			want twofold.PasswordlessRequest
		}{
			{sentReq, twofold.PasswordlessRequest{ID: sentReq.ID, UUID: sentReq.UUID, AppID: app.ID, Number: "42", CreatedAt: t0,
				ExpiresAt: t0.Add(2 * time.Minute), Sent: true, Status: twofold.Pending, UserID: u.ID}},
			{phantom, twofold.PasswordlessRequest{ID: phantom.ID, UUID: phantom.UUID, AppID: app.ID, Number: "42", CreatedAt: t0,
				ExpiresAt: t0.Add(2 * time.Minute), Status: twofold.Pending}},
		} {
			got, err := s.GetPasswordless(ctx, app.ID, tc.p.UUID)
			must(t, err)
			if d := diff(tc.want, got); d != "" {
				t.Errorf("GetPasswordless(%s):%s", tc.p.UUID, d)
			}
			wantErr(t, "another application's request", errOf(s.GetPasswordless(ctx, other.ID, tc.p.UUID)), twofold.ErrNotFound)
		}
		wantErr(t, "an unknown uuid", errOf(s.GetPasswordless(ctx, app.ID, "nothing")), twofold.ErrNotFound)

		// The sent request's status, user and reason are its approval request's.
		finish(t, s, *r, twofold.Denied, t0.Add(time.Minute), nil)
		got2, err := s.GetPasswordless(ctx, app.ID, sentReq.UUID)
		must(t, err)
		if got2.Status != twofold.Denied || got2.Reason != "not me" || got2.UserID != u.ID || !got2.Sent {
			t.Fatalf("after the denial: %+v", got2)
		}
		// Deleting the application deletes its passwordless requests.
		must(t, s.DeleteApp(ctx, app.ID))
		wantErr(t, "a deleted application's request", errOf(s.GetPasswordless(ctx, app.ID, phantom.UUID)), twofold.ErrNotFound)
	})

	t.Run("PendingBoundAndDeletedUserMakePhantoms", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		u := mkUser(t, s, app.ID, 1, "2015550102")
		mkRequest(t, s, u, t0, time.Hour)
		mkRequest(t, s, u, t0, time.Hour)
		mkRequest(t, s, u, t0.Add(-2*time.Hour), time.Hour) // expired: not counted
		p, _, sent := mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 3)
		if !sent {
			t.Fatal("the third live request was not sent")
		}
		p, _, sent = mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 3)
		if sent {
			t.Fatal("a fourth live pending request was sent with a bound of 3")
		}
		wantErr(t, "the unsent approval request", errOf(s.GetApprovalRequest(ctx, app.ID, p.UUID)), twofold.ErrNotFound)
		if got, err := s.GetPasswordless(ctx, app.ID, p.UUID); err != nil || got.Sent || got.Status != twofold.Pending {
			t.Fatalf("the phantom: %+v, %v", got, err)
		}
		gone := mkUser(t, s, app.ID, 1, "2015550103")
		must(t, s.DeleteUser(ctx, app.ID, gone.ID))
		if _, _, sent := mkPasswordless(t, s, app, &gone, t0, 2*time.Minute, 3); sent {
			t.Fatal("a request was sent to a deleted user")
		}
	})

	t.Run("ConcurrentBeginsRespectTheBound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		u := mkUser(t, s, app.ID, 1, "2015550104")
		var sentN atomic.Int32
		race(workers, func(int) {
			p, r := newPasswordless(app, &u, t0, 2*time.Minute)
			sent, err := s.CreatePasswordless(ctx, &p, r, 3)
			if err != nil {
				t.Error(err)
			}
			if sent {
				sentN.Add(1)
			}
		})
		pending, err := s.ListApprovalRequests(ctx, app.ID, u.ID, twofold.Pending, 100)
		must(t, err)
		if sentN.Load() != 3 || len(pending) != 3 {
			t.Fatalf("%d of %d parallel begins sent (%d pending), want 3", sentN.Load(), workers, len(pending))
		}
	})

	t.Run("Subject", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		ana := mkUser(t, s, app.ID, 1, "2015550105")
		ana.Email = "Ana@Example.com"
		must(t, s.UpdateUser(ctx, ana))
		mkDevice(t, s, ana, "phone", t0)
		bo := twofold.User{AppID: app.ID, CustomUserID: "customer-7", CreatedAt: t0}
		_, err := s.CreateCustomUser(ctx, &bo)
		must(t, err)
		for _, phone := range []string{"2015550106", "2015550107"} { // two users with one email name none
			twin := mkUser(t, s, app.ID, 1, phone)
			twin.Email = "twins@example.com"
			must(t, s.UpdateUser(ctx, twin))
		}
		for _, tc := range []struct {
			match  twofold.UserMatch
			name   string
			want   int64
			device bool
		}{
			{twofold.MatchEmail, "ana@example.com", ana.ID, true},
			{twofold.MatchEmail, "ANA@EXAMPLE.COM", ana.ID, true},
			{twofold.MatchID, fmt.Sprint(ana.ID), ana.ID, true},
			{twofold.MatchCustomID, "customer-7", bo.ID, false},
			{twofold.MatchID, fmt.Sprint(bo.ID), bo.ID, false},
		} {
			got, err := s.PasswordlessSubject(ctx, app.ID, tc.match, tc.name)
			must(t, err)
			if got.UserID != tc.want || got.HasDevice != tc.device || !got.LastNotRequested.IsZero() {
				t.Errorf("PasswordlessSubject(%s %q) = %+v", tc.match, tc.name, got)
			}
			wantErr(t, "another application's user", errOf(s.PasswordlessSubject(ctx, other.ID, tc.match, tc.name)), twofold.ErrNotFound)
		}
		for _, tc := range []struct {
			match twofold.UserMatch
			name  string
		}{
			{twofold.MatchEmail, "twins@example.com"}, {twofold.MatchEmail, "nobody@example.com"}, {twofold.MatchEmail, ""},
			{twofold.MatchCustomID, ""}, {twofold.MatchCustomID, "CUSTOMER-7"}, {twofold.MatchID, "0"}, {twofold.MatchID, "-1"},
			{twofold.MatchID, "+" + fmt.Sprint(ana.ID)}, {twofold.MatchID, "0" + fmt.Sprint(ana.ID)}, {twofold.MatchID, "99999999"},
			{twofold.MatchID, "1e3"}, {twofold.MatchID, "99999999999999999999"},
		} {
			wantErr(t, fmt.Sprintf("PasswordlessSubject(%s %q)", tc.match, tc.name),
				errOf(s.PasswordlessSubject(ctx, app.ID, tc.match, tc.name)), twofold.ErrNotFound)
		}
	})

	t.Run("LastNotRequested", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		u := mkUser(t, s, app.ID, 1, "2015550108")
		deny := func(r twofold.ApprovalRequest, reason string, at time.Time) {
			t.Helper()
			r.Status, r.Reason, r.ProcessedAt, r.UpdatedAt = twofold.Denied, reason, at, at
			if !noErr(s.FinishApprovalRequest(ctx, r, nil))(t) {
				t.Fatalf("deny %s", r.UUID)
			}
		}
		last := func() time.Time {
			t.Helper()
			sub, err := s.PasswordlessSubject(ctx, app.ID, twofold.MatchID, fmt.Sprint(u.ID))
			must(t, err)
			return sub.LastNotRequested
		}
		// An ordinary request denied as not requested, and a passwordless one denied for another
		// reason, block nothing.
		deny(mkRequest(t, s, u, t0, time.Hour), twofold.ReasonNotRequested, t0.Add(time.Second))
		_, r, _ := mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 0)
		deny(*r, "number mismatch", t0.Add(2*time.Second))
		if got := last(); !got.IsZero() {
			t.Fatalf("LastNotRequested = %v, want none", got)
		}
		// Passwordless requests denied as not requested: the latest counts.
		_, r1, _ := mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 0)
		_, r2, _ := mkPasswordless(t, s, app, &u, t0, 2*time.Minute, 0)
		deny(*r2, twofold.ReasonNotRequested, t0.Add(50*time.Second))
		deny(*r1, twofold.ReasonNotRequested, t0.Add(40*time.Second))
		if got := last(); !got.Equal(t0.Add(50 * time.Second)) {
			t.Fatalf("LastNotRequested = %v, want %v", got, t0.Add(50*time.Second))
		}
	})

	t.Run("Sweep", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		old, _, _ := mkPasswordless(t, s, app, nil, t0.Add(-49*time.Hour), time.Minute, 0)
		kept, _, _ := mkPasswordless(t, s, app, nil, t0.Add(-47*time.Hour), time.Minute, 0)
		_, err := s.Sweep(ctx, t0)
		must(t, err)
		wantErr(t, "a request two days past its expiry", errOf(s.GetPasswordless(ctx, app.ID, old.UUID)), twofold.ErrNotFound)
		must(t, errOf(s.GetPasswordless(ctx, app.ID, kept.UUID)))
	})
}
