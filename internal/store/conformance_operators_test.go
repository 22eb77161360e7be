package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

func testOperators(t *testing.T, s *Store) {
	ctx := t.Context()
	o := &twofold.Operator{Email: "Ana@Example.com", PasswordHash: "$argon2id$x", CreatedAt: t0}
	must(t, s.CreateOperator(ctx, o))
	wantErr(t, "CreateOperator with the same email in another case",
		s.CreateOperator(ctx, &twofold.Operator{Email: "ana@EXAMPLE.com", PasswordHash: "h", CreatedAt: t0}), twofold.ErrConflict)
	got, err := s.OperatorByEmail(ctx, "ANA@example.com")
	must(t, err)
	want := twofold.Operator{ID: o.ID, Email: "ana@example.com", PasswordHash: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}
	if d := diff(want, got); d != "" {
		t.Fatalf("OperatorByEmail:%s", d)
	}

	const lockAfter, lockFor, keep = 5, 15 * time.Minute, 24 * time.Hour
	count := func(email string, now time.Time) (bool, time.Time) {
		t.Helper()
		ok, until, err := s.CountSignInAttempt(ctx, email, now, lockAfter, lockFor, keep)
		must(t, err)
		return ok, until
	}
	lockout := func() (int, time.Time) {
		t.Helper()
		list, err := s.ListOperators(ctx)
		must(t, err)
		return list[0].FailedLogins, list[0].LockedUntil
	}

	// Attempts sent together are counted one by one before any is checked: exactly lockAfter
	// pass, the last of them locks, and the rest are refused without being counted.
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			email := []string{"ana@example.com", "ANA@Example.com"}[i%2]
			ok, until, err := s.CountSignInAttempt(ctx, email, t0, lockAfter, lockFor, keep)
			switch {
			case err != nil:
				t.Error(err)
			case ok:
				passed.Add(1)
			case !until.Equal(t0.Add(lockFor)):
				t.Errorf("refused, locked until %v; want %v", until, t0.Add(lockFor))
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != lockAfter {
		t.Fatalf("%d of %d parallel attempts were counted, want %d", n, workers, lockAfter)
	}
	if n, until := lockout(); n != lockAfter || !until.Equal(t0.Add(lockFor)) {
		t.Fatalf("lockout listed as %d failures until %v", n, until)
	}
	// When the lock ends one more try is let through, and locks again.
	if ok, _ := count("ana@example.com", t0.Add(lockFor-time.Second)); ok {
		t.Fatal("counted while locked")
	}
	if ok, _ := count("ana@example.com", t0.Add(lockFor)); !ok {
		t.Fatal("refused after the lock")
	}
	if ok, until := count("ana@example.com", t0.Add(lockFor)); ok || !until.Equal(t0.Add(2*lockFor)) {
		t.Fatalf("after a try past the lock: %v, locked until %v", ok, until)
	}

	// An email that is no operator's is counted and locked alike, whatever its bytes.
	for _, email := range []string{"nobody@example.com", "a\x00b\xff@example.com"} {
		for i := range lockAfter {
			if ok, _ := count(email, t0); !ok {
				t.Fatalf("%q: attempt %d refused", email, i+1)
			}
		}
		if ok, until := count(email, t0); ok || !until.Equal(t0.Add(lockFor)) {
			t.Fatalf("%q: attempt %d: %v, locked until %v", email, lockAfter+1, ok, until)
		}
	}

	// A sign-in that succeeds clears the count of its own email.
	got, err = s.OperatorSignedIn(ctx, o.ID, t0.Add(time.Hour))
	if err != nil || !got.LastLoginAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("OperatorSignedIn: %+v, %v", got, err)
	}
	if n, until := lockout(); n != 0 || !until.IsZero() {
		t.Fatalf("after a success: %d failures, locked until %v", n, until)
	}
	if ok, _ := count("nobody@example.com", t0.Add(time.Minute)); ok {
		t.Fatal("another email's lock was cleared")
	}
	// So does a new password.
	for range lockAfter {
		count("ana@example.com", t0.Add(time.Hour))
	}
	got.PasswordHash, got.AuthyID, got.UpdatedAt = "$argon2id$y", 42, t0.Add(2*time.Hour)
	must(t, s.UpdateOperator(ctx, got))
	if n, until := lockout(); n != 0 || !until.IsZero() {
		t.Fatalf("after a new password: %d failures, locked until %v", n, until)
	}

	// A count is forgotten keep after its last attempt, swept or not.
	later := t0.Add(keep)
	if ok, _ := count("nobody@example.com", later); !ok {
		t.Fatal("a count outlived its keep")
	}
	_, err = s.Sweep(ctx, later)
	must(t, err)
	var left int
	must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM signin_lockouts`).Scan(&left))
	if left != 1 { // nobody@'s new count; the odd bytes' is swept
		t.Fatalf("%d lockouts after the sweep, want 1", left)
	}

	list, err := s.ListOperators(ctx)
	must(t, err)
	if len(list) != 1 || list[0].PasswordHash != "$argon2id$y" || list[0].AuthyID != 42 {
		t.Fatalf("ListOperators: %+v", list)
	}
	must(t, s.DeleteOperator(ctx, "ANA@example.com"))
	wantErr(t, "DeleteOperator again", s.DeleteOperator(ctx, o.Email), twofold.ErrNotFound)
	wantErr(t, "OperatorByEmail after delete", errOf(s.OperatorByEmail(ctx, o.Email)), twofold.ErrNotFound)
	wantErr(t, "OperatorSignedIn of nobody", errOf(s.OperatorSignedIn(ctx, o.ID, t0)), twofold.ErrNotFound)
	wantErr(t, "UpdateOperator of nobody", s.UpdateOperator(ctx, got), twofold.ErrNotFound)
}
