package authyapi

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type memCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *memCounter) Incr(_ context.Context, name string, window, _ time.Time, delta int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := name + window.String()
	c.m[k] += delta
	return c.m[k], nil
}

// The shared limit is a sliding window over two fixed ones: a burst gets N, a burst just after
// a window boundary gets what the previous window left, refused requests cost nothing, and
// applications are counted apart.
func TestSharedLimiter(t *testing.T) {
	l := NewSharedLimiter(&memCounter{m: map[string]int64{}}, 5, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	base := time.Unix(1_700_000_000, 0)
	allowed := func(app int64, at time.Time, tries int) int {
		n := 0
		for range tries {
			if l.Allow(context.Background(), app, at) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		app   int64
		at    time.Duration
		tries int
		want  int
	}{
		{1, 100 * time.Millisecond, 10, 5},
		{1, 900 * time.Millisecond, 10, 0},  // still the same window
		{2, 900 * time.Millisecond, 10, 5},  // another application
		{1, 1100 * time.Millisecond, 10, 0}, // 5*0.9 of the previous window still counts
		{1, 1600 * time.Millisecond, 10, 3}, // 5*0.4 = 2 counts: 3 more
		{1, 3100 * time.Millisecond, 10, 5}, // the previous window was empty
	} {
		if got := allowed(c.app, base.Add(c.at), c.tries); got != c.want {
			t.Errorf("app %d at +%v: %d of %d allowed, want %d", c.app, c.at, got, c.tries, c.want)
		}
	}
}
