package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Sessions are kept in the server's memory, keyed by a hash of their id: a restart signs
// every operator out, and a memory dump holds no usable cookie.

const (
	sessionCookie = "twofold_console"
	signinCookie  = "twofold_console_signin" // the sign-in form's CSRF token (double submit)
	// halfMaxAge is how long a session that has passed the password may take over the second factor.
	halfMaxAge = 10 * time.Minute
)

type stage int

const (
	stageFactor stage = iota + 1 // password checked; the second factor is next
	stageFull                    // signed in
)

type session struct {
	op      twofold.Operator
	stage   stage
	csrf    string
	created time.Time // of this stage
	seen    time.Time
	push    string        // uuid of the operator's pending push, during stageFactor
	number  string        // the number the push asks the device for
	flash   string        // a message for the next page
	test    *testOutcome  // the outcome of a test callback, for the application's next page
	secrets *shownSecrets // a step client's secrets just made, for its page to show once
	twilio  *shownTwilio  // a Verify API token or secret just made, for the application's page
}

func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

type sessions struct {
	mu        sync.Mutex
	m         map[[32]byte]*session
	now       func() time.Time
	idle, max time.Duration
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{m: map[[32]byte]*session{}, now: now, idle: idle, max: max}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

func key(id string) [32]byte { return sha256.Sum256([]byte(id)) }

func (s *sessions) expired(x *session, now time.Time) bool {
	maxAge := s.max
	if x.stage != stageFull {
		maxAge = halfMaxAge
	}
	return now.Sub(x.seen) >= s.idle || now.Sub(x.created) >= maxAge
}

// start begins a session for op at stage st, ending the session old (if any): every step of
// signing in gets a new id and CSRF token, so an id seen before a step is worthless after it.
func (s *sessions) start(old string, op twofold.Operator, st stage) (string, session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, x := range s.m {
		if s.expired(x, now) {
			delete(s.m, k)
		}
	}
	if old != "" {
		delete(s.m, key(old))
	}
	id := randomToken()
	x := &session{op: op, stage: st, csrf: randomToken(), created: now, seen: now}
	s.m[key(id)] = x
	return id, *x
}

// get returns a copy of the live session id, and marks it used.
func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(id)
	x, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	now := s.now()
	if s.expired(x, now) {
		delete(s.m, k)
		return session{}, false
	}
	x.seen = now
	return *x, true
}

// update changes the live session id.
func (s *sessions) update(id string, fn func(*session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.m[key(id)]; ok {
		fn(x)
	}
}

// takeFlash returns the session's message for this page and forgets it.
func (s *sessions) takeFlash(id string) string {
	var msg string
	s.update(id, func(x *session) { msg, x.flash = x.flash, "" })
	return msg
}

// takeTest returns the outcome of the session's test callback to application appID, once.
func (s *sessions) takeTest(id string, appID int64) *testOutcome {
	var t *testOutcome
	s.update(id, func(x *session) {
		if x.test != nil && x.test.AppID == appID {
			t, x.test = x.test, nil
		}
	})
	return t
}

// takeSecrets returns the secrets of step client clientID made for this session, once.
func (s *sessions) takeSecrets(id, clientID string) *shownSecrets {
	var out *shownSecrets
	s.update(id, func(x *session) {
		if x.secrets != nil && x.secrets.ClientID == clientID {
			out, x.secrets = x.secrets, nil
		}
	})
	return out
}

// takeTwilio returns the Verify API token or secret made for application appID in this
// session, once.
func (s *sessions) takeTwilio(id string, appID int64) *shownTwilio {
	var out *shownTwilio
	s.update(id, func(x *session) {
		if x.twilio != nil && x.twilio.AppID == appID {
			out, x.twilio = x.twilio, nil
		}
	})
	return out
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key(id))
}
