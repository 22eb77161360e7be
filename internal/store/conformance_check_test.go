package store

import (
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testCheckState: the one read a verification starts from agrees with the separate reads it
// replaces, for every combination of codes, authenticator and devices, and is scoped to the
// application.
func testCheckState(t *testing.T, open func(t *testing.T) *Store) {
	s, ctx := open(t), t.Context()
	a, other := mkApp(t, s, "check"), mkApp(t, s, "check-other")
	bare := mkUser(t, s, a.ID, 1, "5550001001")
	withCode := mkUser(t, s, a.ID, 1, "5550001002")
	mkCode(t, s, withCode, "", t0, ttl)
	expired := mkUser(t, s, a.ID, 1, "5550001003")
	mkCode(t, s, expired, "", t0.Add(-time.Hour), ttl)
	withAuth := mkUser(t, s, a.ID, 1, "5550001004")
	auth := mkAuthenticator(t, s, withAuth)
	if ok, err := s.AdvanceStep(ctx, withAuth.AppID, withAuth.ID, auth.Version, 4242); !ok || err != nil {
		t.Fatalf("AdvanceStep = %v, %v", ok, err)
	}
	auth.LastStep = 4242
	withDevice := mkUser(t, s, a.ID, 1, "5550001005")
	mkDevice(t, s, withDevice, "phone", t0)
	everything := mkUser(t, s, a.ID, 1, "5550001006")
	mkCode(t, s, everything, "login", t0, ttl)
	all := mkAuthenticator(t, s, everything)
	mkDevice(t, s, everything, "tablet", t0)
	must(t, s.ConfirmUser(ctx, a.ID, everything.ID))
	everything.Confirmed = true

	for _, tc := range []struct {
		name    string
		user    twofold.User
		codes   bool
		auth    *twofold.Authenticator
		devices bool
	}{
		{"nothing", bare, false, nil, false},
		{"live code", withCode, true, nil, false},
		{"expired code only", expired, false, nil, false},
		{"authenticator with a recorded step", withAuth, false, &auth, false},
		{"device", withDevice, false, nil, true},
		{"everything, confirmed", everything, true, &all, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.CheckState(ctx, a.ID, tc.user.ID, t0, twofold.LimitWindow{})
			must(t, err)
			want := twofold.CheckState{UserID: tc.user.ID, Confirmed: getUser(t, s, a.ID, tc.user.ID).Confirmed,
				LiveCodes: tc.codes, Authenticator: tc.auth, HasDevices: tc.devices}
			if tc.auth != nil {
				stored, err := s.GetAuthenticator(ctx, a.ID, tc.user.ID)
				must(t, err)
				stored.CreatedAt = time.Time{} // not read
				want.Authenticator = &stored
				if stored.LastStep != tc.auth.LastStep || string(stored.SecretSealed) != string(tc.auth.SecretSealed) {
					t.Fatalf("GetAuthenticator = %+v, want %+v", stored, *tc.auth)
				}
			}
			if got.Confirmed != tc.user.Confirmed {
				t.Errorf("confirmed = %v, want %v", got.Confirmed, tc.user.Confirmed)
			}
			if (got.Authenticator == nil) != (want.Authenticator == nil) {
				t.Fatalf("CheckState authenticator = %v, want %v", got.Authenticator, want.Authenticator)
			}
			if want.Authenticator != nil {
				if d := diff(*want.Authenticator, *got.Authenticator); d != "" {
					t.Errorf("CheckState authenticator:%s", d)
				}
				want.Authenticator, got.Authenticator = nil, nil
			}
			if d := diff(want, got); d != "" {
				t.Errorf("CheckState:%s", d)
			}
		})
	}
	// Codes that expire count until they do.
	if got, err := s.CheckState(ctx, a.ID, withCode.ID, t0.Add(ttl), twofold.LimitWindow{}); err != nil || got.LiveCodes {
		t.Errorf("CheckState at the code's expiry: live codes %v, %v; want none", got.LiveCodes, err)
	}
	wantErr(t, "CheckState of another application's user", errOf(s.CheckState(ctx, other.ID, everything.ID, t0, twofold.LimitWindow{})), twofold.ErrNotFound)
	wantErr(t, "CheckState of no user", errOf(s.CheckState(ctx, a.ID, 1<<40, t0, twofold.LimitWindow{})), twofold.ErrNotFound)

	// The events of the limit window asked for, and only those: not older ones (an event
	// exactly one window old has left), not another limit's, none when no window is asked for;
	// the oldest of them, and whether a refusal was recorded within the window.
	l := twofold.Limit{N: 100, Window: time.Hour}
	hit := func(name string, at time.Duration) {
		h, err := s.Hit(ctx, name, t0.Add(at), l)
		must(t, err)
		if h.Refused {
			t.Fatalf("Hit %s at %v refused", name, at)
		}
	}
	hit("verify-failures:check", -20*time.Minute)
	hit("verify-failures:check", -15*time.Minute)
	hit("verify-failures:check", -10*time.Minute)
	hit("verify-failures:check", -10*time.Minute)
	hit("verify-failures:check", -time.Minute)
	hit("verify-failures:else", -time.Minute)
	if _, err := s.RecordRefusal(ctx, "verify-failures:check", t0.Add(-5*time.Minute), l.Window); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		w       twofold.LimitWindow
		want    int64
		oldest  time.Duration
		refused bool
	}{
		{"the last 15 minutes", twofold.LimitWindow{Name: "verify-failures:check", Since: t0.Add(-15 * time.Minute)}, 3, -10 * time.Minute, true},
		{"the last 10 minutes", twofold.LimitWindow{Name: "verify-failures:check", Since: t0.Add(-10 * time.Minute)}, 1, -time.Minute, true},
		{"the last 5 minutes", twofold.LimitWindow{Name: "verify-failures:check", Since: t0.Add(-5 * time.Minute)}, 1, -time.Minute, false},
		{"the last hour", twofold.LimitWindow{Name: "verify-failures:check", Since: t0.Add(-time.Hour)}, 5, -20 * time.Minute, true},
		{"a limit never counted", twofold.LimitWindow{Name: "verify-failures:never", Since: t0.Add(-time.Hour)}, 0, 0, false},
		{"no window", twofold.LimitWindow{}, 0, 0, false},
	} {
		got, err := s.CheckState(ctx, a.ID, bare.ID, t0, tc.w)
		must(t, err)
		var oldest time.Time
		if tc.want > 0 {
			oldest = t0.Add(tc.oldest)
		}
		if got.Failures != tc.want || !got.Oldest.Equal(oldest) || got.Refused != tc.refused {
			t.Errorf("CheckState, %s: %d events, oldest %v, refused %v; want %d, %v, %v",
				tc.name, got.Failures, got.Oldest, got.Refused, tc.want, oldest, tc.refused)
		}
	}
}
