package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "TESTKEYtestkey0123456789abcdefgh"

// fakeTwofold answers the few Authy API calls the unit tests make, as Twofold does.
type fakeTwofold struct {
	*httptest.Server
	mu        sync.Mutex
	devices   map[string][]string // authy id → device kinds
	links     map[string]string   // registration token → authy id
	nextID    int64
	approvals map[string]string // uuid → status
	closes    int               // approval requests closed
	code      string            // the code Verify accepts

	// Passwordless sign-ins: answered alike whatever the email, as Twofold answers.
	signins      map[string]*fakeSignin // uuid → state
	lastSignin   string                 // the uuid of the last one started
	signinForms  []url.Values           // what each start sent
	signinsLimit bool                   // answer 429/60003, as Twofold over a limit
	// signinReads, when set, holds each read of a sign-in until that many are waiting, so that
	// they are answered together (a test of requests racing).
	signinReads *barrier
}

// barrier lets n goroutines through together.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	open    chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

// wait blocks until n goroutines wait (or the barrier is already open), for at most a minute.
func (b *barrier) wait() {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(time.Minute):
	}
}

type fakeSignin struct {
	status  string
	number  string
	authyID int64
	expires time.Time
}

// answerSignin answers the passwordless sign-in uuid as a phone would.
func (f *fakeTwofold) answerSignin(uuid, status string, authyID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signins[uuid].status, f.signins[uuid].authyID = status, authyID
}

func (f *fakeTwofold) lastSigninUUID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSignin
}

// refusedPhone is a number the fake refuses, as Twofold refuses one it cannot use.
const refusedPhone = "555-0000"

func newFakeTwofold(t *testing.T) *fakeTwofold {
	f := &fakeTwofold{devices: map[string][]string{}, links: map[string]string{}, approvals: map[string]string{}, code: "1234567",
		signins: map[string]*fakeSignin{}}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	mux.HandleFunc("GET /protected/json/app/details", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"app":{"app_id":1,"name":"Test Shop"},"success":true}`)
	})
	mux.HandleFunc("POST /protected/json/users/new", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("user[cellphone]") == refusedPhone {
			answer(w, 400, `{"message":"User was not valid","cellphone":"is invalid","success":false,"error_code":"60027"}`)
			return
		}
		f.mu.Lock()
		f.nextID++
		id := f.nextID
		f.mu.Unlock()
		answer(w, 200, fmt.Sprintf(`{"user":{"id":%d},"success":true}`, id))
	})
	mux.HandleFunc("GET /protected/json/users/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		kinds := append([]string{}, f.devices[r.PathValue("id")]...)
		f.mu.Unlock()
		devs, _ := json.Marshal(kinds)
		detailed := []map[string]string{}
		for _, d := range kinds {
			if d != "authenticator" {
				detailed = append(detailed, map[string]string{"device_type": "authy", "os_type": d, "name": d})
			}
		}
		det, _ := json.Marshal(detailed)
		answer(w, 200, fmt.Sprintf(`{"status":{"authy_id":%s,"registered":%v,"phone_number":"XXX-XXX-0123","devices":%s,"has_hard_token":false,"detailed_devices":%s},"success":true}`,
			r.PathValue("id"), len(kinds) > 0, devs, det))
	})
	mux.HandleFunc("POST /protected/json/sdk/registrations", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		token := fmt.Sprintf("tfr_fake%08d", len(f.links)+1)
		f.links[token] = r.PostFormValue("authy_id")
		f.mu.Unlock()
		answer(w, 200, fmt.Sprintf(`{"registration_token":%q,"registration_url":"%s/authenticator/#register=%s&app=Test+Shop","expires_at":%q,"success":true}`,
			token, f.URL, token, time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339)))
	})
	mux.HandleFunc("GET /protected/json/sms/{id}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"message":"SMS token was sent","cellphone":"+1-XXX-XXX-XX23","success":true}`)
	})
	mux.HandleFunc("GET /protected/json/call/{id}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, `{"message":"Call started","cellphone":"+1-XXX-XXX-XX23","success":true}`)
	})
	mux.HandleFunc("GET /protected/json/verify/{token}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("token") == f.code {
			answer(w, 200, `{"message":"Token is valid.","token":"is valid","success":"true"}`)
			return
		}
		answer(w, 401, `{"message":"Token is invalid","token":"is invalid","success":false,"error_code":"60020"}`)
	})
	mux.HandleFunc("POST /onetouch/json/users/{id}/approval_requests", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		uuid := fmt.Sprintf("0000000%d-aaaa-4bbb-8ccc-dddddddddddd", len(f.approvals)+1)
		f.approvals[uuid] = "pending"
		f.mu.Unlock()
		answer(w, 200, `{"approval_request":{"uuid":"`+uuid+`"},"success":true}`)
	})
	mux.HandleFunc("POST /onetouch/json/approval_requests/{uuid}/close", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		uuid := r.PathValue("uuid")
		switch f.approvals[uuid] {
		case "":
			answer(w, 404, `{"message":"Approval request not found","success":false,"error_code":"60049"}`)
			return
		case "approved", "denied":
			answer(w, 409, `{"message":"Approval request was already answered","success":false,"error_code":"60079"}`)
			return
		case "pending":
			f.approvals[uuid] = "expired"
			f.closes++
		}
		answer(w, 200, `{"approval_request":{"uuid":"`+uuid+`","status":"expired","reason":"closed"},"success":true}`)
	})
	mux.HandleFunc("GET /onetouch/json/approval_requests/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status := f.approvals[r.PathValue("uuid")]
		f.mu.Unlock()
		answer(w, 200, `{"approval_request":{"uuid":"`+r.PathValue("uuid")+`","status":"`+status+`"},"success":true}`)
	})
	mux.HandleFunc("POST /onetouch/json/passwordless_requests", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.signinForms = append(f.signinForms, r.PostForm)
		if f.signinsLimit {
			w.Header().Set("Retry-After", "600")
			answer(w, 429, `{"message":"Too many sign-in requests for this username","success":false,"error_code":"60003"}`)
			return
		}
		n := len(f.signins) + 1
		uuid := fmt.Sprintf("5e000000-0000-4000-8000-%012d", n)
		ttl, _ := strconv.Atoi(r.PostFormValue("seconds_to_expire"))
		sg := &fakeSignin{status: "pending", number: strconv.Itoa(10 + n%90), expires: time.Now().Add(time.Duration(ttl) * time.Second)}
		f.signins[uuid], f.lastSignin = sg, uuid
		answer(w, 200, fmt.Sprintf(`{"passwordless_request":{"uuid":%q,"number":%q,"expires_at":%q},"success":true}`,
			uuid, sg.number, sg.expires.UTC().Format(time.RFC3339)))
	})
	mux.HandleFunc("GET /onetouch/json/passwordless_requests/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b := f.signinReads
		f.mu.Unlock()
		if b != nil {
			b.wait()
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		sg, ok := f.signins[r.PathValue("uuid")]
		if !ok {
			answer(w, 404, `{"message":"Passwordless request not found","success":false,"error_code":"60049"}`)
			return
		}
		id := ""
		if sg.status == "approved" {
			id = fmt.Sprintf(`,"authy_id":%d`, sg.authyID)
		}
		answer(w, 200, fmt.Sprintf(`{"passwordless_request":{"uuid":%q,"status":%q,"number":%q,"expires_at":%q%s},"success":true}`,
			r.PathValue("uuid"), sg.status, sg.number, sg.expires.UTC().Format(time.RFC3339), id))
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// sample is the sample under test, with a browser-like client (cookies, no redirects followed).
type sample struct {
	t   *testing.T
	srv *server
	url string
	hc  *http.Client
}

func newSample(t *testing.T, tf *fakeTwofold) *sample {
	t.Helper()
	return newSampleAt(t, tf, time.Now)
}

func newSampleAt(t *testing.T, tf *fakeTwofold, now func() time.Time) *sample {
	t.Helper()
	return newSampleWith(t, tf, config{now: now})
}

// newSampleWith starts the sample with cfg, its Twofold, key and public URL filled in.
func newSampleWith(t *testing.T, tf *fakeTwofold, cfg config) *sample {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	public := "http://" + hs.Listener.Addr().String()
	cfg.TwofoldURL, cfg.APIKey, cfg.PublicURL = tf.URL, testKey, public
	h, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = h
	hs.Start()
	t.Cleanup(hs.Close)
	return &sample{t: t, srv: h.(*server), url: public, hc: newBrowserClient()}
}

func newBrowserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status   int
	location string
	body     string
}

func (s *sample) do(hc *http.Client, method, path string, form url.Values) answer {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header.Get("Location"), string(b)}
}

