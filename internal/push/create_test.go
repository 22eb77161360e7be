package push_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/push/pushtest"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// countingStore counts the notifier's reads of a user's push subscriptions.
type countingStore struct {
	push.Store
	reads atomic.Int64
}

func (c *countingStore) PushSubscriptionsForUser(ctx context.Context, appID, userID int64) ([]store.PushSubscription, error) {
	c.reads.Add(1)
	return c.Store.PushSubscriptionsForUser(ctx, appID, userID)
}

// TestCreatePushesOnlyUsersWithSubscriptions: creating an approval request (alone or in a
// group) for a user with a push subscription pushes it; for a user whose devices have none, the
// notifier is not called and the subscriptions are not read (the read that found the user's
// device said there was nowhere to push).
func TestCreatePushesOnlyUsersWithSubscriptions(t *testing.T) {
	f := newFixture(t)
	svc := pushtest.NewService()
	defer svc.Close()
	now := time.Now()
	key, err := push.LoadVAPIDKey(t.Context(), f.st, f.keys, now)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: f.st}
	n, err := push.New(counting, key, push.Config{Egress: standIns(t)}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	subscribeWebPush(t, n, f.dev, svc) // f.user's device
	other := mkUser(t, f.st, f.app.ID, "5550000002")
	mkDevice(t, f.st, other, "phone") // a device, no subscription
	var created atomic.Int64
	ot := onetouch.New(f.st, onetouch.Config{}, onetouch.Hooks{Created: func(r twofold.ApprovalRequest) {
		created.Add(1)
		if err := n.Notify(t.Context(), r); err != nil { // synchronous: whatever it pushes has arrived
			t.Errorf("Notify: %v", err)
		}
	}}, func() time.Time { return now })

	steps := []struct {
		name           string
		do             func() error
		created, reads int64
		pushes         int
	}{
		{"request for the user with a subscription", func() error {
			_, err := ot.Create(t.Context(), f.app, f.user.ID, onetouch.CreateParams{Message: "Log in?"})
			return err
		}, 1, 1, 1},
		{"request for the user without one", func() error {
			_, err := ot.Create(t.Context(), f.app, other.ID, onetouch.CreateParams{Message: "Log in?"})
			return err
		}, 1, 1, 0},
		{"group of both", func() error {
			_, err := ot.CreateGroup(t.Context(), f.app, onetouch.GroupParams{Message: "Pay?",
				Approvers: []onetouch.Approver{{UserID: f.user.ID}, {UserID: other.ID}}})
			return err
		}, 2, 2, 1},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for range st.pushes {
			receive(t, svc.C)
		}
		if got, reads := created.Load(), counting.reads.Load(); got != st.created || reads != st.reads || len(svc.C) != 0 {
			t.Errorf("after %s: Created called %d times, subscriptions read %d times, %d more pushes; want %d, %d, 0",
				st.name, got, reads, len(svc.C), st.created, st.reads)
		}
	}
}
