package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testChain stands in for internal/audit's keyed chain: any function of the previous hash and
// the entry will do, as long as the store hands it the final id and prev hash.
func testChain(prev []byte, e twofold.AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(h, "|%d|%d|%q|%q|%d|%d", e.ID, e.At.UnixNano(), e.Actor, e.Action, e.AppID, e.UserID)
	for _, k := range keys {
		fmt.Fprintf(h, "|%q=%q", k, e.Details[k])
	}
	return h.Sum(nil)
}

func appendAudit(tb testing.TB, s *Store, e twofold.AuditEvent) twofold.AuditEvent {
	tb.Helper()
	must(tb, s.AppendAudit(tb.Context(), &e, testChain))
	return e
}

// checkChain requires that log is the whole trail: ids 1..n, each linked to the one before, each
// hash what the chain function makes of it.
func checkChain(tb testing.TB, log []twofold.AuditEvent) {
	tb.Helper()
	var prev []byte
	for i, e := range log {
		if e.ID != int64(i+1) {
			tb.Fatalf("entry %d has id %d: ids must be 1, 2, 3… without gaps", i, e.ID)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			tb.Fatalf("entry %d: prev hash %x, want the previous entry's %x", e.ID, e.PrevHash, prev)
		}
		if want := testChain(prev, e); !bytes.Equal(e.Hash, want) {
			tb.Fatalf("entry %d: hash %x, want %x", e.ID, e.Hash, want)
		}
		prev = e.Hash
	}
}

