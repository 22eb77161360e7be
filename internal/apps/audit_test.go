package apps

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

type recorder struct{ events []twofold.AuditEvent }

func (r *recorder) Record(_ context.Context, e twofold.AuditEvent) { r.events = append(r.events, e) }

// Every setting an application has is named when it changes: a field added to Settings later
// without a line in changedSettings fails here.
func TestChangedSettingsCoversEverySetting(t *testing.T) {
	base := twofold.App{Name: "a", Settings: twofold.DefaultSettings()}
	st := reflect.TypeOf(twofold.Settings{})
	for i := range st.NumField() {
		field := st.Field(i)
		changed := base
		changed.Providers = map[twofold.Channel]string{}
		v := reflect.ValueOf(&changed.Settings).Elem().Field(i)
		switch v.Kind() {
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int:
			v.SetInt(v.Int() + 1)
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("PT")))
		case reflect.Map:
			if field.Name == "Limits" {
				c := base
				c.Limits = map[twofold.LimitKind]twofold.Limit{twofold.LimitAppSends: {N: 1, Window: time.Hour}}
				if got := changedSettings(base, c); !slices.Equal(got, []string{"limits"}) {
					t.Errorf("limits changed: named %v", got)
				}
				continue
			}
			if field.Name != "Providers" {
				t.Fatalf("Settings.%s is a map: teach this test and changedSettings about it", field.Name)
			}
			for _, ch := range []twofold.Channel{twofold.SMS, twofold.Call, twofold.Email} {
				c := base
				c.Providers = map[twofold.Channel]string{ch: "outbox"}
				if got := changedSettings(base, c); !slices.Equal(got, []string{string(ch) + "_provider"}) {
					t.Errorf("provider of %s changed: named %v", ch, got)
				}
			}
			continue
		default:
			t.Fatalf("Settings.%s is a %s: teach this test and changedSettings about it", field.Name, v.Kind())
		}
		if got := changedSettings(base, changed); len(got) != 1 {
			t.Errorf("Settings.%s changed: named %v, want exactly one name", field.Name, got)
		}
	}
	if got := changedSettings(base, base); len(got) != 0 {
		t.Errorf("nothing changed: named %v", got)
	}
}

func TestAppEventsAreRecorded(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	svc := New(st, keys, nil)
	rec := &recorder{}
	svc.SetAuditor(rec)

	a, key, err := svc.Create(ctx, CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, newKey, err := svc.RotateKey(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	url, email, on := "https://user:secret@cb.example/hook", "owner@example.com", true
	if _, err := svc.Update(ctx, a.ID, Update{CallbackURL: &url, ContactEmail: &email, NumberMatching: &on}); err != nil {
		t.Fatal(err)
	}
	name := "Shop" // the same as before: nothing changes, nothing is recorded
	if _, err := svc.Update(ctx, a.ID, Update{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, a.ID, Update{EnableCallback: true}); err != nil {
		t.Fatal(err)
	}
	bad := 99
	if _, err := svc.Update(ctx, a.ID, Update{TokenLength: &bad}); err == nil {
		t.Fatal("token length 99 accepted")
	}

	var got []string
	for _, e := range rec.events {
		if e.AppID != a.ID || e.Actor != "" {
			t.Errorf("%s: app %d actor %q; want app %d and the actor left to the trail", e.Action, e.AppID, e.Actor, a.ID)
		}
		got = append(got, e.Action+" "+detailsOf(e))
		for _, secret := range []string{key, newKey, "secret", email} {
			if strings.Contains(detailsOf(e), secret) {
				t.Errorf("%s records %q", e.Action, secret)
			}
		}
	}
	want := []string{
		"app.created imported_key=false name=Shop sandbox=false",
		"app.key_rotated ",
		"app.updated changed=callback_url,contact_email,number_matching",
		"app.updated changed=callback_enabled",
	}
	if !slices.Equal(got, want) {
		t.Errorf("recorded\n%q\nwant\n%q", got, want)
	}
}

func detailsOf(e twofold.AuditEvent) string {
	var parts []string
	for k, v := range e.Details {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
