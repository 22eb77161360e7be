package store

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The OneTouch part of runConformance (conformance_test.go): application settings and callback
// health, registration tokens and devices, approval requests, and the callback outbox.

func testAppsOneTouch(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("OneTouchSettingsRoundTrip", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		def, on, odd := twofold.DefaultSettings(), twofold.DefaultSettings(), twofold.DefaultSettings()
		on.NumberMatching, on.CallbackExpired, on.DeviceTOTPPeriod = true, true, 30
		odd.NumberMatching, odd.DeviceTOTPPeriod = true, 5
		for i, tc := range [][2]twofold.Settings{{def, on}, {on, odd}, {odd, def}} { // create, then update
			a := twofold.App{Name: fmt.Sprint("app", i), KeyMAC: []byte(fmt.Sprint("key", i)), KeySealed: []byte("s"),
				Settings: tc[0], CreatedAt: t0, UpdatedAt: t0}
			must(t, s.CreateApp(ctx, &a))
			same(t, fmt.Sprintf("case %d: GetApp after CreateApp", i), a, getApp(t, s, a.ID))
			a.Settings, a.UpdatedAt = tc[1], t0.Add(time.Hour)
			must(t, s.UpdateApp(ctx, a))
			same(t, fmt.Sprintf("case %d: GetApp after UpdateApp", i), a, getApp(t, s, a.ID))
		}
	})

	t.Run("CallbackHealth", func(t *testing.T) { // UpdateApp leaves it, EnableCallback clears it
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		ca := mkCallback(t, s, mkUser(t, s, a.ID, 1, "5550000001"), t0)
		for _, c := range []twofold.Callback{ca, mkCallback(t, s, mkUser(t, s, b.ID, 1, "5550000001"), t0)} {
			failCallback(t, s, c, "refused", t0, t0, 1, true)
			failCallback(t, s, c, "boom", t0, t0.Add(time.Second), 1, false)
		}
		health := twofold.CallbackHealth{CallbackFailures: 2, CallbackDisabledAt: t0, CallbackLastError: "boom"}
		for _, forged := range []twofold.CallbackHealth{{}, {CallbackFailures: 99, CallbackDisabledAt: t0.Add(time.Hour),
			CallbackLastError: "forged"}} {
			upd := getApp(t, s, a.ID)
			upd.Name, upd.NumberMatching, upd.CallbackHealth = "renamed", !upd.NumberMatching, forged
			must(t, s.UpdateApp(ctx, upd))
			upd.CallbackHealth = health
			same(t, fmt.Sprintf("after UpdateApp with health %+v", forged), upd, getApp(t, s, a.ID))
		}
		// A callback whose retry, set before the pause, is an hour away is due once re-enabled.
		later := mkCallback(t, s, mkUser(t, s, a.ID, 1, "5550000002"), t0)
		failCallback(t, s, later, "boom", t0.Add(time.Hour), t0.Add(time.Second), 1, false)
		bLater := mkCallback(t, s, mkUser(t, s, b.ID, 1, "5550000002"), t0)
		failCallback(t, s, bLater, "boom", t0.Add(time.Hour), t0.Add(time.Second), 1, false)
		same(t, "due callbacks of disabled apps", []int64(nil), callbacksDue(t, s, t0))
		wantA, wantB := healthy(getApp(t, s, a.ID)), getApp(t, s, b.ID)
		for i := range 2 { // enabling an enabled application is harmless
			must(t, s.EnableCallback(ctx, a.ID))
			same(t, fmt.Sprint("after EnableCallback #", i+1), wantA, getApp(t, s, a.ID))
		}
		same(t, "another application after EnableCallback", wantB, getApp(t, s, b.ID))
		same(t, "due callbacks after EnableCallback", []int64{ca.ID, later.ID}, callbacksDue(t, s, t0))
		if got := callbackByID(t, s, bLater).NextAttemptAt; !got.Equal(t0.Add(time.Hour)) {
			t.Errorf("another application's retry moved to %v by EnableCallback", got)
		}
		wantErr(t, "EnableCallback(missing)", s.EnableCallback(ctx, b.ID+100), twofold.ErrNotFound)
	})
}

