package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/push/pushtest"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// fixture is a real SQLite store with an application "Shop", a user and a device.
type fixture struct {
	st   *store.Store
	app  twofold.App
	user twofold.User
	dev  twofold.Device
	keys *seal.Keyring
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, keys: keyring(t, 1)}
	f.app = mkApp(t, st, "Shop")
	f.user = mkUser(t, st, f.app.ID, "5550000001")
	f.dev = mkDevice(t, st, f.user, "phone")
	return f
}

func keyring(t *testing.T, b byte) *seal.Keyring {
	t.Helper()
	master := make([]byte, seal.KeySize)
	master[0] = b
	k, err := seal.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mkApp(t *testing.T, st *store.Store, name string) twofold.App {
	t.Helper()
	a := twofold.App{Name: name, KeyMAC: []byte("mac:" + name), KeySealed: []byte("sealed"), Settings: twofold.DefaultSettings(),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateApp(t.Context(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func mkUser(t *testing.T, st *store.Store, appID int64, phone string) twofold.User {
	t.Helper()
	u := twofold.User{AppID: appID, Email: phone + "@example.com", CountryCode: 1, Phone: phone, CreatedAt: time.Now()}
	if _, err := st.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func mkDevice(t *testing.T, st *store.Store, u twofold.User, name string) twofold.Device {
	t.Helper()
	id := fmt.Sprint(u.AppID, ":", u.ID, ":", name)
	d := twofold.Device{PublicKey: []byte("pk"), TokenMAC: []byte("token:" + id), Name: name, OSType: "web",
		SecretSealed: []byte("s"), Digits: 7, Period: 10}
	now := time.Now()
	if err := st.RegisterDeviceOnce(t.Context(), []byte("reg:"+id), u.AppID, u.ID, now.Add(time.Hour), now, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// outcomes collects what the notifier reports.
type outcomes struct {
	mu  sync.Mutex
	got []string
	c   chan string
}

func newOutcomes() *outcomes { return &outcomes{c: make(chan string, 64)} }

func (o *outcomes) observe(kind, outcome string) {
	o.mu.Lock()
	o.got = append(o.got, kind+" "+outcome)
	o.mu.Unlock()
	o.c <- kind + " " + outcome
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// standIns is the guard for tests whose push services and ntfy servers are stand-ins on
// loopback, which they allow as an operator would with --push-allow-hosts 127.0.0.1.
func standIns(t *testing.T) *egress.Guard {
	t.Helper()
	allow, err := egress.ParseAllowlist("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return egress.New(allow, nil)
}

// notifier makes a notifier over f's store with a fresh VAPID key; now is fixed at clock. The
// stand-ins on loopback are allowed unless cfg has a guard of its own.
func (f *fixture) notifier(t *testing.T, cfg push.Config, clock time.Time) (*push.Notifier, *outcomes) {
	t.Helper()
	if cfg.Egress == nil {
		cfg.Egress = standIns(t)
	}
	key, err := push.LoadVAPIDKey(t.Context(), f.st, f.keys, clock)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutcomes()
	cfg.Observe = o.observe
	n, err := push.New(f.st, key, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	return n, o
}

func (f *fixture) request(now time.Time, ttl time.Duration) twofold.ApprovalRequest {
	return twofold.ApprovalRequest{ID: 1, UUID: "6f1f0e5c-1d1b-4c52-9a55-3a3a3a3a3a3a", AppID: f.app.ID, UserID: f.user.ID,
		Message: "Log in to Shop from Lisbon?", Details: map[string]string{"ip": "192.0.2.1"},
		HiddenDetails: map[string]string{"internal": "hidden-detail-xyz"}, Number: "42", SecondsToExpire: int64(ttl / time.Second),
		Status: twofold.Pending, CreatedAt: now, ExpiresAt: now.Add(ttl)}
}

func subscribeWebPush(t *testing.T, n *push.Notifier, d twofold.Device, svc *pushtest.Service) string {
	t.Helper()
	b := pushtest.NewBrowser()
	endpoint := svc.Subscribe(b)
	if err := n.Subscribe(t.Context(), d, push.Subscription{Kind: push.KindWebPush, Endpoint: endpoint, P256dh: b.P256dh(), Auth: b.Auth()}); err != nil {
		t.Fatal(err)
	}
	return endpoint
}

func receive(t *testing.T, c <-chan pushtest.Push) pushtest.Push {
	t.Helper()
	select {
	case p := <-c:
		if p.Err != nil {
			t.Fatalf("push to %s: %v", p.Path, p.Err)
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no push arrived")
	}
	return pushtest.Push{}
}

func TestWebPushIsEncryptedAndSigned(t *testing.T) {
	for _, tc := range []struct {
		name, subject, publicURL, wantSub string
		ttl                               time.Duration
		wantTTL                           int
	}{
		{"mailto subject, short request", "mailto:ops@example.com", "", "mailto:ops@example.com", 90 * time.Second, 90},
		{"https public URL as subject, capped TTL", "", "https://twofold.example", "https://twofold.example", 24 * time.Hour, 3600},
		{"default subject", "", "http://127.0.0.1:8080", push.DefaultSubject, 10 * time.Minute, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			svc := pushtest.NewService()
			defer svc.Close()
			now := time.Now()
			n, o := f.notifier(t, push.Config{Subject: tc.subject, PublicURL: tc.publicURL}, now)
			subscribeWebPush(t, n, f.dev, svc)
			req := f.request(now, tc.ttl)
			if err := n.Notify(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			p := receive(t, svc.C)
			var payload map[string]any
			if err := json.Unmarshal(p.Body, &payload); err != nil {
				t.Fatalf("payload %q: %v", p.Body, err)
			}
			want := map[string]any{"type": "approval_request", "uuid": req.UUID, "message": req.Message, "app_name": "Shop"}
			if diff := cmp.Diff(want, payload); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			if strings.Contains(string(p.Body), "hidden-detail-xyz") || strings.Contains(string(p.Body), "42") {
				t.Errorf("payload leaks hidden details or the matching number: %s", p.Body)
			}
			if p.VAPID.Key != n.VAPIDPublicKey() || p.VAPID.Subject != tc.wantSub {
				t.Errorf("VAPID key %s sub %s; want %s, %s", p.VAPID.Key, p.VAPID.Subject, n.VAPIDPublicKey(), tc.wantSub)
			}
			if p.TTL != tc.wantTTL || p.Urgency != "high" {
				t.Errorf("TTL %d Urgency %q; want %d, high", p.TTL, p.Urgency, tc.wantTTL)
			}
			if got := o.list(); !cmp.Equal(got, []string{"webpush sent"}) {
				t.Errorf("outcomes %v", got)
			}
		})
	}
}

func TestNtfy(t *testing.T) {
	for _, tc := range []struct {
		name, appName, publicURL, wantTitle, wantClick string
	}{
		{"with public URL", "Shop", "https://twofold.example/", "Sign-in request: Shop", "https://twofold.example/authenticator/"},
		{"without public URL", "Shop", "", "Sign-in request: Shop", ""},
		{"non-ASCII name", "Café\r\nX", "", "Sign-in request: Café  X", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.appName != "Shop" {
				f.app.Name = tc.appName
				if err := f.st.UpdateApp(t.Context(), f.app); err != nil {
					t.Fatal(err)
				}
			}
			ntfy := pushtest.NewNtfy()
			defer ntfy.Close()
			now := time.Now()
			n, o := f.notifier(t, push.Config{PublicURL: tc.publicURL}, now)
			if err := n.Subscribe(t.Context(), f.dev, push.Subscription{Kind: push.KindNtfy, Endpoint: ntfy.URL + "/twofold-topic"}); err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(t.Context(), f.request(now, time.Minute)); err != nil {
				t.Fatal(err)
			}
			p := receive(t, ntfy.C)
			title, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Title"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{"path": p.Path, "body": string(p.Body), "Title": title, "Priority": p.Header.Get("Priority"),
				"Tags": p.Header.Get("Tags"), "Click": p.Header.Get("Click"), "Content-Type": p.Header.Get("Content-Type")}
			want := map[string]string{"path": "/twofold-topic", "body": "Approve sign-in to " + tc.appName + "? Log in to Shop from Lisbon?",
				"Title": tc.wantTitle, "Priority": "high", "Tags": "lock", "Click": tc.wantClick, "Content-Type": "text/plain; charset=utf-8"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ntfy request (-want +got):\n%s", diff)
			}
			if actions := p.Header.Get("Actions"); (tc.wantClick != "") != strings.Contains(actions, tc.wantClick+",") {
				t.Errorf("Actions %q, want a view action to %q", actions, tc.wantClick)
			}
			if got := o.list(); !cmp.Equal(got, []string{"ntfy sent"}) {
				t.Errorf("outcomes %v", got)
			}
		})
	}
}

// TestOutcomes: 404 and 410 remove the subscription; other failures are counted on it and a
// later success clears them.
func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		status      int
		outcome     string
		kept        bool
		failures    int
		errorPrefix string
	}{
		{http.StatusCreated, "sent", true, 0, ""},
		{http.StatusGone, "gone", false, 0, ""},
		{http.StatusNotFound, "gone", false, 0, ""},
		{http.StatusInternalServerError, "failed", true, 1, "HTTP 500"},
		{http.StatusTooManyRequests, "failed", true, 1, "HTTP 429"},
		{http.StatusFound, "failed", true, 1, "HTTP 302"}, // redirects are not followed
	} {
		for _, kind := range []string{push.KindWebPush, push.KindNtfy} {
			t.Run(fmt.Sprint(kind, tc.status), func(t *testing.T) {
				f := newFixture(t)
				svc, ntfy := pushtest.NewService(), pushtest.NewNtfy()
				defer svc.Close()
				defer ntfy.Close()
				now := time.Now()
				n, o := f.notifier(t, push.Config{}, now)
				var endpoint string
				if kind == push.KindWebPush {
					endpoint = subscribeWebPush(t, n, f.dev, svc)
					svc.AnswerWith(endpoint, tc.status)
				} else {
					endpoint = ntfy.URL + "/topic"
					if err := n.Subscribe(t.Context(), f.dev, push.Subscription{Kind: kind, Endpoint: endpoint}); err != nil {
						t.Fatal(err)
					}
					ntfy.Status.Store(int32(tc.status))
				}
				if err := n.Notify(t.Context(), f.request(now, time.Minute)); err != nil {
					t.Fatal(err)
				}
				subs := list(t, f)
				if got := o.list(); !cmp.Equal(got, []string{kind + " " + tc.outcome}) {
					t.Errorf("outcomes %v, want %s", got, tc.outcome)
				}
				if (len(subs) == 1) != tc.kept {
					t.Fatalf("subscriptions after %d: %+v; kept %v", tc.status, subs, tc.kept)
				}
				if !tc.kept {
					return
				}
				if subs[0].Failures != tc.failures || !strings.HasPrefix(subs[0].LastError, tc.errorPrefix) {
					t.Errorf("failures %d last error %q; want %d, %q…", subs[0].Failures, subs[0].LastError, tc.failures, tc.errorPrefix)
				}
				if strings.Contains(subs[0].LastError, endpoint) {
					t.Errorf("last error holds the endpoint: %q", subs[0].LastError)
				}
				svc.AnswerWith(endpoint, http.StatusCreated)
				ntfy.Status.Store(http.StatusOK)
				if err := n.Notify(t.Context(), f.request(now, time.Minute)); err != nil {
					t.Fatal(err)
				}
				if subs := list(t, f); subs[0].Failures != 0 || subs[0].LastError != "" {
					t.Errorf("after a success: failures %d, last error %q", subs[0].Failures, subs[0].LastError)
				}
			})
		}
	}
}

func list(t *testing.T, f *fixture) []store.PushSubscription {
	t.Helper()
	subs, err := f.st.PushSubscriptionsForUser(t.Context(), f.app.ID, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

// TestSlowEndpoint: a push service that does not answer delays neither the other devices'
// pushes nor, beyond the timeout, the notifier; it counts as a failure.
func TestSlowEndpoint(t *testing.T) {
	f := newFixture(t)
	svc := pushtest.NewService()
	defer svc.Close()
	now := time.Now()
	n, o := f.notifier(t, push.Config{Timeout: 300 * time.Millisecond}, now)
	slow := subscribeWebPush(t, n, f.dev, svc)
	release := svc.Hold(slow)
	defer release()
	fast := subscribeWebPush(t, n, mkDevice(t, f.st, f.user, "laptop"), svc)

	done := make(chan error, 1)
	go func() { done <- n.Notify(t.Context(), f.request(now, time.Minute)) }()
	if p := receive(t, svc.C); p.Path != strings.TrimPrefix(fast, svc.URL) {
		t.Fatalf("first push went to %s, want the fast endpoint", p.Path)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notify did not give up on the slow endpoint")
	}
	got := o.list()
	if !cmp.Equal(got, []string{"webpush sent", "webpush failed"}) {
		t.Errorf("outcomes %v", got)
	}
	for _, s := range list(t, f) {
		if s.Endpoint == slow && (s.Failures != 1 || s.LastError != "timed out") {
			t.Errorf("slow subscription: failures %d, last error %q", s.Failures, s.LastError)
		}
	}
}

// TestQueue: Enqueue never blocks; a full queue drops (and counts) the push; Run delivers
// what is queued and stops with its context.
func TestQueue(t *testing.T) {
	f := newFixture(t)
	svc := pushtest.NewService()
	defer svc.Close()
	now := time.Now()
	n, o := f.notifier(t, push.Config{Queue: 1, Workers: 1}, now)
	subscribeWebPush(t, n, f.dev, svc)
	req := f.request(now, time.Minute)
	n.Enqueue(req)
	n.Enqueue(req) // the queue holds one
	if got := <-o.c; got != "any dropped" {
		t.Fatalf("outcome %q, want a drop", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { n.Run(ctx); close(stopped) }()
	if p := receive(t, svc.C); !strings.Contains(string(p.Body), req.UUID) {
		t.Errorf("payload %s", p.Body)
	}
	if got := <-o.c; got != "webpush sent" {
		t.Errorf("outcome %q", got)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// TestNothingToPush: answered and expired requests, and users without subscriptions, are not
// pushed. Notify is synchronous, so nothing can arrive after it returns.
func TestNothingToPush(t *testing.T) {
	f := newFixture(t)
	svc := pushtest.NewService()
	defer svc.Close()
	now := time.Now()
	n, o := f.notifier(t, push.Config{}, now)
	other := mkUser(t, f.st, f.app.ID, "5550000002")
	subscribeWebPush(t, n, f.dev, svc)
	answered, expired, otherUser := f.request(now, time.Minute), f.request(now.Add(-time.Hour), time.Minute), f.request(now, time.Minute)
	answered.Status = twofold.Approved
	otherUser.UserID = other.ID
	for _, req := range []twofold.ApprovalRequest{answered, expired, otherUser} {
		if err := n.Notify(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	if len(svc.C) != 0 || len(o.list()) != 0 {
		t.Errorf("pushed %d, outcomes %v; want nothing", len(svc.C), o.list())
	}
}

func TestNewRejectsBadSubject(t *testing.T) {
	f := newFixture(t)
	key, err := push.GenerateVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"admin@example.com", "mailto:", "mailto:nobody", "http://example.com", "https://", "mailto:a@b, c@d"} {
		if _, err := push.New(f.st, key, push.Config{Subject: subject}, slog.Default(), nil); err == nil {
			t.Errorf("New with subject %q: no error", subject)
		}
	}
	if _, err := push.New(f.st, push.VAPIDKey{}, push.Config{}, slog.Default(), nil); err == nil {
		t.Error("New without a key: no error")
	}
}

// The placeholder subject is warned about once Web Push is in use (a browser subscribes, or a
// subscription kept from before is pushed to), once; not at start, and not for ntfy.
func TestPlaceholderSubjectWarnedWhenWebPushIsUsed(t *testing.T) {
	const warning = "placeholder contact"
	newNotifier := func(t *testing.T, f *fixture, subject string) (*push.Notifier, *strings.Builder) {
		key, err := push.LoadVAPIDKey(t.Context(), f.st, f.keys, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		logs := &strings.Builder{}
		n, err := push.New(f.st, key, push.Config{Subject: subject, PublicURL: "http://127.0.0.1:8080", Egress: standIns(t)},
			slog.New(slog.NewTextHandler(logs, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return n, logs
	}
	f := newFixture(t)
	svc := pushtest.NewService()
	defer svc.Close()
	ntfy := pushtest.NewNtfy()
	defer ntfy.Close()

	n, logs := newNotifier(t, f, "")
	if logs.Len() != 0 {
		t.Fatalf("warned at start:\n%s", logs)
	}
	if err := n.Subscribe(t.Context(), f.dev, push.Subscription{Kind: push.KindNtfy, Endpoint: ntfy.URL + "/topic"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(t.Context(), f.request(time.Now(), time.Minute)); err != nil {
		t.Fatal(err)
	}
	receive(t, ntfy.C)
	if strings.Contains(logs.String(), warning) {
		t.Fatalf("warned for ntfy alone:\n%s", logs)
	}
	subscribeWebPush(t, n, f.dev, svc)
	subscribeWebPush(t, n, f.dev, svc)
	if got := strings.Count(logs.String(), warning); got != 1 {
		t.Fatalf("%d warnings after two browsers subscribed, want 1:\n%s", got, logs)
	}

	// A restarted server with those subscriptions warns at its first push, once.
	n, logs = newNotifier(t, f, "")
	for range 2 {
		if err := n.Notify(t.Context(), f.request(time.Now(), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(logs.String(), warning); got != 1 {
		t.Fatalf("%d warnings after pushes to browsers, want 1:\n%s", got, logs)
	}
	// With a real contact, none.
	n, logs = newNotifier(t, f, "mailto:ops@example.com")
	subscribeWebPush(t, n, f.dev, svc)
	if err := n.Notify(t.Context(), f.request(time.Now(), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), warning) {
		t.Fatalf("warned with a real subject:\n%s", logs)
	}
}
