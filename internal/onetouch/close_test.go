package onetouch_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

// closeFixture is the fixture with the real audit trail and a record of the devices woken.
type closeFixture struct {
	*fixture
	audit *audit.Log
	woken []int64 // user ids, one per Changed hook
}

func newCloseFixture(t *testing.T) *closeFixture {
	t.Helper()
	f := &closeFixture{fixture: newFixture(t)}
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	f.audit = audit.New(f.st, keys.Subkey(audit.KeyLabel), f.clock.Now, slog.New(slog.DiscardHandler))
	f.svc = onetouch.New(f.st, onetouch.Config{}, onetouch.Hooks{
		CallbackQueued: func() { f.notified++ },
		Changed:        func(_, userID int64) { f.woken = append(f.woken, userID) },
	}, f.clock.Now)
	f.svc.SetAuditor(f.audit)
	return f
}

// closes lists the approval.closed entries of the audit trail.
func (f *closeFixture) closes() []twofold.AuditEvent {
	f.t.Helper()
	list, err := f.audit.List(context.Background(), twofold.AuditFilter{Action: twofold.AuditApprovalClosed})
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}

func TestClose(t *testing.T) {
	ctx := audit.WithActor(context.Background(), twofold.AppActor(1))
	f := newCloseFixture(t)
	r := f.create(120)
	f.woken = nil // creating woke them too
	f.clock.Advance(10 * time.Second)

	got, err := f.svc.Close(ctx, f.app, r.UUID)
	if err != nil || got.Status != twofold.Expired || got.Reason != onetouch.ClosedReason ||
		!got.ExpiresAt.Equal(f.clock.Now()) || !got.ProcessedAt.Equal(f.clock.Now()) {
		t.Fatalf("Close = %+v, %v; want expired now, reason closed", got, err)
	}
	if len(f.woken) != 1 || f.woken[0] != f.user.ID {
		t.Fatalf("devices woken for users %v, want once for %d", f.woken, f.user.ID)
	}
	if list := f.closes(); len(list) != 1 || list[0].Actor != twofold.AppActor(1) || list[0].Details["uuid"] != r.UUID ||
		list[0].AppID != f.app.ID || list[0].UserID != f.user.ID {
		t.Fatalf("audit trail %+v, want one approval.closed by the application", list)
	}
	// The device cannot answer it any more, and sees it expired.
	if _, err := f.answer(r.UUID, twofold.Approved); twofold.ErrorCode(err) != twofold.CodeNotPending {
		t.Fatalf("answer after close: %v, want 60079", err)
	}
	if seen, err := f.svc.OneForDevice(ctx, f.device, r.UUID); err != nil || seen.Status != twofold.Expired {
		t.Fatalf("the device sees %+v, %v", seen, err)
	}

	// Idempotent: closing again answers the same request, and records and wakes nothing.
	f.clock.Advance(time.Minute)
	again, err := f.svc.Close(ctx, f.app, r.UUID)
	if err != nil || again.Status != twofold.Expired || !again.ProcessedAt.Equal(got.ProcessedAt) {
		t.Fatalf("second Close = %+v, %v; want the closed request unchanged", again, err)
	}
	if len(f.woken) != 1 || len(f.closes()) != 1 {
		t.Fatalf("second Close woke %d times, recorded %d closes; want 1 and 1", len(f.woken), len(f.closes()))
	}
	// No callback for a close, though the application asked for expiry callbacks.
	if cbs, _ := f.st.RecentCallbacks(ctx, f.app.ID, 10); len(cbs) != 0 || f.notified != 0 {
		t.Fatalf("%d callbacks queued for a close", len(cbs))
	}
}

func TestCloseRefusals(t *testing.T) {
	ctx := context.Background()
	f := newCloseFixture(t)

	t.Run("answered", func(t *testing.T) {
		for _, status := range []twofold.ApprovalStatus{twofold.Approved, twofold.Denied} {
			r := f.create(120)
			if _, err := f.answer(r.UUID, status); err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.Close(ctx, f.app, r.UUID)
			if twofold.ErrorCode(err) != twofold.CodeNotPending || got.Status != status {
				t.Fatalf("Close of a request %s: %+v, %v; want 60079 and the request unchanged", status, got, err)
			}
		}
	})
	t.Run("expired by time", func(t *testing.T) {
		r := f.create(60)
		f.clock.Advance(time.Minute)
		got, err := f.svc.Close(ctx, f.app, r.UUID)
		if err != nil || got.Status != twofold.Expired || got.Reason != "" {
			t.Fatalf("Close of an expired request: %+v, %v; want it as it expired", got, err)
		}
	})
	t.Run("another application's", func(t *testing.T) {
		r := f.create(120)
		keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
		other, _, err := apps.New(f.st, keys, f.clock.Now).Create(ctx, apps.CreateParams{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		// Even a user with the same public id in the other application changes nothing.
		if _, _, err := users.New(f.st, f.clock.Now).Register(ctx, other.ID, users.Contact{Email: "b@example.com", Cellphone: "2015550123", CountryCode: "1"}); err != nil {
			t.Fatal(err)
		}
		for _, uuid := range []string{r.UUID, "00000000-0000-4000-8000-000000000000"} {
			if _, err := f.svc.Close(ctx, other, uuid); twofold.ErrorCode(err) != twofold.CodeRequestNotFound {
				t.Fatalf("Close(%s) by another application: %v, want 60049", uuid, err)
			}
		}
		if got, _ := f.svc.Get(ctx, f.app, r.UUID); got.Status != twofold.Pending {
			t.Fatalf("after another application's close: %s", got.Status)
		}
	})
	if n := len(f.closes()); n != 0 {
		t.Fatalf("%d closes recorded for refused closes", n)
	}
}
