package users_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

func newService(t *testing.T) (*users.Service, int64, int64) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	a := apps.New(st, keys, nil)
	one, _, _ := a.Create(context.Background(), apps.CreateParams{Name: "One"})
	two, _, _ := a.Create(context.Background(), apps.CreateParams{Name: "Two"})
	return users.New(st, nil), one.ID, two.ID
}

func TestRegisterValidation(t *testing.T) {
	tests := []struct {
		name   string
		c      users.Contact
		fields map[string]string
	}{
		{"valid", users.Contact{"ada@example.com", "201-555-0123", "1"}, nil},
		{"valid with plus", users.Contact{"ada@Example.COM", "+1 201 555 0123", "+1"}, nil},
		{"bad email", users.Contact{"ada", "2015550123", "1"}, map[string]string{"email": "is invalid"}},
		{"named email", users.Contact{"Ada <ada@example.com>", "2015550123", "1"}, map[string]string{"email": "is invalid"}},
		{"bad phone", users.Contact{"ada@example.com", "555", "1"}, map[string]string{"cellphone": "is invalid"}},
		// Authy's texts for blank fields (co-authy's sandbox-era fixtures): email "is invalid and
		// can't be blank", cellphone and country_code "is invalid".
		{"blank email", users.Contact{" ", "2015550123", "1"}, map[string]string{"email": "is invalid and can't be blank"}},
		{"blank phone", users.Contact{"ada@example.com", " ", "1"}, map[string]string{"cellphone": "is invalid"}},
		{"bad country", users.Contact{"ada@example.com", "2015550123", "999"}, map[string]string{"country_code": "is not supported"}},
		{"no country", users.Contact{"ada@example.com", "2015550123", ""}, map[string]string{"country_code": "is invalid"}},
		{"blank phone, bad country", users.Contact{"ada@example.com", "", "-100"},
			map[string]string{"cellphone": "is invalid", "country_code": "is not supported"}},
		{"all blank", users.Contact{"", "", ""},
			map[string]string{"email": "is invalid and can't be blank", "cellphone": "is invalid", "country_code": "is invalid"}},
		{"all wrong", users.Contact{"", "x", "1"}, map[string]string{"email": "is invalid and can't be blank", "cellphone": "is invalid"}},
		{"off the numbering plan", users.Contact{"ada@example.com", "111-111-1111", "1"}, map[string]string{"cellphone": "is invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, app, _ := newService(t)
			u, created, err := svc.Register(context.Background(), app, tt.c)
			if tt.fields == nil {
				if err != nil || !created || u.Phone != "2015550123" || u.CountryCode != 1 {
					t.Fatalf("Register = %+v %v %v", u, created, err)
				}
				if u.Email != "ada@example.com" {
					t.Fatalf("email %q: the domain is not lower-cased", u.Email)
				}
				return
			}
			e, ok := err.(*twofold.Error)
			if !ok || e.Code != twofold.CodeUserNotValid || e.Message != "User was not valid" {
				t.Fatalf("err = %v", err)
			}
			if d := cmp.Diff(tt.fields, e.Fields); d != "" {
				t.Fatalf("fields (-want +got):\n%s", d)
			}
		})
	}
}

func TestUserLifecycle(t *testing.T) {
	ctx := context.Background()
	svc, one, two := newService(t)
	u, _, err := svc.Register(ctx, one, users.Contact{"a@example.com", "2015550123", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, two, u.ID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("another app reads the user: %v", err)
	}
	if _, err := svc.Update(ctx, one, u.ID, users.Change{}); twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
		t.Fatalf("empty update: %v", err)
	}
	other, _, _ := svc.Register(ctx, one, users.Contact{"b@example.com", "2015550124", "1"})
	if _, err := svc.Update(ctx, one, other.ID, users.Change{Cellphone: "2015550123"}); twofold.ErrorCode(err) != twofold.CodeUserNotValid {
		t.Fatalf("update to a taken phone: %v", err)
	}
	got, err := svc.Update(ctx, one, u.ID, users.Change{Email: "new@example.com", Cellphone: "(201) 555-0199"})
	if err != nil || got.Email != "new@example.com" || got.Phone != "2015550199" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if err := svc.RegisterActivity(ctx, one, u.ID, "cookie_login", map[string]string{"ip": "1.2.3.4"}, "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
	if err := svc.RegisterActivity(ctx, one, u.ID, "dance", nil, ""); twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
		t.Fatalf("unknown activity: %v", err)
	}
	if err := svc.Delete(ctx, two, u.ID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("another app deletes the user: %v", err)
	}
	if err := svc.Delete(ctx, one, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Status(ctx, one, u.ID); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("status after delete: %v", err)
	}
}

// TestSandboxNumbers: a sandbox application's users may have any 7 to 15 digits for a phone
// number, at registration and on update; the texts of errors are production's.
func TestSandboxNumbers(t *testing.T) {
	ctx := context.Background()
	svc, sandbox, production := newSandboxService(t)
	u, created, err := svc.Register(ctx, sandbox, users.Contact{"ada@example.com", "111-111-1111", "1"})
	if err != nil || !created || u.Phone != "1111111111" || u.CountryCode != 1 {
		t.Fatalf("Register = %+v %v %v", u, created, err)
	}
	again, created, err := svc.Register(ctx, sandbox, users.Contact{"bob@example.com", "111 111 1111", "+1"})
	if err != nil || created || again.ID != u.ID {
		t.Fatalf("the same sandbox number again = %+v %v %v", again, created, err)
	}
	got, err := svc.Update(ctx, sandbox, u.ID, users.Change{Cellphone: "825-589-8570", CountryCode: "57"})
	if err != nil || got.Phone != "8255898570" || got.CountryCode != 57 {
		t.Fatalf("Update = %+v %v", got, err)
	}
	if got, err = svc.Update(ctx, sandbox, u.ID, users.Change{Email: "ada2@example.com"}); err != nil || got.Phone != "8255898570" {
		t.Fatalf("an email update keeps the sandbox number: %+v %v", got, err)
	}
	for _, c := range []users.Contact{
		{"ada@example.com", "111-111", "1"},
		{"ada@example.com", "1234567890123456", "1"},
		{"ada@example.com", "111-CALL-NOW", "1"},
	} {
		_, _, err := svc.Register(ctx, sandbox, c)
		if e, ok := err.(*twofold.Error); !ok || e.Fields["cellphone"] != "is invalid" {
			t.Errorf("sandbox Register(%q) = %v", c.Cellphone, err)
		}
	}
	if _, _, err := svc.Register(ctx, production, users.Contact{"ada@example.com", "111-111-1111", "1"}); twofold.ErrorCode(err) != twofold.CodeUserNotValid {
		t.Fatalf("production takes a number off the plan: %v", err)
	}
	p, _, err := svc.Register(ctx, production, users.Contact{"ada@example.com", "2015550123", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, production, p.ID, users.Change{Cellphone: "111-111-1111"}); twofold.ErrorCode(err) != twofold.CodeUserNotValid {
		t.Fatalf("production updates to a number off the plan: %v", err)
	}
}

func newSandboxService(t *testing.T) (*users.Service, int64, int64) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	a := apps.New(st, keys, nil)
	sandbox, _, err := a.Create(context.Background(), apps.CreateParams{Name: "CI", Sandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	production, _, err := a.Create(context.Background(), apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	return users.New(st, nil), sandbox.ID, production.ID
}
