package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

var (
	t0       = time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	testKey  = bytes.Repeat([]byte{7}, 32)
	otherKey = bytes.Repeat([]byte{8}, 32)
)

// clock is a fixed clock that moves one second per reading.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

// fixture is a trail in a real SQLite database, and a second connection to that file for
// tampering with it as someone with write access to the disk would.
type fixture struct {
	log *Log
	st  *store.Store
	db  *sql.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), store.DatabaseFile)
	st, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: t0}
	return &fixture{log: New(st, testKey, c.now, slog.New(slog.DiscardHandler)), st: st, db: db}
}

// events are what the fixture records: one of each kind of actor, details and none.
var events = []twofold.AuditEvent{
	{Actor: "cli", Action: twofold.AuditAppCreated, AppID: 1, Details: map[string]string{"name": "Shop", "sandbox": "false"}},
	{Actor: "api:app/1", Action: twofold.AuditUserCreated, AppID: 1, UserID: 1},
	{Actor: "api:app/1", Action: twofold.AuditVerificationOK, AppID: 1, UserID: 1, Details: map[string]string{"method": "sms"}},
	{Actor: "device:4", Action: twofold.AuditApprovalDenied, AppID: 1, UserID: 1, Details: map[string]string{"reason": "not me"}},
	{Action: twofold.AuditLimitHit, AppID: 1, UserID: 1, Details: map[string]string{"limit": "failures", "max": "10", "window": "15m0s"}},
}

