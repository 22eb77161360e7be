package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

func TestExportSeed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	rec := &recorder{}
	f.svc.SetAuditor(rec)
	a, other := f.app(false), f.app(false)
	withSeed, without := f.user(a, 0), f.user(a, 1)
	enrolled, err := f.svc.Enroll(ctx, a, withSeed.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.ParseURI(enrolled.URI)
	if err != nil {
		t.Fatal(err)
	}
	on := func(app twofold.App) twofold.App { app.MigrationTools = true; return app }

	for _, tc := range []struct {
		name string
		app  twofold.App
		user int64
		want twofold.Code // 0: exported
	}{
		{"migration tools off", a, withSeed.ID, twofold.CodeMigrationToolsDisabled},
		{"migration tools off, an unknown user", a, 999, twofold.CodeMigrationToolsDisabled},
		{"a user with a TOTP app", on(a), withSeed.ID, 0},
		{"a user without one", on(a), without.ID, twofold.CodeAuthenticatorNotFound},
		{"an unknown user", on(a), 999, twofold.CodeUserNotFound},
		{"another application's user", on(other), withSeed.ID, twofold.CodeUserNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := f.svc.ExportSeed(ctx, tc.app, tc.user)
			if tc.want != 0 {
				var de *twofold.Error
				if !errors.As(err, &de) || de.Code != tc.want {
					t.Fatalf("ExportSeed: %v, want error %d", err, tc.want)
				}
				if got := rec.take(); len(got) != 0 {
					t.Fatalf("a refused export recorded %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := otp.TOTP{Secret: key.Secret, Digits: key.Digits, Period: key.Period}
			if !bytes.Equal(e.Secret, key.Secret) || e.Digits != 6 || e.Period != 30 || e.Code != want.Code(f.clock.Now()) {
				t.Fatalf("exported %+v, want the enrolled seed and its code now, %s", e, want.Code(f.clock.Now()))
			}
			got := rec.take()
			if !slices.Equal(got, []string{fmt.Sprintf("user.exported user=%d what=totp_secret", withSeed.ID)}) {
				t.Fatalf("recorded %v", got)
			}
			if s := strings.Join(got, " "); strings.Contains(s, e.Code) || strings.Contains(s, otp.EncodeSecret(e.Secret)) {
				t.Fatalf("the audit trail holds the seed or the code: %s", s)
			}
			// The code was computed, not accepted: it verifies, once.
			if m, code := f.check(a, withSeed, e.Code, verify.CheckParams{}); m != verify.MethodTOTP || code != 0 {
				t.Fatalf("verify the exported code: %q %d", m, code)
			}
			if _, code := f.check(a, withSeed, e.Code, verify.CheckParams{}); code != twofold.CodeTokenReused {
				t.Fatalf("the exported code verified twice (%d)", code)
			}
			rec.take()
		})
	}

	// A later export gives the code of its own time.
	f.clock.Advance(time.Minute)
	e, err := f.svc.ExportSeed(ctx, on(a), withSeed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (otp.TOTP{Secret: key.Secret, Digits: 6, Period: 30}).Code(f.clock.Now()); e.Code != want {
		t.Fatalf("code a minute later %s, want %s", e.Code, want)
	}
}
