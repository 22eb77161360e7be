package verify_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// recorder is an Auditor that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []twofold.AuditEvent
	taken  int
}

func (r *recorder) Record(_ context.Context, e twofold.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Entry hands the store an entry whose chaining records it: the recorder sees what a decision
// appended, when it appended it.
func (r *recorder) Entry(_ context.Context, e twofold.AuditEvent) twofold.AuditEntry {
	return twofold.AuditEntry{Event: e, Chain: func(_ []byte, e twofold.AuditEvent) []byte {
		r.Record(context.Background(), e)
		return []byte("recorded")
	}}
}

// take returns what was recorded since the last take, each as "action user=N key=value...".
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events[r.taken:] {
		s := e.Action
		if e.UserID != 0 {
			s += " user=" + strconv.FormatInt(e.UserID, 10)
		}
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s += " " + k + "=" + e.Details[k]
		}
		out = append(out, s)
	}
	r.taken = len(r.events)
	return out
}

func TestAuditOfVerifications(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 3, Window: 15 * time.Minute}, SendLimit: verify.Limit{N: 3, Window: 10 * time.Minute}})
	rec := &recorder{}
	f.svc.SetAuditor(rec)
	a := f.app(false)
	u, v := f.user(a, 0), f.user(a, 1)
	var seen []string // every code, to make sure none is recorded

	type step struct {
		name string
		do   func()
		want []string
	}
	var code string
	for _, s := range []step{
		{"right SMS code", func() { code = f.send(a, u, ""); seen = append(seen, code); f.check(a, u, code, verify.CheckParams{}) },
			[]string{"verification.succeeded user=1 method=sms"}},
		{"the same code again", func() { f.check(a, u, code, verify.CheckParams{}) },
			[]string{"verification.failed user=1 why=reused"}},
		{"a wrong code", func() { f.check(a, u, wrong(code), verify.CheckParams{}) },
			[]string{"verification.failed user=1 why=invalid"}},
		{"a malformed token is not judged", func() { f.check(a, u, "12ab", verify.CheckParams{}) }, nil},
		{"an unknown user", func() { f.check(a, twofold.User{ID: 99}, code, verify.CheckParams{}) }, nil},
		{"a call code", func() {
			if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.Call, Force: true}); err != nil {
				t.Fatal(err)
			}
			msgs, _ := f.outbox.List(ctx, twofold.MessageFilter{})
			c := strings.NewReplacer(", ", "").Replace(msgs[len(msgs)-1].Body)
			c = codeInText(t, c, a.TokenLength)
			seen = append(seen, c)
			f.check(a, u, c, verify.CheckParams{})
		}, []string{"verification.succeeded user=1 method=call"}},
		{"wrong twice more: the third failure (the reuse was none)", func() {
			f.check(a, u, wrong(code), verify.CheckParams{})
			f.check(a, u, wrong(code), verify.CheckParams{})
		}, []string{"verification.failed user=1 why=invalid", "verification.failed user=1 why=invalid"}},
		{"past the failure limit: recorded once", func() {
			for range 3 {
				if _, c := f.check(a, u, wrong(code), verify.CheckParams{}); c != twofold.CodeRateLimited {
					t.Fatalf("past the limit: %d", c)
				}
			}
		}, []string{"limit.hit user=1 limit=failures max=3 window=15m0s"}},
		{"past the send limit: recorded once", func() {
			for range 3 {
				f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.Email, Force: true})
			}
		}, []string{"limit.hit user=1 limit=sends max=3 window=10m0s"}},
		{"the next window", func() {
			f.clock.Advance(15 * time.Minute)
			for range 4 {
				f.check(a, u, wrong(code), verify.CheckParams{})
			}
		}, []string{"verification.failed user=1 why=invalid", "verification.failed user=1 why=invalid",
			"verification.failed user=1 why=invalid", "limit.hit user=1 limit=failures max=3 window=15m0s"}},
		{"an authenticator app", func() {
			e, err := f.svc.Enroll(ctx, a, v.ID, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			key, _ := otp.ParseURI(e.URI)
			c := key.Code(f.clock.Now())
			seen = append(seen, c)
			f.check(a, v, c, verify.CheckParams{})
		}, []string{"verification.succeeded user=2 method=totp"}},
		{"the sandbox token", func() {
			sb := f.app(true)
			f.check(sb, f.user(sb, 2), "0000000", verify.CheckParams{})
		}, []string{"verification.succeeded user=3 method=sandbox"}},
	} {
		s.do()
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: recorded %q, want %q", s.name, got, s.want)
		}
	}

	// Nothing personal or secret in what was recorded.
	for _, e := range rec.events {
		for k, val := range e.Details {
			for _, secret := range append(seen, phones[0], phones[1], "example.com") {
				if secret != "" && strings.Contains(val, secret) {
					t.Errorf("%s detail %s=%q holds %q", e.Action, k, val, secret)
				}
			}
		}
	}
}

func codeInText(t *testing.T, text string, n int) string {
	t.Helper()
	run := 0
	for i := 0; i < len(text); i++ {
		if text[i] >= '0' && text[i] <= '9' {
			run++
			if run == n && (i+1 == len(text) || text[i+1] < '0' || text[i+1] > '9') {
				return text[i-n+1 : i+1]
			}
			continue
		}
		run = 0
	}
	t.Fatalf("no %d-digit code in %q", n, text)
	return ""
}

// A flood of parallel guesses makes one limit.hit entry, not one per refusal.
func TestAuditOfParallelGuessing(t *testing.T) {
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 10, Window: time.Hour}, MaxAttempts: 1000})
	rec := &recorder{}
	f.svc.SetAuditor(rec)
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	parallel(60, func() twofold.Code { _, c := f.check(a, u, wrong(code), verify.CheckParams{}); return c })
	counts := map[string]int{}
	for _, s := range rec.take() {
		counts[s]++
	}
	want := map[string]int{"verification.failed user=1 why=invalid": 10, "limit.hit user=1 limit=failures max=10 window=1h0m0s": 1}
	if len(counts) != len(want) || counts["verification.failed user=1 why=invalid"] != 10 || counts["limit.hit user=1 limit=failures max=10 window=1h0m0s"] != 1 {
		t.Fatalf("recorded %v, want %v", counts, want)
	}
}
