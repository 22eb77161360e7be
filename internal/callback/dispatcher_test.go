package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The dispatcher against a real SQLite store (and PostgreSQL where configured) and a real
// receiver over loopback. Time is a fake clock: the store decides what is due by the
// dispatcher's clock, so a test moves it past a backoff and wakes the dispatcher with Notify.
// PollInterval is an hour unless a test is about polling, so that only Notify and finished
// deliveries make the dispatcher look for work.

// wait bounds every wait for something the dispatcher does: reaching it fails the test.
const wait = 20 * time.Second

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// receiver is the customer's callback endpoint: it checks each callback's signature and
// answers what respond says (which may block), reporting each arrival on arrived.
type receiver struct {
	srv     *httptest.Server
	key     atomic.Value // the API key callbacks must be signed with
	arrived chan string  // request uuid of each callback, as it arrives
	respond atomic.Value // func(uuid string) int
	url     atomic.Value // the callback URL signed, when not srv.URL+"/cb"
	mu      sync.Mutex
	got     map[string]int // callbacks received per uuid
	// inspect, if set, sees each POST body before the arrival is reported.
	inspect func(map[string]any)
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{arrived: make(chan string, 1000), got: map[string]int{}}
	rc.answer(func(string) int { return http.StatusOK })
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var uuid string
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		signed, _ := rc.url.Load().(string)
		if signed == "" {
			signed = rc.srv.URL + "/cb"
		}
		if err := client.VerifyCallback(r, rc.key.Load().(string), signed); err != nil {
			t.Errorf("callback %s %s: %v", r.Method, r.URL, err)
		}
		if r.Method == http.MethodGet {
			uuid = r.URL.Query().Get("uuid")
		} else {
			var p struct{ UUID string }
			if err := json.Unmarshal(body, &p); err != nil {
				t.Errorf("callback body %q: %v", body, err)
			}
			uuid = p.UUID
			if rc.inspect != nil {
				var all map[string]any
				json.Unmarshal(body, &all)
				rc.inspect(all)
			}
		}
		rc.mu.Lock()
		rc.got[uuid]++
		rc.mu.Unlock()
		rc.arrived <- uuid
		w.WriteHeader(rc.respond.Load().(func(string) int)(uuid))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) answer(f func(uuid string) int) { rc.respond.Store(f) }

func (rc *receiver) count(uuid string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[uuid]
}

// claimReport is one ClaimDueCallbacks call as the dispatcher made it.
type claimReport struct {
	now time.Time
	n   int
	got []twofold.Callback
}

// watchedStore is the real store, reporting every claim and checking that a dispatcher never
// holds more claimed callbacks, whose outcome it has not recorded, than it has workers.
type watchedStore struct {
	*store.Store
	t         *testing.T
	workers   int
	claims    chan claimReport
	mu        sync.Mutex
	unsettled int
}

func (w *watchedStore) ClaimDueCallbacks(ctx context.Context, now, leaseUntil time.Time, n int) ([]twofold.Callback, error) {
	got, err := w.Store.ClaimDueCallbacks(ctx, now, leaseUntil, n)
	w.mu.Lock()
	w.unsettled += len(got)
	if w.unsettled > w.workers {
		w.t.Errorf("%d callbacks claimed and not yet settled by %d workers", w.unsettled, w.workers)
	}
	w.mu.Unlock()
	w.claims <- claimReport{now, n, got}
	return got, err
}

func (w *watchedStore) settled() { w.mu.Lock(); w.unsettled--; w.mu.Unlock() }

func (w *watchedStore) CallbackDelivered(ctx context.Context, c twofold.Callback, status int, now time.Time) error {
	w.settled()
	return w.Store.CallbackDelivered(ctx, c, status, now)
}

func (w *watchedStore) CallbackFailed(ctx context.Context, c twofold.Callback, status int, msg string, next, now time.Time, threshold int) (bool, error) {
	w.settled()
	return w.Store.CallbackFailed(ctx, c, status, msg, next, now, threshold)
}

