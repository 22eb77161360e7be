package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The Verify API's factors and challenges (migration 00029), part of runConformance: a code's
// time step is spent once and a challenge answered once however the requests race, lists filter
// alike on both engines, and an entity's deletion takes its factors and challenges.

func mkVerifyFactor(tb testing.TB, s *Store, svc twofold.VerifyService, userID int64, name string) twofold.VerifyFactor {
	tb.Helper()
	f := twofold.VerifyFactor{PublicID: fmt.Sprintf("%032x", fmt.Sprint(svc.ID, userID, name)), AppID: svc.AppID, ServiceID: svc.ID,
		UserID: userID, Type: twofold.VerifyFactorTOTP, Name: name, Status: twofold.FactorUnverified, SecretSealed: []byte("sealed"),
		Config: twofold.FactorConfig{TimeStep: 30, CodeLength: 6, Alg: "sha1"}, Metadata: map[string]string{"os": "Android"},
		CreatedAt: t0, UpdatedAt: t0}
	must(tb, s.InsertVerifyFactor(tb.Context(), &f))
	return f
}

func mkVerifyChallenge(tb testing.TB, s *Store, f twofold.VerifyFactor, n int, expires time.Time) twofold.VerifyChallenge {
	tb.Helper()
	c := twofold.VerifyChallenge{PublicID: fmt.Sprintf("%032x", fmt.Sprint(f.ID, n)), AppID: f.AppID, ServiceID: f.ServiceID, UserID: f.UserID,
		FactorID: f.ID, Status: twofold.ChallengePending, RespondedReason: "none",
		Details:       twofold.ChallengeDetails{Message: "Sign in?", Fields: []twofold.ChallengeField{{Label: "IP", Value: "192.0.2.1"}}},
		HiddenDetails: map[string]string{"ip": "192.0.2.1"}, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: expires}
	must(tb, s.InsertVerifyChallenge(tb.Context(), &c))
	return c
}