func testDevices(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("RegistrationTokens", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, b.ID, 1, "5550000001") // app and user ids differ
		expiry := t0.Add(ttl)
		var registered []int64
		// Each token is used twice: a spent token is gone, a refused one stays unused (and expired).
		for _, tc := range []struct {
			name          string
			now           time.Time
			first, second error
		}{{"fresh", t0, nil, twofold.ErrNotFound}, {"last second", expiry.Add(-time.Second), nil, twofold.ErrNotFound},
			{"expires now", expiry, ErrExpired, ErrExpired}, {"expired", expiry.Add(time.Hour), ErrExpired, ErrExpired}} {
			mac := mkToken(t, s, u, tc.name, expiry)
			if app, err := s.RegistrationTokenApp(ctx, mac); app != b.ID || err != nil {
				t.Errorf("%s: RegistrationTokenApp = %d, %v; want %d", tc.name, app, err, b.ID)
			}
			for i, wantE := range []error{tc.first, tc.second} {
				d, what := newDevice(fmt.Sprint(tc.name, i)), fmt.Sprintf("%s: RegisterDevice #%d", tc.name, i+1)
				d.ID, d.AppID, d.UserID, d.LastStep = 999, a.ID, 12345, 77 // ignored: the token decides
				if err := s.RegisterDevice(ctx, mac, tc.now, &d); err != nil || wantE != nil {
					wantErr(t, what, err, wantE)
					wantErr(t, what+": DeviceByTokenMAC", errOf(s.DeviceByTokenMAC(ctx, d.TokenMAC)), twofold.ErrNotFound)
					continue
				}
				if d.ID == 0 || d.ID == 999 || d.AppID != b.ID || d.UserID != u.ID {
					t.Errorf("%s set ID %d, AppID %d, UserID %d; want new, %d, %d", what, d.ID, d.AppID, d.UserID, b.ID, u.ID)
				}
				registered = append(registered, d.ID)
				d.LastStep, d.CreatedAt, d.LastSeenAt = -1, tc.now, tc.now
				same(t, what+": DeviceByTokenMAC", d, noErr(s.DeviceByTokenMAC(ctx, d.TokenMAC))(t))
				same(t, what+": GetDevice", d, noErr(s.GetDevice(ctx, b.ID, d.ID))(t))
			}
			if _, err := s.RegistrationTokenApp(ctx, mac); (err == nil) == (tc.first == nil) { // spent iff registered
				t.Errorf("%s: RegistrationTokenApp afterwards: %v", tc.name, err)
			}
		}
		d := newDevice("x")
		wantErr(t, "RegisterDevice(unknown token)", s.RegisterDevice(ctx, []byte("nope"), t0, &d), twofold.ErrNotFound)
		wantErr(t, "RegistrationTokenApp(unknown)", errOf(s.RegistrationTokenApp(ctx, []byte("nope"))), twofold.ErrNotFound)
		same(t, "ListDevices", registered, ids(noErr(s.ListDevices(ctx, b.ID, u.ID))(t)))
		raced := mkToken(t, s, u, "raced", t0.Add(ttl))
		exactlyOne(t, workers, "RegisterDevice with one token", func(i int) (bool, error) {
			d := newDevice(fmt.Sprint("racer", i))
			if err := s.RegisterDevice(t.Context(), raced, t0, &d); !errors.Is(err, twofold.ErrNotFound) {
				return err == nil, err
			}
			return false, nil
		})
		if n := len(noErr(s.ListDevices(ctx, b.ID, u.ID))(t)); n != len(registered)+1 {
			t.Errorf("%d devices after %d parallel registrations with one token, want %d", n, workers, len(registered)+1)
		}
	})

	t.Run("ListGetDelete", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, v, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002"), mkUser(t, s, b.ID, 1, "5550000001")
		u1, v1 := mkDevice(t, s, u, "u1", t0), mkDevice(t, s, v, "v1", t0)
		u2, w1 := mkDevice(t, s, u, "u2", t0.Add(-time.Hour)), mkDevice(t, s, w, "w1", t0)
		u3 := mkDevice(t, s, u, "u3", t0)
		for _, tc := range [][3][]int64{ // app, user, want
			{{a.ID}, {u.ID}, {u1.ID, u2.ID, u3.ID}}, {{a.ID}, {v.ID}, {v1.ID}}, {{b.ID}, {w.ID}, {w1.ID}},
			{{b.ID}, {u.ID}, nil}, {{a.ID}, {w.ID}, nil}} {
			same(t, fmt.Sprintf("ListDevices(app %d, user %d), oldest first", tc[0][0], tc[1][0]), tc[2],
				ids(noErr(s.ListDevices(ctx, tc[0][0], tc[1][0]))(t)))
		}
		same(t, "ListDevices contents", []twofold.Device{v1}, noErr(s.ListDevices(ctx, a.ID, v.ID))(t))
		none := mkUser(t, s, a.ID, 1, "5550000004") // a user without a device
		// u's second device and w's device have push subscriptions; v's device has none.
		for _, d := range []twofold.Device{u2, w1} {
			must(t, s.UpsertPushSubscription(ctx, &PushSubscription{AppID: d.AppID, DeviceID: d.ID, Kind: "ntfy",
				Endpoint: fmt.Sprint("https://ntfy.example/t", d.ID), CreatedAt: t0}, 5))
		}
		for _, tc := range []struct {
			app, user        int64
			device, pushable bool
			err              error
		}{
			{a.ID, u.ID, true, true, nil}, {a.ID, v.ID, true, false, nil}, {b.ID, w.ID, true, true, nil}, {a.ID, none.ID, false, false, nil},
			{b.ID, u.ID, false, false, twofold.ErrNotFound}, {a.ID, w.ID, false, false, twofold.ErrNotFound},
			{a.ID, none.ID + 100, false, false, twofold.ErrNotFound},
		} {
			device, pushable, err := s.UserReach(ctx, tc.app, tc.user)
			if device != tc.device || pushable != tc.pushable || !errors.Is(err, tc.err) {
				t.Errorf("UserReach(app %d, user %d) = %v, %v, %v; want %v, %v, %v", tc.app, tc.user, device, pushable, err,
					tc.device, tc.pushable, tc.err)
			}
		}
		must(t, s.DeleteDevice(ctx, a.ID, v1.ID))
		if device, pushable, err := s.UserReach(ctx, a.ID, v.ID); device || pushable || err != nil {
			t.Errorf("UserReach after the user's one device was deleted = %v, %v, %v; want false, false", device, pushable, err)
		}
		must(t, s.DeletePushSubscription(ctx, w1.ID, fmt.Sprint("https://ntfy.example/t", w1.ID)))
		if device, pushable, err := s.UserReach(ctx, b.ID, w.ID); !device || pushable || err != nil {
			t.Errorf("UserReach after the user's one push subscription was deleted = %v, %v, %v; want true, false", device, pushable, err)
		}
		wantErr(t, "GetDevice with another app", errOf(s.GetDevice(ctx, b.ID, u1.ID)), twofold.ErrNotFound)
		wantErr(t, "GetDevice(missing)", errOf(s.GetDevice(ctx, a.ID, w1.ID+100)), twofold.ErrNotFound)
		wantErr(t, "DeviceByTokenMAC(unknown)", errOf(s.DeviceByTokenMAC(ctx, []byte("nope"))), twofold.ErrNotFound)
		wantErr(t, "DeleteDevice with another app", s.DeleteDevice(ctx, b.ID, u1.ID), twofold.ErrNotFound)
		same(t, "GetDevice after another app's DeleteDevice", u1, noErr(s.GetDevice(ctx, a.ID, u1.ID))(t))
		must(t, s.DeleteDevice(ctx, a.ID, u1.ID))
		wantErr(t, "second DeleteDevice", s.DeleteDevice(ctx, a.ID, u1.ID), twofold.ErrNotFound)
		wantErr(t, "GetDevice after delete", errOf(s.GetDevice(ctx, a.ID, u1.ID)), twofold.ErrNotFound)
		wantErr(t, "DeviceByTokenMAC after delete", errOf(s.DeviceByTokenMAC(ctx, u1.TokenMAC)), twofold.ErrNotFound)
		same(t, "ListDevices after delete", []int64{u2.ID, u3.ID}, ids(noErr(s.ListDevices(ctx, a.ID, u.ID))(t)))
	})

	t.Run("AdvanceAndTouch", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		d, other := mkDevice(t, s, u, "d", t0), mkDevice(t, s, u, "other", t0)
		exactlyOne(t, workers, "AdvanceDeviceStep", func(int) (bool, error) {
			return s.AdvanceDeviceStep(t.Context(), other.ID, 50)
		})
		for _, st := range []struct {
			id, step int64
			want     bool
		}{{d.ID, -1, false}, {d.ID, 0, true}, {d.ID, 0, false}, {d.ID, -1, false}, {d.ID, 1000, true}, {d.ID, 1000, false},
			{d.ID, 999, false}, {d.ID, 1001, true}, {other.ID, 50, false}, {other.ID, 49, false}, {other.ID + 100, 5, false}} {
			if ok, err := s.AdvanceDeviceStep(ctx, st.id, st.step); ok != st.want || err != nil {
				t.Errorf("AdvanceDeviceStep(device %d, %d) = %v, %v; want %v", st.id, st.step, ok, err, st.want)
			}
		}
		d.LastStep, other.LastStep = 1001, 50 // a compare-and-set: lower and equal steps are replays
		// TouchDevice records a visit at most once a minute, never backwards.
		for _, tc := range [][2]time.Duration{{30 * time.Second, 0}, {time.Minute, 0}, {61 * time.Second, 61 * time.Second},
			{90 * time.Second, 61 * time.Second}, {time.Hour, time.Hour}, {0, time.Hour}} { // touch, then LastSeenAt
			must(t, s.TouchDevice(ctx, d.ID, t0.Add(tc[0])))
			d.LastSeenAt = t0.Add(tc[1])
			same(t, fmt.Sprintf("after TouchDevice(t0+%v)", tc[0]), d, noErr(s.GetDevice(ctx, u.AppID, d.ID))(t))
		}
		must(t, s.TouchDevice(ctx, other.ID+100, t0.Add(time.Hour)))
		same(t, "another device after all", other, noErr(s.GetDevice(ctx, u.AppID, other.ID))(t))
	})

	t.Run("DeleteUserCascades", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		users := [2]twofold.User{mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")}
		devs := [2]twofold.Device{mkDevice(t, s, users[0], "d", t0), mkDevice(t, s, users[1], "d", t0)}
		tokens := [2][]byte{mkToken(t, s, users[0], "spare", t0.Add(ttl)), mkToken(t, s, users[1], "spare", t0.Add(ttl))}
		reqs := [2]twofold.ApprovalRequest{mkRequest(t, s, users[0], t0, ttl), mkRequest(t, s, users[1], t0, ttl)}
		must(t, s.DeleteUser(ctx, a.ID, devs[0].UserID))
		for i, want := range []error{twofold.ErrNotFound, nil} { // the deleted user's, the other user's
			wantErr(t, fmt.Sprint("user #", i, ": DeviceByTokenMAC"), errOf(s.DeviceByTokenMAC(ctx, devs[i].TokenMAC)), want)
			wantErr(t, fmt.Sprint("user #", i, ": GetDevice"), errOf(s.GetDevice(ctx, a.ID, devs[i].ID)), want)
			wantErr(t, fmt.Sprint("user #", i, ": RegistrationTokenApp"), errOf(s.RegistrationTokenApp(ctx, tokens[i])), want)
			wantErr(t, fmt.Sprint("user #", i, ": GetApprovalRequest"), errOf(s.GetApprovalRequest(ctx, a.ID, reqs[i].UUID)), want)
		}
		d := newDevice("late")
		wantErr(t, "RegisterDevice with a deleted user's token", s.RegisterDevice(ctx, tokens[0], t0, &d), twofold.ErrNotFound)
	})
}

