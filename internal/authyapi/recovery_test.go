package authyapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// The attacks on recovery codes, over HTTP against the API on both engines: a code works once,
// a spent one is refused as reused, a regeneration kills the old set, a burst of guesses gets
// no more than the failure limit's worth judged, another application reaches nothing, and no
// spelling of a code is readable in the database file.

// recoveryServer is the API with recovery codes over one store, with two applications.
type recoveryServer struct {
	t      *testing.T
	url    string
	keyA   string
	keyB   string
	appA   twofold.App
	appB   twofold.App
	users  *users.Service
	store  *store.Store
	outbox *deliver.Outbox
	audit  *audit.Log
}

func newRecoveryServer(t *testing.T, st *store.Store, cfg verify.Config) *recoveryServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	appSvc := apps.New(st, limitKeys, nil)
	s := &recoveryServer{t: t, users: users.New(st, nil), store: st, outbox: deliver.NewOutbox(st, limitKeys, log, nil),
		audit: audit.New(st, bytes.Repeat([]byte{7}, 32), nil, log)}
	var err error
	if s.appA, s.keyA, err = appSvc.Create(context.Background(), apps.CreateParams{Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if s.appB, s.keyB, err = appSvc.Create(context.Background(), apps.CreateParams{Name: "B"}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	router, err := deliver.NewRouter(s.outbox, nil, deliver.RouterConfig{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	key, err := masterkey.RecoveryKey(context.Background(), st, limitKeys)
	if err != nil {
		t.Fatal(err)
	}
	rc := recovery.New(st, key, s.audit, nil)
	vs := verify.New(st, router, limitKeys, cfg, nil)
	vs.SetAuditor(s.audit)
	vs.SetRecovery(rc)
	api := authyapi.New(authyapi.Services{
		Apps: appSvc, Users: s.users, Verify: vs, Recovery: rc,
		Devices:  devices.New(st, limitKeys, appSvc.Reveal, 0, nil),
		OneTouch: onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil),
		Usage:    apps.NewUsageRecorder(st, log),
	}, m, log, authyapi.Config{}, nil)
	mux := http.NewServeMux()
	api.Routes(mux)
	srv := httptest.NewServer(authyapi.Handler(mux, m, log))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// reply is an answer's status and body.
type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (r reply) code() string { s, _ := r.body["error_code"].(string); return s }
func (r reply) key() string  { return fmt.Sprint(r.status, " ", r.code()) }

func (s *recoveryServer) do(key, method, path string, form url.Values) reply {
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Error(err)
		return reply{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Authy-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Error(err)
		return reply{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		s.t.Errorf("%s %s: not JSON: %q", method, path, raw)
	}
	return r
}

func (s *recoveryServer) user(appID int64, phone string) int64 {
	s.t.Helper()
	u, _, err := s.users.Register(context.Background(), appID, users.Contact{Email: "u@example.com", Cellphone: phone, CountryCode: "1"})
	if err != nil {
		s.t.Fatal(err)
	}
	return u.ID
}

// generate asks for a set over HTTP and returns its codes.
func (s *recoveryServer) generate(key string, id int64, form url.Values) []string {
	s.t.Helper()
	r := s.do(key, "POST", fmt.Sprintf("/protected/json/users/%d/recovery_codes", id), form)
	if r.status != 200 || r.body["success"] != true {
		s.t.Fatalf("generate: %d %s", r.status, r.raw)
	}
	var codes []string
	for _, c := range r.body["codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return codes
}

func (s *recoveryServer) verify(key, token string, id int64) reply {
	return s.do(key, "GET", fmt.Sprintf("/protected/json/verify/%s/%d", url.PathEscape(token), id), nil)
}

func (s *recoveryServer) remaining(key string, id int64) float64 {
	s.t.Helper()
	r := s.do(key, "GET", fmt.Sprintf("/protected/json/users/%d/recovery_codes", id), nil)
	if r.status != 200 {
		s.t.Fatalf("recovery codes status: %d %s", r.status, r.raw)
	}
	return r.body["recovery_codes"].(map[string]any)["remaining"].(float64)
}

func forEngines(t *testing.T, fn func(t *testing.T, open func() *store.Store)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e.open(t)) })
	}
}

// Each code of a set works once, as a factor of its own; a spent one is refused as reused,
// with its own words, and it is no failure (the user is not locked out by resubmits).
func TestRecoveryCodesWorkOnce(t *testing.T) {
	forEngines(t, func(t *testing.T, open func() *store.Store) {
		s := newRecoveryServer(t, open(), verify.Config{})
		id := s.user(s.appA.ID, "2015550141")
		codes := s.generate(s.keyA, id, nil)
		if len(codes) != recovery.DefaultCount {
			t.Fatalf("%d codes, want %d", len(codes), recovery.DefaultCount)
		}
		seen := map[string]bool{}
		for i, c := range codes {
			if !recovery.Shaped(c) || seen[c] || len(c) != 14 || c[4] != '-' || c[9] != '-' {
				t.Fatalf("code %q: not a readable, distinct code of the set", c)
			}
			seen[c] = true
			r := s.verify(s.keyA, c, id)
			if r.status != 200 || r.body["token"] != "is valid" || r.body["factor"] != "recovery_code" ||
				r.body["recovery_codes_remaining"] != float64(len(codes)-i-1) {
				t.Fatalf("code %d: %d %s", i, r.status, r.raw)
			}
			for range 12 { // more resubmits than the failure limit allows failures
				again := s.verify(s.keyA, c, id)
				if again.key() != "401 60019" || !strings.Contains(again.raw, "Recovery code was already used") ||
					again.body["success"] != false {
					t.Fatalf("code %d again: %d %s", i, again.status, again.raw)
				}
			}
		}
		if got := s.remaining(s.keyA, id); got != 0 {
			t.Fatalf("remaining %v after spending all", got)
		}
		st := s.do(s.keyA, "GET", fmt.Sprintf("/protected/json/users/%d/status", id), nil)
		if st.body["status"].(map[string]any)["recovery_codes_remaining"] != float64(0) {
			t.Fatalf("status: %s", st.raw)
		}
		// The audit trail says a recovery code was used, and never which.
		count := map[string]int{}
		var events []twofold.AuditEvent
		for _, action := range []string{twofold.AuditRecoveryCodesGenerated, twofold.AuditRecoveryCodeUsed} {
			got, err := s.audit.List(t.Context(), twofold.AuditFilter{UserID: id, Action: action})
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, got...)
		}
		for _, e := range events {
			count[e.Action]++
			for _, v := range e.Details {
				for _, c := range codes {
					if strings.Contains(v, c) {
						t.Fatalf("the audit trail holds a code: %+v", e)
					}
				}
			}
		}
		if count[twofold.AuditRecoveryCodesGenerated] != 1 || count[twofold.AuditRecoveryCodeUsed] != len(codes) {
			t.Fatalf("audit trail: %v", count)
		}
	})
}

// A code is one code however it is typed: uppercase, without dashes, with spaces. Spent in
// one spelling, it is reused in every other.
func TestRecoveryCodeSpellingsAreOneCode(t *testing.T) {
	forEngines(t, func(t *testing.T, open func() *store.Store) {
		s := newRecoveryServer(t, open(), verify.Config{})
		id := s.user(s.appA.ID, "2015550142")
		codes := s.generate(s.keyA, id, url.Values{"count": {"5"}})
		spell := []func(string) string{
			strings.ToUpper,
			func(c string) string { return strings.ReplaceAll(c, "-", "") },
			func(c string) string { return strings.ReplaceAll(strings.ToUpper(c), "-", " ") },
			func(c string) string { return " " + strings.ReplaceAll(c, "-", "") + " " },
		}
		for i, sp := range spell {
			c := codes[i]
			if r := s.verify(s.keyA, sp(c), id); r.status != 200 || r.body["factor"] != "recovery_code" {
				t.Fatalf("spelling %d of code %d: %d %s", i, i, r.status, r.raw)
			}
			for j, other := range spell {
				if r := s.verify(s.keyA, other(c), id); r.key() != "401 60019" {
					t.Fatalf("spelling %d of code %d spent as spelling %d: %d %s", j, i, i, r.status, r.raw)
				}
			}
			if r := s.verify(s.keyA, c, id); r.key() != "401 60019" {
				t.Fatalf("code %d as shown, spent in another spelling: %s", i, r.raw)
			}
		}
	})
}

// A new set kills the old one whole, spent codes and unspent alike.
func TestRecoveryRegenerationKillsOldSet(t *testing.T) {
	forEngines(t, func(t *testing.T, open func() *store.Store) {
		s := newRecoveryServer(t, open(), verify.Config{FailureLimit: verify.Limit{N: 100, Window: time.Hour}})
		id := s.user(s.appA.ID, "2015550143")
		old := s.generate(s.keyA, id, nil)
		if r := s.verify(s.keyA, old[0], id); r.status != 200 {
			t.Fatalf("old code before regeneration: %s", r.raw)
		}
		fresh := s.generate(s.keyA, id, url.Values{"count": {"20"}})
		if len(fresh) != 20 {
			t.Fatalf("%d codes, want 20", len(fresh))
		}
		for i, c := range old {
			if r := s.verify(s.keyA, c, id); r.key() != "401 60020" {
				t.Fatalf("old code %d after regeneration: %d %s, want 401 60020", i, r.status, r.raw)
			}
		}
		if got := s.remaining(s.keyA, id); got != 20 {
			t.Fatalf("remaining %v, want 20", got)
		}
		for _, bad := range []string{"4", "21", "0", "ten", "-5"} {
			if r := s.do(s.keyA, "POST", fmt.Sprintf("/protected/json/users/%d/recovery_codes", id), url.Values{"count": {bad}}); r.key() != "400 60004" {
				t.Fatalf("count %q: %d %s", bad, r.status, r.raw)
			}
		}
		if got := s.remaining(s.keyA, id); got != 20 {
			t.Fatalf("remaining %v after refused regenerations, want 20", got)
		}
	})
}

// 40 different wrong codes at once against a failure limit of 10: exactly 10 are judged (401
// 60020), the rest refused by the limit (429 60003), and then the right code is refused too.
// One right code sent n-2 times at once is accepted once (the attempts in flight count against
// the limit until judged, so a burst as large as the limit would meet it).
func TestRecoveryCodeBurstKeepsFailureLimit(t *testing.T) {
	forEngines(t, func(t *testing.T, open func() *store.Store) {
		const n = 10
		s := newRecoveryServer(t, open(), verify.Config{FailureLimit: verify.Limit{N: n, Window: time.Hour}})
		id := s.user(s.appA.ID, "2015550144")
		codes := s.generate(s.keyA, id, nil)

		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range n - 2 {
			wg.Go(func() {
				r := s.verify(s.keyA, codes[0], id)
				mu.Lock()
				got[r.key()]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if got["200 "] != 1 || got["401 60019"] != n-3 {
			t.Fatalf("one code sent %d times at once: %v, want one success and the rest reused", n-2, got)
		}

		got = map[string]int{}
		for i := range 4 * n {
			wg.Go(func() {
				wrong := fmt.Sprintf("zzzz-zzzz-%04d", 2222+i)
				wrong = strings.Map(func(r rune) rune {
					if r == '0' || r == '1' {
						return 'x'
					}
					return r
				}, wrong)
				r := s.verify(s.keyA, wrong, id)
				mu.Lock()
				got[r.key()]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if got["401 60020"] != n || got["429 60003"] != 3*n {
			t.Fatalf("40 wrong codes at once: %v, want exactly %d judged", got, n)
		}
		if r := s.verify(s.keyA, codes[1], id); r.key() != "429 60003" {
			t.Fatalf("a right code past the limit: %d %s", r.status, r.raw)
		}
		if got := s.remaining(s.keyA, id); got != 9 {
			t.Fatalf("remaining %v: a code past the limit was spent", got)
		}
	})
}

// Another application reaches nothing of application A's user: it can neither make a set for
// them, nor read theirs, nor spend their codes.
func TestRecoveryCodesIsolatedByApplication(t *testing.T) {
	forEngines(t, func(t *testing.T, open func() *store.Store) {
		s := newRecoveryServer(t, open(), verify.Config{})
		idA := s.user(s.appA.ID, "2015550145")
		idB := s.user(s.appB.ID, "2015550145") // the same person in app B
		codes := s.generate(s.keyA, idA, nil)
		for _, r := range []reply{
			s.do(s.keyB, "POST", fmt.Sprintf("/protected/json/users/%d/recovery_codes", idA), nil),
			s.do(s.keyB, "GET", fmt.Sprintf("/protected/json/users/%d/recovery_codes", idA), nil),
		} {
			if r.key() != "404 60026" {
				t.Fatalf("app B on app A's user: %d %s", r.status, r.raw)
			}
		}
		if r := s.verify(s.keyB, codes[0], idA); r.key() != "404 60016" {
			t.Fatalf("app B verifies app A's user: %d %s", r.status, r.raw)
		}
		if r := s.verify(s.keyB, codes[0], idB); r.key() != "401 60020" {
			t.Fatalf("app B's user with app A's code: %d %s", r.status, r.raw)
		}
		if got := s.remaining(s.keyA, idA); got != 10 {
			t.Fatalf("app A's set after app B's tries: %v", got)
		}
		if r := s.verify(s.keyA, codes[0], idA); r.status != 200 {
			t.Fatalf("app A's code after app B's tries: %s", r.raw)
		}
	})
}

// No spelling of any code, spent or not, is in the SQLite files (database, WAL): only keyed
// hashes are stored.
func TestRecoveryCodesNotInDatabaseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "twofold.db")
	st := openStore(t, path)
	s := newRecoveryServer(t, st, verify.Config{})
	id := s.user(s.appA.ID, "2015550146")
	var codes []string
	for range 3 { // old sets too
		codes = append(codes, s.generate(s.keyA, id, url.Values{"count": {"20"}})...)
	}
	for _, c := range codes[len(codes)-5:] {
		if r := s.verify(s.keyA, c, id); r.status != 200 {
			t.Fatalf("verify: %s", r.raw)
		}
	}
	var files [][]byte
	for _, name := range []string{"twofold.db", "twofold.db-wal", "twofold.db-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			files = append(files, bytes.ToLower(b))
		}
	}
	if len(files) == 0 {
		t.Fatal("no database file read")
	}
	for _, c := range codes {
		plain := strings.ReplaceAll(c, "-", "")
		for _, spelling := range []string{c, plain, strings.ReplaceAll(c, "-", " "), plain[:8], plain[4:]} {
			for _, f := range files {
				if bytes.Contains(f, []byte(spelling)) {
					t.Fatalf("%q is readable in the database files", spelling)
				}
			}
		}
	}
}

// A numeric token takes the path it always took: an SMS code's success is the Authy answer,
// without the recovery code's fields, and a token of neither shape is refused unjudged.
func TestRecoveryCodesLeaveTokensAlone(t *testing.T) {
	s := newRecoveryServer(t, openStore(t, filepath.Join(t.TempDir(), "twofold.db")), verify.Config{})
	id := s.user(s.appA.ID, "2015550147")
	s.generate(s.keyA, id, nil)
	if r := s.do(s.keyA, "GET", fmt.Sprintf("/protected/json/sms/%d?force=true", id), nil); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	msgs, err := s.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	code := smsCode.FindStringSubmatch(msgs[len(msgs)-1].Body)[1]
	r := s.verify(s.keyA, code, id)
	if _, has := r.body["factor"]; r.status != 200 || has || r.body["device"] == nil {
		t.Fatalf("an SMS code's success: %s", r.raw)
	}
	for _, bad := range []string{"abc", "k7m2-9xqp-4tf", "k7m2-9xqp-4tfhh", "k7m0-9xqp-4tfh", "k7m2_9xqp_4tfh"} {
		if r := s.verify(s.keyA, bad, id); r.key() != "401 60020" {
			t.Fatalf("%q: %d %s", bad, r.status, r.raw)
		}
	}
}

// The Go client package against the real API: a set made, its status read, a code spent in
// another spelling reported as a recovery code, then refused as reused.
func TestRecoveryCodesThroughClient(t *testing.T) {
	s := newRecoveryServer(t, openStore(t, filepath.Join(t.TempDir(), "twofold.db")), verify.Config{})
	id := s.user(s.appA.ID, "2015550148")
	c, err := client.New(s.url, s.keyA)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	set, err := c.GenerateRecoveryCodes(ctx, id, 6)
	if err != nil || len(set.Codes) != 6 || set.Total != 6 || set.Remaining != 6 || set.CreatedAt.IsZero() {
		t.Fatalf("GenerateRecoveryCodes = %+v, %v", set, err)
	}
	typed := strings.ToUpper(strings.ReplaceAll(set.Codes[2], "-", " "))
	v, err := c.VerifyResult(ctx, id, typed, client.VerifyOptions{})
	if err != nil || v.Factor != client.FactorRecoveryCode || v.RecoveryCodesRemaining != 5 {
		t.Fatalf("VerifyResult = %+v, %v", v, err)
	}
	if err := c.Verify(ctx, id, set.Codes[2], client.VerifyOptions{}); !client.IsCode(err, client.CodeTokenReused) {
		t.Fatalf("a spent code again: %v", err)
	}
	st, err := c.RecoveryCodesStatus(ctx, id)
	if err != nil || st.Codes != nil || st.Total != 6 || st.Remaining != 5 || !st.CreatedAt.Equal(set.CreatedAt) {
		t.Fatalf("RecoveryCodesStatus = %+v, %v", st, err)
	}
	us, err := c.UserStatus(ctx, id)
	if err != nil || us.RecoveryCodesRemaining != 5 {
		t.Fatalf("UserStatus = %+v, %v", us, err)
	}
	if _, err := c.GenerateRecoveryCodes(ctx, id, 3); !client.IsCode(err, client.CodeInvalidParam) {
		t.Fatalf("3 codes: %v", err)
	}
}
