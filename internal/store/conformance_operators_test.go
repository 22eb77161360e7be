package store

import (
	"sync"
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

	// Parallel wrong passwords are all counted; the fifth locks.
	var wg sync.WaitGroup
	for range 7 {
		wg.Go(func() {
			if _, err := s.OperatorSignIn(ctx, o.ID, false, t0, 5, 15*time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ = s.OperatorByEmail(ctx, o.Email)
	if got.FailedLogins != 7 || !got.Locked(t0.Add(14*time.Minute)) || got.Locked(t0.Add(15*time.Minute)) {
		t.Fatalf("after 7 failures: %+v", got)
	}
	got, err = s.OperatorSignIn(ctx, o.ID, true, t0.Add(time.Hour), 5, 15*time.Minute)
	if err != nil || got.FailedLogins != 0 || got.Locked(t0.Add(time.Hour)) || !got.LastLoginAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("a success: %+v, %v", got, err)
	}

	got.PasswordHash, got.AuthyID, got.UpdatedAt = "$argon2id$y", 42, t0.Add(2*time.Hour)
	must(t, s.UpdateOperator(ctx, got))
	list, err := s.ListOperators(ctx)
	must(t, err)
	if len(list) != 1 || list[0].PasswordHash != "$argon2id$y" || list[0].AuthyID != 42 {
		t.Fatalf("ListOperators: %+v", list)
	}
	must(t, s.DeleteOperator(ctx, "ANA@example.com"))
	wantErr(t, "DeleteOperator again", s.DeleteOperator(ctx, o.Email), twofold.ErrNotFound)
	wantErr(t, "OperatorByEmail after delete", errOf(s.OperatorByEmail(ctx, o.Email)), twofold.ErrNotFound)
	wantErr(t, "OperatorSignIn of nobody", errOf(s.OperatorSignIn(ctx, o.ID, true, t0, 5, time.Minute)), twofold.ErrNotFound)
}