func testApprovalRequests(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("CreateRoundTripAndMarkNotified", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		full := newRequest(u, t0, 2*time.Minute)
		full.Message, full.Number = "Log in to « Example » as 'bob'? ✓", "42"
		full.Details = map[string]string{"Location": "Paris, FR", "": "empty key", "emoji": "🔐", "quote": `"x"\n`}
		full.HiddenDetails = map[string]string{"ip": "192.0.2.1", "session": "s-1"}
		full.Logos = []twofold.Logo{{Res: "default", URL: "https://example.com/l.png?a=1&b=2"}, {Res: "low", URL: "http://x/y"}}
		bare := newRequest(u, t0.Add(-time.Hour), 0) // never expires
		bare.Details, bare.Message = map[string]string{}, "m"
		other := newRequest(mkUser(t, s, b.ID, 1, "5550000001"), t0, ttl)
		other.Details, other.HiddenDetails, other.Logos = nil, nil, []twofold.Logo{}
		rs := []twofold.ApprovalRequest{full, bare, other}
		for i := range rs {
			rs[i].UpdatedAt = time.Time{} // the store sets it to CreatedAt
			must(t, s.CreateApprovalRequest(ctx, &rs[i], 10))
			if rs[i].ID == 0 || (i > 0 && rs[i].ID <= rs[i-1].ID) {
				t.Fatalf("CreateApprovalRequest #%d set ID %d, want increasing ids", i, rs[i].ID)
			}
			rs[i].UpdatedAt = rs[i].CreatedAt
			same(t, fmt.Sprintf("GetApprovalRequest(%q)", rs[i].Message), rs[i], getRequest(t, s, rs[i]))
		}
		must(t, s.MarkNotified(ctx, nil))
		for range 2 { // marking twice is harmless
			must(t, s.MarkNotified(ctx, []int64{rs[0].ID, rs[2].ID, rs[2].ID + 100}))
			for i, want := range rs {
				want.Notified = i != 1
				same(t, fmt.Sprint("request #", i, " after MarkNotified"), want, getRequest(t, s, want))
			}
		}
		wantErr(t, "GetApprovalRequest with another app", errOf(s.GetApprovalRequest(ctx, b.ID, full.UUID)), twofold.ErrNotFound)
		wantErr(t, "GetApprovalRequest(unknown)", errOf(s.GetApprovalRequest(ctx, a.ID, "no-such-uuid")), twofold.ErrNotFound)
	})

	t.Run("MaxPending", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		var made []twofold.ApprovalRequest
		for _, st := range []struct {
			name    string
			u       twofold.User
			created time.Time
			max     int
			want    error
		}{
			{"expired long ago", u, t0.Add(-time.Hour), 1, nil}, // each alone when it came
			{"expiring at t0", u, t0.Add(-ttl), 1, nil},
			{"1st live", u, t0, 3, nil}, {"another user's", v, t0, 1, nil}, {"2nd live", u, t0, 3, nil}, {"3rd live", u, t0, 3, nil},
			{"4th live", u, t0, 3, ErrTooMany}, {"also over a lower limit", u, t0, 1, ErrTooMany}, {"no limit", u, t0, 0, nil},
			{"higher limit", u, t0, 5, nil}, {"at the higher limit", u, t0, 5, ErrTooMany},
			{"after the 1st live one is denied", u, t0, 5, nil}, {"when the live ones have expired", u, t0.Add(ttl), 1, nil},
		} {
			if st.name == "after the 1st live one is denied" && !finish(t, s, made[2], twofold.Denied, t0, nil) {
				t.Fatal("could not deny the 1st live request")
			}
			r := newRequest(st.u, st.created, ttl)
			if err := s.CreateApprovalRequest(ctx, &r, st.max); !errors.Is(err, st.want) {
				t.Fatalf("%s: CreateApprovalRequest(max %d) = %v, want %v", st.name, st.max, err, st.want)
			} else if err != nil {
				wantErr(t, st.name+": the refused request", errOf(s.GetApprovalRequest(ctx, a.ID, r.UUID)), twofold.ErrNotFound)
			}
			made = append(made, r)
		}
		w := mkUser(t, s, a.ID, 1, "5550000003")
		var ok, tooMany atomic.Int32
		race(workers, func(int) {
			r := newRequest(w, t0, ttl)
			switch err := s.CreateApprovalRequest(t.Context(), &r, 3); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTooMany):
				tooMany.Add(1)
			default:
				t.Errorf("CreateApprovalRequest: %v", err)
			}
		})
		pending := noErr(s.ListApprovalRequests(ctx, a.ID, w.ID, twofold.Pending, 100))(t)
		if ok.Load() != 3 || tooMany.Load() != workers-3 || len(pending) != 3 {
			t.Errorf("%d created, %d ErrTooMany of %d parallel calls with maxPending 3, %d pending; want 3, %d, 3",
				ok.Load(), tooMany.Load(), workers, len(pending), workers-3)
		}
		mkRequest(t, s, w, t0.AddDate(-10, 0, 0), 0) // ExpiresAt zero: never expires, so it always counts
		late := newRequest(w, t0.Add(ttl), ttl)      // when the others have expired
		wantErr(t, "CreateApprovalRequest(max 1), one never-expiring request pending", s.CreateApprovalRequest(ctx, &late, 1), ErrTooMany)
	})

	t.Run("List", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, v, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002"), mkUser(t, s, b.ID, 1, "5550000001")
		var r []int64
		for i, st := range []twofold.ApprovalStatus{twofold.Pending, twofold.Approved, twofold.Pending, twofold.Denied,
			twofold.Expired, twofold.Pending} {
			x, at := mkRequest(t, s, u, t0.Add(-time.Duration(i)*time.Minute), ttl), t0 // the newest is the last created
			if st == twofold.Expired {
				at = t0.Add(time.Hour)
			}
			if st != twofold.Pending && !finish(t, s, x, st, at, nil) {
				t.Fatalf("could not make request %d %s", i, st)
			}
			r = append(r, x.ID)
		}
		rv, rw := mkRequest(t, s, v, t0, ttl), mkRequest(t, s, w, t0, ttl)
		for _, tc := range []struct {
			app, user int64
			status    twofold.ApprovalStatus
			limit     int
			want      []int64
		}{
			{a.ID, u.ID, "", 100, []int64{r[5], r[4], r[3], r[2], r[1], r[0]}}, {a.ID, u.ID, "", 2, []int64{r[5], r[4]}},
			{a.ID, u.ID, twofold.Pending, 100, []int64{r[5], r[2], r[0]}}, {a.ID, u.ID, twofold.Approved, 100, []int64{r[1]}},
			{a.ID, u.ID, twofold.Denied, 100, []int64{r[3]}}, {a.ID, u.ID, twofold.Expired, 100, []int64{r[4]}},
			{a.ID, v.ID, "", 100, []int64{rv.ID}}, {b.ID, w.ID, "", 100, []int64{rw.ID}},
			{b.ID, u.ID, "", 100, nil}, {a.ID, w.ID, "", 100, nil},
		} {
			got := noErr(s.ListApprovalRequests(ctx, tc.app, tc.user, tc.status, tc.limit))(t)
			same(t, fmt.Sprintf("ListApprovalRequests(app %d, user %d, %q, %d), newest first", tc.app, tc.user, tc.status,
				tc.limit), tc.want, ids(got))
			for _, x := range got {
				same(t, "ListApprovalRequests vs GetApprovalRequest", getRequest(t, s, x), x)
			}
		}
		for _, tc := range []struct {
			app, user, after int64
			ids              []int64
			limit            int
			want             []int64
		}{
			{a.ID, u.ID, r[1], nil, 100, []int64{r[5], r[4], r[3], r[2]}}, {a.ID, u.ID, r[1], nil, 2, []int64{r[5], r[4]}},
			{a.ID, u.ID, r[5], nil, 100, nil}, {a.ID, u.ID, 0, nil, 100, []int64{r[5], r[4], r[3], r[2], r[1], r[0]}},
			// The watched come with the new, once each, newest first; another user's or
			// application's are not returned.
			{a.ID, u.ID, r[3], []int64{r[0], r[2]}, 100, []int64{r[5], r[4], r[2], r[0]}},
			{a.ID, u.ID, r[3], []int64{r[4], r[0]}, 1, []int64{r[5], r[4], r[0]}},
			{a.ID, u.ID, r[5], []int64{rv.ID, rw.ID, r[1]}, 100, []int64{r[1]}},
			{b.ID, u.ID, 0, []int64{r[0]}, 100, nil}, {a.ID, w.ID, 0, []int64{rw.ID}, 100, nil},
		} {
			got := noErr(s.ListApprovalRequestsSince(ctx, tc.app, tc.user, tc.after, tc.ids, tc.limit))(t)
			same(t, fmt.Sprintf("ListApprovalRequestsSince(app %d, user %d, after %d, %v, %d)", tc.app, tc.user, tc.after, tc.ids, tc.limit),
				tc.want, ids(got))
		}
	})
}

