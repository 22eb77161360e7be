package authyapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/accesslog/hanguptest"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// newHandler wires the API over a real SQLite store, as serve does, and returns it with the
// first application's key and a registered user's id path segment.
func newHandler(t testing.TB) (http.Handler, string) {
	t.Helper()
	return newHandlerLog(t, slog.New(slog.DiscardHandler))
}

// newHandlerLog is newHandler logging to log.
func newHandlerLog(t testing.TB, log *slog.Logger) (http.Handler, string) {
	t.Helper()
	return newHandlerWith(t, log, nil)
}

// newHandlerWith is newHandlerLog with the users service's store wrapped by wrap (nil: as it is).
func newHandlerWith(t testing.TB, log *slog.Logger, wrap func(*store.Store) users.Store) (http.Handler, string) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	appSvc := apps.New(st, keys, nil)
	_, key, err := appSvc.Create(context.Background(), apps.CreateParams{Name: "Fuzz"})
	if err != nil {
		t.Fatal(err)
	}
	var userStore users.Store = st
	if wrap != nil {
		userStore = wrap(st)
	}
	userSvc := users.New(userStore, nil)
	if _, _, err := userSvc.Register(context.Background(), 1, users.Contact{Email: "f@example.com", Cellphone: "2015550123", CountryCode: "1"}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	router, err := deliver.NewRouter(deliver.NewOutbox(st, keys, log, nil), nil, deliver.RouterConfig{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	api := authyapi.New(authyapi.Services{
		Apps: appSvc, Users: userSvc, Verify: verify.New(st, router, keys, verify.Config{}, nil),
		Devices:  devices.New(st, keys, appSvc.Reveal, 0, nil),
		OneTouch: onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil),
		Usage:    apps.NewUsageRecorder(st, log),
	}, m, log, authyapi.Config{}, nil)
	mux := http.NewServeMux()
	api.Routes(mux)
	return authyapi.Handler(mux, m, log), key
}

// A client that hangs up mid-request is no fault of the server's: it is logged once, at DEBUG,
// never as an error (an attack run saw 25 ERROR lines of "context canceled" in one run).
func TestClientGoneIsNotAnError(t *testing.T) {
	var logs bytes.Buffer
	h, key := newHandlerLog(t, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	requests := []struct{ method, path, body string }{
		{"POST", "/protected/json/users/new", "user[email]=gone@example.com&user[cellphone]=2015550199&user[country_code]=1"},
		{"GET", "/protected/json/users/1/status", ""},
		{"GET", "/protected/json/verify/1234567/1", ""},
		{"GET", "/protected/json/sms/1?force=true", ""},
		{"POST", "/onetouch/json/users/1/approval_requests", "message=Sign+in"},
	}
	gone := 0
	for _, rq := range requests {
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // gone before the server got to it
		req := httptest.NewRequestWithContext(ctx, rq.method, "http://twofold.test"+rq.path, strings.NewReader(rq.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Authy-API-Key", key)
		logs.Reset()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var records []map[string]any
		for line := range strings.Lines(logs.String()) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			records = append(records, rec)
		}
		// A request that failed for its client's going answers nothing and says so once; one
		// whose work was done in spite of it (nothing on SQLite waits on a cancelled context
		// once it began) answers as usual and logs nothing.
		failed := rec.Body.Len() == 0
		switch {
		case failed && (len(records) != 1 || records[0]["level"] != "DEBUG" || records[0]["msg"] != "client went away"):
			t.Errorf("%s %s failed by a client gone: logged %v, want one DEBUG record", rq.method, rq.path, records)
		case !failed && len(records) != 0:
			t.Errorf("%s %s answered %d %s and logged %v", rq.method, rq.path, rec.Code, rec.Body, records)
		}
		gone += map[bool]int{true: 1}[failed]
	}
	if gone == 0 {
		t.Fatal("no request failed for its client's going: the test tests nothing")
	}
}

// holdingUsers is the users service's store with a Hold before ListDevices.
type holdingUsers struct {
	*store.Store
	hold *hanguptest.Hold
}

func (s holdingUsers) ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error) {
	report := s.hold.Wait(ctx)
	d, err := s.Store.ListDevices(ctx, appID, userID)
	report(err)
	return d, err
}

// The same over real HTTP: the client hangs up while the server waits on the store, and the
// request is logged once, at DEBUG.
func TestClientGoneOverHTTP(t *testing.T) {
	log := hanguptest.NewLog()
	hold := &hanguptest.Hold{}
	h, key := newHandlerWith(t, log.Logger, func(st *store.Store) users.Store { return holdingUsers{st, hold} })
	srv := hanguptest.NewServer(t, h)
	req, _ := http.NewRequest("GET", srv.URL+"/protected/json/users/1/status", nil)
	req.Header.Set("X-Authy-API-Key", key)
	if err := srv.HangUp(t, nil, req, hold); err == nil {
		t.Fatal("the held call succeeded in spite of its client's going: the test tests nothing")
	}
	log.CheckGone(t, "users/{id}/status")
}

// FuzzAPI sends arbitrary requests through the whole handler. Whatever arrives, the answer is
// JSON (or the QR PNG), never a 5xx, and every error carries the Authy envelope.
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		method, path, ctype, body string
		withKey                   bool
	}{
		{"POST", "/protected/json/users/new", "application/x-www-form-urlencoded", "user[email]=a@b.co&user[cellphone]=2015550123&user[country_code]=1", true},
		{"POST", "/protected/json/users/new", "application/json", `{"user":{"email":"a@b.co","cellphone":"2015550124","country_code":1}}`, true},
		{"GET", "/protected/json/users/1/status", "application/json", "{}", true},
		{"GET", "/protected/json/sms/1?force=true&action=a", "", "", true},
		{"GET", "/protected/json/verify/1234567/1", "", "", true},
		{"POST", "/protected/json/users/1/secret", "application/x-www-form-urlencoded", "qr_size=100&label=x", true},
		{"POST", "/protected/json/users/delete/1", "", "", true},
		{"POST", "/protected/json/users/1/register_activity", "application/json", `{"type":"banned","data":{"a":[1,{"b":null}]}}`, true},
		{"GET", "/protected/json/app/stats", "", "", true},
		{"GET", "/qr/zz.png", "", "", false},
		{"PATCH", "//protected/json/app/details?api_key=x", "text/plain", "\x00\xff", false},
		{"POST", "/protected/json/users/new?user[email][x]=1&user=2", "application/json", `{"user":[`, true},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.body, s.withKey)
	}
	h, key := newHandler(f)
	f.Fuzz(func(t *testing.T, method, path, ctype, body string, withKey bool) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") {
			path = "/protected/json/" + strings.NewReplacer(" ", "%20", "\r", "", "\n", "", "\t", "", "#", "").Replace(path)
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS":
		default:
			method = "POST"
		}
		req, err := http.NewRequest(method, "http://twofold.test"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", ctype)
		if withKey {
			req.Header.Set("X-Authy-API-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%q, %q): %d %s", method, path, ctype, body, rec.Code, rec.Body)
		}
		if method == "HEAD" || rec.Header().Get("Content-Type") == "image/png" {
			return
		}
		var env map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: not JSON (%d): %q", method, path, rec.Code, rec.Body)
		}
		if rec.Code != 200 {
			if _, ok := env["error_code"].(string); !ok || env["success"] != false {
				t.Fatalf("%s %s: %d without the error envelope: %s", method, path, rec.Code, rec.Body)
			}
		}
	})
}
