package userimport_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/verify"
)

var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

type fixture struct {
	st      *store.Store
	keys    *seal.Keyring
	svc     *userimport.Service
	prod    twofold.App
	sandbox twofold.App
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	a := apps.New(st, keys, nil)
	prod, _, err := a.Create(t.Context(), apps.CreateParams{Name: "Prod"})
	if err != nil {
		t.Fatal(err)
	}
	sandbox, _, err := a.Create(t.Context(), apps.CreateParams{Name: "Sandbox", Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{st, keys, userimport.New(st, keys, func() time.Time { return now }), prod, sandbox}
}

const seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" // 160 bits

func TestCheck(t *testing.T) {
	ok := userimport.Record{ID: 42, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123"}
	for _, tt := range []struct {
		name    string
		edit    func(*userimport.Record)
		sandbox bool
		want    string // "" for valid
	}{
		{"valid", func(*userimport.Record) {}, false, ""},
		{"no phone, no email", func(r *userimport.Record) { r.CountryCode, r.Phone, r.Email = 0, "", "" }, false, ""},
		{"with seed", func(r *userimport.Record) { r.Secret, r.Digits, r.Period = seed, 7, 30 }, false, ""},
		{"lower-case spaced seed", func(r *userimport.Record) { r.Secret = "jbsw y3dp ehpk 3pxp" }, false, ""},
		{"id zero", func(r *userimport.Record) { r.ID = 0 }, false, "id 0"},
		{"id past 2^53", func(r *userimport.Record) { r.ID = userimport.MaxID + 1 }, false, "not between"},
		{"bad email", func(r *userimport.Record) { r.Email = "Ada <ada@example.com>" }, false, "email"},
		{"phone without country", func(r *userimport.Record) { r.CountryCode = 0 }, false, "without a country code"},
		{"country without phone", func(r *userimport.Record) { r.Phone = "" }, false, "without a phone number"},
		{"unknown calling code", func(r *userimport.Record) { r.CountryCode = 999 }, false, "not a calling code"},
		{"not in the plan", func(r *userimport.Record) { r.Phone = "1111111111" }, false, "not valid"},
		{"not in the plan, sandbox", func(r *userimport.Record) { r.Phone = "1111111111" }, true, ""},
		{"too short even in sandbox", func(r *userimport.Record) { r.Phone = "123456" }, true, "not valid"},
		{"seed not base32", func(r *userimport.Record) { r.Secret = "not base32!" }, false, "not base32"},
		{"seed too short", func(r *userimport.Record) { r.Secret = "JBSWY3DP" }, false, "fewer than 80"},
		{"digits 9", func(r *userimport.Record) { r.Secret, r.Digits = seed, 9 }, false, "digits 9"},
		{"period 5", func(r *userimport.Record) { r.Secret, r.Period = seed, 5 }, false, "period 5"},
		{"digits without seed", func(r *userimport.Record) { r.Digits = 6 }, false, "without a seed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := userimport.Check(r, tt.sandbox)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check = %v, want valid", err)
			case tt.want != "" && (err == nil || !errors.Is(err, userimport.ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	records := []userimport.Record{
		{ID: 1001, Email: "ada@example.com", CountryCode: 1, Phone: "(201) 555-0123", Secret: seed, Digits: 7, Line: 2},
		{ID: 1002, Email: "bob@example.com", Line: 3},              // no phone
		{ID: 1003, CountryCode: 1, Phone: "201-555-0123", Line: 4}, // Ada's number
		{ID: 1001, CountryCode: 1, Phone: "2015550199", Line: 5},   // Ada's id again
		{ID: 1004, CountryCode: 1, Phone: "1111111111", Line: 6},   // not in the plan
		{ID: 1005, Email: "eve@example.com", CountryCode: 44, Phone: "7911 123456", Line: 7},
	}
	dry, err := f.svc.Import(ctx, f.prod.ID, records, true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.st.CountUsers(ctx, f.prod.ID); n != 0 {
		t.Fatalf("a dry run wrote %d users", n)
	}
	got, err := f.svc.Import(ctx, f.prod.ID, records, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		outcome userimport.Outcome
		reason  string
		noPhone bool
		seed    bool
	}{
		{userimport.Imported, "", false, true},
		{userimport.Imported, "", true, false},
		{userimport.Failed, "already user 1001's", false, false},
		{userimport.Failed, "came before, at 2", false, false},
		{userimport.Failed, "not valid", false, false},
		{userimport.Imported, "", false, false},
	}
	for i, w := range want {
		for name, res := range map[string]userimport.Result{"dry run": dry[i], "import": got[i]} {
			if res.Outcome != w.outcome || !strings.Contains(res.Reason, w.reason) || res.NoPhone != w.noPhone ||
				res.Seed != w.seed || res.ID != records[i].ID || res.Line != records[i].Line {
				t.Errorf("%s, record %d: %+v; want %+v", name, i, res, w)
			}
		}
	}

	ada, err := f.st.GetUser(ctx, f.prod.ID, 1001)
	if err != nil || ada.Phone != "2015550123" || ada.CountryCode != 1 || ada.Email != "ada@example.com" || !ada.Confirmed {
		t.Fatalf("Ada: %+v, %v", ada, err)
	}
	if eve, _ := f.st.GetUser(ctx, f.prod.ID, 1005); eve.Phone != "7911123456" {
		t.Errorf("Eve's number stored as %q", eve.Phone)
	}
	// The seed is sealed to Ada's row, as an enrolment seals it, and the step of the move is spent.
	a, err := f.st.GetAuthenticator(ctx, f.prod.ID, 1001)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := f.keys.Open(a.SecretSealed, verify.AuthenticatorSeedAD(f.prod.ID, 1001))
	want160, _ := otp.DecodeSecret(seed)
	if err != nil || !bytes.Equal(plain, want160) || a.Digits != 7 || a.Period != 30 {
		t.Fatalf("seed: %x %v, digits %d, period %d", plain, err, a.Digits, a.Period)
	}
	if step := (otp.TOTP{Period: 30}).Step(now); a.LastStep != step {
		t.Errorf("replay state starts at step %d, want the step of the move %d", a.LastStep, step)
	}

	// A resume: everything written is present, nothing doubles.
	again, err := f.svc.Import(ctx, f.prod.ID, records[:2], false)
	if err != nil || again[0].Outcome != userimport.Present || again[1].Outcome != userimport.Present {
		t.Fatalf("re-run: %+v, %v", again, err)
	}
	if n, _ := f.st.CountUsers(ctx, f.prod.ID); n != 3 {
		t.Errorf("users after the re-run: %d, want 3", n)
	}

	// The sandbox takes what its API takes.
	sb, err := f.svc.Import(ctx, f.sandbox.ID, records[4:5], false)
	if err != nil || sb[0].Outcome != userimport.Imported {
		t.Fatalf("sandbox import of 111-111-1111: %+v, %v", sb, err)
	}
}

func TestImportUnknownApp(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Import(t.Context(), 99, []userimport.Record{{ID: 1}}, false); !errors.Is(err, twofold.ErrNotFound) {
		t.Fatalf("import into application 99: %v", err)
	}
}

// TestImportBatches: more records than one transaction takes are written batch by batch, and a
// duplicate across batches is still caught.
func TestImportBatches(t *testing.T) {
	f := newFixture(t)
	records := make([]userimport.Record, userimport.Batch+10)
	for i := range records {
		records[i] = userimport.Record{ID: int64(i + 1), Line: i + 1}
	}
	records[len(records)-1].ID = 1
	got, err := f.svc.Import(t.Context(), f.prod.ID, records, false)
	if err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; last.Outcome != userimport.Failed || !strings.Contains(last.Reason, "came before, at 1") {
		t.Errorf("duplicate across batches: %+v", last)
	}
	if n, _ := f.st.CountUsers(t.Context(), f.prod.ID); n != int64(len(records)-1) {
		t.Errorf("users = %d, want %d", n, len(records)-1)
	}
}

func TestImportRefusesTheConsoleApp(t *testing.T) {
	f := newFixture(t)
	console, err := apps.New(f.st, f.keys, nil).EnsureConsole(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Import(t.Context(), console.ID, []userimport.Record{{ID: 1}}, false); !errors.Is(err, userimport.ErrConsoleApp) {
		t.Fatalf("import into the console's application: %v", err)
	}
	if n, _ := f.st.CountUsers(t.Context(), console.ID); n != 0 {
		t.Fatalf("%d users imported into the console's application", n)
	}
}