func testFinishApprovalRequest(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("RoundTripFinalAndRaced", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		r := mkRequest(t, s, mkUser(t, s, a.ID, 1, "5550000001"), t0, ttl)
		want := r
		want.Status, want.Reason, want.DeviceID, want.Signature = twofold.Denied, "not me", 7, "c2lnbmF0dXJl"
		want.ProcessedAt, want.UpdatedAt = t0.Add(time.Minute), t0.Add(time.Minute)
		cb := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte(`{"status":"denied","ü":1}`)}
		if won, err := s.FinishApprovalRequest(ctx, want, &cb); !won || err != nil || cb.ID == 0 {
			t.Fatalf("FinishApprovalRequest = %v, %v (callback id %d); want true with a callback id", won, err, cb.ID)
		}
		same(t, "after FinishApprovalRequest", want, getRequest(t, s, r))
		wantCB := []twofold.Callback{{ID: cb.ID, AppID: a.ID, RequestUUID: r.UUID, Payload: cb.Payload, Status: "pending",
			NextAttemptAt: want.ProcessedAt, CreatedAt: want.ProcessedAt}}
		same(t, "queued callback", wantCB, recentCallbacks(t, s, a.ID))
		for _, st := range []twofold.ApprovalStatus{twofold.Approved, twofold.Denied, twofold.Expired} {
			late, at := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}, t0.Add(2*time.Minute)
			if st == twofold.Expired {
				at = t0.Add(time.Hour)
			}
			if finish(t, s, r, st, at, &late) {
				t.Errorf("a second change, to %s, won", st)
			}
		}
		same(t, "after losing changes", want, getRequest(t, s, r))
		same(t, "callbacks after losing changes", wantCB, recentCallbacks(t, s, a.ID))

		b := mkApp(t, s, "b") // approvals and denials race for a request of another application
		r = mkRequest(t, s, mkUser(t, s, b.ID, 1, "5550000001"), t0, ttl)
		statuses := [2]twofold.ApprovalStatus{twofold.Approved, twofold.Denied}
		var winner atomic.Int64
		exactlyOne(t, workers, "FinishApprovalRequest", func(i int) (bool, error) {
			x := r
			x.Status, x.DeviceID, x.ProcessedAt = statuses[i%2], int64(i+1), t0.Add(time.Second)
			cb := twofold.Callback{AppID: b.ID, RequestUUID: r.UUID, Payload: fmt.Appendf(nil, `{"worker":%d}`, i)}
			won, err := s.FinishApprovalRequest(t.Context(), x, &cb)
			if won {
				winner.Store(int64(i + 1))
			}
			return won, err
		})
		w := int(winner.Load()) - 1
		if got := getRequest(t, s, r); w < 0 || got.Status != statuses[w%2] || got.DeviceID != int64(w+1) {
			t.Errorf("final request %+v, want the winner's (worker %d)", got, w)
		}
		if cbs := recentCallbacks(t, s, b.ID); len(cbs) != 1 || string(cbs[0].Payload) != fmt.Sprintf(`{"worker":%d}`, w) {
			t.Errorf("callbacks %+v, want one, from worker %d", cbs, w)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		exp, sec, queued := t0.Add(ttl), time.Second, 0
		for _, tc := range []struct {
			status twofold.ApprovalStatus
			at     time.Time
			want   bool
		}{
			{twofold.Approved, exp.Add(-sec), true}, {twofold.Denied, exp.Add(-sec), true}, {twofold.Approved, exp, false},
			{twofold.Denied, exp, false}, {twofold.Approved, exp.Add(time.Hour), false}, {twofold.Expired, t0, false},
			{twofold.Expired, exp.Add(-sec), false}, {twofold.Expired, exp, true}, {twofold.Expired, exp.Add(time.Hour), true},
		} {
			r := mkRequest(t, s, u, t0, ttl)
			cb := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}
			what := fmt.Sprintf("%s at expiry%+v", tc.status, tc.at.Sub(exp))
			if won := finish(t, s, r, tc.status, tc.at, &cb); won != tc.want {
				t.Errorf("%s: FinishApprovalRequest = %v, want %v", what, won, tc.want)
			}
			want := r
			if tc.want {
				want.Status, want.ProcessedAt, want.UpdatedAt, want.Reason = tc.status, tc.at, tc.at, reasons[tc.status]
				queued++
			}
			same(t, what+": request", want, getRequest(t, s, r))
			// The callback is queued iff the change wins.
			cbs := recentCallbacks(t, s, a.ID)
			if len(cbs) != queued || (tc.want && cbs[0].ID != cb.ID) || (!tc.want && cb.ID != 0) {
				t.Errorf("%s: %d callbacks, callback id %d; want %d, the newest for this request", what, len(cbs), cb.ID, queued)
			}
		}
		for st, want := range map[twofold.ApprovalStatus]bool{twofold.Approved: true, twofold.Denied: true, twofold.Expired: false} {
			if finish(t, s, mkRequest(t, s, u, t0, 0), st, t0.AddDate(10, 0, 0), nil) != want { // ExpiresAt zero: never
				t.Errorf("%s ten years after creation of a request that never expires: won = %v, want %v", st, !want, want)
			}
		}
	})

	t.Run("CallbackInSameTransaction", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		r := mkRequest(t, s, mkUser(t, s, a.ID, 1, "5550000001"), t0, ttl)
		// Make queueing the callback fail (portable SQL): the status change must be rolled back.
		if _, err := s.w.ExecContext(ctx, `DROP TABLE callbacks`); err != nil {
			t.Fatal(err)
		}
		x := r
		x.Status, x.ProcessedAt = twofold.Approved, t0
		if won, err := s.FinishApprovalRequest(ctx, x, &twofold.Callback{AppID: a.ID, RequestUUID: r.UUID}); won || err == nil {
			t.Errorf("FinishApprovalRequest with a failing callback insert = %v, %v; want false and an error", won, err)
		}
		same(t, "request after a failed callback insert", r, getRequest(t, s, r))
		if !finish(t, s, r, twofold.Approved, t0, nil) {
			t.Error("the request could not be answered after the failed attempt")
		}
	})

	// The answer, its callback and its audit entries commit together, or none of them does; a
	// change that loses appends nothing.
	t.Run("AuditInSameTransaction", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		r := mkRequest(t, s, u, t0, ttl)
		x := r
		x.Status, x.DeviceID, x.ProcessedAt, x.UpdatedAt = twofold.Approved, 7, t0.Add(time.Second), t0.Add(time.Second)
		answered := testEntry(twofold.AuditApprovalApproved, a.ID, u.ID, map[string]string{"uuid": r.UUID, "device_id": "7"})
		if v := recovered(func() {
			s.FinishApprovalRequest(ctx, x, &twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}, answered, panicking())
		}); v == nil {
			t.Fatal("an entry whose chaining panicked did not fail the answer")
		}
		same(t, "request after an answer whose entry failed", r, getRequest(t, s, r))
		same(t, "callbacks after an answer whose entry failed", []twofold.Callback(nil), recentCallbacks(t, s, a.ID))
		if log := trail(t, s); len(log) != 0 {
			t.Fatalf("audit trail %+v after an answer whose entry failed, want none", log)
		}

		other := testEntry(twofold.AuditApprovalGroupDecided, a.ID, 0, map[string]string{"uuid": "g"}) // a second entry, in order
		cb := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}
		if won, err := s.FinishApprovalRequest(ctx, x, &cb, answered, other); !won || err != nil {
			t.Fatalf("FinishApprovalRequest with entries = %v, %v; want true", won, err)
		}
		same(t, "request after the answer", x, getRequest(t, s, r))
		log := trail(t, s)
		if len(log) != 2 || log[0].Action != twofold.AuditApprovalApproved || log[0].Details["uuid"] != r.UUID ||
			log[0].Actor != "system" || log[1].Action != twofold.AuditApprovalGroupDecided {
			t.Fatalf("audit trail %+v, want the answer's two entries", log)
		}
		for _, st := range []twofold.ApprovalStatus{twofold.Approved, twofold.Denied, twofold.Expired} {
			y := r
			y.Status, y.ProcessedAt = st, t0.Add(time.Hour)
			if won, err := s.FinishApprovalRequest(ctx, y, nil, testEntry(twofold.AuditApprovalDenied, a.ID, u.ID, nil)); won || err != nil {
				t.Errorf("a second change, to %s: %v, %v; want false", st, won, err)
			}
		}
		if log := trail(t, s); len(log) != 2 {
			t.Fatalf("audit trail %+v after losing changes, want the winner's entries alone", log)
		}

		// Racing answers: the winner's entry alone is appended, after those before.
		r = mkRequest(t, s, u, t0, ttl)
		var winner atomic.Int64
		exactlyOne(t, workers, "FinishApprovalRequest with an entry", func(i int) (bool, error) {
			y := r
			y.Status, y.DeviceID, y.ProcessedAt = twofold.Approved, int64(i+1), t0.Add(time.Second)
			e := testEntry(twofold.AuditApprovalApproved, a.ID, u.ID, map[string]string{"uuid": r.UUID, "worker": fmt.Sprint(i)})
			won, err := s.FinishApprovalRequest(t.Context(), y, nil, e)
			if won {
				winner.Store(int64(i + 1))
			}
			return won, err
		})
		log = trail(t, s)
		if len(log) != 3 || log[2].Details["worker"] != fmt.Sprint(winner.Load()-1) {
			t.Fatalf("audit trail %+v, want one entry more, the winner's (worker %d)", log, winner.Load()-1)
		}
	})

	t.Run("DueExpiries", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, b.ID, 1, "5550000001")
		mkRequest(t, s, u, t0, time.Minute)          // live
		mkRequest(t, s, u, t0.AddDate(-10, 0, 0), 0) // never expires
		expiresNow, oldest := mkRequest(t, s, u, t0.Add(-ttl), ttl), mkRequest(t, s, u, t0.Add(-time.Hour), ttl)
		for st, at := range map[twofold.ApprovalStatus]time.Time{twofold.Approved: t0.Add(-time.Hour),
			twofold.Expired: t0.Add(-time.Hour + time.Minute)} { // final: not due
			if !finish(t, s, mkRequest(t, s, u, t0.Add(-time.Hour), time.Minute), st, at, nil) {
				t.Fatalf("could not make a request %s", st)
			}
		}
		same(t, "callbacks of changes without one", []twofold.Callback(nil), recentCallbacks(t, s, a.ID))
		otherApp := mkRequest(t, s, w, t0.Add(-ttl-time.Second), ttl)
		for _, tc := range []struct {
			now   time.Time
			limit int
			want  []int64
		}{
			{t0, 100, []int64{oldest.ID, otherApp.ID, expiresNow.ID}}, {t0, 2, []int64{oldest.ID, otherApp.ID}},
			{t0.Add(-time.Second), 100, []int64{oldest.ID, otherApp.ID}}, {t0.Add(-time.Hour + ttl - time.Second), 100, nil},
		} {
			got := noErr(s.DueExpiries(ctx, tc.now, tc.limit))(t)
			same(t, fmt.Sprintf("DueExpiries(t0%+v, %d), soonest expiry first", tc.now.Sub(t0), tc.limit), tc.want, ids(got))
			if len(got) > 0 {
				same(t, "DueExpiries vs GetApprovalRequest", oldest, got[0])
			}
		}
	})
}

