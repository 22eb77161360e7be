package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The hosted second-factor step's part of runConformance: clients with sealed secrets,
// sessions that pass once, authorization codes spent once by their own client, users found by
// email, and what deleting and sweeping take with them.

func mkStepClient(tb testing.TB, s *Store, appID int64, clientID string) twofold.StepClient {
	tb.Helper()
	c := twofold.StepClient{AppID: appID, ClientID: clientID, Name: "Okta", RedirectURIs: []string{"https://idp.example.com/cb"},
		Factors: twofold.Factors, UserMatch: twofold.MatchEmail, CreatedAt: t0}
	must(tb, s.CreateStepClient(tb.Context(), &c, func(id int64) map[string][]byte {
		return map[string][]byte{twofold.SecretClient: []byte(fmt.Sprint("sealed secret of ", id))}
	}))
	return c
}

func mkStepSession(tb testing.TB, s *Store, c twofold.StepClient, u twofold.User, handle string) twofold.StepSession {
	tb.Helper()
	x := twofold.StepSession{HandleMAC: []byte(handle), ClientID: c.ID, AppID: u.AppID, UserID: u.ID,
		BrowserMAC: []byte("browser " + handle), Request: []byte(`{"state":"s"}`), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
	must(tb, s.CreateStepSession(tb.Context(), &x))
	return x
}

func testSteps(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("Clients", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		c := twofold.StepClient{AppID: app.ID, ClientID: "tfc_one", Name: "Entra ✓", RedirectURIs: []string{"https://a/cb", "https://b/cb?x=1"},
			Factors: []twofold.Factor{twofold.FactorTOTP, twofold.FactorPush}, UserMatch: twofold.MatchCustomID, AllowLoginHint: true,
			HintJWKSURL: "https://login.example.com/keys", HintIssuer: "https://login.example.com/t/v2.0", ClientJWKSURL: "https://rp.example.com/jwks", Auth0Domain: "t.auth0.com",
			CreatedAt: t0}
		var sealedFor int64
		must(t, s.CreateStepClient(ctx, &c, func(id int64) map[string][]byte {
			sealedFor = id
			return map[string][]byte{twofold.SecretClient: []byte("c1"), twofold.SecretAuth0: []byte("a1")}
		}))
		if c.ID == 0 || sealedFor != c.ID {
			t.Fatalf("CreateStepClient: id %d, secrets sealed for %d", c.ID, sealedFor)
		}
		got, err := s.StepClientByClientID(ctx, "tfc_one")
		must(t, err)
		same(t, "StepClientByClientID", c, got)
		byID, err := s.StepClientByID(ctx, c.ID)
		must(t, err)
		same(t, "StepClientByID", c, byID)
		for kind, want := range map[string]string{twofold.SecretClient: "c1", twofold.SecretAuth0: "a1"} {
			sealed, err := s.StepClientSecret(ctx, c.ID, kind)
			if err != nil || string(sealed) != want {
				t.Errorf("StepClientSecret(%s) = %q, %v; want %q", kind, sealed, err, want)
			}
		}
		if err := s.CreateStepClient(ctx, &twofold.StepClient{AppID: other.ID, ClientID: "tfc_one", CreatedAt: t0}, nil); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("a taken client id: %v, want ErrConflict", err)
		}
		if err := s.CreateStepClient(ctx, &twofold.StepClient{AppID: 999999, ClientID: "tfc_two", CreatedAt: t0}, nil); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("an application that does not exist: %v, want ErrNotFound", err)
		}
		second := mkStepClient(t, s, other.ID, "tfc_three")
		if list, err := s.ListStepClients(ctx, app.ID); err != nil || len(list) != 1 || list[0].ClientID != "tfc_one" {
			t.Errorf("ListStepClients(app) = %+v, %v", list, err)
		}
		if list, err := s.ListStepClients(ctx, 0); err != nil || len(list) != 2 || list[1].ClientID != second.ClientID {
			t.Errorf("ListStepClients(all) = %+v, %v", list, err)
		}

		c.Name, c.RedirectURIs, c.Factors, c.AllowLoginHint, c.UpdatedAt = "renamed", nil, []twofold.Factor{twofold.FactorSMS}, false, t0.Add(time.Hour)
		must(t, s.UpdateStepClient(ctx, c, map[string][]byte{twofold.SecretClient: []byte("c2")}))
		got, err = s.StepClientByClientID(ctx, "tfc_one")
		must(t, err)
		c.RedirectURIs = []string{} // stored as an empty list
		same(t, "updated client", c, got)
		if sealed, _ := s.StepClientSecret(ctx, c.ID, twofold.SecretClient); string(sealed) != "c2" {
			t.Errorf("the replaced secret is %q", sealed)
		}
		if sealed, _ := s.StepClientSecret(ctx, c.ID, twofold.SecretAuth0); string(sealed) != "a1" {
			t.Errorf("the secret not replaced is %q", sealed)
		}

		// Deleting a client takes its secrets and sessions; deleting an application takes its clients.
		u := mkUser(t, s, app.ID, 1, "2015550100")
		mkStepSession(t, s, c, u, "h1")
		must(t, s.DeleteStepClient(ctx, c.ID))
		if _, err := s.StepClientByClientID(ctx, "tfc_one"); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("deleted client: %v", err)
		}
		if _, err := s.StepClientSecret(ctx, c.ID, twofold.SecretClient); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("deleted client's secret: %v", err)
		}
		if _, err := s.StepSessionByHandle(ctx, []byte("h1"), t0); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("deleted client's session: %v", err)
		}
		if err := s.DeleteStepClient(ctx, c.ID); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("deleting again: %v", err)
		}
		u2 := mkUser(t, s, other.ID, 1, "2015550101")
		mkStepSession(t, s, second, u2, "h2")
		must(t, s.DeleteApp(ctx, other.ID))
		if list, _ := s.ListStepClients(ctx, 0); len(list) != 0 {
			t.Errorf("clients after their application was deleted: %+v", list)
		}
	})

	t.Run("SessionsPassOnceAndCodesSpendOnce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		c, c2 := mkStepClient(t, s, app.ID, "tfc_a"), mkStepClient(t, s, app.ID, "tfc_b")
		u, stranger := mkUser(t, s, app.ID, 1, "2015550100"), mkUser(t, s, other.ID, 1, "2015550199")

		x := mkStepSession(t, s, c, u, "handle")
		got, err := s.StepSessionByHandle(ctx, []byte("handle"), t0)
		must(t, err)
		same(t, "StepSessionByHandle", x, got)
		if got.UserID != u.ID {
			t.Fatalf("session's user %d, want the public id %d", got.UserID, u.ID)
		}
		if _, err := s.StepSessionByHandle(ctx, []byte("handle"), x.ExpiresAt); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("an expired session: %v", err)
		}
		// A user of another application, or none, cannot have a session of this client's application.
		for _, id := range []int64{stranger.ID, 424242} {
			y := twofold.StepSession{HandleMAC: []byte(fmt.Sprint("h", id)), ClientID: c.ID, AppID: app.ID, UserID: id,
				BrowserMAC: []byte("b"), Request: []byte("{}"), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
			if err := s.CreateStepSession(ctx, &y); !errors.Is(err, twofold.ErrNotFound) {
				t.Errorf("session for user %d of another application: %v, want ErrNotFound", id, err)
			}
		}

		must(t, s.SetStepApproval(ctx, x.ID, "uuid-1"))
		must(t, s.SetStepSent(ctx, x.ID, twofold.Call))
		if err := s.IssueStepCode(ctx, x.ID, []byte("code"), t0.Add(time.Minute)); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("a code before the session passed: %v", err)
		}
		must(t, s.FinishStepSession(ctx, x.ID, twofold.StepPassed, twofold.FactorPush, t0.Add(time.Second)))
		if err := s.FinishStepSession(ctx, x.ID, twofold.StepFailed, "", t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("finishing twice: %v", err)
		}
		if err := s.SetStepApproval(ctx, x.ID, "uuid-2"); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a new approval for a passed session: %v", err)
		}
		if err := s.SetStepSent(ctx, x.ID, twofold.SMS); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("a code sent for a passed session: %v", err)
		}
		got, _ = s.StepSessionByHandle(ctx, []byte("handle"), t0)
		if got.Status != twofold.StepPassed || got.Factor != twofold.FactorPush || got.ApprovalUUID != "uuid-1" ||
			got.SentChannel != twofold.Call || !got.PassedAt.Equal(t0.Add(time.Second)) {
			t.Errorf("passed session: %+v", got)
		}
		must(t, s.IssueStepCode(ctx, x.ID, []byte("code"), t0.Add(time.Minute)))
		if err := s.IssueStepCode(ctx, x.ID, []byte("code2"), t0.Add(time.Minute)); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("a second code: %v", err)
		}
		for _, bad := range []struct {
			what   string
			mac    []byte
			client int64
			at     time.Time
		}{
			{"another client", []byte("code"), c2.ID, t0},
			{"an unknown code", []byte("code2"), c.ID, t0},
			{"an expired code", []byte("code"), c.ID, t0.Add(time.Minute)},
		} {
			if _, err := s.RedeemStepCode(ctx, bad.mac, bad.client, bad.at); !errors.Is(err, twofold.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", bad.what, err)
			}
		}
		// Of many concurrent redemptions exactly one wins.
		var wins, losses int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				done, err := s.RedeemStepCode(ctx, []byte("code"), c.ID, t0.Add(30*time.Second))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && done.Status == twofold.StepDone && done.UserID == u.ID && done.Factor == twofold.FactorPush:
					wins++
				case errors.Is(err, twofold.ErrNotFound):
					losses++
				default:
					t.Errorf("redeem: %+v, %v", done, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || losses != workers-1 {
			t.Errorf("redemptions: %d won, %d lost; want 1 and %d", wins, losses, workers-1)
		}

		// A result handed back in the browser closes the session once.
		y := mkStepSession(t, s, c, u, "browser")
		if err := s.CloseStepSession(ctx, y.ID, t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("closing a pending session: %v", err)
		}
		must(t, s.FinishStepSession(ctx, y.ID, twofold.StepPassed, twofold.FactorTOTP, t0))
		must(t, s.CloseStepSession(ctx, y.ID, t0))
		if err := s.CloseStepSession(ctx, y.ID, t0); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("closing twice: %v", err)
		}
		if err := s.IssueStepCode(ctx, y.ID, []byte("late"), t0.Add(time.Minute)); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("a code for a closed session: %v", err)
		}

		// The sweep removes expired sessions.
		if _, err := s.Sweep(ctx, t0.Add(ttl)); err != nil {
			t.Fatal(err)
		}
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM step_sessions`).Scan(&n))
		if n != 0 {
			t.Errorf("%d sessions left after the sweep", n)
		}
	})

	t.Run("SpendMarksOnce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "shop")
		must(t, s.SpendMarks(ctx, [][]byte{[]byte("a"), []byte("b")}, app.ID, t0.Add(time.Minute), t0))
		for _, macs := range [][][]byte{{[]byte("a")}, {[]byte("c"), []byte("b")}} {
			if err := s.SpendMarks(ctx, macs, app.ID, t0.Add(time.Minute), t0); !errors.Is(err, twofold.ErrConflict) {
				t.Errorf("SpendMarks(%q) again: %v, want ErrConflict", macs, err)
			}
		}
		// Nothing of a refused spend was kept: "c" is still unspent.
		must(t, s.SpendMarks(ctx, [][]byte{[]byte("c")}, app.ID, t0.Add(time.Minute), t0))
		// Concurrent spends of one mark: one wins.
		var wins int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.SpendMarks(ctx, [][]byte{[]byte("race")}, app.ID, t0.Add(time.Minute), t0) == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d concurrent spends of one mark won, want 1", wins)
		}
	})

	testPasswordlessSteps(t, open)

	t.Run("UserByEmail", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "shop"), mkApp(t, s, "other")
		ana := twofold.User{AppID: app.ID, Email: "Ana@Example.com", CountryCode: 1, Phone: "2015550100", CreatedAt: t0}
		if _, err := s.CreateUser(ctx, &ana); err != nil {
			t.Fatal(err)
		}
		for _, u := range []twofold.User{
			{AppID: app.ID, Email: "bo@example.com", CountryCode: 1, Phone: "2015550101", CreatedAt: t0},
			{AppID: app.ID, Email: "BO@example.com", CountryCode: 1, Phone: "2015550102", CreatedAt: t0},
			{AppID: other.ID, Email: "cy@example.com", CountryCode: 1, Phone: "2015550103", CreatedAt: t0},
		} {
			if _, err := s.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.UserByEmail(ctx, app.ID, "ana@EXAMPLE.com"); err != nil || got.ID != ana.ID {
			t.Errorf("UserByEmail(ana) = %+v, %v", got, err)
		}
		if _, err := s.UserByEmail(ctx, app.ID, "bo@example.com"); !errors.Is(err, twofold.ErrConflict) {
			t.Errorf("an email two users have: %v, want ErrConflict", err)
		}
		for _, email := range []string{"cy@example.com", "", "nobody@example.com"} {
			if _, err := s.UserByEmail(ctx, app.ID, email); !errors.Is(err, twofold.ErrNotFound) {
				t.Errorf("UserByEmail(%q): %v, want ErrNotFound", email, err)
			}
		}
	})
}
