package onetouch_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

// brokenTrail is an Auditor whose entries cannot be appended: their chaining panics, inside the
// store's transaction, after the change they record was made. Record works (and keeps nothing).
type brokenTrail struct{}

func (brokenTrail) Record(context.Context, twofold.AuditEvent) {}

func (brokenTrail) Entry(_ context.Context, e twofold.AuditEvent) twofold.AuditEntry {
	return twofold.AuditEntry{Event: e, Chain: func([]byte, twofold.AuditEvent) []byte { panic("the audit trail is broken") }}
}

// TestChangeStandsOnlyWithItsAuditEntry: an answer, a close or a group's decision commits with
// its audit entry in one transaction, so one whose entry cannot be appended does not happen at
// all: the request (and its group) stay pending, and no callback is queued. (Before, the change
// committed first and its entry was appended in a second commit, which a crash could skip.)
func TestChangeStandsOnlyWithItsAuditEntry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	sandbox, _, err := apps.New(f.st, keys, f.clock.Now).Create(ctx, apps.CreateParams{Name: "CI", Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	ana, _, err := users.New(f.st, f.clock.Now).Register(ctx, sandbox.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550124", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	group := func(ttl int64) onetouch.GroupDecision {
		t.Helper()
		// A group is made with its own entry (TestGroupMadeOnlyWithItsAuditEntry): made with a
		// working trail, then answered with the broken one.
		f.svc.SetAuditor(nil)
		defer f.svc.SetAuditor(brokenTrail{})
		d, err := f.svc.CreateGroup(ctx, f.app, onetouch.GroupParams{Message: "Pay?", SecondsToExpire: &ttl,
			Approvers: []onetouch.Approver{{UserID: f.user.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Every case leaves a request pending: room for them all.
	f.svc = onetouch.New(f.st, onetouch.Config{MaxPending: 100}, onetouch.Hooks{CallbackQueued: func() { f.notified++ }}, f.clock.Now)
	f.svc.SetAuditor(brokenTrail{})

	// Each case makes what it changes (a request, and its group for a member), then changes it.
	type made struct {
		app            twofold.App
		request, group string
	}
	request := func(ttl int64) made { return made{f.app, f.create(ttl).UUID, ""} }
	member := func(ttl int64) made { d := group(ttl); return made{f.app, d.Members[0].UUID, d.Group.UUID} }
	for _, tc := range []struct {
		name   string
		make   func() made
		change func(m made)
	}{
		{"a device's approval", func() made { return request(120) }, func(m made) { f.answer(m.request, twofold.Approved) }},
		{"a device's denial", func() made { return request(120) }, func(m made) { f.answer(m.request, twofold.Denied) }},
		{"a sandbox answer", func() made {
			r, err := f.svc.Create(ctx, sandbox, ana.ID, onetouch.CreateParams{Message: "Login"})
			if err != nil {
				t.Fatal(err)
			}
			return made{sandbox, r.UUID, ""}
		}, func(m made) { f.svc.AnswerSandbox(ctx, m.app, m.request, twofold.Denied, "not me") }},
		{"a close", func() made { return request(120) }, func(m made) { f.svc.Close(ctx, m.app, m.request) }},
		{"a member's answer that decides its group", func() made { return member(120) }, func(m made) { f.answer(m.request, twofold.Approved) }},
		{"a group's close", func() made { return member(120) }, func(m made) { f.svc.CloseGroup(ctx, m.app, m.group) }},
		{"a member's expiry that decides its group", func() made { return member(60) }, func(m made) {
			f.clock.Advance(time.Minute)
			defer f.clock.Advance(-time.Minute) // the next cases' requests are live again
			f.svc.Get(ctx, m.app, m.request)
		}},
		{"the sweep ending a group", func() made { return member(60) }, func(m made) {
			f.clock.Advance(time.Minute)
			defer f.clock.Advance(-time.Minute)
			f.svc.ExpireDue(ctx)
		}},
	} {
		m := tc.make()
		notified := f.notified
		if v := recovered(func() { tc.change(m) }); v == nil {
			t.Errorf("%s: an entry that could not be appended did not fail the change", tc.name)
		}
		if r, err := f.st.GetApprovalRequest(ctx, m.app.ID, m.request); err != nil || r.Status != twofold.Pending {
			t.Errorf("%s: the request after its entry failed: %s, %v; want pending", tc.name, r.Status, err)
		}
		if m.group != "" {
			if g, _, err := f.st.GetApprovalGroup(ctx, m.app.ID, m.group); err != nil || g.Status != twofold.Pending {
				t.Errorf("%s: the group after its entry failed: %s, %v; want pending", tc.name, g.Status, err)
			}
		}
		cbs, err := f.st.RecentCallbacks(ctx, m.app.ID, 10)
		if err != nil || len(cbs) != 0 || f.notified != notified {
			t.Errorf("%s: %d callbacks queued (%v), dispatcher woken %d times; want none", tc.name, len(cbs), err, f.notified-notified)
		}
	}
}

// recovered runs fn and returns what it panicked with (nil: it did not).
func recovered(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// TestWrongNumberCountedWithItsAuditEntry: a wrong matching number that leaves the request
// pending is counted in one transaction with its audit entry, so one whose entry cannot be
// appended is not counted either: after it, one wrong number still leaves the request pending.
// (Before, the count committed first and the entry was recorded after, best effort.)
func TestWrongNumberCountedWithItsAuditEntry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	yes := true
	r, err := f.svc.Create(ctx, f.app, f.user.ID, onetouch.CreateParams{Message: "Login", NumberMatching: &yes})
	if err != nil {
		t.Fatal(err)
	}
	wrong := "10"
	if r.Number == wrong {
		wrong = "11"
	}
	f.svc.SetAuditor(brokenTrail{})
	if v := recovered(func() { f.answerNumber(r.UUID, wrong) }); v == nil {
		t.Fatal("a wrong number whose entry could not be appended was counted without it")
	}
	f.svc.SetAuditor(nil)
	if _, err := f.answerNumber(r.UUID, wrong); twofold.ErrorCode(err) != twofold.CodeRequestInvalid {
		t.Fatalf("the first wrong number counted: %v, want 60080 with the request pending", err)
	}
	if got, _ := f.st.GetApprovalRequest(ctx, f.app.ID, r.UUID); got.Status != twofold.Pending {
		t.Fatalf("after one counted wrong number the request is %s, want pending", got.Status)
	}
}

// TestGroupMadeOnlyWithItsAuditEntry: a group and its members' requests are made in one
// transaction with the group's audit entry, so a group whose entry cannot be appended is not
// made: no group, no member's request left pending. (Before, the entry was recorded after.)
func TestGroupMadeOnlyWithItsAuditEntry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.svc.SetAuditor(brokenTrail{})
	ttl := int64(120)
	if v := recovered(func() {
		f.svc.CreateGroup(ctx, f.app, onetouch.GroupParams{Message: "Pay?", SecondsToExpire: &ttl,
			Approvers: []onetouch.Approver{{UserID: f.user.ID}}})
	}); v == nil {
		t.Fatal("a group whose entry could not be appended was made without it")
	}
	pending, err := f.st.ListApprovalRequests(ctx, f.app.ID, f.user.ID, twofold.Pending, 10)
	if err != nil || len(pending) != 0 {
		t.Fatalf("after the failed group: %d pending requests (%v), want none", len(pending), err)
	}
}