func testCallbacks(t *testing.T, open func(t *testing.T) *Store) {
	// Claims of due callbacks: conformance_claim_test.go.
	t.Run("DeliveredResetsFailures", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		c, cb := mkCallback(t, s, mkUser(t, s, a.ID, 1, "5550000001"), t0), mkCallback(t, s, mkUser(t, s, b.ID, 1, "5550000001"), t0)
		for i, x := range []twofold.Callback{c, c, cb} {
			failCallback(t, s, x, fmt.Sprint("fail ", i), t0.Add(time.Duration(i+1)*time.Minute), t0, 5, false)
		}
		want := c
		want.Attempts, want.LastStatus, want.LastError, want.NextAttemptAt = 2, 500, "fail 1", t0.Add(2*time.Minute)
		same(t, "callback after 2 failures", want, callbackByID(t, s, c))
		same(t, "due callbacks after failures", []int64{c.ID, cb.ID}, callbacksDue(t, s, t0.Add(3*time.Minute)))
		wantB := getApp(t, s, b.ID)
		must(t, s.CallbackDelivered(ctx, c, 204, t0.Add(5*time.Minute)))
		want.Status, want.Attempts, want.LastStatus, want.LastError = "delivered", 3, 204, ""
		want.DeliveredAt = t0.Add(5 * time.Minute)
		same(t, "delivered callback", want, callbackByID(t, s, c))
		same(t, "app after a delivery", healthy(a), getApp(t, s, a.ID))
		same(t, "another app after a delivery", wantB, getApp(t, s, b.ID))
		same(t, "due callbacks after delivery", []int64{cb.ID}, callbacksDue(t, s, t0.Add(time.Hour)))
	})

	t.Run("FailedDisablesOnce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		t6, t12, z := t0.Add(6*time.Second), t0.Add(12*time.Second), time.Time{} // step i runs at t0+(i+1)s
		var was time.Time
		for i, st := range []struct {
			op         string // fail (threshold 3), deliver or enable
			failures   int
			disabledAt time.Time // disabledNow is true when it becomes non-zero
		}{
			{"fail", 1, z}, {"fail", 2, z}, {"deliver", 0, z}, {"fail", 1, z}, {"fail", 2, z}, {"fail", 3, t6}, {"fail", 4, t6},
			{"fail", 5, t6}, {"enable", 0, z}, {"fail", 1, z}, {"fail", 2, z}, {"fail", 3, t12}, {"fail", 4, t12},
		} {
			now, msg, x := t0.Add(time.Duration(i+1)*time.Second), fmt.Sprint("error ", i), mkCallback(t, s, u, t0)
			want := twofold.CallbackHealth{CallbackFailures: st.failures, CallbackDisabledAt: st.disabledAt}
			switch st.op {
			case "fail":
				failCallback(t, s, x, msg, now.Add(time.Minute), now, 3, was.IsZero() && !st.disabledAt.IsZero())
				want.CallbackLastError = msg
			case "deliver":
				must(t, s.CallbackDelivered(ctx, x, 200, now))
			case "enable":
				must(t, s.EnableCallback(ctx, a.ID))
			}
			was = st.disabledAt
			same(t, fmt.Sprintf("step %d (%s): app health", i, st.op), want, getApp(t, s, a.ID).CallbackHealth)
		}
		b := mkApp(t, s, "b") // parallel failures of another application
		var cs [workers]twofold.Callback
		for i := range cs {
			cs[i] = mkCallback(t, s, mkUser(t, s, b.ID, 1, fmt.Sprint(5550000100+i)), t0)
		}
		exactlyOne(t, workers, "CallbackFailed", func(i int) (bool, error) {
			return s.CallbackFailed(t.Context(), cs[i], 503, "down", t0.Add(time.Minute), t0, 5)
		})
		if h := getApp(t, s, b.ID).CallbackHealth; h.CallbackFailures != workers || !h.CallbackDisabledAt.Equal(t0) {
			t.Errorf("health %+v after %d parallel failures, want %d failures, disabled at t0", h, workers, workers)
		}
	})

	t.Run("DropAndRecent", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, b.ID, 1, "5550000001")
		a1, a2, b1 := mkCallback(t, s, u, t0.Add(time.Hour)), mkCallback(t, s, u, t0), mkCallback(t, s, w, t0)
		a3 := mkCallback(t, s, u, t0.Add(-time.Hour))
		must(t, s.CallbackDelivered(ctx, a2, 200, t0))
		must(t, s.DropCallback(ctx, a1, "the application has no callback URL"))
		want := a1
		want.Status, want.LastError = "dropped", "the application has no callback URL"
		same(t, "dropped callback", want, callbackByID(t, s, a1))
		same(t, "due callbacks after DropCallback", []int64{a3.ID, b1.ID}, callbacksDue(t, s, t0.Add(2*time.Hour)))
		for _, tc := range [][3][]int64{ // app, limit, want
			{{a.ID}, {100}, {a3.ID, a2.ID, a1.ID}}, {{a.ID}, {2}, {a3.ID, a2.ID}}, {{b.ID}, {100}, {b1.ID}},
			{{b.ID + 100}, {100}, nil}} {
			got := noErr(s.RecentCallbacks(ctx, tc[0][0], int(tc[1][0])))(t)
			same(t, fmt.Sprintf("RecentCallbacks(app %d, %d), newest first", tc[0][0], tc[1][0]), tc[2], ids(got))
		}
	})
}

