package store

import (
	"context"
	"sync"
)

// freshRead shares one small read among the callers who want it at about the same time, without
// ever giving a caller a value read before it asked. It serves the application cache's
// generation (apps.go), which every API request reads: requests arrive in bursts (a group
// commit answers dozens at once, and their clients send the next ones together), and one read
// can answer a whole burst.
//
// The rule that keeps it exact: a caller either reads itself, or joins the round that has not
// started yet and is answered by that round's read. A round in progress is never joined, since
// it may have read before the caller asked. So every answer is at least as new as anything
// committed before its caller asked, as a read of its own would be.
type freshRead struct {
	read func(context.Context) (int64, error)

	mu      sync.Mutex
	running bool       // a read is in progress
	next    *readRound // the round that starts when the running read ends; nil: nobody waits
	onJoin  func()     // a test's hook: called, under mu, when a caller joins a round
}

type readRound struct {
	done chan struct{}
	n    int64
	err  error
}

func newFreshRead(read func(context.Context) (int64, error)) *freshRead {
	return &freshRead{read: read}
}

// get returns a value read after get was called.
func (f *freshRead) get(ctx context.Context) (int64, error) {
	f.mu.Lock()
	if !f.running {
		f.running = true
		f.mu.Unlock()
		n, err := f.read(context.WithoutCancel(ctx))
		if r := f.endRead(); r != nil {
			go f.serve(r)
		}
		return n, err
	}
	r := f.next
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		f.next = r
	}
	if f.onJoin != nil {
		f.onJoin()
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// serve runs the rounds that callers wait for, one after another, until none is waiting. It runs
// on a goroutine of its own, so that no caller waits on others' rounds after its own.
func (f *freshRead) serve(r *readRound) {
	for r != nil {
		r.n, r.err = f.read(context.Background())
		close(r.done)
		r = f.endRead()
	}
}

// endRead ends the running read and returns the round waiting to start, which the caller must
// run; nil when nobody waits.
func (f *freshRead) endRead() *readRound {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.next
	f.next = nil
	f.running = r != nil
	return r
}