func (w *watchedStore) DropCallback(ctx context.Context, c twofold.Callback, reason string) error {
	w.settled()
	return w.Store.DropCallback(ctx, c, reason)
}

// outbox is the Sender: it keeps what the owner is told.
type outbox struct{ sent chan twofold.Message }

func (o outbox) Send(_ context.Context, app twofold.App, m twofold.Message) (twofold.Message, error) {
	if app.Sandbox {
		return m, fmt.Errorf("the owner's message went out as sandbox")
	}
	o.sent <- m
	return m, nil
}

type fixture struct {
	t     *testing.T
	st    *store.Store
	apps  *apps.Service
	clock *clock
	app   twofold.App
	user  twofold.User
	rc    *receiver
	owner outbox
	// attempts are the attempts of every dispatcher of the fixture, as they are recorded.
	attempts chan Attempt
	seq      atomic.Int64
}

// newFixture opens a SQLite store with an application whose callbacks go to a new receiver.
func newFixture(t *testing.T) *fixture {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newFixtureOn(t, st)
}

func newFixtureOn(t *testing.T, st *store.Store) *fixture {
	t.Helper()
	ctx := t.Context()
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, clock: &clock{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}, rc: newReceiver(t),
		owner: outbox{sent: make(chan twofold.Message, 10)}, attempts: make(chan Attempt, 1000)}
	f.apps = apps.New(st, keys, f.clock.Now)
	app, key, err := f.apps.Create(ctx, apps.CreateParams{Name: "Bank"})
	if err != nil {
		t.Fatal(err)
	}
	f.rc.key.Store(key)
	cbURL, contact := f.rc.srv.URL+"/cb", "ops@bank.example"
	if f.app, err = f.apps.Update(ctx, app.ID, apps.Update{CallbackURL: &cbURL, ContactEmail: &contact}); err != nil {
		t.Fatal(err)
	}
	f.user = twofold.User{AppID: f.app.ID, Email: "a@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	if _, err := st.CreateUser(ctx, &f.user); err != nil {
		t.Fatal(err)
	}
	return f
}

// update changes the application's settings.
func (f *fixture) update(u apps.Update) {
	f.t.Helper()
	var err error
	if f.app, err = f.apps.Update(f.t.Context(), f.app.ID, u); err != nil {
		f.t.Fatal(err)
	}
}

// dispatcher returns a dispatcher on st (watched: its claims are reported on the channel
// returned) and f's clock, reporting its attempts on f.attempts.
func (f *fixture) dispatcher(st *store.Store, cfg Config) (*Dispatcher, chan claimReport) {
	claims := make(chan claimReport, 1000)
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Hour
	}
	if cfg.Egress == nil {
		cfg.Egress = receiverAllowed(f.t)
	}
	ws := &watchedStore{Store: st, t: f.t, workers: cfg.Workers, claims: claims}
	d := New(ws, f.owner, f.apps.Reveal, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(a Attempt) { f.attempts <- a })
	d.now = f.clock.Now
	return d, claims
}

// receiverAllowed is the guard for callbacks to receivers on loopback, allowed as an operator
// would with --callback-allow-hosts 127.0.0.1.
func receiverAllowed(t *testing.T) *egress.Guard {
	t.Helper()
	allow, err := egress.ParseAllowlist("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return egress.New(allow, nil)
}

// run starts d until the test ends, then stops it and waits for Run to return.
func run(t *testing.T, d *Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("Run did not return")
		}
	})
}

