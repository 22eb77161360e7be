package authyapi

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Counter is the store's atomic fixed-window counter.
type Counter interface {
	Incr(ctx context.Context, name string, window, expires time.Time, delta int64) (int64, error)
}

// SharedLimiter is the per-application request rate limit kept in the store, for servers that
// share one database (PostgreSQL): N requests per window across all of them.
//
// Why a counter in the database rather than each server's token bucket with the budget divided
// by the number of servers: no server knows how many others run, or how the load balancer
// spreads one application's requests among them, so a divided budget is either too tight (one
// busy server refuses while the others idle) or too loose (a server added later doubles it).
// The counter is exact, at the price of one or two small writes per API request on a database
// that every request already uses.
//
// It estimates a sliding window from two fixed windows, as the previous window's count weighted
// by how much of it still overlaps the last window's length, plus the current window's count;
// so a burst that straddles a window boundary still gets about N, not 2N. A refused request
// gives its count back, so that a client that keeps trying too fast still gets N per window.
// When the store fails the request is let through (the limit protects capacity, not a
// secret; the limits on codes and failures are enforced in the store regardless).
type SharedLimiter struct {
	store  Counter
	n      int64
	window time.Duration
	log    *slog.Logger

	mu   sync.Mutex
	prev map[int64]windowCount // per application: the previous window's count, read once
}

type windowCount struct {
	start time.Time
	n     int64
}

// NewSharedLimiter allows n requests per window per application; window is rounded up to whole
// seconds, the store's time unit.
func NewSharedLimiter(store Counter, n int, window time.Duration, log *slog.Logger) *SharedLimiter {
	w := max(window.Round(time.Second), time.Second)
	if w < window {
		w += time.Second
	}
	return &SharedLimiter{store: store, n: int64(n), window: w, log: log, prev: map[int64]windowCount{}}
}

// Allow counts one request of the application at now and reports whether it is within the
// limit.
func (l *SharedLimiter) Allow(ctx context.Context, appID int64, now time.Time) bool {
	start := now.Truncate(l.window)
	name := "api-rate:" + strconv.FormatInt(appID, 10)
	expires := start.Add(2 * l.window) // read again as the previous window
	prev, err := l.previous(ctx, name, appID, start.Add(-l.window))
	if err != nil {
		l.log.Warn("shared rate limit: read counter", "err", err)
		return true
	}
	cur, err := l.store.Incr(ctx, name, start, expires, 1)
	if err != nil {
		l.log.Warn("shared rate limit: count", "err", err)
		return true
	}
	overlap := 1 - float64(now.Sub(start))/float64(l.window)
	if float64(prev)*overlap+float64(cur) <= float64(l.n) {
		return true
	}
	if _, err := l.store.Incr(context.WithoutCancel(ctx), name, start, expires, -1); err != nil {
		l.log.Warn("shared rate limit: give back", "err", err)
	}
	return false
}

// previous returns the count of the window that starts at start, read from the store once per
// window and application (it no longer grows, bar requests in flight at its end).
func (l *SharedLimiter) previous(ctx context.Context, name string, appID int64, start time.Time) (int64, error) {
	l.mu.Lock()
	c, ok := l.prev[appID]
	l.mu.Unlock()
	if ok && c.start.Equal(start) {
		return c.n, nil
	}
	n, err := l.store.Incr(ctx, name, start, start.Add(2*l.window), 0)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.prev[appID] = windowCount{start, n}
	l.mu.Unlock()
	return n, nil
}
