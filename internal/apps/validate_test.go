package apps

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// A change with several wrong settings is refused with every one of them, by field, in the
// form's order; nothing is saved. Validate says the same and saves nothing either.
func TestUpdateReportsEveryInvalidSetting(t *testing.T) {
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	svc := New(st, keys, nil)
	a, _, err := svc.Create(ctx, CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	u := Update{Name: ptrTo(""), TokenLength: ptrTo(11), TOTPDigits: ptrTo(9), TOTPPeriod: ptrTo(5), TOTPSkew: ptrTo(4),
		DeviceTOTPPeriod: ptrTo(500), CallbackURL: ptrTo("ftp://x"), CallbackMethod: ptrTo("PUT"), ContactEmail: ptrTo("nope"),
		AllowedCountries: &[]string{"US", "XX"}, Providers: map[twofold.Channel]string{twofold.Call: "smtp"}}
	want := InvalidSettings{
		{"name", "name must be 1 to 100 characters"},
		{"contact_email", "contact email is not an email address"},
		{"token_length", "token length must be 6 to 10"},
		{"allowed_countries", `"XX" is not a country code such as US or PT`},
		{"call_provider", `provider "smtp" cannot deliver call (choose from: outbox, twilio)`},
		{"totp_digits", "TOTP digits must be 6 to 8"},
		{"totp_period", "TOTP period must be 10 to 120 seconds"},
		{"totp_window", "TOTP window must be 0 to 3 steps"},
		{"device_totp_period", "device TOTP period must be 10 to 120 seconds"},
		{"callback_url", "callback URL must be an absolute http(s) URL"},
		{"callback_method", "callback method must be POST or GET"},
	}
	for name, do := range map[string]func() error{
		"Update":   func() error { _, err := svc.Update(ctx, a.ID, u); return err },
		"Validate": func() error { return svc.Validate(ctx, a.ID, u) },
	} {
		err := do()
		var got InvalidSettings
		if !errors.As(err, &got) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s = %v, want InvalidSettings wrapping ErrInvalid", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	if got, _ := svc.Get(ctx, a.ID); got.Name != "Shop" || got.TokenLength != 7 {
		t.Fatalf("refused changes were saved: %+v", got)
	}
	if err := svc.Validate(ctx, a.ID, Update{TokenLength: ptrTo(8)}); err != nil {
		t.Fatalf("Validate of a valid change: %v", err)
	}
	if got, _ := svc.Get(ctx, a.ID); got.TokenLength != 7 {
		t.Fatalf("Validate saved: %+v", got)
	}
	// One line for people (the command line prints it).
	if got := (InvalidSettings{{"token_length", "token length must be 6 to 10"}, {"totp_digits", "TOTP digits must be 6 to 8"}}).Error(); got != "invalid: token length must be 6 to 10; TOTP digits must be 6 to 8" {
		t.Errorf("Error() = %q", got)
	}
}

func ptrTo[T any](v T) *T { return &v }
