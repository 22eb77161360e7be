package passwordless_test

import (
	"testing"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
)

// BenchmarkPasswordlessBegin measures Begin for a user with a device (a request sent) and for a
// name of nobody (a phantom), on SQLite, with the limits off. The two should cost about the same;
// nothing here asserts it (timings vary with the machine), the numbers are for reading side by
// side.
func BenchmarkPasswordlessBegin(b *testing.B) {
	cfg := passwordless.DefaultConfig()
	cfg.PerUsername, cfg.PerAddress, cfg.PerUser = passwordless.Unlimited, passwordless.Unlimited, passwordless.Unlimited
	otCfg := onetouch.DefaultConfig()
	for _, bc := range []struct{ name, email string }{{"known", "ana@example.com"}, {"unknown", "nobody@example.com"}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixtureOn(b, openSQLite(b), cfg, otCfg)
			f.svc.SetAuditor(nil)
			start := passwordless.Start{Email: bc.email, UserIP: "192.0.2.1"}
			b.ResetTimer()
			for b.Loop() {
				s, err := f.svc.Begin(b.Context(), f.app, start)
				if err != nil {
					b.Fatal(err)
				}
				// Close what was sent, untimed, so that the user's pending requests, which each
				// Begin counts, stay as few as a real user's.
				if bc.name == "known" {
					b.StopTimer()
					if _, err := f.ot.Close(b.Context(), f.app, s.UUID); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
		})
	}
}
