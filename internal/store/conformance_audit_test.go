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
