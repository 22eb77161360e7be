package live

import (
	"container/heap"
	"sync"
	"time"
)

// A Watch is a subscription that needs no goroutine of its own while it waits: its callback
// runs on a few worker goroutines of the broker, and its keep-alives come from one timer shared
// by every Watch. An event stream that waits this way costs a few hundred bytes instead of a
// goroutine whose stack has grown by the store reads it made when last woken.
type Watch struct {
	b     *Broker
	k     key
	f     func(beat bool)
	every time.Duration

	// guarded by b.runner.mu
	state   runState
	beat    bool // a keep-alive is due with the next call
	stopped bool

	// guarded by b.beats.mu
	due time.Time // of the next keep-alive
	idx int       // in the heartbeat's heap; -1 when not in it
}

type runState uint8

const (
	idle    runState = iota
	queued           // in the runner's queue
	running          // f is being called
	again            // f is being called, and is to be called once more after
)

// Watch calls f soon, then after every publication for the user and, when every > 0, every
// that often with beat true (a keep-alive is due). Calls are never concurrent for one Watch and
// never block a publisher: publications while a call is queued or running bring one call
// after it, however many they are. f may call Stop.
func (b *Broker) Watch(appID, userID int64, every time.Duration, f func(beat bool)) *Watch {
	w := &Watch{b: b, k: key{appID, userID}, f: f, every: every, idx: -1}
	b.add(w.k, w)
	if every > 0 {
		b.beats.add(w)
	}
	b.runner.schedule(w, false)
	return w
}

func (w *Watch) wake() { w.b.runner.schedule(w, false) }

// Stop ends the Watch: f is not called again, though a call in progress finishes.
func (w *Watch) Stop() {
	w.b.remove(w.k, w)
	w.b.beats.remove(w)
	w.b.runner.stop(w)
}

// runner calls Watch callbacks on at most max goroutines, started when there is work and
// ended when there is none: an idle server holds none.
type runner struct {
	mu      sync.Mutex
	queue   []*Watch
	workers int
	max     int
}

func (r *runner) schedule(w *Watch, beat bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.stopped {
		return
	}
	w.beat = w.beat || beat
	switch w.state {
	case idle:
		w.state = queued
		r.queue = append(r.queue, w)
		if r.workers < r.max {
			r.workers++
			go r.work()
		}
	case running:
		w.state = again
	}
}

func (r *runner) stop(w *Watch) {
	r.mu.Lock()
	w.stopped = true
	r.mu.Unlock()
}

func (r *runner) work() {
	r.mu.Lock()
	for len(r.queue) > 0 {
		w := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		if w.stopped {
			w.state = idle
			continue
		}
		beat := w.beat
		w.state, w.beat = running, false
		r.mu.Unlock()
		w.f(beat)
		r.mu.Lock()
		if w.state == again && !w.stopped {
			w.state = queued
			r.queue = append(r.queue, w) // behind the others: no stream starves the rest
		} else {
			w.state = idle
		}
	}
	r.queue = nil // let a long queue's array go
	r.workers--
	r.mu.Unlock()
}

// heartbeat is one timer for the keep-alives of every Watch: a heap of Watches by the time of
// their next keep-alive, and the clock's timer set for the first of them.
type heartbeat struct {
	clock Clock
	due   func(w *Watch, beat bool) // the runner's schedule

	mu    sync.Mutex
	heap  beatHeap
	timer Timer
	at    time.Time // when timer fires; zero when it is not set
}

func (h *heartbeat) add(w *Watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	w.due = now.Add(w.every)
	heap.Push(&h.heap, w)
	if h.at.IsZero() || w.due.Before(h.at) {
		h.arm(w.due, now)
	}
}

func (h *heartbeat) remove(w *Watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.idx >= 0 {
		heap.Remove(&h.heap, w.idx)
	}
	// The timer may now fire with nothing due; fire sets it again for the next.
}

// arm sets the timer for at; called with mu held.
func (h *heartbeat) arm(at, now time.Time) {
	d := at.Sub(now)
	if h.timer == nil {
		h.timer = h.clock.AfterFunc(d, h.fire)
	} else {
		h.timer.Reset(d)
	}
	h.at = at
}

// fire schedules every Watch whose keep-alive is due, as a time.Ticker would: each one every
// period after its start, a late one once, not once per period missed.
func (h *heartbeat) fire() {
	h.mu.Lock()
	now := h.clock.Now()
	var due []*Watch
	for len(h.heap) > 0 && !h.heap[0].due.After(now) {
		w := h.heap[0]
		due = append(due, w)
		if w.due = w.due.Add(w.every); !w.due.After(now) {
			w.due = now.Add(w.every)
		}
		heap.Fix(&h.heap, 0)
	}
	h.at = time.Time{}
	if len(h.heap) > 0 {
		h.arm(h.heap[0].due, now)
	}
	h.mu.Unlock()
	for _, w := range due {
		h.due(w, true)
	}
}

type beatHeap []*Watch

func (q beatHeap) Len() int           { return len(q) }
func (q beatHeap) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q beatHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *beatHeap) Push(x any) {
	w := x.(*Watch)
	w.idx = len(*q)
	*q = append(*q, w)
}
func (q *beatHeap) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.idx = -1
	*q = old[:len(old)-1]
	return w
}

// Clock is the time keep-alives follow: the system's, or a test's.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer of a Clock, as *time.Timer.
type Timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