func (s *sample) get(path string) answer { s.t.Helper(); return s.do(s.hc, "GET", path, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the forms of the page at path.
func (s *sample) csrf(path string) string {
	s.t.Helper()
	a := s.get(path)
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		s.t.Fatalf("GET %s: no CSRF token in %d %s", path, a.status, a.body)
	}
	return m[1]
}

// post sends a form from the page at page, with its CSRF token.
func (s *sample) post(page, path string, form url.Values) answer {
	s.t.Helper()
	form.Set("csrf", s.csrf(page))
	return s.do(s.hc, "POST", path, form)
}

func (s *sample) sessionID() string {
	u, _ := url.Parse(s.url)
	for _, c := range s.hc.Jar.Cookies(u) {
		if c.Name == "login_session" {
			return c.Value
		}
	}
	return ""
}

func (s *sample) signup(email, phone string, twoFactor bool) {
	s.t.Helper()
	form := url.Values{"email": {email}, "password": {"correct horse battery"}, "phone": {phone}, "country_code": {"1"}}
	if twoFactor {
		form.Set("two_factor", "on")
	}
	if a := s.post("/signup", "/signup", form); a.status != http.StatusSeeOther || a.location != "/profile" {
		s.t.Fatalf("sign up: %d %s %s", a.status, a.location, a.body)
	}
}

func (s *sample) login(email, password string) answer {
	s.t.Helper()
	return s.post("/login", "/login", url.Values{"email": {email}, "password": {password}})
}

func (s *sample) logout() {
	s.t.Helper()
	if a := s.post("/protected", "/logout", url.Values{}); a.status != http.StatusSeeOther {
		s.t.Fatalf("log out: %d %s", a.status, a.body)
	}
}
