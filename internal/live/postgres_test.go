package live

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
)

func woken(t *testing.T, s *Sub, what string) {
	t.Helper()
	select {
	case <-s.C:
	case <-time.After(10 * time.Second): // a hang guard: a wake-up takes milliseconds
		t.Fatalf("%s: not woken", what)
	}
}

func startRelay(t *testing.T, dsn string) *Broker {
	t.Helper()
	b := NewBroker()
	r, err := StartRelay(context.Background(), dsn, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return b
}

// Two servers on one database: a publication on one wakes the other's subscribers and its own,
// and a listener that loses its connection reconnects and wakes every stream once.
func TestRelay(t *testing.T) {
	dsn := storetest.Schema(t)
	a, b := startRelay(t, dsn), startRelay(t, dsn)
	onA, cancelA := a.Subscribe(1, 10)
	defer cancelA()
	onB, cancelB := b.Subscribe(1, 10)
	defer cancelB()
	other, cancelOther := b.Subscribe(1, 11)
	defer cancelOther()

	a.Publish(1, 10)
	woken(t, onB, "the other server's subscriber")
	woken(t, onA, "the publishing server's subscriber")
	b.Publish(1, 11)
	woken(t, other, "a subscriber of the second user")
	select {
	case <-onB.C:
		t.Fatal("a publication for another user woke the subscriber")
	default:
	}

	// Kill b's listening connection: it reconnects and wakes all its streams, then relays again.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'twofold-live' AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
		AND query LIKE '%' || current_schema() || '%'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("terminated %d listeners, want 2", n)
	}
	woken(t, onB, "after reconnecting")
	woken(t, other, "after reconnecting")
	a.Publish(1, 10)
	woken(t, onB, "after reconnecting, a new publication")
}
