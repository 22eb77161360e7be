package callback

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The hand-off (handoff.go): an answer's callback, inserted leased to a reserved worker in the
// answer's transaction, goes to that worker without a claim; one whose process dies before it
// is delivered goes out at the first claim after its lease; and hand-offs racing claims deliver
// every callback once.

// start runs d until the returned stop is called (or the test ends); stop returns once Run has.
func start(t *testing.T, d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("Run did not return")
		}
	})
	t.Cleanup(stop)
	return stop
}

// reserve reserves one of d's workers, failing the test if none is idle within wait. It tries
// again while none is: Run gives back the workers a claim did not use only after the store has
// answered it (and reported it to the test), and at start it claims for every worker.
func reserve(t *testing.T, d *Dispatcher) time.Time {
	t.Helper()
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		if lease, ok := d.Reserve(); ok {
			return lease
		}
		if time.Now().After(deadline) {
			t.Fatal("Reserve found no idle worker")
		}
	}
}

func TestHandoffDeliversWithoutClaim(t *testing.T) {
	f := newFixture(t)
	d, claims := f.dispatcher(f.st, Config{Workers: 2, Lease: time.Minute, Timeout: 10 * time.Second})
	if _, ok := d.Reserve(); ok {
		t.Fatal("Reserve took a worker of a dispatcher not running")
	}
	run(t, d)
	next(t, claims, "claim at start") // nothing queued yet

	lease := reserve(t, d)
	if want := f.clock.Now().Add(time.Minute); !lease.Equal(want) {
		t.Fatalf("lease until %s, want %s (the claim's)", lease, want)
	}
	cb, err := f.queueLeased(lease)
	if err != nil {
		t.Fatal(err)
	}
	if stored := f.callback(cb.RequestUUID); !stored.NextAttemptAt.Equal(lease) || !cb.NextAttemptAt.Equal(lease) {
		t.Fatalf("queued leased until %s (stored %s), want %s", cb.NextAttemptAt, stored.NextAttemptAt, lease)
	}
	d.Deliver(cb)
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.ID != cb.ID {
		t.Fatalf("attempt %+v, want %s delivered", a, cb.RequestUUID)
	}
	if c := f.callback(cb.RequestUUID); c.Status != "delivered" || c.Attempts != 1 {
		t.Errorf("stored %+v, want delivered at the first attempt", c)
	}
	if len(claims) != 0 {
		t.Errorf("%d claims for a callback handed off, want none", len(claims))
	}

	// Workers reserved are not idle: neither for another reservation nor for a claim.
	reserve(t, d)
	reserve(t, d)
	if _, ok := d.Reserve(); ok {
		t.Error("Reserve took a third worker of two")
	}
	queued := f.queue()
	d.Notify()
	d.Release()
	if c := next(t, claims, "claim after a release"); c.n != 1 || len(c.got) != 1 || c.got[0].RequestUUID != queued {
		t.Errorf("claim after a release: %d of %d, want %s", len(c.got), c.n, queued)
	}
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.RequestUUID != queued {
		t.Errorf("attempt %+v, want %s delivered", a, queued)
	}
	d.Release()
}

// A callback handed off by a server that stops before it delivers it (the hand-off never
// happens) is delivered by another server's claim once its lease runs out, not before, once.
func TestHandoffLostIsClaimedAfterLease(t *testing.T) {
	f := newFixture(t)
	dead, _ := f.dispatcher(f.st, Config{Workers: 1, Lease: time.Minute, Timeout: 10 * time.Second})
	stopDead := start(t, dead)
	lease := reserve(t, dead)
	cb, err := f.queueLeased(lease)
	if err != nil {
		t.Fatal(err)
	}
	dead.Release() // the worker never gets it: the server's end, as far as the store can tell
	stopDead()

	other, claims := f.dispatcher(f.st, Config{Workers: 1, Lease: time.Minute, Timeout: 10 * time.Second})
	run(t, other)
	if c := next(t, claims, "claim at start"); len(c.got) != 0 {
		t.Fatalf("claimed %+v while its lease holds", c.got)
	}
	f.clock.Advance(time.Minute - time.Second)
	other.Notify()
	if c := claimAt(t, claims, f.clock.Now()); len(c.got) != 0 {
		t.Fatalf("claimed %+v a second before its lease ran out", c.got)
	}
	f.clock.Advance(time.Second)
	other.Notify()
	if c := claimAt(t, claims, f.clock.Now()); len(c.got) != 1 || c.got[0].ID != cb.ID {
		t.Fatalf("claim after the lease got %+v, want callback %d", c.got, cb.ID)
	}
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.ID != cb.ID {
		t.Fatalf("attempt %+v, want %s delivered", a, cb.RequestUUID)
	}
	if n := f.rc.count(cb.RequestUUID); n != 1 {
		t.Errorf("received %d times, want once", n)
	}
}

