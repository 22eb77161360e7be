package operators_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/password"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func newService(t *testing.T) (*operators.Service, *clock) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newServiceOn(t, st)
}

func newServiceOn(t *testing.T, st *store.Store) (*operators.Service, *clock) {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	c := &clock{now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	return operators.New(st, c.Now).WithParams(password.Params{Time: 1, Memory: 64, Threads: 1}), c
}

func TestCreateValidates(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	for _, tc := range []struct{ email, pw string }{
		{"not-an-email", "a long enough password"},
		{"Ana <ana@example.com>", "a long enough password"},
		{"ana@example.com", "short"},
		{"ana@example.com", "ANA@example.com"},
	} {
		if _, err := svc.Create(ctx, tc.email, tc.pw); err == nil {
			t.Errorf("Create(%q, %q) succeeded", tc.email, tc.pw)
		}
	}
	o, err := svc.Create(ctx, "ana@example.com", "a long enough password")
	if err != nil || o.ID == 0 || o.PasswordHash == "a long enough password" {
		t.Fatalf("Create = %+v, %v", o, err)
	}
	if _, err := svc.Create(ctx, "ANA@example.com", "another long password"); !errors.Is(err, twofold.ErrConflict) {
		t.Fatalf("a second operator with the same email: %v", err)
	}
}

// The attacker's view: guesses are counted even in parallel, lock the account, and a locked
// account does not answer whether a guess was right.
func TestSignInLockout(t *testing.T) {
	svc, clk := newService(t)
	ctx := context.Background()
	const pw = "correct horse battery"
	if _, err := svc.Create(ctx, "ana@example.com", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn(ctx, "nobody@example.com", pw); !errors.Is(err, operators.ErrBadCredentials) {
		t.Fatalf("unknown email: %v", err)
	}
	if o, err := svc.SignIn(ctx, " ANA@example.com ", pw); err != nil || o.Email != "ana@example.com" {
		t.Fatalf("right password: %+v, %v", o, err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := svc.SignIn(ctx, "ana@example.com", "wrong password!!"); !errors.Is(err, operators.ErrBadCredentials) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := svc.SignIn(ctx, "ana@example.com", pw); !errors.Is(err, operators.ErrLocked) {
		t.Fatalf("the right password while locked: %v", err)
	}
	clk.Advance(15 * time.Minute)
	if _, err := svc.SignIn(ctx, "ana@example.com", pw); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}

	// A reset lifts a lockout and the old password stops working.
	for range 5 {
		svc.SignIn(ctx, "ana@example.com", "wrong password!!")
	}
	if err := svc.SetPassword(ctx, "ana@example.com", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn(ctx, "ana@example.com", pw); !errors.Is(err, operators.ErrBadCredentials) {
		t.Fatalf("the old password after a reset: %v", err)
	}
	if _, err := svc.SignIn(ctx, "ana@example.com", "a brand new password"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// Emails no store can hold (a NUL, invalid UTF-8, an address far too long) are wrong
// credentials like any unknown email, counted and locked alike, on both engines: never an
// error from the store.
func TestSignInOddEmails(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *store.Store{
		"SQLite": func(t *testing.T) *store.Store {
			st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"Postgres": func(t *testing.T) *store.Store {
			st, err := store.OpenPostgres(t.Context(), storetest.Schema(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	} {
		t.Run(name, func(t *testing.T) {
			svc, _ := newServiceOn(t, open(t))
			for _, email := range []string{"ana\x00@example.com", "\xff\xfe@example.com", strings.Repeat("a", 100_000) + "@example.com"} {
				for i := range 6 {
					_, err := svc.SignIn(t.Context(), email, "a guess at the password")
					if want := map[bool]error{true: operators.ErrLocked, false: operators.ErrBadCredentials}[i == 5]; !errors.Is(err, want) {
						t.Fatalf("%.20q, try %d: %v, want %v", email, i+1, err, want)
					}
				}
			}
		})
	}
}