// testAudit covers the audit trail: entries are chained in order with gapless ids, even when
// appended concurrently; the table refuses updates and deletes; listings filter.
func testAudit(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("AppendChainsInOrder", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		in := []twofold.AuditEvent{
			{At: t0.Add(123456789 * time.Nanosecond), Actor: "cli", Action: twofold.AuditAppCreated, AppID: 1,
				Details: map[string]string{"name": "Shop ✓ 'q'", "sandbox": "false"}},
			{At: t0.Add(time.Second), Actor: "api:app/1", Action: twofold.AuditUserCreated, AppID: 1, UserID: 7},
			{At: t0.Add(2 * time.Second), Actor: "device:3", Action: twofold.AuditApprovalDenied, AppID: 1, UserID: 7,
				Details: map[string]string{"reason": "not me", "uuid": "u-1", "": "empty key", "z": ""}},
		}
		var want []twofold.AuditEvent
		var prev []byte
		for i, e := range in {
			got := appendAudit(t, s, e)
			if got.ID != int64(i+1) || !bytes.Equal(got.PrevHash, prev) || !bytes.Equal(got.Hash, testChain(prev, got)) {
				t.Fatalf("AppendAudit #%d set id %d, prev %x, hash %x; want id %d chained to %x", i, got.ID, got.PrevHash, got.Hash, i+1, prev)
			}
			prev = got.Hash
			want = append(want, got)
		}
		got, err := s.ListAudit(ctx, twofold.AuditFilter{})
		must(t, err)
		if d := diff(want, got); d != "" {
			t.Fatalf("ListAudit:%s", d)
		}
		for _, e := range got {
			if !e.At.Equal(want[e.ID-1].At) || e.At.Nanosecond() != want[e.ID-1].At.Nanosecond() {
				t.Errorf("entry %d: at %v, want %v to the nanosecond", e.ID, e.At, want[e.ID-1].At)
			}
		}
		checkChain(t, got)
	})

	// An entry stamped before the trail's last (it waited, or the clock stepped back) takes the
	// last one's time, so at never decreases along ids and "since" is a range of ids.
	t.Run("AtNeverDecreases", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		appendAudit(t, s, twofold.AuditEvent{At: t0.Add(time.Minute), Actor: "cli", Action: twofold.AuditAppCreated, AppID: 1})
		late := appendAudit(t, s, twofold.AuditEvent{At: t0, Actor: "cli", Action: twofold.AuditAppUpdated, AppID: 1})
		if !late.At.Equal(t0.Add(time.Minute)) {
			t.Errorf("an entry stamped before the last one was recorded at %v, want the last one's %v", late.At, t0.Add(time.Minute))
		}
		for i := range 300 {
			appendAudit(t, s, twofold.AuditEvent{At: t0.Add(time.Minute + time.Duration(i)*time.Second), Actor: "cli",
				Action: twofold.AuditAppUpdated, AppID: 1 + int64(i%2), UserID: int64(i%3) * 7})
		}
		all, err := s.ListAudit(ctx, twofold.AuditFilter{Limit: 1000})
		must(t, err)
		checkChain(t, all)
		for _, since := range []time.Duration{-time.Hour, 0, time.Minute, time.Minute + 1, time.Minute + 150*time.Second,
			time.Minute + 299*time.Second, time.Minute + 300*time.Second, time.Hour} {
			for _, f := range []twofold.AuditFilter{{}, {AppID: 2}, {UserID: 7}} {
				f.Since, f.Limit = t0.Add(since), 1000
				var want []int64
				for _, e := range all {
					if !e.At.Before(f.Since) && (f.AppID == 0 || e.AppID == f.AppID) && (f.UserID == 0 || e.UserID == f.UserID) {
						want = append(want, e.ID)
					}
				}
				got, err := s.ListAudit(ctx, f)
				must(t, err)
				var ids []int64
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if d := diff(want, ids); d != "" {
					t.Errorf("ListAudit(%+v):%s", f, d)
				}
			}
		}
	})

	// Migration 34 drops the index by time and, on SQLite, AUTOINCREMENT, keeping every entry
	// and the chain; down and up again on a trail with entries.
	t.Run("Migration34", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for i := range 5 {
			appendAudit(t, s, twofold.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Actor: "cli", Action: twofold.AuditAppUpdated, AppID: 1})
		}
		db := migrationDB(t, s)
		shape := func() (autoincrement, byTime bool) {
			t.Helper()
			var n int
			if s.pg {
				must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'audit_log_by_time'`).Scan(&n))
				return false, n == 1
			}
			var text string
			must(t, db.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'audit_log'`).Scan(&text))
			must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'audit_log_by_time'`).Scan(&n))
			return strings.Contains(text, "AUTOINCREMENT"), n == 1
		}
		if auto, byTime := shape(); auto || byTime {
			t.Fatalf("after every migration: AUTOINCREMENT %v, index by time %v; want neither", auto, byTime)
		}
		p := noErr(migrator(db, s.pg))(t)
		must(t, errOf(p.DownTo(ctx, 33)))
		if auto, byTime := shape(); auto == s.pg || !byTime {
			t.Fatalf("down to 33: AUTOINCREMENT %v, index by time %v; want both (SQLite), the index (PostgreSQL)", auto, byTime)
		}
		appendAudit(t, s, twofold.AuditEvent{At: t0.Add(time.Minute), Actor: "cli", Action: twofold.AuditAppUpdated, AppID: 1})
		must(t, errOf(p.Up(ctx)))
		if auto, byTime := shape(); auto || byTime {
			t.Fatalf("up again: AUTOINCREMENT %v, index by time %v; want neither", auto, byTime)
		}
		if !s.pg {
			var n int
			must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'audit_log'`).Scan(&n))
			if n != 0 {
				t.Errorf("sqlite_sequence keeps a row for audit_log")
			}
		}
		next := appendAudit(t, s, twofold.AuditEvent{At: t0.Add(2 * time.Minute), Actor: "cli", Action: twofold.AuditAppUpdated, AppID: 1})
		all, err := s.ListAudit(ctx, twofold.AuditFilter{})
		must(t, err)
		if next.ID != 7 || len(all) != 7 {
			t.Fatalf("after the migration the next entry is %d of %d, want 7 of 7", next.ID, len(all))
		}
		checkChain(t, all)
		if since, err := s.ListAudit(ctx, twofold.AuditFilter{Since: t0.Add(4 * time.Second)}); err != nil || len(since) != 3 {
			t.Errorf("entries since the fifth: %d, %v; want 3", len(since), err)
		}
	})

	t.Run("ConcurrentAppendsFormOneChain", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		errs := make([]error, workers)
		race(workers, func(i int) {
			e := twofold.AuditEvent{At: t0.Add(time.Duration(i) * time.Millisecond), Actor: "system",
				Action: twofold.AuditVerificationFailed, AppID: 1, UserID: int64(i), Details: map[string]string{"why": "invalid"}}
			errs[i] = s.AppendAudit(ctx, &e, testChain)
		})
		for _, err := range errs {
			must(t, err)
		}
		// Read it back in pages, as verification does.
		var all []twofold.AuditEvent
		for after := int64(0); ; {
			page, err := s.AuditPage(ctx, after, 5)
			must(t, err)
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1].ID
		}
		if len(all) != workers {
			t.Fatalf("%d entries after %d concurrent appends", len(all), workers)
		}
		checkChain(t, all)
		users := map[int64]bool{}
		for _, e := range all {
			users[e.UserID] = true
		}
		if len(users) != workers {
			t.Errorf("%d distinct events in the log, want %d", len(users), workers)
		}
	})

	t.Run("UpdateAndDeleteRefused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for i := range 3 {
			appendAudit(t, s, twofold.AuditEvent{At: t0, Actor: "cli", Action: twofold.AuditAppUpdated, AppID: int64(i + 1),
				Details: map[string]string{"changed": "name"}})
		}
		before, err := s.ListAudit(ctx, twofold.AuditFilter{})
		must(t, err)
		for _, q := range []string{
			`UPDATE audit_log SET details = '{"changed":"sms_enabled"}' WHERE id = 2`,
			`UPDATE audit_log SET hash = prev_hash`,
			`DELETE FROM audit_log WHERE id = 3`,
			`DELETE FROM audit_log`,
		} {
			_, err := s.w.ExecContext(ctx, q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want the append-only refusal", q, err)
			}
		}
		after, err := s.ListAudit(ctx, twofold.AuditFilter{})
		must(t, err)
		if d := diff(before, after); d != "" {
			t.Errorf("the log changed:%s", d)
		}
		// Appending still works after the refusals.
		if e := appendAudit(t, s, twofold.AuditEvent{At: t0, Actor: "cli", Action: twofold.AuditAppCreated}); e.ID != 4 {
			t.Errorf("next id %d, want 4", e.ID)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		events := []twofold.AuditEvent{
			{At: t0, Actor: "cli", Action: twofold.AuditAppCreated, AppID: 1},                                         // 1
			{At: t0.Add(time.Minute), Actor: "api:app/1", Action: twofold.AuditUserCreated, AppID: 1, UserID: 10},     // 2
			{At: t0.Add(2 * time.Minute), Actor: "api:app/2", Action: twofold.AuditUserCreated, AppID: 2, UserID: 20}, // 3
			{At: t0.Add(3 * time.Minute), Actor: "api:app/1", Action: twofold.AuditVerificationOK, AppID: 1, UserID: 10,
				Details: map[string]string{"method": "sms"}}, // 4
			{At: t0.Add(4 * time.Minute), Actor: "api:app/1", Action: twofold.AuditVerificationFailed, AppID: 1, UserID: 11,
				Details: map[string]string{"why": "invalid"}}, // 5
			{At: t0.Add(5 * time.Minute), Actor: "device:1", Action: twofold.AuditApprovalApproved, AppID: 1, UserID: 10}, // 6
		}
		for _, e := range events {
			appendAudit(t, s, e)
		}
		for _, tc := range []struct {
			name string
			f    twofold.AuditFilter
			want []int64
		}{
			{"everything", twofold.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
			{"one application", twofold.AuditFilter{AppID: 2}, []int64{3}},
			{"one user", twofold.AuditFilter{UserID: 10}, []int64{2, 4, 6}},
			{"user and application", twofold.AuditFilter{AppID: 2, UserID: 10}, nil},
			{"one action", twofold.AuditFilter{Action: twofold.AuditUserCreated}, []int64{2, 3}},
			{"action in an application", twofold.AuditFilter{Action: twofold.AuditUserCreated, AppID: 1}, []int64{2}},
			{"since (inclusive)", twofold.AuditFilter{Since: t0.Add(4 * time.Minute)}, []int64{5, 6}},
			{"after an id", twofold.AuditFilter{AfterID: 4}, []int64{5, 6}},
			{"first two", twofold.AuditFilter{Limit: 2}, []int64{1, 2}},
			{"newest two, oldest first", twofold.AuditFilter{Limit: 2, Newest: true}, []int64{5, 6}},
			{"newest two of a user", twofold.AuditFilter{UserID: 10, Limit: 2, Newest: true}, []int64{4, 6}},
			{"page after an id", twofold.AuditFilter{AfterID: 1, Limit: 2}, []int64{2, 3}},
			{"unknown action", twofold.AuditFilter{Action: "nope"}, nil},
		} {
			got, err := s.ListAudit(ctx, tc.f)
			must(t, err)
			var ids []int64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if d := diff(tc.want, ids); d != "" {
				t.Errorf("ListAudit %s: ids%s", tc.name, d)
			}
		}
		page, err := s.AuditPage(ctx, 6, 10)
		must(t, err)
		if len(page) != 0 {
			t.Errorf("AuditPage after the last entry = %d entries", len(page))
		}
	})
}
