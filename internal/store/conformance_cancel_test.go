package store

import (
	"context"
	"testing"
)

// testCancelledWrites: a request's context ends (its client hung up) while its transaction runs.
// The transaction's own outcome decides, on both engines: what ran to its end is committed, and
// a transaction that never began reports the context's error.
func testCancelledWrites(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("CancelledAfterItsStatementsCommits", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		err := s.tx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO counters (name, window_start, count, expires_at) VALUES ($1, $2, 1, $3)`,
				"cancelled", unix(t0), unix(t0.Add(ttl)))
			cancel() // the client hangs up before the commit
			return err
		})
		if err != nil {
			t.Fatalf("a transaction whose statements all ran failed at commit: %v", err)
		}
		if n, err := s.Incr(t.Context(), "cancelled", t0, t0.Add(ttl), 0); err != nil || n != 1 {
			t.Fatalf("the committed row reads %d (%v), want 1", n, err)
		}
	})
	t.Run("CancelledBeforeItBegins", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ran := false
		err := s.tx(ctx, func(*Tx) error { ran = true; return nil })
		if err != context.Canceled || ran {
			t.Fatalf("a transaction asked for after its context ended: ran %v, err %v; want not run, context.Canceled", ran, err)
		}
	})
}