func (f *fixture) record(t *testing.T, evs ...twofold.AuditEvent) []twofold.AuditEvent {
	t.Helper()
	var out []twofold.AuditEvent
	for _, e := range evs {
		got, err := f.log.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

// exec runs SQL on the database file directly, after dropping the append-only guards.
func (f *fixture) exec(t *testing.T, queries ...string) {
	t.Helper()
	for _, q := range append([]string{"DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"}, queries...) {
		if _, err := f.db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (f *fixture) verify(t *testing.T, l *Log) Report {
	t.Helper()
	r, err := l.Verify(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecordChainsAndVerifies(t *testing.T) {
	f := newFixture(t)
	ctx := WithActor(t.Context(), "api:app/1")
	for _, e := range events {
		f.log.Record(ctx, e)
	}
	list, err := f.log.List(t.Context(), twofold.AuditFilter{})
	if err != nil || len(list) != len(events) {
		t.Fatalf("List = %d entries, %v", len(list), err)
	}
	var prev []byte
	for i, e := range list {
		wantActor := events[i].Actor
		if wantActor == "" {
			wantActor = "api:app/1" // from the context
		}
		if e.ID != int64(i+1) || e.Actor != wantActor || e.Action != events[i].Action || !e.At.Equal(t0.Add(time.Duration(i+1)*time.Second)) {
			t.Errorf("entry %d = %+v", i, e)
		}
		mac := hmac.New(sha256.New, testKey)
		mac.Write(Encode(prev, e))
		if !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, mac.Sum(nil)) {
			t.Errorf("entry %d is not HMAC-SHA256(key, Encode(prev, entry)) chained to %x", e.ID, prev)
		}
		prev = e.Hash
	}

	var progress []int64
	f.log.pageSize = 2
	r, err := f.log.Verify(t.Context(), func(n int64) { progress = append(progress, n) })
	if err != nil || !r.OK() || r.Checked != 5 || r.LastID != 5 || !bytes.Equal(r.LastHash, prev) || r.Problem != "" {
		t.Fatalf("Verify = %+v, %v; want 5 entries intact ending with %x", r, err, prev)
	}
	if !slices.Equal(progress, []int64{2, 4, 5}) {
		t.Errorf("progress reports %v, want after every page of 2", progress)
	}
}

func TestVerifyEmptyTrail(t *testing.T) {
	f := newFixture(t)
	if r := f.verify(t, f.log); !r.OK() || r.Checked != 0 || r.LastID != 0 {
		t.Fatalf("Verify of an empty trail = %+v", r)
	}
}

// forge rewrites entries from id on as someone without the master key would: with a key of
// their own, chained to the hash before id.
func (f *fixture) forge(t *testing.T, from int64) {
	t.Helper()
	all, err := f.st.AuditPage(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	forger := New(f.st, otherKey, nil, nil)
	prev := all[from-2].Hash
	for _, e := range all[from-1:] {
		h := forger.chain(prev, e)
		f.exec(t, "UPDATE audit_log SET prev_hash = x'"+hex.EncodeToString(prev)+"', hash = x'"+hex.EncodeToString(h)+"' WHERE id = "+itoa(e.ID))
		prev = h
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, f *fixture)
		firstBad int64
		checked  int64 // entries intact before it
		problem  string
	}{
		{"changed details", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET details = '{"method":"totp"}' WHERE id = 3`)
		}, 3, 2, "does not match its contents"},
		{"details emptied", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET details = '{}' WHERE id = 1`)
		}, 1, 0, "does not match its contents"},
		{"changed actor", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET actor = 'cli' WHERE id = 2`)
		}, 2, 1, "does not match its contents"},
		{"changed time", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET at = at + 1 WHERE id = 4`)
		}, 4, 3, "does not match its contents"},
		{"changed user", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET user_id = 2 WHERE id = 5`)
		}, 5, 4, "does not match its contents"},
		{"deleted row", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id = 3`)
		}, 4, 2, "entry 3, before it, is missing"},
		{"deleted first rows", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id <= 2`)
		}, 3, 0, "entries 1 to 2, before it, are missing"},
		{"deleted row, ids renumbered", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_log WHERE id = 3`, `UPDATE audit_log SET id = -id WHERE id > 3`,
				`UPDATE audit_log SET id = -id - 1 WHERE id < 0`)
		}, 3, 2, "does not link to entry 2"},
		{"swapped rows", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET id = -2 WHERE id = 2`, `UPDATE audit_log SET id = 2 WHERE id = 3`,
				`UPDATE audit_log SET id = 3 WHERE id = -2`)
		}, 2, 1, "does not link to entry 1"},
		{"re-chained with another key", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET details = '{"method":"totp"}' WHERE id = 3`)
			f.forge(t, 3)
		}, 3, 2, "does not match its contents"},
		{"forged entry appended", func(t *testing.T, f *fixture) {
			all := must(f.st.AuditPage(t.Context(), 0, 100))
			forger := New(f.st, otherKey, nil, nil)
			e := twofold.AuditEvent{ID: 6, At: t0, Actor: "cli", Action: twofold.AuditAppKeyRotated, AppID: 1}
			h := forger.chain(all[4].Hash, e)
			f.exec(t, `INSERT INTO audit_log (id, at, actor, action, app_id, user_id, details, prev_hash, hash) VALUES (6, `+
				itoa(t0.UnixNano())+`, 'cli', 'app.key_rotated', 1, 0, '{}', x'`+hex.EncodeToString(all[4].Hash)+`', x'`+hex.EncodeToString(h)+`')`)
		}, 6, 5, "does not match its contents"},
		{"entry inserted before the first", func(t *testing.T, f *fixture) {
			f.exec(t, `INSERT INTO audit_log (id, at, actor, action, details, hash) VALUES (0, 1, 'cli', 'app.deleted', '{}', x'00')`)
		}, 0, 0, "out of sequence"},
		{"details not JSON", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_log SET details = 'oops' WHERE id = 2`)
		}, 2, 1, "does not match its contents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.record(t, events...)
			tc.tamper(t, f)
			r := f.verify(t, f.log)
			if r.OK() || r.FirstBad != tc.firstBad || !strings.Contains(r.Problem, tc.problem) || r.Checked != tc.checked {
				t.Fatalf("Verify = %+v; want entry %d named, %d checked, problem %q", r, tc.firstBad, tc.checked, tc.problem)
			}
		})
	}
}

func TestVerifyWithWrongKey(t *testing.T) {
	f := newFixture(t)
	f.record(t, events...)
	if r := f.verify(t, New(f.st, otherKey, nil, nil)); r.FirstBad != 1 {
		t.Fatalf("another key verified the trail: %+v", r)
	}
}

func TestEncodeIsUnambiguous(t *testing.T) {
	base := twofold.AuditEvent{ID: 1, At: t0, Actor: "cli", Action: "app.created", AppID: 1, UserID: 2}
	with := func(change func(e *twofold.AuditEvent)) twofold.AuditEvent {
		e := base
		change(&e)
		return e
	}
	for _, tc := range []struct {
		name string
		a, b twofold.AuditEvent
		same bool
	}{
		{"actor and action run together", with(func(e *twofold.AuditEvent) { e.Actor, e.Action = "ab", "c" }),
			with(func(e *twofold.AuditEvent) { e.Actor, e.Action = "a", "bc" }), false},
		{"key and value run together", with(func(e *twofold.AuditEvent) { e.Details = map[string]string{"ab": "c"} }),
			with(func(e *twofold.AuditEvent) { e.Details = map[string]string{"a": "bc"} }), false},
		{"one detail or two", with(func(e *twofold.AuditEvent) { e.Details = map[string]string{"a": "b", "c": "d"} }),
			with(func(e *twofold.AuditEvent) { e.Details = map[string]string{"a": "b\x00\x00\x00\x01c\x00\x00\x00\x01d"} }), false},
		{"app and user swapped", with(func(e *twofold.AuditEvent) { e.AppID, e.UserID = 2, 1 }), base, false},
		{"another id", with(func(e *twofold.AuditEvent) { e.ID = 2 }), base, false},
		{"a nanosecond later", with(func(e *twofold.AuditEvent) { e.At = e.At.Add(1) }), base, false},
		{"empty details or none", with(func(e *twofold.AuditEvent) { e.Details = map[string]string{} }), base, true},
		{"another time zone", with(func(e *twofold.AuditEvent) { e.At = e.At.In(time.FixedZone("X", 3600)) }), base, true},
		{"stored hashes are not covered", with(func(e *twofold.AuditEvent) { e.PrevHash, e.Hash = []byte("x"), []byte("y") }), base, true},
	} {
		if got := bytes.Equal(Encode(nil, tc.a), Encode(nil, tc.b)); got != tc.same {
			t.Errorf("%s: encodings equal = %v, want %v", tc.name, got, tc.same)
		}
	}
	if bytes.Equal(Encode([]byte("p"), base), Encode([]byte("q"), base)) {
		t.Error("the previous hash is not covered")
	}
}

// failingStore refuses every write.
type failingStore struct{ Store }

func (failingStore) AppendAudit(context.Context, *twofold.AuditEvent, func([]byte, twofold.AuditEvent) []byte) error {
	return errors.New("disk full")
}

func TestRecordNeverFailsTheCaller(t *testing.T) {
	var logs bytes.Buffer
	l := New(failingStore{}, testKey, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	failures := 0
	l.OnWriteFailure(func() { failures++ })
	l.Record(WithActor(t.Context(), "device:9"), twofold.AuditEvent{Action: twofold.AuditDeviceRemoved, AppID: 1, UserID: 2})
	if failures != 1 {
		t.Errorf("failure hook called %d times, want 1", failures)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log: %v: %s", err, logs.String())
	}
	if line["level"] != "ERROR" || line["action"] != twofold.AuditDeviceRemoved || line["actor"] != "device:9" || line["err"] != "disk full" {
		t.Errorf("the lost event is not logged loudly: %v", line)
	}
}

func TestRecordDefaults(t *testing.T) {
	f := newFixture(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	f.log.Record(canceled, twofold.AuditEvent{Action: twofold.AuditUserDeleted, AppID: 1, UserID: 3})
	// A time of the caller's own, kept to the nanosecond (later than the entry before it: the
	// trail's times never decrease, see store.appendAudit).
	at := t0.Add(1500*time.Millisecond + 5).In(time.FixedZone("Y", -7200))
	f.log.Record(WithActor(t.Context(), "cli"), twofold.AuditEvent{Action: twofold.AuditAppKeyRotated, AppID: 1, At: at})
	f.log.Record(WithActor(t.Context(), "cli"), twofold.AuditEvent{Action: twofold.AuditAppKeyRotated, AppID: 1, Actor: "operator:ana@example.com"})
	list := must(f.log.List(t.Context(), twofold.AuditFilter{}))
	if len(list) != 3 {
		t.Fatalf("%d entries; an event recorded under a canceled context was lost?", len(list))
	}
	for i, want := range []struct {
		actor string
		at    time.Time
	}{{"system", t0.Add(time.Second)}, {"cli", at}, {"operator:ana@example.com", t0.Add(2 * time.Second)}} {
		if list[i].Actor != want.actor || !list[i].At.Equal(want.at) || list[i].At.Location() != time.UTC {
			t.Errorf("entry %d: actor %q at %v; want %q at %v UTC", i+1, list[i].Actor, list[i].At, want.actor, want.at)
		}
	}
	if r := f.verify(t, f.log); !r.OK() {
		t.Errorf("Verify: %+v", r)
	}
}

func TestExport(t *testing.T) {
	f := newFixture(t)
	recorded := f.record(t, slices.Concat(events, []twofold.AuditEvent{{Actor: "cli", Action: twofold.AuditAppCreated, AppID: 2}})...)
	f.log.pageSize = 2 // several pages

	var all bytes.Buffer
	if err := f.log.Export(t.Context(), &all, twofold.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&all)
	var prev []byte
	n := 0
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %s", n+1, err, sc.Text())
		}
		var keys []string
		for k := range raw {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"action", "actor", "app_id", "at", "details", "hash", "id", "prev_hash", "user_id"}; !slices.Equal(keys, want) {
			t.Fatalf("line %d has fields %v, want %v", n+1, keys, want)
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Details == nil {
			t.Errorf("line %d: details is null, want an object", n+1)
		}
		// The line alone, with the key, proves the entry.
		prevHash, _ := hex.DecodeString(e.PrevHash)
		hash, _ := hex.DecodeString(e.Hash)
		ev := twofold.AuditEvent{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, AppID: e.AppID, UserID: e.UserID, Details: e.Details}
		if len(e.Hash) != 64 || !bytes.Equal(prevHash, prev) || !bytes.Equal(hash, f.log.chain(prev, ev)) {
			t.Errorf("line %d does not verify on its own: %s", n+1, sc.Text())
		}
		if want := recorded[n]; e.ID != want.ID || !e.At.Equal(want.At) {
			t.Errorf("line %d: id %d at %v, want %d at %v", n+1, e.ID, e.At, want.ID, want.At)
		}
		prev = hash
		n++
	}
	if n != len(recorded) {
		t.Fatalf("exported %d lines, want %d", n, len(recorded))
	}

	for _, tc := range []struct {
		name string
		f    twofold.AuditFilter
		want []int64
	}{
		{"one application", twofold.AuditFilter{AppID: 2}, []int64{6}},
		{"one action", twofold.AuditFilter{Action: twofold.AuditUserCreated}, []int64{2}},
		{"since", twofold.AuditFilter{Since: recorded[3].At}, []int64{4, 5, 6}},
		{"limit ignored", twofold.AuditFilter{UserID: 1, Limit: 1, Newest: true}, []int64{2, 3, 4, 5}},
	} {
		var buf bytes.Buffer
		if err := f.log.Export(t.Context(), &buf, tc.f); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var e Entry
			if line != "" && json.Unmarshal([]byte(line), &e) == nil {
				ids = append(ids, e.ID)
			}
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("Export %s: ids %v, want %v", tc.name, ids, tc.want)
		}
	}
}
