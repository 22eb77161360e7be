package passkeys_test

import (
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// FuzzFinish answers real ceremonies with arbitrary bytes: whatever arrives, the answer is a
// domain error (never an internal one, never a panic) or, for the one valid seed, a success.
func FuzzFinish(f *testing.F) {
	f.Add([]byte(`{}`), false)
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}`), false)
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`), true)
	f.Add([]byte(`not json`), true)
	f.Add([]byte(`{"response":{"userHandle":"`+string(make([]byte, 100))+`"}}`), false)
	fx := newFixture(f, openSQLite(f))
	fx.register(fx.app, fx.ana, "")
	f.Fuzz(func(t *testing.T, body []byte, registration bool) {
		fx.clock.Advance(time.Hour) // the failure limit's window has passed
		ctx := t.Context()
		var err error
		if registration {
			c, berr := fx.svc.BeginRegistration(ctx, fx.app, fx.ana.ID, "")
			if berr != nil {
				t.Fatal(berr)
			}
			_, err = fx.svc.FinishRegistration(ctx, fx.app, fx.ana.ID, c.ID, body, "")
		} else {
			for _, user := range []int64{fx.ana.ID, 0} {
				c, berr := fx.svc.BeginLogin(ctx, fx.app, user)
				if berr != nil {
					t.Fatal(berr)
				}
				if _, err = fx.svc.FinishLogin(ctx, fx.app, c.ID, body); err == nil {
					t.Fatalf("accepted %q", body)
				}
			}
		}
		if code := twofold.ErrorCode(err); err == nil || code == twofold.CodeInternal {
			t.Fatalf("%q: %v", body, err)
		}
	})
}
