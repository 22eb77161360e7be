package verifyfactors_test

import (
	"bytes"
	"context"
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

// events notes what the service told it.
type events struct{ got []string }

func (e *events) FactorCreated(_ context.Context, _ twofold.VerifyService, u twofold.User, f twofold.VerifyFactor) {
	e.got = append(e.got, fmt.Sprintf("created %s %s %s", u.CustomUserID, f.Type, f.Status))
}
func (e *events) FactorVerified(_ context.Context, _ twofold.VerifyService, u twofold.User, f twofold.VerifyFactor) {
	e.got = append(e.got, fmt.Sprintf("verified %s %s", u.CustomUserID, f.Type))
}
func (e *events) FactorDeleted(_ context.Context, _ twofold.VerifyService, u twofold.User, f twofold.VerifyFactor) {
	e.got = append(e.got, fmt.Sprintf("deleted %s %s", u.CustomUserID, f.Type))
}
func (e *events) ChallengeAnswered(_ context.Context, _ twofold.VerifyService, u twofold.User, c twofold.VerifyChallenge) {
	e.got = append(e.got, fmt.Sprintf("answered %s %s", u.CustomUserID, c.Status))
}

// TestEvents: the hook webhooks hang on is told of each factor made, verified and deleted and
// each challenge answered, after the fact; without one nothing breaks.
func TestEvents(t *testing.T) {
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
			want := []string{"created with-events-1 totp unverified", "verified with-events-1 totp", "answered with-events-1 approved",
				"deleted with-events-1 totp"}
			if fmt.Sprint(ev.got) != fmt.Sprint(want) {
				t.Errorf("events %q, want %q", ev.got, want)
			}
		}
	}
}
