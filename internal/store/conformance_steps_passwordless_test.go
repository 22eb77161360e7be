package store

import (
	"errors"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passwordless step sessions (migration 00028): begun without a user, waiting on a sign-in,
// bound to the user who approved it once, and to nobody else afterwards.
func testPasswordlessSteps(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("ClientSetting", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		c := mkStepClient(t, s, app.ID, "tfc_pl")
		if c.Passwordless {
			t.Fatal("a new client allows passwordless sign-in")
		}
		c.Passwordless, c.UpdatedAt = true, t0.Add(time.Minute)
		must(t, s.UpdateStepClient(ctx, c, nil))
		got, err := s.StepClientByID(ctx, c.ID)
		must(t, err)
		same(t, "client with passwordless", c, got)
		d := twofold.StepClient{AppID: app.ID, ClientID: "tfc_pl2", Name: "n", RedirectURIs: []string{"https://a/cb"},
			Factors: twofold.Factors, UserMatch: twofold.MatchEmail, Passwordless: true, CreatedAt: t0}
		must(t, s.CreateStepClient(ctx, &d, nil))
		if got, _ := s.StepClientByClientID(ctx, "tfc_pl2"); !got.Passwordless {
			t.Error("a client made passwordless reads without it")
		}
	})

	t.Run("BoundOnceToWhoApproved", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		c := mkStepClient(t, s, app.ID, "tfc_a")
		ana, bob, stranger := mkUser(t, s, app.ID, 1, "2015550100"), mkUser(t, s, app.ID, 1, "2015550101"), mkUser(t, s, other.ID, 1, "2015550199")
		mk := func(handle string) twofold.StepSession {
			x := twofold.StepSession{HandleMAC: []byte(handle), ClientID: c.ID, AppID: app.ID, Passwordless: true,
				BrowserMAC: []byte("b"), Request: []byte("{}"), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
			must(t, s.CreateStepSession(ctx, &x))
			return x
		}
		x := mk("pl")
		got, err := s.StepSessionByHandle(ctx, []byte("pl"), t0)
		must(t, err)
		if got.UserID != 0 || !got.Passwordless || got.Status != twofold.StepPending || got.SigninUUID != "" {
			t.Fatalf("a passwordless session as read: %+v", got)
		}
		// A session with a user is not passwordless, and a passwordless one names no user.
		bad := twofold.StepSession{HandleMAC: []byte("both"), ClientID: c.ID, AppID: app.ID, UserID: ana.ID, Passwordless: true,
			BrowserMAC: []byte("b"), Request: []byte("{}"), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
		if err := s.CreateStepSession(ctx, &bad); err == nil {
			t.Error("a passwordless session was begun with a user")
		}
		// Without its user it never passes by a factor, and nothing binds it before a sign-in.
		if err := s.FinishStepSession(ctx, x.ID, twofold.StepPassed, twofold.FactorPush, t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("passing a session without its user: %v, want ErrConflict", err)
		}
		if err := s.BindStepSession(ctx, x.ID, "", ana.ID, t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("binding before any sign-in: %v, want ErrConflict", err)
		}
		must(t, s.SetStepSignin(ctx, x.ID, "uuid-1"))
		must(t, s.SetStepSignin(ctx, x.ID, "uuid-2")) // tried again: the newer one counts
		for _, c := range []struct {
			what string
			uuid string
			user int64
		}{
			{"an earlier sign-in's approval", "uuid-1", ana.ID},
			{"a user of another application", "uuid-2", stranger.ID},
			{"no such user", "uuid-2", 424242},
		} {
			if err := s.BindStepSession(ctx, x.ID, c.uuid, c.user, t0); !errors.Is(err, twofold.ErrConflict) {
				t.Errorf("%s: %v, want ErrConflict", c.what, err)
			}
		}
		// Of parallel binds to two users, one wins; afterwards the session is that user's.
		users := []int64{ana.ID, bob.ID}
		exactlyOne(t, workers, "BindStepSession", func(i int) (bool, error) {
			err := s.BindStepSession(ctx, x.ID, "uuid-2", users[i%2], t0.Add(time.Second))
			if errors.Is(err, twofold.ErrConflict) {
				return false, nil
			}
			return err == nil, err
		})
		got, err = s.StepSessionByHandle(ctx, []byte("pl"), t0)
		must(t, err)
		if (got.UserID != ana.ID && got.UserID != bob.ID) || got.Status != twofold.StepPassed || got.Factor != twofold.FactorPasswordless ||
			!got.PassedAt.Equal(t0.Add(time.Second)) || got.SigninUUID != "uuid-2" {
			t.Fatalf("the bound session: %+v", got)
		}
		winner := got.UserID
		for _, u := range users {
			if err := s.BindStepSession(ctx, x.ID, "uuid-2", u, t0); !errors.Is(err, twofold.ErrConflict) {
				t.Errorf("binding a bound session again to %d: %v", u, err)
			}
		}
		if err := s.SetStepSignin(ctx, x.ID, "uuid-3"); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a new sign-in for a bound session: %v, want ErrNotFound", err)
		}
		// Its code works once, and the result is the bound user's.
		must(t, s.IssueStepCode(ctx, x.ID, []byte("code"), t0.Add(time.Minute)))
		done, err := s.RedeemStepCode(ctx, []byte("code"), c.ID, t0)
		must(t, err)
		if done.UserID != winner || done.Status != twofold.StepDone {
			t.Errorf("redeemed: %+v", done)
		}
		if _, err := s.RedeemStepCode(ctx, []byte("code"), c.ID, t0); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a code redeemed twice: %v", err)
		}

		// A session that names its user is never bound by a sign-in.
		named := mkStepSession(t, s, c, ana, "named")
		if err := s.SetStepSignin(ctx, named.ID, "uuid-4"); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a sign-in for a named session: %v, want ErrNotFound", err)
		}
		if err := s.BindStepSession(ctx, named.ID, "uuid-4", bob.ID, t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("binding a named session: %v, want ErrConflict", err)
		}
		// A passwordless session that failed stays without a user; deleting the user who
		// approved one takes the session with them; the sweep takes the rest.
		y := mk("failed")
		must(t, s.FinishStepSession(ctx, y.ID, twofold.StepFailed, "", t0))
		if err := s.SetStepSignin(ctx, y.ID, "uuid-5"); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a sign-in for a failed session: %v", err)
		}
		z := mk("deleted")
		must(t, s.SetStepSignin(ctx, z.ID, "uuid-6"))
		must(t, s.BindStepSession(ctx, z.ID, "uuid-6", bob.ID, t0))
		must(t, s.DeleteUser(ctx, app.ID, bob.ID))
		if _, err := s.StepSessionByHandle(ctx, []byte("deleted"), t0); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("the session of a deleted user: %v", err)
		}
		if _, err := s.Sweep(ctx, t0.Add(ttl)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StepSessionByHandle(ctx, []byte("failed"), t0); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a passwordless session after the sweep: %v", err)
		}
	})
}
