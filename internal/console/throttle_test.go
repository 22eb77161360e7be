package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// No interval of the window's length ever holds more than N allowed events, wherever it
// starts, even at the edge where a fixed window would allow 2N.
func TestThrottleIsASlidingWindow(t *testing.T) {
	l := twofold.Limit{N: 3, Window: 10 * time.Second}
	th := newThrottle(l)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var allowed []time.Time
	for ms := 0; ms < 60_000; ms += 250 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		wait, ok := th.allow("k", now)
		if ok {
			allowed = append(allowed, now)
			continue
		}
		// The wait is exactly until the oldest event in the window leaves it.
		if want := allowed[len(allowed)-l.N].Add(l.Window).Sub(now); wait != want || wait <= 0 {
			t.Fatalf("at %v: wait %v, want %v", now.Sub(t0), wait, want)
		}
	}
	for i := l.N; i < len(allowed); i++ {
		if d := allowed[i].Sub(allowed[i-l.N]); d < l.Window {
			t.Fatalf("%d events within %v", l.N+1, d)
		}
	}
	if len(allowed) < 6*l.N { // 3 per 10 s over a minute
		t.Fatalf("only %d events allowed in a minute", len(allowed))
	}
}

// The table of keys stays bounded: idle keys go first, then any.
func TestThrottleKeepsFewKeys(t *testing.T) {
	th := newThrottle(twofold.Limit{N: 1, Window: time.Minute})
	th.max = 10
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		if _, ok := th.allow(fmt.Sprint("old", i), t0); !ok {
			t.Fatalf("a new key was refused")
		}
		if len(th.keys) > th.max {
			t.Fatalf("%d keys kept, max %d", len(th.keys), th.max)
		}
	}
	later := t0.Add(time.Minute)
	th.allow("new", later)
	if len(th.keys) != 1 {
		t.Fatalf("%d keys after the idle ones could go, want 1", len(th.keys))
	}
}
