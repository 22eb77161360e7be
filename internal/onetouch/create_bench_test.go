package onetouch_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/users"
)

// BenchmarkCreate is POST /onetouch/json/users/{id}/approval_requests below HTTP: the service
// on a real SQLite file (WAL, synchronous=FULL, as the server opens it), as the load bench's
// "approval request create" runs it: users with a registered device, created round-robin, the
// pending limit out of the way, each user with 50 requests pending already (seeded: the load
// bench's users have about as many half way through, as its limit is a million). serial
// is one caller, so mostly the commit's fsync; parallel is 32 callers per core sharing commits
// (the group-commit writer), so mostly the CPU each request costs.
//
// Pending requests pile up as it runs (5 per user per thousand iterations), so compare runs of
// the same length: go test -run X -bench Create -benchtime 5000x -count 3 ./internal/onetouch/
func BenchmarkCreate(b *testing.B) {
	const nUsers, seeded = 200, 50
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
	appSvc := apps.New(st, keys, c.Now)
	app, _, err := appSvc.Create(ctx, apps.CreateParams{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	svc := onetouch.New(st, onetouch.Config{MaxPending: 1_000_000}, onetouch.Hooks{}, c.Now)
	us, ds := users.New(st, c.Now), devices.New(st, keys, appSvc.Reveal, time.Minute, c.Now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ids := make([]int64, nUsers)
	var wg sync.WaitGroup
	errs := make(chan error, nUsers)
	for i := range ids {
		wg.Go(func() {
			u, _, err := us.Register(ctx, app.ID, users.Contact{Email: "u@example.com", Cellphone: fmt.Sprintf("20155%05d", i), CountryCode: "1"})
			if err != nil {
				errs <- err
				return
			}
			token, _, err := ds.RegistrationToken(ctx, app.ID, u.ID)
			if err == nil {
				_, err = ds.Register(ctx, token, der, "phone", "ios")
			}
			for range seeded {
				if err == nil {
					_, err = svc.Create(ctx, app, u.ID, ask)
				}
			}
			if err != nil {
				errs <- err
			}
			ids[i] = u.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	var next atomic.Int64
	create := func() error {
		_, err := svc.Create(ctx, app, ids[next.Add(1)%nUsers], ask)
		return err
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := create(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := create(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// ask is what the load bench asks: message=Sign+in+to+Bench&details[ip]=127.0.0.1&seconds_to_expire=3600.
var ask = onetouch.CreateParams{Message: "Sign in to Bench", Details: map[string]string{"ip": "127.0.0.1"}, SecondsToExpire: ptr(int64(3600))}

func ptr[T any](v T) *T { return &v }