func testVerifyFactors(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("StepSpentOnceWhenRaced", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		f := mkVerifyFactor(t, s, mkVerifyService(t, s, app.ID, "Shop"), u.ID, "phone")
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.SpendFactorStep(t.Context(), f.ID, 1000)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("a step was spent %d times; want once", won)
		}
		if ok, _ := s.SpendFactorStep(t.Context(), f.ID, 999); ok {
			t.Fatal("an earlier step was spent after a later one")
		}
		if ok, _ := s.SpendFactorStep(t.Context(), f.ID, 1001); !ok {
			t.Fatal("a later step was refused")
		}
		for i := 1; i <= 3; i++ {
			if n, err := s.AddFactorFailure(t.Context(), f.ID); err != nil || n != i {
				t.Fatalf("failure %d counted %d (%v)", i, n, err)
			}
		}
	})
	t.Run("ChallengeAnsweredOnce", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		f := mkVerifyFactor(t, s, mkVerifyService(t, s, app.ID, "Shop"), u.ID, "phone")
		c := mkVerifyChallenge(t, s, f, 1, t0.Add(ttl))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				status := twofold.ChallengeApproved
				if i%2 == 1 {
					status = twofold.ChallengeDenied
				}
				ok, err := s.AnswerVerifyChallenge(t.Context(), c.ID, status, "none", t0.Add(time.Second))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("a challenge was answered %d times; want once", won)
		}
		got, err := s.GetVerifyChallenge(t.Context(), f.ServiceID, u.ID, c.PublicID)
		if err != nil || got.Status == twofold.ChallengePending || !got.RespondedAt.Equal(t0.Add(time.Second)) ||
			got.Details.Fields[0].Value != "192.0.2.1" || got.HiddenDetails["ip"] != "192.0.2.1" {
			t.Fatalf("answered challenge: %+v, %v", got, err)
		}
		late := mkVerifyChallenge(t, s, f, 2, t0.Add(time.Minute))
		if ok, _ := s.AnswerVerifyChallenge(t.Context(), late.ID, twofold.ChallengeApproved, "none", t0.Add(time.Minute)); ok {
			t.Fatal("an expired challenge was answered")
		}
	})
	t.Run("ListsAndDeletion", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "A")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		svc, other := mkVerifyService(t, s, app.ID, "Shop"), mkVerifyService(t, s, app.ID, "Other")
		f, g := mkVerifyFactor(t, s, svc, u.ID, "phone"), mkVerifyFactor(t, s, svc, u.ID, "tablet")
		h := mkVerifyFactor(t, s, other, u.ID, "phone")
		c1, c2 := mkVerifyChallenge(t, s, f, 1, t0.Add(ttl)), mkVerifyChallenge(t, s, f, 2, t0.Add(time.Minute))
		c3 := mkVerifyChallenge(t, s, g, 3, t0.Add(ttl))
		mkVerifyChallenge(t, s, h, 4, t0.Add(ttl))
		must(t, ignoreBool(s.AnswerVerifyChallenge(t.Context(), c3.ID, twofold.ChallengeDenied, "none", t0)))
		now := t0.Add(2 * time.Minute)
		ids := func(filter twofold.ChallengeFilter, after int64, limit int) []int64 {
			filter.Now = now
			list, err := s.ListVerifyChallenges(t.Context(), svc.ID, u.ID, filter, after, 0, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, c := range list {
				out = append(out, c.ID)
			}
			return out
		}
		for _, c := range []struct {
			what   string
			filter twofold.ChallengeFilter
			after  int64
			want   []int64
		}{
			{"all", twofold.ChallengeFilter{}, 0, []int64{c1.ID, c2.ID, c3.ID}},
			{"newest first", twofold.ChallengeFilter{Desc: true}, 0, []int64{c3.ID, c2.ID, c1.ID}},
			{"newest first after", twofold.ChallengeFilter{Desc: true}, c3.ID, []int64{c2.ID, c1.ID}},
			{"pending", twofold.ChallengeFilter{Status: twofold.ChallengePending}, 0, []int64{c1.ID}},
			{"expired", twofold.ChallengeFilter{Status: twofold.ChallengeExpired}, 0, []int64{c2.ID}},
			{"denied", twofold.ChallengeFilter{Status: twofold.ChallengeDenied}, 0, []int64{c3.ID}},
			{"of a factor", twofold.ChallengeFilter{FactorID: f.ID}, c1.ID, []int64{c2.ID}},
		} {
			if got := ids(c.filter, c.after, 10); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: %v, want %v", c.what, got, c.want)
			}
		}
		if list, err := s.ListVerifyFactors(t.Context(), svc.ID, u.ID, 0, 1, 10); err != nil || len(list) != 1 || list[0].ID != g.ID ||
			list[0].Metadata["os"] != "Android" {
			t.Errorf("factors from the second: %+v, %v", list, err)
		}
		must(t, s.DeleteVerifyFactor(t.Context(), svc.ID, u.ID, g.PublicID))
		if _, err := s.GetVerifyChallenge(t.Context(), svc.ID, u.ID, c3.PublicID); err != twofold.ErrNotFound {
			t.Errorf("a deleted factor's challenge: %v", err)
		}
		if n, err := s.DeleteVerifyEntity(t.Context(), svc.ID, u.ID); err != nil || n != 1 {
			t.Fatalf("delete entity: %d, %v", n, err)
		}
		if _, err := s.GetVerifyFactor(t.Context(), svc.ID, u.ID, f.PublicID); err != twofold.ErrNotFound {
			t.Errorf("a deleted entity's factor: %v", err)
		}
		if _, err := s.GetVerifyFactor(t.Context(), other.ID, u.ID, h.PublicID); err != nil {
			t.Errorf("the entity's factor in another service: %v", err)
		}
		// The user's deletion takes its factors and challenges in every service; a service's
		// deletion its own.
		c5 := mkVerifyChallenge(t, s, h, 5, t0.Add(ttl))
		must(t, s.DeleteUser(t.Context(), app.ID, u.ID))
		if _, err := s.GetVerifyFactor(t.Context(), other.ID, u.ID, h.PublicID); err != twofold.ErrNotFound {
			t.Errorf("a deleted user's factor: %v", err)
		}
		if _, err := s.GetVerifyChallenge(t.Context(), other.ID, u.ID, c5.PublicID); err != twofold.ErrNotFound {
			t.Errorf("a deleted user's challenge: %v", err)
		}
		v := mkUser(t, s, app.ID, 1, "2015550101")
		k := mkVerifyFactor(t, s, other, v.ID, "phone")
		mkVerifyChallenge(t, s, k, 6, t0.Add(ttl))
		must(t, s.DeleteVerifyService(t.Context(), app.ID, other.PublicID))
		if _, err := s.GetVerifyFactorByID(t.Context(), other.ID, v.ID, k.ID); err != twofold.ErrNotFound {
			t.Errorf("a deleted service's factor: %v", err)
		}
		var n int
		must(t, s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM verify_challenges`).Scan(&n))
		if n != 0 {
			t.Errorf("%d challenges left", n)
		}
	})
}

func ignoreBool(_ bool, err error) error { return err }
