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
	"github.com/twofold-auth/twofold/internal/store/storetest"
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

// BenchmarkCheckLimited is verify/{token}/{id} below HTTP with the failure limit on at its
// default (10 per 15 minutes), as in production, on SQLite and (with TWOFOLD_TEST_POSTGRES) on
// PostgreSQL: totp-valid counts an attempt, judges the code and gives the attempt back;
// totp-locked is a guess for a user the limit has locked out, refused on a read.
func BenchmarkCheckLimited(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "twofold.db") }},
		{"postgres", func(b *testing.B) string { return storetest.Schema(b) }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, e.open(b))
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
			svc := verify.New(st, router, keys, verify.DefaultConfig(), c.Now)
			app, _, err := apps.New(st, keys, c.Now).Create(ctx, apps.CreateParams{Name: "Bench"})
			if err != nil {
				b.Fatal(err)
			}
			us := users.New(st, c.Now)
			enrolled := func(phone string) (twofold.User, otp.Key) {
				u, _, err := us.Register(ctx, app.ID, users.Contact{Email: "u@example.com", Cellphone: phone, CountryCode: "1"})
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
				return u, k
			}
			u, k := enrolled("2015550123")
			period := time.Duration(k.Period) * time.Second
			b.Run("totp-valid", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.Advance(period)
					if _, err := svc.Check(ctx, app, u.ID, k.Code(c.Now()), verify.CheckParams{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			locked, lk := enrolled("2015550124")
			wrong := lk.Code(c.Now().Add(time.Hour))
			for range verify.DefaultConfig().FailureLimit.N {
				svc.Check(ctx, app, locked.ID, wrong, verify.CheckParams{})
			}
			b.Run("totp-locked", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := svc.Check(ctx, app, locked.ID, wrong, verify.CheckParams{}); twofold.ErrorCode(err) != twofold.CodeRateLimited {
						b.Fatalf("guess for a locked-out user: %v", err)
					}
				}
			})
		})
	}
}