// queue answers a new approval request of f's user now, which queues its callback, and
// returns the request's uuid. The dispatchers are not told.
func (f *fixture) queue() string {
	f.t.Helper()
	cb, err := f.queueLeased(time.Time{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cb.RequestUUID
}

// queueLeased is queue for a callback handed off to a worker reserved until lease (zero: none):
// it returns the callback as committed, leased when the store leased it. It may run in any
// goroutine.
func (f *fixture) queueLeased(lease time.Time) (twofold.Callback, error) {
	now := f.clock.Now()
	r := twofold.ApprovalRequest{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq.Add(1)), AppID: f.app.ID, UserID: f.user.ID,
		Message: "Log in?", Details: map[string]string{}, HiddenDetails: map[string]string{}, Status: twofold.Pending,
		CreatedAt: now, UpdatedAt: now}
	if err := f.st.CreateApprovalRequest(context.Background(), &r, 0); err != nil {
		return twofold.Callback{}, err
	}
	r.Status, r.ProcessedAt, r.UpdatedAt = twofold.Approved, now, now
	cb := &twofold.Callback{AppID: f.app.ID, RequestUUID: r.UUID, NextAttemptAt: lease,
		Payload: []byte(`{"uuid":"` + r.UUID + `","status":"approved","approval_request":{"transaction":{"message":"Log in?"}}}`)}
	if won, err := f.st.FinishApprovalRequest(context.Background(), r, cb); !won || err != nil {
		return twofold.Callback{}, fmt.Errorf("FinishApprovalRequest = %v, %v", won, err)
	}
	return *cb, nil
}

// callback returns the stored callback of the request uuid.
func (f *fixture) callback(uuid string) twofold.Callback {
	f.t.Helper()
	cbs, err := f.st.RecentCallbacks(f.t.Context(), f.app.ID, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range cbs {
		if c.RequestUUID == uuid {
			return c
		}
	}
	f.t.Fatalf("no callback of %s", uuid)
	return twofold.Callback{}
}

func (f *fixture) health() twofold.CallbackHealth {
	f.t.Helper()
	a, err := f.st.GetApp(f.t.Context(), f.app.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.CallbackHealth
}

// next returns the next value of ch, failing the test if none comes within wait.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s within %s", what, wait)
		var zero T
		return zero
	}
}

// gate returns a channel that blocks its receivers until open is called. It opens when the
// test ends too, so that a failing test leaves no handler of the receiver waiting.
func gate(t *testing.T) (wait <-chan struct{}, open func()) {
	ch := make(chan struct{})
	open = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(open)
	return ch, open
}

// claimAt returns the first claim made at now or later. (A claim that filled every idle worker
// is followed by another as soon as a worker is free, so there may be claims before it.)
func claimAt(t *testing.T, claims <-chan claimReport, now time.Time) claimReport {
	t.Helper()
	for {
		if c := next(t, claims, fmt.Sprint("claim at ", now)); !c.now.Before(now) {
			return c
		}
	}
}

func TestDeliversSigned(t *testing.T) {
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			f := newFixture(t)
			f.update(apps.Update{CallbackMethod: &method})
			d, _ := f.dispatcher(f.st, Config{Workers: 2})
			run(t, d)
			uuid := f.queue()
			d.Notify()
			a := next(t, f.attempts, "attempt")
			if !a.OK || a.Status != http.StatusOK || a.Err != nil || a.Callback.RequestUUID != uuid {
				t.Fatalf("attempt %+v, want %s delivered with 200", a, uuid)
			}
			if got := next(t, f.rc.arrived, "callback"); got != uuid {
				t.Errorf("received the callback of %q, want %s", got, uuid)
			}
			c := f.callback(uuid)
			if c.Status != "delivered" || c.Attempts != 1 || c.LastStatus != 200 || !c.DeliveredAt.Equal(f.clock.Now()) {
				t.Errorf("stored %+v, want delivered once with 200 at %s", c, f.clock.Now())
			}
			if h := f.health(); h != (twofold.CallbackHealth{}) {
				t.Errorf("health %+v after a delivery", h)
			}
		})
	}
}

