package verify_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// BenchmarkCheck is verify/{token}/{id} below HTTP: the service on a real SQLite file (WAL,
// synchronous=FULL, as the server opens it), limits off as in the load bench. Its CPU profile
// (go test -bench=Check -cpuprofile) is where BENCHMARKS.md's findings on verify come from.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "twofold.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	log := slog.New(slog.DiscardHandler)
	router, err := deliver.NewRouter(deliver.NewOutbox(st, keys, log, c.Now), nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	cfg := verify.DefaultConfig()
	cfg.FailureLimit, cfg.SendLimit, cfg.NumberSendLimit, cfg.CountrySendLimit, cfg.AppSendLimit =
		verify.Limit{}, verify.Limit{}, verify.Limit{}, verify.Limit{}, verify.Limit{}
	svc := verify.New(st, router, keys, cfg, c.Now)
	app, _, err := apps.New(st, keys, c.Now).Create(ctx, apps.CreateParams{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	us := users.New(st, c.Now)
	u, _, err := us.Register(ctx, app.ID, users.Contact{Email: "u@example.com", Cellphone: "2015550123", CountryCode: "1"})
	if err != nil {
		b.Fatal(err)
	}
	e, err := svc.Enroll(ctx, app, u.ID, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	k, err := otp.ParseURI(e.URI)
	if err != nil {
		b.Fatal(err)
	}
	period := time.Duration(k.Period) * time.Second

	b.Run("totp-valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Advance(period) // a new step: each code verifies once
			if _, err := svc.Check(ctx, app, u.ID, k.Code(c.Now()), verify.CheckParams{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("totp-wrong", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wrong := k.Code(c.Now().Add(time.Hour))
			if _, err := svc.Check(ctx, app, u.ID, wrong, verify.CheckParams{}); twofold.ErrorCode(err) != twofold.CodeTokenInvalid {
				b.Fatalf("wrong code: %v", err)
			}
		}
	})
	b.Run("unknown-user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Check(ctx, app, u.ID+1000, "1234567", verify.CheckParams{}); err == nil {
				b.Fatal("unknown user verified")
			}
		}
	})
}
