package verifyfactors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// events makes events that note what they report, or fails to make them.
type events struct {
	got    []string
	queued int
	fail   error
}

func (e *events) made(what string) (twofold.VerifyWebhookEvent, error) {
	if e.fail != nil {
		return twofold.VerifyWebhookEvent{}, e.fail
	}
	e.got = append(e.got, what)
	return twofold.VerifyWebhookEvent{Event: what}, nil
}

func (e *events) FactorEvent(_ context.Context, event string, _ twofold.VerifyService, u twofold.User, f twofold.VerifyFactor) (twofold.VerifyWebhookEvent, error) {
	return e.made(fmt.Sprintf("%s %s %s %s", event, u.CustomUserID, f.Type, f.Status))
}

func (e *events) ChallengeEvent(_ context.Context, _ twofold.VerifyService, u twofold.User, c twofold.VerifyChallenge) (twofold.VerifyWebhookEvent, error) {
	return e.made(fmt.Sprintf("challenge %s %s %s", u.CustomUserID, c.Status, c.RespondedReason))
}

func (e *events) Queued() { e.queued++ }

// TestEvents: an event of each factor made, verified and deleted and each challenge answered is
// made before the change, with what the change stores, and committed with it; without Events
// nothing breaks.
// shop opens a store with an application and its Verify service.
func shop(t *testing.T) (*store.Store, *seal.Keyring, twofold.App, twofold.VerifyService) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	as := apps.New(st, keys, nil)
	app, _, err := as.Create(ctx, apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := as.CreateVerifyService(ctx, app, apps.NewVerifyService("Shop"))
	if err != nil {
		t.Fatal(err)
	}
	return st, keys, app, svc
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	st, keys, app, svc := shop(t)
	for _, ev := range []*events{{}, nil} {
		s := verifyfactors.New(st, keys, nil)
		identity := "without-events"
		if ev != nil {
			s.SetEvents(ev)
			identity = "with-events-1"
		}
		u, _, err := s.CreateEntity(ctx, app, identity)
		if err != nil {
			t.Fatal(err)
		}
		made, err := s.CreateTOTPFactor(ctx, app, svc, u, verifyfactors.TOTPFactor{Name: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		totp := otp.TOTP{Secret: made.Secret}
		f, err := s.VerifyFactor(ctx, svc, u, made.Factor, totp.Code(time.Now().Add(-30*time.Second)))
		if err != nil || f.Status != twofold.FactorVerified {
			t.Fatalf("verify: %+v, %v", f, err)
		}
		c, err := s.CreateChallenge(ctx, app, svc, u, f, verifyfactors.NewChallenge{AuthPayload: totp.Code(time.Now())})
		if err != nil || c.Status != twofold.ChallengeApproved {
			t.Fatalf("challenge: %+v, %v", c, err)
		}
		if err := s.DeleteFactor(ctx, svc, u, f); err != nil {
			t.Fatal(err)
		}
		if ev != nil {
			want := []string{"factor.created with-events-1 totp unverified", "factor.verified with-events-1 totp verified",
				"challenge with-events-1 approved none", "factor.deleted with-events-1 totp verified"}
			if fmt.Sprint(ev.got) != fmt.Sprint(want) || ev.queued != len(want) {
				t.Errorf("events %q, told of %d commits; want %q", ev.got, ev.queued, want)
			}
		}
	}
}

// TestEventsGoWithTheirChange: a change whose event cannot be made is not made either, so a
// webhook never misses a change that happened (the store queues the event in the change's
// transaction, and a crash keeps both or neither).
func TestEventsGoWithTheirChange(t *testing.T) {
	ctx := context.Background()
	st, keys, app, svc := shop(t)
	ev := &events{}
	s := verifyfactors.New(st, keys, nil)
	s.SetEvents(ev)
	u, _, err := s.CreateEntity(ctx, app, "entity-one")
	if err != nil {
		t.Fatal(err)
	}
	made, err := s.CreateTOTPFactor(ctx, app, svc, u, verifyfactors.TOTPFactor{Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	totp := otp.TOTP{Secret: made.Secret}

	ev.fail = errors.New("no event")
	if _, err := s.CreateTOTPFactor(ctx, app, svc, u, verifyfactors.TOTPFactor{Name: "tablet"}); err == nil {
		t.Error("a factor was made without its factor.created event")
	}
	if f, err := s.VerifyFactor(ctx, svc, u, made.Factor, totp.Code(time.Now())); err == nil && f.Status == twofold.FactorVerified {
		t.Error("a factor was verified without its factor.verified event")
	}
	if err := s.DeleteFactor(ctx, svc, u, made.Factor); err == nil {
		t.Error("a factor was deleted without its factor.deleted event")
	}
	list, err := s.Factors(ctx, svc, u, 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].PublicID != made.Factor.PublicID || list[0].Status != twofold.FactorUnverified {
		t.Errorf("factors after changes without events: %+v, want the one unverified factor as it was", list)
	}
	if ev.queued != 1 {
		t.Errorf("told of %d commits with events, want 1 (the first factor's)", ev.queued)
	}
}
