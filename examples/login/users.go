package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// user is an account of the sample. A real application keeps these in its database; the sample
// keeps them in memory, so they are gone when it stops.
type user struct {
	ID           string // random: it is also the custom_user_id Twofold links the authenticator to
	Email        string // lower case
	PasswordHash string // argon2id, PHC string format
	Phone        string
	CountryCode  string
	AuthyID      int64 // the user's id in Twofold; 0 when two-factor authentication is off
	CreatedAt    time.Time

	// AskedToAddApp is when the user answered the offer, made after a log-in by code, to add the
	// authenticator app: "Not now", or the app registered. Zero: not answered yet, so the next
	// log-in by code asks again (if they still have no authenticator). The sample's own state:
	// whether the user has an authenticator comes from Twofold, never from here.
	AskedToAddApp time.Time
}

var (
	errEmailTaken = errors.New("an account with this email already exists")
	// errPhoneTaken: Twofold keeps one user per phone number (and application), so a second
	// account with the same number would get the first one's Authy id: its log-ins would go to
	// the first one's phone, and turning its two-factor authentication off would remove theirs.
	errPhoneTaken = errors.New("another account uses this phone number")
)

// userStore is the in-memory table of users.
type userStore struct {
	mu      sync.Mutex
	byID    map[string]*user
	byEmail map[string]string // email → id
}

func newUserStore() *userStore {
	return &userStore{byID: map[string]*user{}, byEmail: map[string]string{}}
}

// create adds u with a new id and returns it.
func (s *userStore) create(u user) (user, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byEmail[u.Email]; ok {
		return user{}, errEmailTaken
	}
	if s.authyIDTaken(u.AuthyID, "") {
		return user{}, errPhoneTaken
	}
	u.ID = "u_" + randomHex(12)
	s.byID[u.ID] = &u
	s.byEmail[u.Email] = u.ID
	return u, nil
}

func (s *userStore) get(id string) (user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return user{}, false
	}
	return *u, true
}

func (s *userStore) byEmailAddr(email string) (user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byEmail[email]
	if !ok {
		return user{}, false
	}
	return *s.byID[id], true
}

// byAuthyID returns the user whose Twofold id is authyID.
func (s *userStore) byAuthyID(authyID int64) (user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if authyID == 0 {
		return user{}, false
	}
	for _, u := range s.byID {
		if u.AuthyID == authyID {
			return *u, true
		}
	}
	return user{}, false
}

// setAuthyID records the user's Twofold id (0 turns two-factor authentication off).
func (s *userStore) setAuthyID(id string, authyID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authyIDTaken(authyID, id) {
		return errPhoneTaken
	}
	if u, ok := s.byID[id]; ok {
		u.AuthyID = authyID
	}
	return nil
}

// markAskedToAddApp records that the user answered the offer to add the authenticator app. The
// first answer's time stays.
func (s *userStore) markAskedToAddApp(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.byID[id]; ok && u.AskedToAddApp.IsZero() {
		u.AskedToAddApp = now
	}
}

// authyIDTaken reports whether a user other than except has the Twofold id authyID.
func (s *userStore) authyIDTaken(authyID int64, except string) bool {
	if authyID == 0 {
		return false
	}
	for id, u := range s.byID {
		if id != except && u.AuthyID == authyID {
			return true
		}
	}
	return false
}

// Password hashing: argon2id with OWASP's minimum settings (19 MiB, 2 passes, 1 lane), a
// 16-byte random salt, a 32-byte key, stored as $argon2id$v=19$m=19456,t=2,p=1$SALT$KEY.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches encoded, comparing in constant time. The
// parameters are read from encoded, so hashes made with other settings still verify.
func checkPassword(encoded, password string) bool {
	h, ok := parseHash(encoded)
	if !ok {
		return false
	}
	got := argon2.IDKey([]byte(password), h.salt, h.passes, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// argon2idHash is a parsed $argon2id$v=19$m=…,t=…,p=…$SALT$KEY string.
type argon2idHash struct {
	memory, passes uint32
	threads        uint8
	salt, key      []byte
}

// parseHash reads an argon2id hash in PHC string format, refusing parameters that would make
// checking it too costly or too weak to mean anything.
func parseHash(encoded string) (argon2idHash, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return argon2idHash{}, false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return argon2idHash{}, false
	}
	var h argon2idHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.passes, &h.threads); err != nil ||
		h.memory == 0 || h.memory > 1<<20 || h.passes == 0 || h.passes > 10 || h.threads == 0 {
		return argon2idHash{}, false
	}
	b64 := base64.RawStdEncoding
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return argon2idHash{}, false
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return argon2idHash{}, false
	}
	return h, true
}

// dummyHash is checked against when the email is unknown, so that a wrong email takes as long
// to refuse as a wrong password.
var dummyHash = func() string {
	h, err := hashPassword(randomHex(16))
	if err != nil {
		panic(err)
	}
	return h
}()

// attemptLimiter counts failed log-ins per email: after max failures within window, log-ins
// for that email are refused until the oldest failure leaves the window.
type attemptLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	failures map[string][]time.Time
}

func newAttemptLimiter(max int, window time.Duration) *attemptLimiter {
	return &attemptLimiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// blocked reports whether key has used up its tries, and for how long it stays blocked.
func (l *attemptLimiter) blocked(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.prune(key, now)
	if len(recent) < l.max {
		return 0, false
	}
	return recent[len(recent)-l.max].Add(l.window).Sub(now), true
}

// fail records a failed try.
func (l *attemptLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[key] = append(l.prune(key, now), now)
	if len(l.failures) > 10000 { // bound the memory an attacker trying many emails can take
		for k := range l.failures {
			if len(l.prune(k, now)) == 0 {
				delete(l.failures, k)
			}
		}
	}
}

// reset forgets key's failures, after a successful log-in.
func (l *attemptLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

func (l *attemptLimiter) prune(key string, now time.Time) []time.Time {
	list := l.failures[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= l.window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = list
	return list
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// maskPhone is the user's phone as every page shows it: the country code and the last two
// digits, the rest masked with a mask of fixed length, so that neither the number nor its
// length shows to someone who has only the password, and its owner still knows it.
func maskPhone(countryCode, phone string) string {
	var digits []byte
	for i := 0; i < len(phone); i++ {
		if phone[i] >= '0' && phone[i] <= '9' {
			digits = append(digits, phone[i])
		}
	}
	if len(digits) < 4 {
		return "your phone"
	}
	return "+" + countryCode + " ••• ••• ••" + string(digits[len(digits)-2:])
}
