// Package ratelimit keeps limits per key in the process: how often one device, user, client
// address or account may do something, to protect a server's capacity and keep one client from
// starving others. (The limits that guard secrets and money are counted in the store, across
// servers; see package verify.)
package ratelimit

import (
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Keyed is one token bucket per key, all alike: N tokens that refill at N per window, as
// golang.org/x/time/rate's Limiter with burst N. It is its own small type rather than a map of
// Limiters so that a token can be given back exactly (a device's, when its user's limit refuses
// the request), and so that buckets that have filled up again can be dropped: a full bucket is
// the same as none, so memory holds only the keys seen within about one window.
//
// A bucket is kept as the time it is full again (the generic cell rate algorithm): each request
// moves that time on by window/N, and one that would move it more than a window ahead is
// refused. Whole nanoseconds, so the counts are exact.
//
// It is kept in process, per server: behind N servers a client gets N times the limit.
type Keyed[K comparable] struct {
	window time.Duration
	every  time.Duration // window/N: what one request costs
	max    int           // keys kept before a sweep is due

	mu    sync.Mutex
	full  map[K]time.Time // when each key's bucket is full again
	swept time.Time
}

// maxKeys bounds a bucket set's memory. A client with more keys than this (addresses, say) is
// not held back by per-key limits anyway, so forgetting every key then gives it nothing.
const maxKeys = 100_000

// New returns the buckets of limit l, or nil when l is off (a nil Keyed allows everything).
func New[K comparable](l twofold.Limit) *Keyed[K] {
	if l.Off() {
		return nil
	}
	return &Keyed[K]{window: l.Window, every: l.Window / time.Duration(l.N), max: maxKeys, full: map[K]time.Time{}}
}

// Take takes a token from k's bucket at now, or reports how long until there is one.
func (b *Keyed[K]) Take(k K, now time.Time) (ok bool, retry time.Duration) {
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) > b.window || len(b.full) >= b.max {
		b.sweep(now)
	}
	full := b.full[k]
	if full.Before(now) {
		full = now
	}
	full = full.Add(b.every)
	if ahead := full.Sub(now); ahead > b.window {
		return false, ahead - b.window
	}
	b.full[k] = full
	return true, 0
}

// GiveBack returns the token taken from k's bucket, when a second limit refused the request.
func (b *Keyed[K]) GiveBack(k K) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if full, ok := b.full[k]; ok {
		b.full[k] = full.Add(-b.every)
	}
}

// sweep drops the buckets that are full again, or every bucket when that leaves more than half
// the bound (so that a set kept at its bound is not swept again on every request).
func (b *Keyed[K]) sweep(now time.Time) {
	b.swept = now
	for k, full := range b.full {
		if !full.After(now) {
			delete(b.full, k)
		}
	}
	if len(b.full) > b.max/2 {
		clear(b.full)
	}
}