// Helpers of the OneTouch tests.

// same reports a difference between want and got as a test error: diff, but the maps of
// approval requests (which diff cannot compare) are compared with nil equal to empty.
func same(tb testing.TB, what string, want, got any) {
	tb.Helper()
	var ok bool
	if w, isReq := want.(twofold.ApprovalRequest); isReq {
		g := got.(twofold.ApprovalRequest)
		ok = maps.Equal(w.Details, g.Details) && maps.Equal(w.HiddenDetails, g.HiddenDetails)
		for w, g, i := reflect.ValueOf(w), reflect.ValueOf(g), 0; ok && i < w.NumField(); i++ {
			ok = w.Field(i).Kind() == reflect.Map || equal(w.Field(i), g.Field(i))
		}
	} else {
		ok = diff(want, got) == ""
	}
	if !ok {
		tb.Errorf("%s:\nwant %+v\n got %+v", what, want, got)
	}
}

// noErr(f())(t) is f's result, failing t if f returned an error.
func noErr[T any](v T, err error) func(testing.TB) T {
	return func(tb testing.TB) T { tb.Helper(); must(tb, err); return v }
}

// ids lists the ID field of each element.
func ids[T any](xs []T) (out []int64) {
	for _, x := range xs {
		out = append(out, reflect.ValueOf(x).FieldByName("ID").Int())
	}
	return out
}

