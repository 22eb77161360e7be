package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// user is an account of the sample: the first factor is its own, the second Twofold's.
type user struct {
	Email     string // lower case; what Twofold matches the user by (login_hint)
	salt, key []byte // argon2id of the password
	TwofoldID string // the user's id in Twofold, the id token's sub; "" to check the email only
}

// users is the sample's table, read once from a CSV file (a real application has a database).
type userTable struct {
	byEmail map[string]user
	dummy   user // compared against for unknown emails, so timing does not tell who exists

	mu       sync.Mutex
	failures map[string][]time.Time // recent wrong passwords, by email
}

const (
	maxFailures   = 10
	failureWindow = 15 * time.Minute
)

func hashPassword(password string) (salt, key []byte) {
	salt = make([]byte, 16)
	_, _ = rand.Read(salt)
	return salt, argon2.IDKey([]byte(password), salt, 2, 19*1024, 1, 32)
}

// loadUsers reads email,password[,twofold_id] rows; a first row starting with "email" is a header.
func loadUsers(path string) (*userTable, error) {
	us := &userTable{byEmail: map[string]user{}, failures: map[string][]time.Time{}}
	us.dummy.salt, us.dummy.key = hashPassword("not a password of anyone")
	if path == "" {
		return us, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "email") {
			continue
		}
		if len(rec) < 2 || len(rec) > 3 || !strings.Contains(rec[0], "@") || rec[1] == "" {
			return nil, fmt.Errorf("%s:%d: want email,password[,twofold_id]", path, line)
		}
		u := user{Email: strings.ToLower(strings.TrimSpace(rec[0]))}
		u.salt, u.key = hashPassword(rec[1])
		if len(rec) == 3 && strings.TrimSpace(rec[2]) != "" {
			if _, err := strconv.ParseInt(strings.TrimSpace(rec[2]), 10, 64); err != nil {
				return nil, fmt.Errorf("%s:%d: twofold_id %q is not a number", path, line, rec[2])
			}
			u.TwofoldID = strings.TrimSpace(rec[2])
		}
		us.byEmail[u.Email] = u
	}
	return us, nil
}

// errLocked: too many wrong passwords for this email lately.
var errLocked = errors.New("too many wrong passwords: try again in a few minutes")

// check returns the user whose email and password these are.
func (us *userTable) check(email, password string, now time.Time) (user, bool, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	us.mu.Lock()
	recent := us.failures[email][:0]
	for _, t := range us.failures[email] {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(us.failures, email) // the table holds only emails with recent failures
	} else {
		us.failures[email] = recent
	}
	locked := len(recent) >= maxFailures
	us.mu.Unlock()
	if locked {
		return user{}, false, errLocked
	}
	u, known := us.byEmail[email]
	against := u
	if !known {
		against = us.dummy
	}
	got := argon2.IDKey([]byte(password), against.salt, 2, 19*1024, 1, 32)
	if subtle.ConstantTimeCompare(got, against.key) == 1 && known {
		return u, true, nil
	}
	us.mu.Lock()
	us.failures[email] = append(us.failures[email], now)
	us.mu.Unlock()
	return user{}, false, nil
}
