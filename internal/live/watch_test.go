package live

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a Watch callback that keeps what it was called with, and can hold a call until
// released.
type recorder struct {
	mu      sync.Mutex
	beats   []bool
	in, max int           // calls in progress, and the most at once
	hold    chan struct{} // when set, each call waits for a value
}

func (r *recorder) f(beat bool) {
	r.mu.Lock()
	r.beats = append(r.beats, beat)
	r.in++
	r.max = max(r.max, r.in)
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	r.in--
	r.mu.Unlock()
}

// calls returns the calls so far and forgets them.
func (r *recorder) calls() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.beats
	r.beats = nil
	return c
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func expectCalls(t *testing.T, r *recorder, what string, want ...bool) {
	t.Helper()
	synctest.Wait() // every call that was due has been made
	if got := r.calls(); !equal(got, want) {
		t.Fatalf("%s: calls %v, want %v", what, got, want)
	}
}

// The keep-alives of every Watch come from one timer, each every period after the Watch began,
// like a time.Ticker of its own; publications wake it in between and do not shift them.
func TestWatchKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker()
		var a, c recorder
		wa := b.Watch(1, 10, 15*time.Second, a.f)
		expectCalls(t, &a, "at the start", false)
		time.Sleep(5 * time.Second) // synctest: the bubble's clock, at once
		wc := b.Watch(1, 11, 15*time.Second, c.f)
		defer wc.Stop()
		expectCalls(t, &c, "second watch, at the start", false)

		time.Sleep(9*time.Second + 999*time.Millisecond) // t = 14.999 s
		expectCalls(t, &a, "just before its first keep-alive")
		b.Publish(1, 10)
		expectCalls(t, &a, "a publication", false)
		time.Sleep(time.Millisecond) // t = 15 s
		expectCalls(t, &a, "15 s after the start", true)
		expectCalls(t, &c, "10 s after its start")
		time.Sleep(5 * time.Second) // t = 20 s
		expectCalls(t, &c, "15 s after its start", true)
		expectCalls(t, &a, "at 20 s")
		time.Sleep(10 * time.Second) // t = 30 s: on the ticker's beat, not 15 s after the publication
		expectCalls(t, &a, "30 s after the start", true)

		if n := b.beats.heap.Len(); n != 2 {
			t.Fatalf("%d watches in the heartbeat, want 2", n)
		}
		wa.Stop()
		if n := b.beats.heap.Len(); n != 1 {
			t.Fatalf("%d watches in the heartbeat after Stop, want 1", n)
		}
		time.Sleep(time.Minute)
		b.Publish(1, 10)
		expectCalls(t, &a, "after Stop")
		expectCalls(t, &c, "a minute on", true, true, true, true)
	})
}

// Publications never block and never overlap a call: those made during a call bring one more
// call after it, however many they were.
func TestWatchMergesWakeUps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker()
		r := recorder{hold: make(chan struct{})}
		w := b.Watch(1, 10, 0, r.f)
		defer w.Stop()
		synctest.Wait() // the first call is waiting in r.f
		for range 100 {
			b.Publish(1, 10)
		}
		b.Publish(1, 11) // another user
		b.Publish(2, 10) // same user id, another application
		r.hold <- struct{}{}
		synctest.Wait() // the second call is waiting
		r.hold <- struct{}{}
		expectCalls(t, &r, "100 publications during a call", false, false)
		if r.max != 1 {
			t.Fatalf("%d calls at once", r.max)
		}
		if b.Count() != 1 {
			t.Fatalf("count %d", b.Count())
		}
		w.Stop()
		b.Publish(1, 10)
		expectCalls(t, &r, "after Stop")
		if b.Count() != 0 {
			t.Fatalf("count after Stop %d", b.Count())
		}
	})
}

// A Watch stopped from its own callback, or while queued, is not called again.
func TestWatchStopFromCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBrokerOptions(Options{Workers: 1})
		var calls int
		var w *Watch
		ready := make(chan struct{})
		w = b.Watch(1, 10, time.Second, func(bool) {
			<-ready
			calls++
			w.Stop()
			b.Publish(1, 10)
		})
		close(ready)
		synctest.Wait()
		b.Publish(1, 10)
		time.Sleep(time.Minute)
		synctest.Wait()
		if calls != 1 {
			t.Fatalf("%d calls, want 1", calls)
		}
	})
}

// The broker runs at most Workers callbacks at once, and holds no goroutine when idle.
func TestWatchWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBrokerOptions(Options{Workers: 2})
		var r recorder
		r.hold = make(chan struct{})
		for u := range int64(5) {
			defer b.Watch(1, u, 0, r.f).Stop()
		}
		synctest.Wait()
		b.runner.mu.Lock()
		workers, queued := b.runner.workers, len(b.runner.queue)
		b.runner.mu.Unlock()
		if r.in != 2 || workers != 2 || queued != 3 {
			t.Fatalf("%d calls in progress, %d workers, %d queued; want 2, 2, 3", r.in, workers, queued)
		}
		close(r.hold)
		expectCalls(t, &r, "five watches", false, false, false, false, false)
		if r.max != 2 {
			t.Fatalf("%d calls at once, want at most 2", r.max)
		}
		if b.runner.workers != 0 {
			t.Fatalf("%d workers left on an idle broker", b.runner.workers)
		}
	})
}
