package authyexport

import (
	"context"
	"sync"
	"time"
)

// gate bounds the requests in flight and adapts to the source's rate limit: a 429 halves how
// many may be in flight (once for the 429s that come together) and pauses every request until
// the source's Retry-After (or a backoff); each run of successes as long as the current bound
// raises it by one again, up to --concurrency.
type gate struct {
	mu         sync.Mutex
	max, limit int
	inFlight   int
	successes  int
	pauseUntil time.Time
	changed    chan struct{} // closed and replaced whenever a slot may have opened
	onChange   func(limit, max int, pause time.Time)
}

func newGate(max int) *gate {
	return &gate{max: max, limit: max, changed: make(chan struct{})}
}

func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		wait := time.Until(g.pauseUntil)
		if wait <= 0 && g.inFlight < g.limit {
			g.inFlight++
			g.mu.Unlock()
			return nil
		}
		changed := g.changed
		g.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// release frees a slot; ok is a request the source answered, pause (if > 0) a 429.
func (g *gate) release(ok bool, pause time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	switch {
	case pause > 0:
		now := time.Now()
		if !now.Before(g.pauseUntil) { // the requests limited together halve the bound once
			g.limit = max(1, g.limit/2)
		}
		g.successes = 0
		if until := now.Add(pause); until.After(g.pauseUntil) {
			g.pauseUntil = until
		}
	case ok:
		if g.successes++; g.successes >= g.limit && g.limit < g.max {
			g.limit++
			g.successes = 0
		}
	}
	if g.onChange != nil && (pause > 0 || ok) {
		g.onChange(g.limit, g.max, g.pauseUntil)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}