// A hand-off whose lease has less than Timeout left when it comes (the answer's transaction
// was slow) is not delivered by the hand-off: the claim after the lease delivers it.
func TestHandoffTooLateWaitsForLease(t *testing.T) {
	f := newFixture(t)
	d, claims := f.dispatcher(f.st, Config{Workers: 1, Lease: time.Minute, Timeout: 10 * time.Second})
	run(t, d)
	next(t, claims, "claim at start")
	cb, err := f.queueLeased(reserve(t, d))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(50 * time.Second)
	d.Deliver(cb)
	d.Notify()
	if c := claimAt(t, claims, f.clock.Now()); len(c.got) != 0 {
		t.Fatalf("claimed %+v while its lease holds", c.got)
	}
	if n := f.rc.count(cb.RequestUUID); n != 0 {
		t.Fatalf("delivered %d times with 10 s of its lease left and a 10 s timeout", n)
	}
	f.clock.Advance(10 * time.Second)
	d.Notify()
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.ID != cb.ID {
		t.Fatalf("attempt %+v, want %s delivered", a, cb.RequestUUID)
	}
}

// Answers handing their callbacks off race the claims of several servers on one database,
// which poll all the time: every callback is delivered once, by its hand-off or by a claim.
func TestHandoffRacesClaims(t *testing.T) {
	for name, open := range sharedStores() {
		t.Run(name, func(t *testing.T) {
			stores := open(t)
			f := newFixtureOn(t, stores[0])
			var ds []*Dispatcher
			var stops []func()
			var claimed atomic.Int64
			var drained sync.WaitGroup
			for _, st := range stores {
				d, claims := f.dispatcher(st, Config{Workers: 2, PollInterval: 2 * time.Millisecond})
				drained.Go(func() {
					for c := range claims {
						claimed.Add(int64(len(c.got)))
					}
				})
				stops = append(stops, start(t, d))
				ds = append(ds, d)
			}
			const n, answerers = 60, 6
			var handed atomic.Int64
			uuids := make(chan string, n)
			var answered sync.WaitGroup
			for i := range answerers {
				answered.Go(func() {
					for j := i; j < n; j += answerers {
						d := ds[j%len(ds)]
						lease, ok := d.Reserve()
						cb, err := f.queueLeased(lease)
						if err != nil {
							t.Error(err)
							if ok {
								d.Release()
							}
							continue
						}
						uuids <- cb.RequestUUID
						if ok {
							handed.Add(1)
							d.Deliver(cb)
						} else {
							d.Notify()
						}
					}
				})
			}
			answered.Wait()
			close(uuids)
			for range n {
				if a := next(t, f.attempts, "attempt"); !a.OK {
					t.Errorf("attempt %+v", a)
				}
			}
			for _, stop := range stops { // every delivery begun is recorded once Run returns
				stop()
			}
			for _, d := range ds {
				close(d.store.(*watchedStore).claims)
			}
			drained.Wait()
			for u := range uuids {
				if got := f.rc.count(u); got != 1 {
					t.Errorf("callback of %s received %d times, want once", u, got)
				}
				if c := f.callback(u); c.Status != "delivered" || c.Attempts != 1 {
					t.Errorf("stored %+v, want delivered at the first attempt", c)
				}
			}
			if h, c := handed.Load(), claimed.Load(); h == 0 || h+c != n {
				t.Errorf("%d handed off and %d claimed, want some handed off and %d in all", h, c, n)
			}
			if len(f.attempts) != 0 {
				t.Errorf("%d attempts more than the %d callbacks", len(f.attempts), n)
			}
			t.Logf("%d of %d handed off", handed.Load(), n)
		})
	}
}