// healthy is a with its callback health cleared, as EnableCallback leaves it.
func healthy(a twofold.App) twofold.App { a.CallbackHealth = twofold.CallbackHealth{}; return a }

func mkToken(tb testing.TB, s *Store, u twofold.User, name string, expires time.Time) []byte {
	tb.Helper()
	mac := []byte(fmt.Sprint("reg:", u.ID, ":", name))
	must(tb, s.InsertRegistrationToken(tb.Context(), twofold.RegistrationToken{MAC: mac, AppID: u.AppID, UserID: u.ID,
		ExpiresAt: expires}))
	return mac
}

// newDevice is a device to register; name must be unique in the store (it makes the token MAC).
func newDevice(name string) twofold.Device {
	return twofold.Device{PublicKey: []byte{0x30, 0x59, 0x00, byte(len(name))}, TokenMAC: []byte("tok:" + name), Name: name,
		OSType: "android", SecretSealed: []byte("seed:" + name), Digits: 7, Period: 10}
}

// mkDevice registers a device named name for u at the time at, and returns what the store holds.
func mkDevice(tb testing.TB, s *Store, u twofold.User, name string, at time.Time) twofold.Device {
	tb.Helper()
	d := newDevice(fmt.Sprint(u.ID, ":", name))
	must(tb, s.RegisterDevice(tb.Context(), mkToken(tb, s, u, name, at.Add(ttl)), at, &d))
	d.LastStep, d.CreatedAt, d.LastSeenAt = -1, at, at
	return d
}

