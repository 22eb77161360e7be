package verify_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// Verify verifications (verification.go): the attacker's side first.

const verifyTo = "+12015550123"

func (f *fixture) verifyService(a twofold.App, change func(*twofold.VerifyService)) twofold.VerifyService {
	f.t.Helper()
	v := apps.NewVerifyService("Acme")
	if change != nil {
		change(&v)
	}
	svc, err := f.apps.CreateVerifyService(context.Background(), a, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

// start starts (or sends again) a verification by SMS to to and returns it with the code sent,
// read back from the outbox.
func (f *fixture) start(a twofold.App, svc twofold.VerifyService, to string) (verify.VerificationStarted, string) {
	f.t.Helper()
	st, err := f.svc.StartVerification(context.Background(), a, verify.VerificationStart{Service: svc, To: to, Channel: twofold.SMS})
	if err != nil {
		f.t.Fatalf("StartVerification(%s): %v", to, err)
	}
	return st, f.lastCode(st.Message.SID, svc.CodeLength)
}

var verifyCodeRE = regexp.MustCompile(`\b(\d{4,10})\b`)

func (f *fixture) lastCode(sid string, n int) string {
	f.t.Helper()
	msgs, err := f.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if last.SID != sid {
		f.t.Fatalf("newest outbox message %s, want %s", last.SID, sid)
	}
	m := verifyCodeRE.FindStringSubmatch(strings.ReplaceAll(last.Body, ", ", ""))
	if m == nil || len(m[1]) != n {
		f.t.Fatalf("no %d-digit code in %q", n, last.Body)
	}
	return m[1]
}

func (f *fixture) outboxLen() int {
	f.t.Helper()
	msgs, err := f.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(msgs)
}

func (f *fixture) checkVerification(a twofold.App, svc twofold.VerifyService, to, id, code string) (twofold.Verification, bool, error) {
	return f.svc.CheckVerification(context.Background(), a, verify.VerificationCheck{Service: svc, To: to, VerificationID: id, Code: code})
}

func TestVerificationBruteForceStopsAtFiveChecks(t *testing.T) {
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	svc := f.verifyService(a, nil)
	st, code := f.start(a, svc, verifyTo)
	for i := range verify.VerificationMaxChecks {
		v, approved, err := f.checkVerification(a, svc, verifyTo, "", wrong(code))
		if err != nil || approved || v.Checks != i+1 {
			t.Fatalf("wrong code %d: approved %v, checks %d, %v", i+1, approved, v.Checks, err)
		}
	}
	// The right code, now: refused without being compared, by recipient or by id.
	for _, id := range []string{"", st.Verification.PublicID} {
		if _, approved, err := f.checkVerification(a, svc, verifyTo, id, code); !errors.Is(err, verify.ErrMaxChecks) || approved {
			t.Fatalf("the right code after five wrong ones (id %q): approved %v, %v; want ErrMaxChecks", id, approved, err)
		}
	}
	v, err := f.svc.Verification(context.Background(), svc, st.Verification.PublicID)
	if err != nil || v.StatusAt(f.clock.Now(), verify.VerificationMaxChecks) != twofold.VerificationMaxAttempts {
		t.Fatalf("status: %+v, %v; want max_attempts_reached", v, err)
	}
	// Asking for the code again sends nothing: it is dead until the verification expires.
	sent := f.outboxLen()
	if _, err := f.svc.StartVerification(context.Background(), a, verify.VerificationStart{Service: svc, To: verifyTo, Channel: twofold.SMS}); !errors.Is(err, verify.ErrMaxChecks) {
		t.Fatalf("a start after five wrong checks: %v, want ErrMaxChecks", err)
	}
	if f.outboxLen() != sent {
		t.Fatal("a refused start sent a message")
	}
	f.clock.Advance(10 * time.Minute)
	if _, _, err := f.checkVerification(a, svc, verifyTo, "", code); !errors.Is(err, twofold.ErrNotFound) {
		t.Fatalf("after expiry: %v, want ErrNotFound", err)
	}
	next, _ := f.start(a, svc, verifyTo)
	if next.Resent || next.Verification.PublicID == st.Verification.PublicID {
		t.Fatalf("a start after expiry reused %s", st.Verification.PublicID)
	}
}

func TestVerificationParallelChecks(t *testing.T) {
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	svc := f.verifyService(a, nil)
	_, code := f.start(a, svc, verifyTo)
	const n = 20
	results := func(guess string, to string) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				_, approved, err := f.checkVerification(a, svc, to, "", guess)
				outcome := "wrong"
				switch {
				case approved:
					outcome = "approved"
				case errors.Is(err, verify.ErrMaxChecks):
					outcome = "max"
				case errors.Is(err, twofold.ErrNotFound):
					outcome = "gone"
				case err != nil:
					outcome = err.Error()
				}
				mu.Lock()
				got[outcome]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		return got
	}
	if got := results(wrong(code), verifyTo); got["wrong"] != verify.VerificationMaxChecks || got["max"] != n-verify.VerificationMaxChecks {
		t.Errorf("%d parallel wrong codes: %v; want 5 judged and the rest refused", n, got)
	}
	const other = "+12015550124"
	_, code = f.start(a, svc, other)
	if got := results(code, other); got["approved"] != 1 || got["gone"] != n-1 {
		t.Errorf("%d parallel right codes: %v; want one approval", n, got)
	}
}

func TestVerificationIsGoneOnceApproved(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	svc := f.verifyService(a, nil)
	st, code := f.start(a, svc, verifyTo)
	id := st.Verification.PublicID
	v, approved, err := f.checkVerification(a, svc, "", id, code)
	if err != nil || !approved || v.Status != twofold.VerificationApproved {
		t.Fatalf("the right code: %+v, %v, %v", v, approved, err)
	}
	for what, err := range map[string]error{
		"the same code again":    errOf3(f.checkVerification(a, svc, verifyTo, "", code)),
		"the same code by id":    errOf3(f.checkVerification(a, svc, "", id, code)),
		"fetch":                  errOf(f.svc.Verification(ctx, svc, id)),
		"cancel":                 errOf(f.svc.EndVerification(ctx, a, svc, id, twofold.VerificationCanceled)),
		"approve again":          errOf(f.svc.EndVerification(ctx, a, svc, id, twofold.VerificationApproved)),
		"another service's view": errOf(f.svc.Verification(ctx, f.verifyService(a, nil), id)),
	} {
		if !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("%s after approval: %v, want ErrNotFound", what, err)
		}
	}
	// A start now makes a new verification: the approved code is never sent again.
	next, _ := f.start(a, svc, verifyTo)
	if next.Resent || next.Verification.PublicID == id {
		t.Fatalf("a start after approval resent %s", id)
	}
	if _, _, err := f.checkVerification(a, svc, "", id, code); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("the approved verification's code by its id: %v", err)
	}
}

