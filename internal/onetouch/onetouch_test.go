package onetouch_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

type fixture struct {
	t        *testing.T
	st       *store.Store
	clock    *clock
	app      twofold.App
	user     twofold.User
	device   twofold.Device
	key      *ecdsa.PrivateKey
	svc      *onetouch.Service
	notified int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	f := &fixture{t: t, st: st, clock: &clock{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}}
	appSvc := apps.New(st, keys, f.clock.Now)
	f.app, _, _ = appSvc.Create(ctx, apps.CreateParams{Name: "Bank"})
	url, yes := "https://bank.example/cb", true
	f.app, err = appSvc.Update(ctx, f.app.ID, apps.Update{CallbackURL: &url, CallbackExpired: &yes})
	if err != nil {
		t.Fatal(err)
	}
	f.user, _, _ = users.New(st, f.clock.Now).Register(ctx, f.app.ID, users.Contact{Email: "a@example.com", Cellphone: "2015550123", CountryCode: "1"})
	devSvc := devices.New(st, keys, appSvc.Reveal, time.Minute, f.clock.Now)
	token, _, err := devSvc.RegistrationToken(ctx, f.app.ID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	reg, err := devSvc.Register(ctx, token, der, "phone", "ios")
	if err != nil {
		t.Fatal(err)
	}
	f.device = reg.Device
	f.svc = onetouch.New(st, onetouch.Config{}, onetouch.Hooks{CallbackQueued: func() { f.notified++ }}, f.clock.Now)
	return f
}

func (f *fixture) create(ttl int64) twofold.ApprovalRequest {
	f.t.Helper()
	r, err := f.svc.Create(context.Background(), f.app, f.user.ID, onetouch.CreateParams{Message: "Login", SecondsToExpire: &ttl})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) answer(uuid string, status twofold.ApprovalStatus) (twofold.ApprovalRequest, error) {
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, "", ""))
	sig, _ := ecdsa.SignASN1(rand.Reader, f.key, digest[:])
	return f.svc.Answer(context.Background(), f.device, uuid, onetouch.Answer{Status: status, Timestamp: ts, Signature: base64.StdEncoding.EncodeToString(sig)})
}

func TestExpiryOnReadAndBySweep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	onRead := f.create(60)
	bySweep := f.create(120)
	never := f.create(0)

	f.clock.Advance(59 * time.Second)
	if got, _ := f.svc.Get(ctx, f.app, onRead.UUID); got.Status != twofold.Pending {
		t.Fatalf("before expiry: %s", got.Status)
	}
	f.clock.Advance(time.Second)
	got, err := f.svc.Get(ctx, f.app, onRead.UUID)
	if err != nil || got.Status != twofold.Expired || !got.ProcessedAt.Equal(f.clock.Now()) {
		t.Fatalf("expired on read: %+v %v", got, err)
	}
	if _, err := f.answer(onRead.UUID, twofold.Approved); twofold.ErrorCode(err) != twofold.CodeNotPending {
		t.Fatalf("answer after expiry: %v", err)
	}

	f.clock.Advance(time.Hour)
	n, err := f.svc.ExpireDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep expired %d, %v; want 1", n, err)
	}
	if got, _ := f.st.GetApprovalRequest(ctx, f.app.ID, bySweep.UUID); got.Status != twofold.Expired {
		t.Fatalf("swept request: %s", got.Status)
	}
	if got, _ := f.svc.Get(ctx, f.app, never.UUID); got.Status != twofold.Pending {
		t.Fatalf("never-expiring request: %s", got.Status)
	}
	// Each expiry queued a callback (the app asked for them) and woke the dispatcher.
	cbs, _ := f.st.RecentCallbacks(ctx, f.app.ID, 10)
	if len(cbs) != 2 || f.notified != 2 {
		t.Fatalf("callbacks %d, notified %d; want 2 and 2", len(cbs), f.notified)
	}
	var body map[string]any
	json.Unmarshal(cbs[0].Payload, &body)
	if body["status"] != "expired" || body["device_uuid"] != "" {
		t.Fatalf("expiry callback: %v", body)
	}
}

func TestFirstAnswerWins(t *testing.T) {
	f := newFixture(t)
	r := f.create(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[twofold.ApprovalStatus]int{}
	start := make(chan struct{})
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := twofold.Approved
			if i%2 == 1 {
				status = twofold.Denied
			}
			<-start
			if got, err := f.answer(r.UUID, status); err == nil {
				mu.Lock()
				wins[got.Status]++
				mu.Unlock()
			} else if twofold.ErrorCode(err) != twofold.CodeNotPending {
				t.Errorf("losing answer: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins[twofold.Approved]+wins[twofold.Denied] != 1 {
		t.Fatalf("winners: %v", wins)
	}
	cbs, _ := f.st.RecentCallbacks(context.Background(), f.app.ID, 10)
	if len(cbs) != 1 {
		t.Fatalf("%d callbacks queued, want exactly 1", len(cbs))
	}
}

func TestAnswerTimestampWindow(t *testing.T) {
	f := newFixture(t)
	r := f.create(0)
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		ts := f.clock.Now().Add(skew).Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(r.UUID, twofold.Approved, ts, "", ""))
		sig, _ := ecdsa.SignASN1(rand.Reader, f.key, digest[:])
		_, err := f.svc.Answer(context.Background(), f.device, r.UUID, onetouch.Answer{Status: twofold.Approved, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig)})
		if twofold.ErrorCode(err) != twofold.CodeInvalidSignature {
			t.Fatalf("timestamp %v off: %v", skew, err)
		}
	}
	if _, err := f.answer(r.UUID, twofold.Approved); err != nil {
		t.Fatalf("timely answer: %v", err)
	}
}

