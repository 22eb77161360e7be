package onetouch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// handoff is a Handoff with free idle workers, recording what the service does with them.
type handoff struct {
	mu                            sync.Mutex
	free                          int
	lease                         time.Time
	reserved, released, delivered int
	got                           []twofold.Callback
}

func (h *handoff) Reserve() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.free == 0 {
		return time.Time{}, false
	}
	h.free--
	h.reserved++
	return h.lease, true
}

func (h *handoff) Deliver(c twofold.Callback) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delivered++
	h.got = append(h.got, c)
}

func (h *handoff) Release() { h.mu.Lock(); defer h.mu.Unlock(); h.released++; h.free++ }

func (f *fixture) withHandoff(free int) *handoff {
	h := &handoff{free: free, lease: f.clock.Now().Add(time.Minute)}
	f.svc.SetHandoff(h)
	return h
}

// callbackOf returns the stored callback of request uuid.
func (f *fixture) callbackOf(uuid string) twofold.Callback {
	f.t.Helper()
	cbs, err := f.st.RecentCallbacks(context.Background(), f.app.ID, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range cbs {
		if c.RequestUUID == uuid {
			return c
		}
	}
	f.t.Fatalf("no callback of %s", uuid)
	return twofold.Callback{}
}

// An answer's callback is queued leased to the reserved worker and handed to it after the
// commit; the dispatcher is not woken for it.
func TestAnswerHandsCallbackOff(t *testing.T) {
	f := newFixture(t)
	h := f.withHandoff(1)
	r := f.create(0)
	if _, err := f.answer(r.UUID, twofold.Approved); err != nil {
		t.Fatal(err)
	}
	stored := f.callbackOf(r.UUID)
	if h.reserved != 1 || h.delivered != 1 || h.released != 0 || f.notified != 0 {
		t.Fatalf("reserved %d, delivered %d, released %d, notified %d; want 1, 1, 0, 0", h.reserved, h.delivered, h.released, f.notified)
	}
	if got := h.got[0]; got.ID != stored.ID || !got.NextAttemptAt.Equal(h.lease) || !stored.NextAttemptAt.Equal(h.lease) ||
		string(got.Payload) != string(stored.Payload) || got.AppID != f.app.ID || got.RequestUUID != r.UUID {
		t.Errorf("handed off %+v, stored %+v; want the stored callback, leased until %s", got, stored, h.lease)
	}
}

// Without an idle worker the callback is queued due at once and the dispatcher woken, as
// without a hand-off.
func TestAnswerWithoutIdleWorkerQueues(t *testing.T) {
	f := newFixture(t)
	h := f.withHandoff(0)
	r := f.create(0)
	if _, err := f.answer(r.UUID, twofold.Denied); err != nil {
		t.Fatal(err)
	}
	if c := f.callbackOf(r.UUID); !c.NextAttemptAt.Equal(c.CreatedAt) || h.delivered != 0 || f.notified != 1 {
		t.Errorf("stored %+v, delivered %d, notified %d; want due at once, none handed off, woken once", c, h.delivered, f.notified)
	}
}

// Answers that lose give their workers back; the one that wins hands its callback off.
func TestLosingAnswersReleaseWorkers(t *testing.T) {
	f := newFixture(t)
	h := f.withHandoff(16)
	r := f.create(0)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			status := twofold.Approved
			if i%2 == 1 {
				status = twofold.Denied
			}
			f.answer(r.UUID, status)
		})
	}
	wg.Wait()
	if h.delivered != 1 || h.released != h.reserved-1 || h.free != 15 {
		t.Errorf("reserved %d, delivered %d, released %d, %d idle; want 1 delivered, the others released, 15 idle",
			h.reserved, h.delivered, h.released, h.free)
	}
}

// The callbacks of an application whose callbacks are disabled are not handed off: they wait,
// unleased, until an operator enables them.
func TestDisabledCallbacksNotHandedOff(t *testing.T) {
	f := newFixture(t)
	h := f.withHandoff(0)
	first := f.create(0)
	if _, err := f.answer(first.UUID, twofold.Approved); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if disabled, err := f.st.CallbackFailed(context.Background(), f.callbackOf(first.UUID), 500, "down", now, now, 1); !disabled || err != nil {
		t.Fatalf("CallbackFailed = %v, %v; want the callbacks disabled", disabled, err)
	}
	h.free = 1
	r := f.create(0)
	if _, err := f.answer(r.UUID, twofold.Approved); err != nil {
		t.Fatal(err)
	}
	if c := f.callbackOf(r.UUID); !c.NextAttemptAt.Equal(c.CreatedAt) || h.reserved != 0 || h.delivered != 0 {
		t.Errorf("stored %+v, reserved %d, delivered %d; want due at once, none reserved", c, h.reserved, h.delivered)
	}
}
