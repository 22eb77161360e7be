package apps

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// UsageStore is where UsageRecorder writes.
type UsageStore interface {
	AddUsage(ctx context.Context, appID int64, at time.Time, kind twofold.UsageKind, n int64) error
}

// UsageRecorder batches high-frequency usage counters (API calls) in memory and writes them
// every interval, so counting a request costs no database write on the request's path. A crash
// loses at most one interval of counts, which are statistics, never security state.
type UsageRecorder struct {
	store UsageStore
	log   *slog.Logger

	mu      sync.Mutex
	pending map[usageKey]int64
}

type usageKey struct {
	app         int64
	year, month int
	kind        twofold.UsageKind
}

// NewUsageRecorder returns a recorder; call Run to flush it periodically.
func NewUsageRecorder(store UsageStore, log *slog.Logger) *UsageRecorder {
	return &UsageRecorder{store: store, log: log, pending: map[usageKey]int64{}}
}

// Add counts one event for the application in the month of at.
func (u *UsageRecorder) Add(appID int64, at time.Time, kind twofold.UsageKind) {
	at = at.UTC()
	u.mu.Lock()
	u.pending[usageKey{appID, at.Year(), int(at.Month()), kind}]++
	u.mu.Unlock()
}

// Flush writes the pending counts. Counts that fail to write are kept for the next flush.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[usageKey]int64{}
	u.mu.Unlock()
	var firstErr error
	for k, n := range batch {
		at := time.Date(k.year, time.Month(k.month), 1, 0, 0, 0, 0, time.UTC)
		if err := u.store.AddUsage(ctx, k.app, at, k.kind, n); err != nil {
			u.mu.Lock()
			u.pending[k] += n
			u.mu.Unlock()
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// Run flushes every interval until ctx ends, then once more.
func (u *UsageRecorder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := u.Flush(context.WithoutCancel(ctx)); err != nil {
				u.log.Error("flush usage counters", "err", err)
			}
			return
		case <-t.C:
			if err := u.Flush(ctx); err != nil {
				u.log.Warn("flush usage counters", "err", err)
			}
		}
	}
}
