package console

import (
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Sign-in's own limits, per client address and per account, sit in front of the password check
// to keep one client, or a flood at one account, from taking this server's capacity: each
// check costs argon2id's memory and a core. They are kept in this process, not the store: they
// protect this server's resources, and a limit in the store would cost a database write per
// refused request, the very load they are there to stop. Behind a load balancer each server
// allows the limit, which scales with the capacity it protects. What must hold across servers,
// the number of guesses at a password, is the lockout, counted in the store
// (operators.Service.SignIn).

// throttle allows at most limit.N events per key in any limit.Window: a sliding log of each
// key's latest N times, so no window of that length holds more, wherever it starts.
type throttle struct {
	limit twofold.Limit
	max   int // keys kept

	mu     sync.Mutex
	keys   map[string][]time.Time // oldest first; at most limit.N
	pruned time.Time              // when idle keys were last dropped
}

func newThrottle(l twofold.Limit) *throttle {
	return &throttle{limit: l, max: 100_000, keys: map[string][]time.Time{}}
}

// allow counts an event of key at now, if the limit allows it; else it reports how long until
// it would.
func (t *throttle) allow(key string, now time.Time) (wait time.Duration, ok bool) {
	if t == nil || t.limit.Off() {
		return 0, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	times, known := t.keys[key]
	for len(times) > 0 && !times[0].After(now.Add(-t.limit.Window)) {
		times = times[1:]
	}
	if len(times) >= t.limit.N {
		t.keys[key] = times
		return times[0].Add(t.limit.Window).Sub(now), false
	}
	if !known && len(t.keys) >= t.max {
		t.makeRoom(now)
	}
	t.keys[key] = append(times, now)
	return 0, true
}

// makeRoom drops the keys with nothing in the window, at most once a second; when none are
// idle, an arbitrary key (its client may try again a little early; the lockout still holds).
func (t *throttle) makeRoom(now time.Time) {
	if now.Sub(t.pruned) >= time.Second {
		t.pruned = now
		for k, times := range t.keys {
			if len(times) == 0 || !times[len(times)-1].After(now.Add(-t.limit.Window)) {
				delete(t.keys, k)
			}
		}
	}
	for k := range t.keys {
		if len(t.keys) < t.max {
			break
		}
		delete(t.keys, k)
	}
}