func TestRegistrationTokenExpires(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	devSvc := devices.New(f.st, keys, nil, time.Minute, f.clock.Now)
	token, _, _ := devSvc.RegistrationToken(ctx, f.app.ID, f.user.ID)
	f.clock.Advance(time.Minute)
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	if _, err := devSvc.Register(ctx, token, der, "", ""); twofold.ErrorCode(err) != twofold.CodeRegistrationExpired {
		t.Fatalf("expired token: %v", err)
	}
	if _, _, err := devSvc.RegistrationToken(ctx, f.app.ID+1, f.user.ID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("token for another app's user: %v", err)
	}
}

// answerNumber approves with a matching number.
func (f *fixture) answerNumber(uuid, number string) (twofold.ApprovalRequest, error) {
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, twofold.Approved, ts, number, ""))
	sig, _ := ecdsa.SignASN1(rand.Reader, f.key, digest[:])
	return f.svc.Answer(context.Background(), f.device, uuid, onetouch.Answer{Status: twofold.Approved, Timestamp: ts,
		Signature: base64.StdEncoding.EncodeToString(sig), Number: number})
}

// TestNumberMatchingTries: one wrong number leaves the request pending, the second denies it;
// the right number after one slip approves.
func TestNumberMatchingTries(t *testing.T) {
	ctx := context.Background()
	yes := true
	wrongOf := func(n string) string {
		if n == "10" {
			return "11"
		}
		return "10"
	}
	for _, tc := range []struct {
		name    string
		answers func(number string) []string // the numbers sent, in order
		want    []twofold.Code               // each answer's error code (0: none)
		status  twofold.ApprovalStatus
	}{
		{"right at once", func(n string) []string { return []string{n} }, []twofold.Code{0}, twofold.Approved},
		{"one slip, then right", func(n string) []string { return []string{wrongOf(n), n} },
			[]twofold.Code{twofold.CodeRequestInvalid, 0}, twofold.Approved},
		{"an empty number is a miss", func(n string) []string { return []string{"", n} },
			[]twofold.Code{twofold.CodeRequestInvalid, 0}, twofold.Approved},
		{"two misses deny", func(n string) []string { return []string{wrongOf(n), wrongOf(n), n} },
			[]twofold.Code{twofold.CodeRequestInvalid, twofold.CodeRequestInvalid, twofold.CodeNotPending}, twofold.Denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			r, err := f.svc.Create(ctx, f.app, f.user.ID, onetouch.CreateParams{Message: "Login", NumberMatching: &yes})
			if err != nil || len(r.Number) != 2 {
				t.Fatalf("create: %+v %v", r, err)
			}
			for i, n := range tc.answers(r.Number) {
				_, err := f.answerNumber(r.UUID, n)
				if got := twofold.ErrorCode(err); (err == nil) != (tc.want[i] == 0) || (err != nil && got != tc.want[i]) {
					t.Fatalf("answer %d (%q): %v, want code %d", i+1, n, err, tc.want[i])
				}
			}
			if got, _ := f.st.GetApprovalRequest(ctx, f.app.ID, r.UUID); got.Status != tc.status {
				t.Fatalf("status %s, want %s", got.Status, tc.status)
			}
		})
	}
}

// TestNumberMatchingParallelGuesses: wrong numbers sent at once get no more tries than sent one
// by one; the request ends denied and nothing was approved.
func TestNumberMatchingParallelGuesses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	yes := true
	r, err := f.svc.Create(ctx, f.app, f.user.ID, onetouch.CreateParams{Message: "Login", NumberMatching: &yes})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for n := 10; n < 26; n++ {
		guess := strconv.Itoa(n)
		if guess == r.Number {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := f.answerNumber(r.UUID, guess); err == nil {
				t.Errorf("wrong number %s was accepted", guess)
			}
		}()
	}
	close(start)
	wg.Wait()
	if _, err := f.answerNumber(r.UUID, r.Number); twofold.ErrorCode(err) != twofold.CodeNotPending {
		t.Fatalf("the right number after the guesses: %v, want 60079", err)
	}
	got, _ := f.st.GetApprovalRequest(ctx, f.app.ID, r.UUID)
	if got.Status != twofold.Denied || got.Reason != "number mismatch" {
		t.Fatalf("after parallel guesses: %s %q", got.Status, got.Reason)
	}
}