var reqSeq atomic.Int64 // makes request UUIDs unique

// newRequest is a pending request of u created at created, expiring after ttl (0: never).
func newRequest(u twofold.User, created time.Time, ttl time.Duration) twofold.ApprovalRequest {
	r := twofold.ApprovalRequest{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", reqSeq.Add(1)), AppID: u.AppID,
		UserID: u.ID, Message: "Log in?", Details: map[string]string{"ip": "192.0.2.1"}, HiddenDetails: map[string]string{},
		SecondsToExpire: int64(ttl / time.Second), Status: twofold.Pending, CreatedAt: created, UpdatedAt: created}
	if ttl > 0 {
		r.ExpiresAt = created.Add(ttl)
	}
	return r
}

func mkRequest(tb testing.TB, s *Store, u twofold.User, created time.Time, ttl time.Duration) twofold.ApprovalRequest {
	tb.Helper()
	r := newRequest(u, created, ttl)
	must(tb, s.CreateApprovalRequest(tb.Context(), &r, 0))
	return r
}

func getRequest(tb testing.TB, s *Store, r twofold.ApprovalRequest) twofold.ApprovalRequest {
	tb.Helper()
	return noErr(s.GetApprovalRequest(tb.Context(), r.AppID, r.UUID))(tb)
}

var reasons = map[twofold.ApprovalStatus]string{twofold.Denied: "not me"} // what finish records

// finish moves r to status st at the time at, reporting whether it won.
func finish(tb testing.TB, s *Store, r twofold.ApprovalRequest, st twofold.ApprovalStatus, at time.Time, cb *twofold.Callback) bool {
	tb.Helper()
	r.Status, r.Reason, r.ProcessedAt, r.UpdatedAt = st, reasons[st], at, at
	return noErr(s.FinishApprovalRequest(tb.Context(), r, cb))(tb)
}

// testEntry is an audit entry for the store to append with the change it records, chained by
// testChain.
func testEntry(action string, appID, userID int64, details map[string]string) twofold.AuditEntry {
	e := twofold.AuditEvent{At: t0, Actor: "system", Action: action, AppID: appID, UserID: userID, Details: details}
	return twofold.AuditEntry{Event: e, Chain: testChain}
}

// panicking is an audit entry that cannot be appended: its chaining panics, after the change it
// records and those before it in its transaction were made.
func panicking() twofold.AuditEntry {
	e := twofold.AuditEvent{At: t0, Actor: "system", Action: twofold.AuditApprovalApproved}
	return twofold.AuditEntry{Event: e, Chain: func([]byte, twofold.AuditEvent) []byte { panic("the chain broke") }}
}

// recovered runs fn and returns what it panicked with (nil: it did not).
func recovered(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// trail returns the whole audit trail, oldest first, after checking that it chains.
func trail(tb testing.TB, s *Store) []twofold.AuditEvent {
	tb.Helper()
	log := noErr(s.ListAudit(tb.Context(), twofold.AuditFilter{Limit: 1000}))(tb)
	checkChain(tb, log)
	return log
}

// noErr2 is noErr for two values.
func noErr2[T, U any](v T, w U, err error) func(testing.TB) (T, U) {
	return func(tb testing.TB) (T, U) { tb.Helper(); must(tb, err); return v, w }
}

// mkCallback answers a new request of u at the time at, queueing its callback, and returns the
// callback as the store should hold it.
func mkCallback(tb testing.TB, s *Store, u twofold.User, at time.Time) twofold.Callback {
	tb.Helper()
	r := mkRequest(tb, s, u, at.Add(-time.Second), ttl)
	cb := twofold.Callback{AppID: u.AppID, RequestUUID: r.UUID, Payload: []byte(`{"uuid":"` + r.UUID + `"}`)}
	if !finish(tb, s, r, twofold.Approved, at, &cb) || cb.ID == 0 {
		tb.Fatalf("FinishApprovalRequest did not queue a callback (id %d)", cb.ID)
	}
	return twofold.Callback{ID: cb.ID, AppID: u.AppID, RequestUUID: r.UUID, Payload: cb.Payload, Status: "pending",
		NextAttemptAt: at, CreatedAt: at}
}

// failCallback records a failed delivery (HTTP 500) and requires the answer disabledNow.
func failCallback(tb testing.TB, s *Store, c twofold.Callback, msg string, next, now time.Time, threshold int, disabledNow bool) {
	tb.Helper()
	if got, err := s.CallbackFailed(tb.Context(), c, 500, msg, next, now, threshold); got != disabledNow || err != nil {
		tb.Fatalf("CallbackFailed(callback %d, %q, threshold %d) = %v, %v; want %v", c.ID, msg, threshold, got, err, disabledNow)
	}
}

func recentCallbacks(tb testing.TB, s *Store, appID int64) []twofold.Callback {
	tb.Helper()
	return noErr(s.RecentCallbacks(tb.Context(), appID, 1000))(tb)
}

func callbackByID(tb testing.TB, s *Store, c twofold.Callback) twofold.Callback {
	tb.Helper()
	for _, x := range recentCallbacks(tb, s, c.AppID) {
		if x.ID == c.ID {
			return x
		}
	}
	tb.Fatalf("callback %d of app %d not found", c.ID, c.AppID)
	return twofold.Callback{}
}

// callbacksDue is the ids of the callbacks due at now, soonest first (by id when due alike):
// those ClaimDueCallbacks would claim, in the order it would, without claiming them.
func callbacksDue(tb testing.TB, s *Store, now time.Time) []int64 {
	tb.Helper()
	rows, err := s.r.QueryContext(tb.Context(), `SELECT c.id FROM callbacks c JOIN apps a ON a.id = c.app_id
		WHERE `+dueCallback+` ORDER BY c.next_attempt_at, c.id`, unix(now))
	must(tb, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		must(tb, rows.Scan(&id))
		out = append(out, id)
	}
	must(tb, rows.Err())
	return out
}
