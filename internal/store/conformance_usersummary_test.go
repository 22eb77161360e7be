package store

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testUserSummaries covers the console's users by the handful: by public id, within one
// application, and what each has enrolled.
func testUserSummaries(t *testing.T, open func(t *testing.T) *Store) {
	s, ctx := open(t), t.Context()
	a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
	ada := mkUser(t, s, a.ID, 1, "2015550123")
	bob := mkUser(t, s, a.ID, 1, "2015550124")
	qr := twofold.User{AppID: a.ID, CustomUserID: "shop-user-7", CreatedAt: t0}
	if _, err := s.CreateCustomUser(ctx, &qr); err != nil {
		t.Fatal(err)
	}
	other := mkUser(t, s, b.ID, 1, "2015550125")
	mkAuthenticator(t, s, ada)
	mkDevice(t, s, ada, "phone", t0)
	mkDevice(t, s, ada, "tablet", t0)
	mkDevice(t, s, qr, "phone", t0)

	got, err := s.UsersByID(ctx, a.ID, []int64{ada.ID, qr.ID, other.ID, 999999})
	must(t, err)
	slices.SortFunc(got, func(x, y twofold.User) int { return int(x.ID - y.ID) })
	want := []twofold.User{ada, qr}
	slices.SortFunc(want, func(x, y twofold.User) int { return int(x.ID - y.ID) })
	if d := cmp.Diff(want, got, cmp.Comparer(func(x, y twofold.User) bool {
		return x.ID == y.ID && x.AppID == y.AppID && x.Email == y.Email && x.CustomUserID == y.CustomUserID && x.Phone == y.Phone
	})); d != "" {
		t.Errorf("UsersByID: another application's user or an unknown id came back, or one is missing (-want +got):\n%s", d)
	}
	if got, err := s.UsersByID(ctx, a.ID, nil); err != nil || len(got) != 0 {
		t.Errorf("UsersByID(none) = %v, %v", got, err)
	}

	factors, err := s.UserFactors(ctx, a.ID, []int64{ada.ID, bob.ID, qr.ID, other.ID})
	must(t, err)
	wantF := map[int64]twofold.UserFactors{ada.ID: {Authenticator: true, Devices: 2}, bob.ID: {}, qr.ID: {Devices: 1}}
	if d := cmp.Diff(wantF, factors); d != "" {
		t.Errorf("UserFactors (-want +got):\n%s", d)
	}
}