// A failure is retried after Backoff, doubling up to MaxBackoff, and not before; a success
// then clears the application's failure count.
func TestRetriesWithBackoff(t *testing.T) {
	f := newFixture(t)
	var received atomic.Int32
	f.rc.answer(func(string) int {
		if received.Add(1) <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	d, claims := f.dispatcher(f.st, Config{Workers: 1, Backoff: 5 * time.Second, MaxBackoff: 15 * time.Second, Threshold: 10})
	run(t, d)
	next(t, claims, "claim at start") // nothing queued yet
	uuid := f.queue()
	d.Notify()
	for i, backoff := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
		if got := claimAt(t, claims, f.clock.Now()); len(got.got) != 1 {
			t.Fatalf("attempt %d: claimed %d callbacks, want 1", i+1, len(got.got))
		}
		a := next(t, f.attempts, "attempt")
		if a.OK || a.Status != http.StatusServiceUnavailable || a.Disabled {
			t.Fatalf("attempt %d: %+v, want a failure with 503", i+1, a)
		}
		failedAt := f.clock.Now()
		c := f.callback(uuid)
		if c.Status != "pending" || c.Attempts != i+1 || c.LastStatus != 503 || !c.NextAttemptAt.Equal(failedAt.Add(backoff)) {
			t.Fatalf("attempt %d: stored %+v, want pending, next attempt %s later", i+1, c, backoff)
		}
		if h := f.health(); h.CallbackFailures != i+1 || h.CallbackLastError != "HTTP 503" {
			t.Fatalf("attempt %d: health %+v", i+1, h)
		}
		f.clock.Advance(backoff - time.Second)
		d.Notify()
		if got := claimAt(t, claims, f.clock.Now()); len(got.got) != 0 {
			t.Fatalf("attempt %d: claimed %+v a second before the backoff ran out", i+1, got.got)
		}
		f.clock.Advance(time.Second)
		d.Notify()
	}
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Status != http.StatusNoContent {
		t.Fatalf("fourth attempt %+v, want delivered", a)
	}
	if c := f.callback(uuid); c.Status != "delivered" || c.Attempts != 4 || c.LastError != "" {
		t.Errorf("stored %+v, want delivered at the fourth attempt", c)
	}
	if h := f.health(); h != (twofold.CallbackHealth{}) {
		t.Errorf("health %+v after a delivery, want cleared", h)
	}
	if n := f.rc.count(uuid); n != 4 {
		t.Errorf("received %d times, want 4", n)
	}
}

// Threshold consecutive failures disable the application's callbacks, once, and tell its
// owner; its callbacks wait, and go out once an operator enables them again.
func TestDisablesAfterThreshold(t *testing.T) {
	f := newFixture(t)
	f.rc.answer(func(string) int { return http.StatusInternalServerError })
	d, claims := f.dispatcher(f.st, Config{Workers: 4, Backoff: time.Second, Threshold: 3})
	run(t, d)
	next(t, claims, "claim at start") // nothing queued yet
	uuids := []string{f.queue(), f.queue(), f.queue()}
	d.Notify()
	if got := next(t, claims, "claim"); len(got.got) != 3 {
		t.Fatalf("claimed %d callbacks, want all 3", len(got.got))
	}
	disabled := 0
	for range uuids {
		a := next(t, f.attempts, "attempt")
		if a.OK {
			t.Fatalf("attempt %+v delivered", a)
		}
		if a.Disabled {
			disabled++
		}
	}
	if disabled != 1 {
		t.Errorf("%d attempts disabled the callbacks, want 1", disabled)
	}
	m := next(t, f.owner.sent, "message to the owner")
	if m.To != "ops@bank.example" || m.Channel != twofold.Email || !strings.Contains(m.Subject, `"Bank"`) ||
		!strings.Contains(m.Body, fmt.Sprintf("twofold app update %d --callback-enabled", f.app.ID)) {
		t.Errorf("owner told %+v", m)
	}
	if h := f.health(); h.CallbackFailures != 3 || h.CallbackDisabledAt.IsZero() {
		t.Errorf("health %+v, want 3 failures and disabled", h)
	}
	f.clock.Advance(time.Hour)
	d.Notify()
	if got := claimAt(t, claims, f.clock.Now()); len(got.got) != 0 {
		t.Fatalf("claimed %d callbacks of a disabled application", len(got.got))
	}

	f.rc.answer(func(string) int { return http.StatusOK })
	if err := f.st.EnableCallback(t.Context(), f.app.ID); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	for range uuids {
		if a := next(t, f.attempts, "attempt"); !a.OK {
			t.Errorf("attempt after re-enabling: %+v", a)
		}
	}
	for _, u := range uuids {
		if c := f.callback(u); c.Status != "delivered" || c.Attempts != 2 {
			t.Errorf("stored %+v, want delivered at the second attempt", c)
		}
	}
	select {
	case m := <-f.owner.sent:
		t.Errorf("owner told again: %+v", m)
	default:
	}
}

// A callback whose application has no callback URL any more is dropped, not sent.
func TestDropsWithoutURL(t *testing.T) {
	f := newFixture(t)
	d, _ := f.dispatcher(f.st, Config{Workers: 1})
	run(t, d)
	uuid := f.queue()
	none := ""
	f.update(apps.Update{CallbackURL: &none})
	d.Notify()
	if a := next(t, f.attempts, "attempt"); !a.Dropped || a.OK {
		t.Fatalf("attempt %+v, want dropped", a)
	}
	if c := f.callback(uuid); c.Status != "dropped" || c.Attempts != 0 {
		t.Errorf("stored %+v, want dropped", c)
	}
	if n := f.rc.count(uuid); n != 0 {
		t.Errorf("received %d times, want never", n)
	}
}

// Without a Notify, due callbacks are found every PollInterval.
func TestPolls(t *testing.T) {
	f := newFixture(t)
	d, _ := f.dispatcher(f.st, Config{Workers: 1, PollInterval: 10 * time.Millisecond})
	run(t, d)
	uuid := f.queue()
	if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.RequestUUID != uuid {
		t.Fatalf("attempt %+v, want %s delivered", a, uuid)
	}
}

// A worker that finishes takes the next due callback at once, while another worker is still
// busy: one slow endpoint does not hold up the callbacks queued after it. And a callback is
// claimed only when a worker is free for it: while every worker is busy, the ones queued stay
// unleased.
func TestFreedWorkerTakesNext(t *testing.T) {
	f := newFixture(t)
	release, open := gate(t)
	slow := f.queue()
	f.rc.answer(func(uuid string) int {
		if uuid == slow {
			<-release
		}
		return http.StatusOK
	})
	d, _ := f.dispatcher(f.st, Config{Workers: 2})
	run(t, d)
	defer open()
	d.Notify()
	if got := next(t, f.rc.arrived, "callback"); got != slow {
		t.Fatalf("first callback %s, want %s", got, slow)
	}
	for i := range 5 {
		uuid := f.queue()
		d.Notify()
		if a := next(t, f.attempts, "attempt"); !a.OK || a.Callback.RequestUUID != uuid {
			t.Fatalf("attempt %d beside the slow one: %+v, want %s delivered", i, a, uuid)
		}
		next(t, f.rc.arrived, "callback")
	}

	// Both workers busy: callbacks queued now wait unclaimed.
	slow2 := f.queue()
	f.rc.answer(func(uuid string) int {
		if uuid == slow || uuid == slow2 {
			<-release
		}
		return http.StatusOK
	})
	d.Notify()
	if got := next(t, f.rc.arrived, "callback"); got != slow2 {
		t.Fatalf("callback %s, want %s", got, slow2)
	}
	queued := []string{f.queue(), f.queue()}
	d.Notify()
	for _, u := range queued {
		if c := f.callback(u); !c.NextAttemptAt.Equal(c.CreatedAt) {
			t.Errorf("callback %s leased until %s while no worker is free", u, c.NextAttemptAt)
		}
	}
}

// A callback is claimed only when a worker is free to deliver it, so its lease covers its
// delivery alone: of a backlog, as many as there are workers are leased at a time.
func TestClaimsOnlyForIdleWorkers(t *testing.T) {
	f := newFixture(t)
	var backlog []string
	for range 6 {
		backlog = append(backlog, f.queue())
	}
	release, open := gate(t)
	f.rc.answer(func(string) int { <-release; return http.StatusOK })
	d, claims := f.dispatcher(f.st, Config{Workers: 2})
	run(t, d)
	if c := next(t, claims, "claim"); c.n != 2 || len(c.got) != 2 {
		t.Fatalf("first claim asked for %d and got %d, want 2 and 2", c.n, len(c.got))
	}
	busy := map[string]bool{next(t, f.rc.arrived, "callback"): true, next(t, f.rc.arrived, "callback"): true}
	leased := 0
	for _, u := range backlog {
		if c := f.callback(u); !c.NextAttemptAt.Equal(c.CreatedAt) {
			leased++
			if !busy[u] {
				t.Errorf("callback %s leased until %s while both workers are busy", u, c.NextAttemptAt)
			}
		}
	}
	if leased != 2 {
		t.Errorf("%d callbacks leased, want the 2 being delivered", leased)
	}
	open()
	for range backlog {
		if a := next(t, f.attempts, "attempt"); !a.OK {
			t.Errorf("attempt %+v", a)
		}
	}
	for len(claims) > 0 {
		if c := <-claims; c.n > 2 {
			t.Errorf("a claim asked for %d callbacks with 2 workers", c.n)
		}
	}
}

// Run ends when its context does, once the deliveries in flight are recorded; it claims
// nothing after.
func TestRunLetsDeliveriesFinish(t *testing.T) {
	f := newFixture(t)
	release, open := gate(t)
	f.rc.answer(func(string) int { <-release; return http.StatusOK })
	d, _ := f.dispatcher(f.st, Config{Workers: 2})
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { defer close(stopped); d.Run(ctx) }()
	uuid := f.queue()
	d.Notify()
	next(t, f.rc.arrived, "callback")
	cancel()
	later := f.queue()
	d.Notify()
	select {
	case <-stopped:
		t.Fatal("Run returned with a delivery in flight")
	default:
	}
	open()
	next(t, stopped, "return of Run")
	if c := f.callback(uuid); c.Status != "delivered" {
		t.Errorf("delivery in flight at shutdown stored %+v, want delivered", c)
	}
	if c := f.callback(later); c.Status != "pending" || c.Attempts != 0 {
		t.Errorf("callback queued at shutdown stored %+v, want pending, never tried", c)
	}
}

// sharedStores opens, per engine, several stores on one database, as several servers would.
func sharedStores() map[string]func(t *testing.T) []*store.Store {
	return map[string]func(t *testing.T) []*store.Store{
		"SQLite": func(t *testing.T) []*store.Store {
			path := filepath.Join(t.TempDir(), store.DatabaseFile)
			return openStores(t, func() (*store.Store, error) { return store.OpenSQLite(t.Context(), path) })
		},
		"Postgres": func(t *testing.T) []*store.Store {
			dsn := storetest.Schema(t)
			return openStores(t, func() (*store.Store, error) { return store.OpenPostgres(t.Context(), dsn) })
		},
	}
}

// Several dispatchers, each on a store of its own on one database (as several servers),
// deliver every callback exactly once.
func TestSeveralDispatchersDeliverOnce(t *testing.T) {
	for name, open := range sharedStores() {
		t.Run(name, func(t *testing.T) {
			stores := open(t)
			f := newFixtureOn(t, stores[0])
			var ds []*Dispatcher
			for _, st := range stores {
				d, _ := f.dispatcher(st, Config{Workers: 3})
				run(t, d)
				ds = append(ds, d)
			}
			const n = 40
			var uuids []string
			for range n {
				uuids = append(uuids, f.queue())
				for _, d := range ds {
					d.Notify()
				}
			}
			for range n {
				if a := next(t, f.attempts, "attempt"); !a.OK {
					t.Errorf("attempt %+v", a)
				}
			}
			for _, u := range uuids {
				if got := f.rc.count(u); got != 1 {
					t.Errorf("callback of %s received %d times, want once", u, got)
				}
				if c := f.callback(u); c.Status != "delivered" || c.Attempts != 1 {
					t.Errorf("stored %+v, want delivered at the first attempt", c)
				}
			}
		})
	}
}

func openStores(t *testing.T, open func() (*store.Store, error)) []*store.Store {
	var out []*store.Store
	for range 3 {
		st, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}
