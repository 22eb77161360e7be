// Package authyexporttest is a stand-in for the Authy API's migration exports, for the tests of
// authyexport and of twofold import from-authy: a local server that speaks Authy's two export
// endpoints as the Authy docs describe them (phone_number and secret/export), the
// X-Authy-API-Key header, the error envelope, 404 (60026) for an unknown user, 429 (60003) when
// limiting, 60154 when the migration tools are disabled, and failures and odd answers on
// demand.
package authyexporttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// Key is the API key the server accepts: Authy-shaped.
const Key = "KeyOfTheOldApp0123456789abcdefAB"

// User is a user of the server.
type User struct {
	CountryCode any    // as the source writes it: a number, or a string as Authy does
	Phone       string // "" for a user without a phone
	Secret      string // "" for a user without an exportable seed (the Authy app's)
	OTP         string
	Digits      int // written only when not 0, as a Twofold source does
	Period      int
}

// Server is the stand-in. Change its behaviour while it serves with With; the fields are
// read under its lock.
type Server struct {
	*httptest.Server

	mu         sync.Mutex
	users      map[int64]User
	Limit      map[string]int    // path → 429s still to answer before serving it
	RetryAfter string            // the Retry-After of those 429s ("" for none)
	Fail       map[string]int    // path → 503s still to answer
	Answer     map[string]string // path → a body to answer with 200 instead
	Disabled   bool              // the migration tools are disabled: 60154
	OnRequest  func(path string) // called with each request, before it is answered

	requests    map[string]int // path → requests served
	inFlight    int
	maxInFlight int
	limitedAt   []int // inFlight seen at each request after the first 429
	limited     bool
}

// New starts a server with users; it is closed when the test ends.
func New(tb testing.TB, users map[int64]User) *Server {
	a := &Server{users: users, Limit: map[string]int{}, Fail: map[string]int{}, Answer: map[string]string{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /protected/json/users/{id}/phone_number", a.phone)
	mux.HandleFunc("GET /protected/json/users/{id}/secret/export", a.seed)
	a.Server = httptest.NewServer(a.gatekeeper(mux))
	tb.Cleanup(a.Close)
	return a
}

// WriteError writes Authy's error envelope.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"message": msg, "success": false, "errors": map[string]string{"message": msg}, "error_code": code})
}

func (a *Server) gatekeeper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests[r.URL.Path]++
		a.inFlight++
		a.maxInFlight = max(a.maxInFlight, a.inFlight)
		if a.limited {
			a.limitedAt = append(a.limitedAt, a.inFlight)
		}
		hook := a.OnRequest
		a.mu.Unlock()
		defer func() { a.mu.Lock(); a.inFlight--; a.mu.Unlock() }()
		if hook != nil {
			hook(r.URL.Path)
		}
		if r.Header.Get("X-Authy-API-Key") != Key {
			WriteError(w, 401, "60001", "Invalid API key")
			return
		}
		a.mu.Lock()
		limited, failing, answer, disabled, retryAfter := a.Limit[r.URL.Path] > 0, a.Fail[r.URL.Path] > 0, a.Answer[r.URL.Path], a.Disabled, a.RetryAfter
		if limited {
			a.Limit[r.URL.Path]--
			a.limited = true
		}
		if failing {
			a.Fail[r.URL.Path]--
		}
		a.mu.Unlock()
		switch {
		case disabled:
			WriteError(w, 403, "60154", "Migration tools disabled.")
		case limited:
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			WriteError(w, 429, "60003", "DOS protected.")
		case failing:
			WriteError(w, 503, "60000", "An error occurred")
		case answer != "":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(answer))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (a *Server) user(w http.ResponseWriter, r *http.Request) (User, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	a.mu.Lock()
	u, ok := a.users[id]
	a.mu.Unlock()
	if err != nil || !ok {
		WriteError(w, 404, "60026", "User not found.")
		return User{}, false
	}
	return u, true
}

func (a *Server) phone(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	e164 := ""
	if u.Phone != "" {
		e164 = fmt.Sprintf("+%v%s", u.CountryCode, u.Phone)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"phone_number": u.Phone, "country_code": u.CountryCode, "e164": e164, "success": true})
}

func (a *Server) seed(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	if u.Secret == "" {
		WriteError(w, 404, "60026", "User not found.")
		return
	}
	body := map[string]any{"secret": u.Secret, "otp": u.OTP, "success": true}
	if u.Digits != 0 {
		body["digits"], body["period"] = u.Digits, u.Period
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// With changes the server's behaviour while it serves: change runs under its lock.
func (a *Server) With(change func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	change()
}

// Served is how many requests for path the server has had.
func (a *Server) Served(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[path]
}

// MaxInFlight is the most requests the server has had in flight at once.
func (a *Server) MaxInFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxInFlight
}

// LimitedAt is the number of requests in flight at each request after the first 429.
func (a *Server) LimitedAt() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.limitedAt...)
}
