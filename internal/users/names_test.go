package users_test

import (
	"context"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

func TestLabel(t *testing.T) {
	for _, tc := range []struct {
		u    twofold.User
		want string
	}{
		{twofold.User{ID: 7, Email: "ada@example.com", CustomUserID: "c-1", CountryCode: 1, Phone: "2015550123"}, "ada@example.com"},
		{twofold.User{ID: 7, CustomUserID: "c-1"}, "c-1"},
		{twofold.User{ID: 7, CountryCode: 351, Phone: "912345678"}, "+351 912345678"},
		{twofold.User{ID: 7}, "user 7"},
	} {
		if got := users.Label(tc.u); got != tc.want {
			t.Errorf("Label(%+v) = %q, want %q", tc.u, got, tc.want)
		}
	}
}

// Find names the users of several applications at once and never mixes them up: the same id
// in two applications is two users.
func TestFindAndFactors(t *testing.T) {
	s, one, two := newService(t)
	ctx := context.Background()
	ada, _, err := s.Register(ctx, one, users.Contact{Email: "ada@example.com", Cellphone: "2015550123", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := s.Register(ctx, two, users.Contact{Email: "bob@example.com", Cellphone: "2015550124", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Find(ctx, []users.Ref{{AppID: one, ID: ada.ID}, {AppID: two, ID: bob.ID}, {AppID: one, ID: bob.ID}, {AppID: two, ID: ada.ID}, {AppID: one, ID: 0}, {AppID: one, ID: ada.ID}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[users.Ref]string{{AppID: one, ID: ada.ID}: "ada@example.com", {AppID: two, ID: bob.ID}: "bob@example.com"}
	if ada.ID == bob.ID { // public ids are per server, so they differ; keep the test honest if not
		t.Fatalf("ada and bob share id %d", ada.ID)
	}
	if len(got) != len(want) {
		t.Errorf("Find found %d users, want %d: %v", len(got), len(want), got)
	}
	for ref, email := range want {
		if got[ref].Email != email {
			t.Errorf("Find: %+v is %q, want %q", ref, got[ref].Email, email)
		}
	}
	f, err := s.Factors(ctx, one, []int64{ada.ID})
	if err != nil || f[ada.ID] != (twofold.UserFactors{}) {
		t.Errorf("Factors of a user with none = %v, %v", f, err)
	}
}
