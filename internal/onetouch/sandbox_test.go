package onetouch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

type auditLog struct{ events []twofold.AuditEvent }

func (a *auditLog) Record(_ context.Context, e twofold.AuditEvent) { a.events = append(a.events, e) }

// Entry hands the store an entry whose chaining records it: the log holds what a transaction
// appended, when it appended it.
func (a *auditLog) Entry(ctx context.Context, e twofold.AuditEvent) twofold.AuditEntry {
	return twofold.AuditEntry{Event: e, Chain: func(_ []byte, e twofold.AuditEvent) []byte {
		a.Record(ctx, e)
		return []byte("recorded")
	}}
}

// TestSandboxRequests: a sandbox application accepts approval requests for users without a
// device, as Authy's sandbox did; they stay pending until expiry or until its developer answers
// them (AnswerSandbox), which finishes them as a device's answer would, callback included.
// Production applications keep requiring a device, and their requests are a device's to answer.
func TestSandboxRequests(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	log := &auditLog{}
	f.svc.SetAuditor(log)
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	appSvc := apps.New(f.st, keys, f.clock.Now)
	sandbox, _, err := appSvc.Create(ctx, apps.CreateParams{Name: "CI", Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := appSvc.Create(ctx, apps.CreateParams{Name: "CI 2", Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	cbURL := "https://ci.example/cb"
	if sandbox, err = appSvc.Update(ctx, sandbox.ID, apps.Update{CallbackURL: &cbURL}); err != nil {
		t.Fatal(err)
	}
	userSvc := users.New(f.st, f.clock.Now)
	ana, _, err := userSvc.Register(ctx, sandbox.ID, users.Contact{Email: "ana@example.com", Cellphone: "111-111-1111", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := userSvc.Register(ctx, f.app.ID, users.Contact{Email: "bob@example.com", Cellphone: "2015550124", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}

	login := onetouch.CreateParams{Message: "Login"}
	if _, err := f.svc.Create(ctx, f.app, bob.ID, login); twofold.ErrorCode(err) != twofold.CodeUnregisteredUser {
		t.Fatalf("production request for a user without a device: %v", err)
	}
	r, err := f.svc.Create(ctx, sandbox, ana.ID, login)
	if err != nil || r.Status != twofold.Pending {
		t.Fatalf("sandbox request for a user without a device: %+v %v", r, err)
	}

	refused := []struct {
		name   string
		app    twofold.App
		uuid   string
		status twofold.ApprovalStatus
		check  func(error) bool
	}{
		{"not a decision", sandbox, r.UUID, twofold.Expired, func(err error) bool { return twofold.ErrorCode(err) == twofold.CodeInvalidParameter }},
		{"pending is no decision", sandbox, r.UUID, twofold.Pending, func(err error) bool { return twofold.ErrorCode(err) == twofold.CodeInvalidParameter }},
		{"unknown request", sandbox, "5e0ba1a7-0000-4000-8000-000000000000", twofold.Approved,
			func(err error) bool { return twofold.ErrorCode(err) == twofold.CodeRequestNotFound }},
		{"from a production application", f.app, r.UUID, twofold.Approved, func(err error) bool { return errors.Is(err, onetouch.ErrNotSandbox) }},
		{"another sandbox's request", other, r.UUID, twofold.Approved, func(err error) bool { return twofold.ErrorCode(err) == twofold.CodeRequestNotFound }},
	}
	for _, tt := range refused {
		if _, err := f.svc.AnswerSandbox(ctx, tt.app, tt.uuid, tt.status, ""); !tt.check(err) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	f.clock.Advance(time.Second)
	got, err := f.svc.AnswerSandbox(ctx, sandbox, r.UUID, twofold.Approved, "")
	if err != nil || got.Status != twofold.Approved || got.DeviceID != 0 || !got.ProcessedAt.Equal(f.clock.Now()) {
		t.Fatalf("AnswerSandbox = %+v %v", got, err)
	}
	if _, err := f.svc.AnswerSandbox(ctx, sandbox, r.UUID, twofold.Denied, ""); twofold.ErrorCode(err) != twofold.CodeNotPending {
		t.Fatalf("a second answer: %v", err)
	}
	cbs, _ := f.st.RecentCallbacks(ctx, sandbox.ID, 10)
	if len(cbs) != 1 || f.notified != 1 {
		t.Fatalf("callbacks %d, notified %d; want 1 and 1", len(cbs), f.notified)
	}
	var body map[string]any
	json.Unmarshal(cbs[0].Payload, &body)
	if body["status"] != "approved" || body["uuid"] != r.UUID || body["authy_id"] != float64(ana.ID) || body["device_uuid"] != "" {
		t.Fatalf("callback: %v", body)
	}

	// A production request stays a device's: the sandbox's answer is refused, the device's taken.
	prod := f.create(0)
	if _, err := f.svc.AnswerSandbox(ctx, f.app, prod.UUID, twofold.Approved, ""); !errors.Is(err, onetouch.ErrNotSandbox) {
		t.Fatalf("AnswerSandbox on a production request: %v", err)
	}
	if _, err := f.answer(prod.UUID, twofold.Denied); err != nil {
		t.Fatalf("the device's answer: %v", err)
	}

	// An expired sandbox request cannot be answered; a denial records its reason.
	ttl := int64(60)
	old, _ := f.svc.Create(ctx, sandbox, ana.ID, onetouch.CreateParams{Message: "Login", SecondsToExpire: &ttl})
	f.clock.Advance(time.Minute)
	if _, err := f.svc.AnswerSandbox(ctx, sandbox, old.UUID, twofold.Approved, ""); twofold.ErrorCode(err) != twofold.CodeNotPending {
		t.Fatalf("an expired request: %v", err)
	}
	denied, _ := f.svc.Create(ctx, sandbox, ana.ID, login)
	if got, err := f.svc.AnswerSandbox(ctx, sandbox, denied.UUID, twofold.Denied, "not me"); err != nil || got.Status != twofold.Denied || got.Reason != "not me" {
		t.Fatalf("a denial: %+v %v", got, err)
	}

	var answers []string
	for _, e := range log.events {
		answers = append(answers, e.Action+" "+e.Details["uuid"]+" "+e.Details["reason"]+" "+e.Details["device_id"])
	}
	want := []string{"approval.approved " + r.UUID + "  ", "approval.denied " + prod.UUID + "  " + strconv.FormatInt(f.device.ID, 10),
		"approval.denied " + denied.UUID + " not me "}
	if len(answers) != len(want) {
		t.Fatalf("audit: %q, want %q", answers, want)
	}
	for i := range want {
		if answers[i] != want[i] {
			t.Fatalf("audit: %q, want %q", answers, want)
		}
	}
}