func TestVerificationSendsTheSameCodeFiveTimes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.DefaultConfig())
	a := f.app(false)
	svc := f.verifyService(a, func(v *twofold.VerifyService) { v.CodeLength = 8 })
	first, code := f.start(a, svc, verifyTo)
	for i := 2; i <= verify.VerificationMaxSends; i++ {
		ch := twofold.SMS
		if i == 3 {
			ch = twofold.Call // a send may switch channel: the same code is read out
		}
		st, err := f.svc.StartVerification(ctx, a, verify.VerificationStart{Service: svc, To: verifyTo, Channel: ch})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if got := f.lastCode(st.Message.SID, 8); !st.Resent || st.Verification.PublicID != first.Verification.PublicID || got != code ||
			len(st.Verification.Sends) != i || st.Verification.Channel != ch {
			t.Fatalf("send %d: %+v code %s; want the first verification's code %s again", i, st, got, code)
		}
	}
	sent := f.outboxLen()
	_, err := f.svc.StartVerification(ctx, a, verify.VerificationStart{Service: svc, To: verifyTo, Channel: twofold.SMS})
	if !errors.Is(err, verify.ErrMaxSends) || f.outboxLen() != sent {
		t.Fatalf("a sixth send: %v (outbox %d → %d); want ErrMaxSends and nothing sent", err, sent, f.outboxLen())
	}
	// Canceled, a new verification may start, but the number has had its five codes in ten
	// minutes (the send limit the Authy API shares).
	if _, err := f.svc.EndVerification(ctx, a, svc, first.Verification.PublicID, twofold.VerificationCanceled); err != nil {
		t.Fatal(err)
	}
	var refused *verify.SendRefused
	_, err = f.svc.StartVerification(ctx, a, verify.VerificationStart{Service: svc, To: verifyTo, Channel: twofold.SMS})
	if !errors.As(err, &refused) || refused.Limit != "number_sends" || twofold.ErrorCode(err) != twofold.CodeRateLimited {
		t.Fatalf("a start after five codes to the number: %v; want the number's send limit", err)
	}
}

func TestVerificationStartRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	plain := f.verifyService(a, nil)
	custom := f.verifyService(a, func(v *twofold.VerifyService) { v.Settings.CustomCodeEnabled = true })
	onlyUS := f.app(false)
	countries := []string{"US"}
	if _, err := f.apps.Update(ctx, onlyUS.ID, apps.Update{AllowedCountries: &countries}); err != nil {
		t.Fatal(err)
	}
	onlyUS, _ = f.apps.Get(ctx, onlyUS.ID)
	usService := f.verifyService(onlyUS, nil)
	for _, c := range []struct {
		name string
		app  twofold.App
		p    verify.VerificationStart
		want twofold.Code
	}{
		{"whatsapp", a, verify.VerificationStart{Service: plain, To: verifyTo, Channel: "whatsapp"}, twofold.CodeInvalidParameter},
		{"a national number", a, verify.VerificationStart{Service: plain, To: "2015550123", Channel: twofold.SMS}, twofold.CodeInvalidParameter},
		{"an email by SMS", a, verify.VerificationStart{Service: plain, To: "a@example.com", Channel: twofold.SMS}, twofold.CodeInvalidParameter},
		{"a number by email", a, verify.VerificationStart{Service: plain, To: verifyTo, Channel: twofold.Email}, twofold.CodeInvalidParameter},
		{"a custom code the service does not allow", a, verify.VerificationStart{Service: plain, To: verifyTo, Channel: twofold.SMS, CustomCode: "123456"}, twofold.CodeInvalidParameter},
		{"a custom code the application does not allow", a, verify.VerificationStart{Service: custom, To: verifyTo, Channel: twofold.SMS, CustomCode: "123456"}, twofold.CodeInvalidParameter},
		{"SMS to a landline", a, verify.VerificationStart{Service: plain, To: "+442079460018", Channel: twofold.SMS}, twofold.CodeSMSToLandline},
		{"a country the application does not send to", onlyUS, verify.VerificationStart{Service: usService, To: "+351912345678", Channel: twofold.SMS}, twofold.CodeBannedCountry},
		{"a sender name with a line break", a, verify.VerificationStart{Service: plain, To: verifyTo, Channel: twofold.SMS, FriendlyName: "Bank\nCall us"}, twofold.CodeInvalidParameter},
	} {
		_, err := f.svc.StartVerification(ctx, c.app, c.p)
		if twofold.ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want %d", c.name, err, c.want)
		}
	}
	if n := f.outboxLen(); n != 0 {
		t.Errorf("refused starts sent %d messages", n)
	}
}

func TestVerificationCustomCodeEmailAndCancel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	on := true
	if _, err := f.apps.Update(ctx, a.ID, apps.Update{CustomCodes: &on}); err != nil {
		t.Fatal(err)
	}
	a, _ = f.apps.Get(ctx, a.ID)
	svc := f.verifyService(a, func(v *twofold.VerifyService) { v.Settings.CustomCodeEnabled = true })
	st, err := f.svc.StartVerification(ctx, a, verify.VerificationStart{Service: svc, To: "Ana@Example.COM", Channel: twofold.Email,
		CustomCode: "4242", FriendlyName: "Acme Pay", Locale: "pt-BR"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Verification.To != "ana@example.com" || f.lastCode(st.Message.SID, 4) != "4242" || !strings.Contains(st.Message.Body, "Acme Pay") {
		t.Fatalf("a custom code by email: %+v %q", st.Verification, st.Message.Body)
	}
	if v, approved, err := f.checkVerification(a, svc, "ANA@example.com", "", "4243"); err != nil || approved || v.PublicID != st.Verification.PublicID {
		t.Fatalf("a check by the address in capitals: %+v, %v, %v", v, approved, err)
	}
	v, err := f.svc.EndVerification(ctx, a, svc, st.Verification.PublicID, twofold.VerificationCanceled)
	if err != nil || v.Status != twofold.VerificationCanceled {
		t.Fatalf("cancel: %+v, %v", v, err)
	}
	if _, _, err := f.checkVerification(a, svc, "ana@example.com", "", "4242"); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("a canceled verification's code: %v", err)
	}
	if _, err := f.svc.EndVerification(ctx, a, svc, st.Verification.PublicID, "pending"); twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
		t.Errorf("status pending: %v", err)
	}
	// The code is kept only sealed and hashed.
	st, err = f.svc.StartVerification(ctx, a, verify.VerificationStart{Service: svc, To: verifyTo, Channel: twofold.SMS, CustomCode: "97531864"})
	if err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	if strings.Contains(string(readAll(t, f.dbPath)), "97531864") {
		t.Error("the code is in the database files")
	}
}

func errOf[T any](_ T, err error) error          { return err }
func errOf3[A, B any](_ A, _ B, err error) error { return err }
