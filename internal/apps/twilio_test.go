package apps

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

type twilioFixture struct {
	st  *store.Store
	svc *Service
	rec *recorder
}

func newTwilioFixture(t *testing.T, keys *seal.Keyring, path string) *twilioFixture {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &twilioFixture{st: st, svc: New(st, keys, nil), rec: &recorder{}}
	f.svc.SetAuditor(f.rec)
	return f
}

func ringOf(t *testing.T, b byte, others ...byte) *seal.Keyring {
	t.Helper()
	var more [][]byte
	for _, o := range others {
		more = append(more, bytes.Repeat([]byte{o}, seal.KeySize))
	}
	keys, err := seal.NewRing(bytes.Repeat([]byte{b}, seal.KeySize), more...)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// The attacker's side of Verify API credentials: every wrong combination is refused alike.
func TestAuthenticateTwilioRefusesWhatIsNotTheCredential(t *testing.T) {
	ctx := context.Background()
	f := newTwilioFixture(t, ringOf(t, 1), filepath.Join(t.TempDir(), store.DatabaseFile))
	a, _, _ := f.svc.Create(ctx, CreateParams{Name: "Shop"})
	b, _, _ := f.svc.Create(ctx, CreateParams{Name: "Other"})
	acct, token, err := f.svc.CreateTwilioAccount(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := f.svc.CreateTwilioKey(ctx, a.ID, "backend")
	if err != nil {
		t.Fatal(err)
	}
	other, otherToken, err := f.svc.CreateTwilioAccount(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidSID("AC", acct.SID) || !ValidSID("SK", key.SID) || len(token) != 32 || len(secret) != 32 {
		t.Fatalf("shapes: account %q token %q key %q secret %q", acct.SID, token, key.SID, secret)
	}
	console, err := f.svc.EnsureConsole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateTwilioAccount(ctx, console.ID); !errors.Is(err, ErrInvalid) {
		t.Errorf("an account for the console's application: %v", err)
	}

	for _, c := range []struct{ name, user, password string }{
		{"no password", acct.SID, ""},
		{"wrong token", acct.SID, strings.Repeat("0", 32)},
		{"the token with its last digit changed", acct.SID, token[:31] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", token[31])+1)%16])},
		{"the key's secret with the account's SID", acct.SID, secret},
		{"the account's token with the key's SID", key.SID, token},
		{"another application's token", acct.SID, otherToken},
		{"this token with another application's SID", other.SID, token},
		{"an upper-case SID", strings.ToUpper(acct.SID[:2]) + strings.ToUpper(acct.SID[2:]), token},
		{"a SID with another prefix", "VA" + acct.SID[2:], token},
		{"no SID", "", token},
		{"a SID of the wrong length", acct.SID + "0", token},
	} {
		if _, err := f.svc.AuthenticateTwilio(ctx, c.user, c.password); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", c.name, err)
		}
	}
	for _, c := range []struct{ user, password string }{{acct.SID, token}, {key.SID, secret}} {
		got, err := f.svc.AuthenticateTwilio(ctx, c.user, c.password)
		if err != nil || got.App.ID != a.ID || got.AccountSID != acct.SID || got.SID != c.user {
			t.Errorf("%s: %+v, %v", c.user, got, err)
		}
	}

	// A rotated token and a revoked key stop working at once.
	_, newToken, err := f.svc.RotateTwilioToken(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateTwilio(ctx, acct.SID, token); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("the token before rotation: %v", err)
	}
	if _, err := f.svc.AuthenticateTwilio(ctx, acct.SID, newToken); err != nil {
		t.Errorf("the rotated token: %v", err)
	}
	if err := f.svc.RevokeTwilioKey(ctx, b.ID, key.SID); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("revoking another application's key: %v", err)
	}
	if err := f.svc.RevokeTwilioKey(ctx, a.ID, acct.SID); !errors.Is(err, ErrInvalid) {
		t.Errorf("revoking the account: %v", err)
	}
	if err := f.svc.RevokeTwilioKey(ctx, a.ID, key.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateTwilio(ctx, key.SID, secret); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("a revoked key: %v", err)
	}
	if _, _, err := f.svc.CreateTwilioAccount(ctx, a.ID); !errors.Is(err, ErrInvalid) {
		t.Errorf("a second account: %v", err)
	}
	if _, _, err := f.svc.CreateTwilioKey(ctx, a.ID, "bad\nname"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a key name with a line break: %v", err)
	}

	var got []string
	for _, e := range f.rec.events {
		for _, s := range []string{token, newToken, secret, otherToken} {
			if strings.Contains(detailsOf(e), s) {
				t.Errorf("%s records a secret", e.Action)
			}
		}
		if strings.HasPrefix(e.Action, "twilio_credential.") && e.AppID == a.ID {
			got = append(got, e.Action+" "+e.Details["kind"])
		}
	}
	want := []string{"twilio_credential.created account", "twilio_credential.created key", "twilio_credential.rotated account",
		"twilio_credential.revoked key"}
	if !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if list, err := f.svc.TwilioCredentials(ctx, a.ID); err != nil || len(list) != 1 || list[0].SID != acct.SID {
		t.Errorf("credentials left: %+v, %v", list, err)
	}
}

// A credential made under one master key still works while the ring holds that key, and a
// store opened with another key alone refuses it (it was hashed under the first).
func TestTwilioCredentialsAcrossMasterKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.DatabaseFile)
	old := newTwilioFixture(t, ringOf(t, 1), path)
	a, _, _ := old.svc.Create(ctx, CreateParams{Name: "Shop"})
	acct, token, err := old.svc.CreateTwilioAccount(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	rotating := New(old.st, ringOf(t, 2, 1), nil)
	if _, err := rotating.AuthenticateTwilio(ctx, acct.SID, token); err != nil {
		t.Errorf("with the old key among the others: %v", err)
	}
	if _, err := New(old.st, ringOf(t, 2), nil).AuthenticateTwilio(ctx, acct.SID, token); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("with the new key alone: %v", err)
	}
	sealed, err := old.st.TwilioAccount(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ringOf(t, 2, 1).Open(sealed.SecretSealed, TwilioSecretAD(acct.SID))
	if err != nil || string(plain) != token {
		t.Errorf("the sealed token opens to %q, %v", plain, err)
	}
	if _, err := ringOf(t, 1).Open(sealed.SecretSealed, TwilioSecretAD("AC"+strings.Repeat("0", 32))); err == nil {
		t.Error("the sealed token opens bound to another SID")
	}
}

// Every setting a service has is named when it changes.
func TestChangedServiceSettingsCoversEverySetting(t *testing.T) {
	base := NewVerifyService("Shop")
	st := reflect.TypeOf(twofold.VerifyServiceSettings{})
	for i := range st.NumField() {
		changed := base
		v := reflect.ValueOf(&changed.Settings).Elem().Field(i)
		switch v.Kind() {
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int:
			v.SetInt(v.Int() + 1)
		case reflect.String:
			v.SetString(v.String() + "x")
		default:
			t.Fatalf("VerifyServiceSettings.%s is a %s: teach this test and changedServiceSettings about it", st.Field(i).Name, v.Kind())
		}
		if got := changedServiceSettings(base, changed); len(got) != 1 {
			t.Errorf("VerifyServiceSettings.%s changed: named %v, want exactly one name", st.Field(i).Name, got)
		}
	}
}

func TestVerifyServiceValidation(t *testing.T) {
	ctx := context.Background()
	f := newTwilioFixture(t, ringOf(t, 1), filepath.Join(t.TempDir(), store.DatabaseFile))
	a, _, _ := f.svc.Create(ctx, CreateParams{Name: "Shop"})
	b, _, _ := f.svc.Create(ctx, CreateParams{Name: "Other"})
	for _, c := range []struct {
		name   string
		change func(*twofold.VerifyService)
		fields []string
	}{
		{"empty name", func(v *twofold.VerifyService) { v.Name = "  " }, []string{"name"}},
		{"33 characters", func(v *twofold.VerifyService) { v.Name = strings.Repeat("é", 33) }, []string{"name"}},
		{"a line break", func(v *twofold.VerifyService) { v.Name = "Shop\r\nEvil" }, []string{"name"}},
		{"a bidi control", func(v *twofold.VerifyService) { v.Name = "\u202eShop" }, []string{"name"}},
		{"code length 3 and TOTP all wrong", func(v *twofold.VerifyService) {
			v.CodeLength, v.Settings.TOTPTimeStep, v.Settings.TOTPCodeLength, v.Settings.TOTPSkew = 3, 61, 9, 3
		}, []string{"code_length", "totp_time_step", "totp_code_length", "totp_skew"}},
		{"a huge issuer", func(v *twofold.VerifyService) { v.Settings.TOTPIssuer = strings.Repeat("x", 256) }, []string{"totp_issuer"}},
	} {
		v := NewVerifyService("Shop")
		c.change(&v)
		_, err := f.svc.CreateVerifyService(ctx, a, v)
		var bad InvalidSettings
		if !errors.As(err, &bad) {
			t.Errorf("%s: %v, want InvalidSettings", c.name, err)
			continue
		}
		var fields []string
		for _, e := range bad {
			fields = append(fields, e.Field)
		}
		if !slices.Equal(fields, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.name, fields, c.fields)
		}
	}
	v, err := f.svc.CreateVerifyService(ctx, a, NewVerifyService(" Shop "))
	if err != nil || v.Name != "Shop" || !twofold.ValidPublicID(v.PublicID) || v.AppID != a.ID {
		t.Fatalf("a valid service: %+v, %v", v, err)
	}
	if _, err := f.svc.VerifyService(ctx, b, v.PublicID); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("another application reads it: %v", err)
	}
	v.Name, v.Settings.CustomCodeEnabled = "Shop 2", true
	if _, err := f.svc.UpdateVerifyService(ctx, b, v); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("another application changes it: %v", err)
	}
	if err := f.svc.DeleteVerifyService(ctx, b, v.PublicID); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("another application deletes it: %v", err)
	}
	if _, err := f.svc.UpdateVerifyService(ctx, a, v); err != nil {
		t.Fatal(err)
	}
	last := f.rec.events[len(f.rec.events)-1]
	if last.Action != twofold.AuditVerifyServiceUpdated || last.Details["changed"] != "name,custom_code_enabled" {
		t.Errorf("recorded %s %v", last.Action, last.Details)
	}
}
