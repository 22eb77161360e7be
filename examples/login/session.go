package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// stage is how far a session has got through the log-in.
type stage int

const (
	anonymous  stage = iota // nobody, or a log-in not started
	pending2FA              // the password was right; the second factor is missing
	loggedIn                // both factors done (or two-factor authentication is off)
)

// session is the server-side state behind the session cookie. Sessions are values: read one
// with load, change the copy, and store it back with save.
type session struct {
	ID      string
	CSRF    string // token every POST form carries
	Stage   stage
	UserID  string
	Method  string // how the log-in was confirmed, shown on the protected page
	Flash   string // a one-time notice for the next page
	Problem string // a one-time error for the next page

	// During the second step.
	ApprovalUUID string // the OneTouch request the wait page waits for
	Number       string // the number-matching number, when Twofold asked for one
	CodeVia      string // "sms", "call" or "app": where the code page's code comes from
	Resent       bool   // the code was sent again, the same way
	SendProblem  string // why the last code could not be sent; "" when it was
	OfferApp     bool   // users/{id}/status showed no authenticator: offer one after the code
	HasPasskeys  bool   // the user has passkeys: "Use a passkey" is offered

	// A passkey ceremony begun in Twofold (passkeys.go): its id never leaves this server, so only
	// the browser of this session can finish it. PasskeyName is the name of a passkey being added.
	PasskeyCeremony string
	PasskeyKind     string
	PasskeyName     string

	// "Sign in with your phone" (passwordless.go): the sign-in this browser waits for, and the
	// email it typed, which the password form shows again if the phone does not sign it in.
	PhoneUUID  string
	LoginEmail string

	// Recovery codes just made (recovery.go): shown once, until the user acknowledges them.
	RecoveryCodes []string

	// On the profile page: the registration link the QR code shows.
	RegLink    string
	RegExpires time.Time

	Created  time.Time
	LastSeen time.Time
}

const (
	idleTimeout    = 30 * time.Minute
	pendingTimeout = 10 * time.Minute // to finish the second step
	maxLifetime    = 12 * time.Hour
)

// sessionStore keeps sessions in memory, by the id in their cookie.
type sessionStore struct {
	mu       sync.Mutex
	sessions map[string]session
	cookie   string // cookie name
	secure   bool   // Secure cookies (https)
	now      func() time.Time
}

func newSessionStore(secure bool, now func() time.Time) *sessionStore {
	name := "login_session"
	if secure {
		name = "__Host-login_session" // the prefix pins the cookie to this host, path / and https
	}
	return &sessionStore{sessions: map[string]session{}, cookie: name, secure: secure, now: now}
}

// load returns the session of the request's cookie, if it is alive.
func (st *sessionStore) load(r *http.Request) (session, bool) {
	c, err := r.Cookie(st.cookie)
	if err != nil || len(c.Value) != 43 { // 32 bytes in unpadded base64url
		return session{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.sessions[c.Value]
	if !ok {
		return session{}, false
	}
	now := st.now()
	if st.expired(s, now) {
		delete(st.sessions, s.ID)
		return session{}, false
	}
	s.LastSeen = now
	st.sessions[s.ID] = s
	return s, true
}

func (st *sessionStore) expired(s session, now time.Time) bool {
	return now.Sub(s.LastSeen) > idleTimeout || now.Sub(s.Created) > maxLifetime ||
		s.Stage == pending2FA && now.Sub(s.Created) > pendingTimeout
}

// ensure returns the request's session, or starts an anonymous one (so that forms have a CSRF
// token) and sets its cookie.
func (st *sessionStore) ensure(w http.ResponseWriter, r *http.Request) session {
	if s, ok := st.load(r); ok {
		return s
	}
	return st.start(w, session{})
}

// start stores s under a new id with a new CSRF token, and sets the cookie. It is how a session
// changes stage: the old id stops working (no session fixation).
func (st *sessionStore) start(w http.ResponseWriter, s session) session {
	now := st.now()
	s.ID, s.CSRF = newToken(), newToken()
	s.Created, s.LastSeen = now, now
	st.mu.Lock()
	st.sessions[s.ID] = s
	if len(st.sessions)%256 == 0 {
		for id, old := range st.sessions {
			if st.expired(old, now) {
				delete(st.sessions, id)
			}
		}
	}
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: st.cookie, Value: s.ID, Path: "/", HttpOnly: true, Secure: st.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxLifetime / time.Second)})
	return s
}

// rotate replaces the session old by s under a new id (see start).
func (st *sessionStore) rotate(w http.ResponseWriter, old string, s session) session {
	st.mu.Lock()
	delete(st.sessions, old)
	st.mu.Unlock()
	return st.start(w, s)
}

// save stores the changed copy s, unless the session ended meanwhile.
func (st *sessionStore) save(s session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.sessions[s.ID]; ok {
		st.sessions[s.ID] = s
	}
}

// destroy ends the session id and clears the cookie.
func (st *sessionStore) destroy(w http.ResponseWriter, id string) {
	st.mu.Lock()
	delete(st.sessions, id)
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: st.cookie, Value: "", Path: "/", HttpOnly: true, Secure: st.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// validCSRF reports whether the form's token is the session's, in constant time.
func validCSRF(s session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return s.CSRF != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// newToken is 32 random bytes in unpadded base64url.
func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
