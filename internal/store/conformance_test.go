package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// t0 is the fixed "now" of the suite: nothing here reads the clock or sleeps.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// longAgo is a "now" before every expiry the suite uses, to list codes whatever their state.
var longAgo = t0.AddDate(-10, 0, 0)

// workers is how many goroutines race for each security property.
const workers = 32

const ttl = 10 * time.Minute

func TestSQLiteConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) *Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), DatabaseFile))
	})
}

// runConformance is the behaviour every engine must have. open returns an empty, migrated store
// that is closed when t ends; each leaf test opens its own. Helpers are in store_test.go.
func runConformance(t *testing.T, openEmpty func(t *testing.T) *Store) {
	// Users' row ids start far from their public ids in every store of the suite, so a row id
	// that escapes the store (it must never) fails the tests that compare ids.
	open := func(t *testing.T) *Store {
		s := openEmpty(t)
		skewUserRowIDs(t, s)
		return s
	}
	t.Run("PublicIDs", func(t *testing.T) { testPublicIDs(t, open) }) // conformance_import_test.go
	t.Run("ImportUsers", func(t *testing.T) { testImportUsers(t, open) })
	t.Run("Apps", func(t *testing.T) { testApps(t, open) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, open) })
	t.Run("Authenticators", func(t *testing.T) { testAuthenticators(t, open(t)) })
	t.Run("AuthenticatorSteps", func(t *testing.T) { testAuthenticatorSteps(t, open) }) // conformance_authsteps_test.go
	t.Run("ConsumeCode", func(t *testing.T) { testConsumeCode(t, open(t)) })
	t.Run("CheckState", func(t *testing.T) { testCheckState(t, open) }) // conformance_check_test.go
	t.Run("Limits", func(t *testing.T) { testLimits(t, open) })         // conformance_limits_test.go
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, open) })   // conformance_decision_test.go
	t.Run("CodesWithoutSMS", func(t *testing.T) { testCodesWithoutSMS(t, open) })
	t.Run("QRLinks", func(t *testing.T) { testQRLinks(t, open(t)) })
	t.Run("Messages", func(t *testing.T) { testMessages(t, open(t)) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, open(t)) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, open(t)) })
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) }) // conformance_audit_test.go
	t.Run("Operators", func(t *testing.T) { testOperators(t, open(t)) })
	t.Run("Console", func(t *testing.T) { testConsole(t, open) })             // conformance_console_test.go
	t.Run("UserSummaries", func(t *testing.T) { testUserSummaries(t, open) }) // conformance_usersummary_test.go
	// OneTouch, in conformance_onetouch_test.go:
	t.Run("Devices", func(t *testing.T) { testDevices(t, open) })
	t.Run("ApprovalRequests", func(t *testing.T) { testApprovalRequests(t, open) })
	t.Run("FinishApprovalRequest", func(t *testing.T) { testFinishApprovalRequest(t, open) })
	t.Run("CloseApprovalRequest", func(t *testing.T) { testCloseApprovalRequest(t, open) }) // conformance_close_test.go
	t.Run("Callbacks", func(t *testing.T) { testCallbacks(t, open) })
	t.Run("ClaimCallbacks", func(t *testing.T) { testClaimCallbacks(t, open) }) // conformance_claim_test.go
	t.Run("Rekey", func(t *testing.T) { testRekey(t, open) })
	t.Run("Steps", func(t *testing.T) { testSteps(t, open) })                     // conformance_steps_test.go
	t.Run("Groups", func(t *testing.T) { testGroups(t, open) })                   // conformance_groups_test.go
	t.Run("Passwordless", func(t *testing.T) { testPasswordless(t, open) })       // conformance_passwordless_test.go
	t.Run("VerifyWebhooks", func(t *testing.T) { testVerifyWebhooks(t, open) })   // conformance_verifywebhooks_test.go
	t.Run("VerifyV2", func(t *testing.T) { testVerifyV2(t, open) })               // conformance_verifyv2_test.go
	t.Run("VerifyFactors", func(t *testing.T) { testVerifyFactors(t, open) })     // conformance_verifyfactors_test.go
	t.Run("RecoveryCodes", func(t *testing.T) { testRecoveryCodes(t, open) })     // conformance_recovery_test.go
	t.Run("Passkeys", func(t *testing.T) { testPasskeys(t, open) })               // conformance_passkeys_test.go
	t.Run("Races", func(t *testing.T) { testRaces(t, open) })                     // conformance_races_test.go
	t.Run("CancelledWrites", func(t *testing.T) { testCancelledWrites(t, open) }) // conformance_cancel_test.go
}

func testApps(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("CreateAndRoundTrip", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		apps := []twofold.App{{
			Name: "defaults", KeyMAC: []byte{0x00, 0x01, 0xff}, KeySealed: []byte("sealed"),
			Settings: twofold.DefaultSettings(), CreatedAt: t0, UpdatedAt: t0,
		}, {
			Name: "everything flipped ✓ 'q'", Sandbox: true, KeyMAC: bytes.Repeat([]byte{0xab, 0x00}, 16),
			KeySealed: []byte{0, 1, 2, 0, 255},
			Settings: twofold.Settings{TokenLength: 10, TOTPDigits: 8, TOTPPeriod: 60, TOTPSkew: 0, SMSEnabled: false,
				CallEnabled: false, UnconfirmedBypass: true, CallbackURL: "https://example.com/cb?a=1&b=%20",
				CallbackMethod: "GET", ContactEmail: "ops@example.com", MigrationTools: true, LogoURL: "https://cdn.example.com/logo.png",
				PasskeyRPID: "example.com", PasskeyOrigins: []string{"https://a.example.com", "https://example.com:8443"}, PasskeyUV: twofold.UVRequired,
				PasskeyUsernameless: true},
			CreatedAt: t0.Add(-48 * time.Hour), UpdatedAt: t0.Add(time.Hour),
		}}
		for i := range apps {
			must(t, s.CreateApp(ctx, &apps[i]))
			if apps[i].ID == 0 || (i > 0 && apps[i].ID == apps[0].ID) {
				t.Fatalf("CreateApp(%q) set ID %d, want a new non-zero id", apps[i].Name, apps[i].ID)
			}
		}
		for _, want := range apps {
			got, err := s.GetApp(ctx, want.ID)
			must(t, err)
			if d := diff(want, got); d != "" {
				t.Errorf("GetApp(%q):%s", want.Name, d)
			}
			got, err = s.AppByKeyMAC(ctx, want.KeyMAC)
			must(t, err)
			if d := diff(want, got); d != "" {
				t.Errorf("AppByKeyMAC(%q):%s", want.Name, d)
			}
		}
		list, err := s.ListApps(ctx)
		must(t, err)
		if d := diff(apps, list); d != "" {
			t.Errorf("ListApps (oldest first):%s", d)
		}
	})

	t.Run("ConflictsAndNotFound", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		dup := twofold.App{Name: "c", KeyMAC: a.KeyMAC, KeySealed: []byte("x"), Settings: twofold.DefaultSettings()}
		wantErr(t, "CreateApp with a taken key", s.CreateApp(ctx, &dup), twofold.ErrConflict)
		b.KeyMAC = a.KeyMAC
		wantErr(t, "UpdateApp to a taken key", s.UpdateApp(ctx, b), twofold.ErrConflict)
		if list, _ := s.ListApps(ctx); len(list) != 2 {
			t.Errorf("ListApps has %d apps, want 2", len(list))
		}
		wantErr(t, "GetApp(missing)", errOf(s.GetApp(ctx, b.ID+100)), twofold.ErrNotFound)
		wantErr(t, "AppByKeyMAC(unknown)", errOf(s.AppByKeyMAC(ctx, []byte("no such key"))), twofold.ErrNotFound)
		b.ID, b.KeyMAC = b.ID+100, []byte("other")
		wantErr(t, "UpdateApp(missing)", s.UpdateApp(ctx, b), twofold.ErrNotFound)
	})

	t.Run("UpdatePersists", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		want := a
		want.Name, want.Sandbox, want.UpdatedAt = "renamed", true, t0.Add(time.Hour)
		want.KeyMAC, want.KeySealed = []byte("rotated"), []byte("rotated sealed")
		want.Settings = twofold.Settings{TokenLength: 9, TOTPDigits: 8, TOTPPeriod: 60, TOTPSkew: 2, CallEnabled: true,
			UnconfirmedBypass: true, CallbackURL: "https://cb.example/x", CallbackMethod: "GET", ContactEmail: "c@x.org",
			MigrationTools: true}
		upd := want
		upd.CreatedAt = t0.Add(99 * time.Hour) // creation time is not mutable
		must(t, s.UpdateApp(ctx, upd))
		got, err := s.GetApp(ctx, a.ID)
		must(t, err)
		if d := diff(want, got); d != "" {
			t.Errorf("after UpdateApp:%s", d)
		}
		if got, err := s.AppByKeyMAC(ctx, want.KeyMAC); err != nil || got.ID != a.ID {
			t.Errorf("AppByKeyMAC(new key) = %d, %v; want %d", got.ID, err, a.ID)
		}
		wantErr(t, "AppByKeyMAC(rotated-away key)", errOf(s.AppByKeyMAC(ctx, a.KeyMAC)), twofold.ErrNotFound)
	})

	testAppsOneTouch(t, open) // OneTouch settings and callback health
}

func testUsers(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("CreateIsIdempotentPerNumber", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := twofold.User{AppID: a.ID, Email: "first@example.com", CountryCode: 1, Phone: "5551234567", CreatedAt: t0}
		if created, err := s.CreateUser(ctx, &u); err != nil || !created || u.ID == 0 {
			t.Fatalf("CreateUser = %v, %v (id %d); want created with an id", created, err, u.ID)
		}
		want := twofold.User{ID: u.ID, AppID: a.ID, Email: "first@example.com", CountryCode: 1, Phone: "5551234567",
			CreatedAt: t0, UpdatedAt: t0}
		if d := diff(want, u); d != "" {
			t.Errorf("CreateUser filled in:%s", d)
		}
		if d := diff(want, getUser(t, s, a.ID, u.ID)); d != "" {
			t.Errorf("GetUser:%s", d)
		}
		again := twofold.User{AppID: a.ID, Email: "2nd@example.com", CountryCode: 1, Phone: u.Phone, CreatedAt: t0.Add(1)}
		if created, err := s.CreateUser(ctx, &again); err != nil || created {
			t.Fatalf("second CreateUser = %v, %v; want created=false", created, err)
		}
		if d := diff(want, again); d != "" {
			t.Errorf("second CreateUser should become the existing user:%s", d)
		}
		for _, tc := range []struct {
			name  string
			appID int64
			cc    int
		}{{"another app", b.ID, 1}, {"another country code", a.ID, 44}} {
			x := twofold.User{AppID: tc.appID, Email: "x@example.com", CountryCode: tc.cc, Phone: u.Phone, CreatedAt: t0}
			if created, err := s.CreateUser(ctx, &x); err != nil || !created || x.ID == u.ID {
				t.Errorf("same phone, %s: CreateUser = %v, %v, id %d; want a new user", tc.name, created, err, x.ID)
			}
		}
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		mkAuthenticator(t, s, u)
		wantErr(t, "GetUser with another app", errOf(s.GetUser(ctx, b.ID, u.ID)), twofold.ErrNotFound)
		wantErr(t, "GetUser(missing)", errOf(s.GetUser(ctx, a.ID, u.ID+100)), twofold.ErrNotFound)
		wantErr(t, "GetAuthenticator, another app", errOf(s.GetAuthenticator(ctx, b.ID, u.ID)), twofold.ErrNotFound)
		must(t, s.ConfirmUser(ctx, b.ID, u.ID))
		moved := u
		moved.AppID, moved.Email = b.ID, "hijack@example.com"
		wantErr(t, "UpdateUser with another app", s.UpdateUser(ctx, moved), twofold.ErrNotFound)
		wantErr(t, "DeleteUser with another app", s.DeleteUser(ctx, b.ID, u.ID), twofold.ErrNotFound)
		if d := diff(u, getUser(t, s, a.ID, u.ID)); d != "" {
			t.Errorf("another app's calls changed the user:%s", d)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, other := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		mkUser(t, s, b.ID, 44, "7700900000")
		must(t, s.ConfirmUser(ctx, a.ID, u.ID))
		want := u
		want.Email, want.CountryCode, want.Phone, want.UpdatedAt = "new@example.com", 44, "7700900000", t0.Add(time.Hour)
		want.Confirmed = true
		upd := want
		upd.CreatedAt, upd.Confirmed = t0.Add(99*time.Hour), false // neither is written by UpdateUser
		must(t, s.UpdateUser(ctx, upd))                            // the number only another app has
		if d := diff(want, getUser(t, s, a.ID, u.ID)); d != "" {
			t.Errorf("after UpdateUser:%s", d)
		}
		clash := want
		clash.CountryCode, clash.Phone, clash.Email = other.CountryCode, other.Phone, "clash@example.com"
		wantErr(t, "UpdateUser to another user's number", s.UpdateUser(ctx, clash), twofold.ErrConflict)
		if d := diff(want, getUser(t, s, a.ID, u.ID)); d != "" {
			t.Errorf("a conflicting UpdateUser changed the user:%s", d)
		}
		clash.ID += 100
		wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, clash), twofold.ErrNotFound)
	})

	t.Run("ConfirmAndCount", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b, empty := mkApp(t, s, "a"), mkApp(t, s, "b"), mkApp(t, s, "empty")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		mkUser(t, s, a.ID, 1, "5550000002")
		mkUser(t, s, a.ID, 1, "5550000003")
		mkUser(t, s, b.ID, 1, "5550000001")
		for i := range 2 { // confirming twice is harmless
			must(t, s.ConfirmUser(ctx, a.ID, u.ID))
			if !getUser(t, s, a.ID, u.ID).Confirmed {
				t.Errorf("not confirmed after ConfirmUser #%d", i+1)
			}
		}
		must(t, s.DeleteUser(ctx, a.ID, mkUser(t, s, a.ID, 1, "5550000004").ID))
		for _, tc := range []struct {
			app  twofold.App
			want int64
		}{{a, 3}, {b, 1}, {empty, 0}} {
			if n, err := s.CountUsers(ctx, tc.app.ID); err != nil || n != tc.want {
				t.Errorf("CountUsers(%s) = %d, %v; want %d", tc.app.Name, n, err, tc.want)
			}
		}
	})

	t.Run("DeleteCascades", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, keep := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		for _, x := range []twofold.User{u, keep} {
			mkCode(t, s, x, "login", t0, ttl)
			mkAuthenticator(t, s, x)
			mkQRLink(t, s, x, t0.Add(time.Hour))
			must(t, s.InsertActivity(ctx, twofold.Activity{AppID: a.ID, UserID: x.ID, Type: "banned",
				Data: `{"reason":"x"}`, IP: "192.0.2.1", CreatedAt: t0}))
			must(t, s.InsertMessage(ctx, mkMessage(x.AppID, x.ID, fmt.Sprint("SM", x.ID), "+15550000000", t0)))
		}
		wantErr(t, "DeleteUser with the wrong app", s.DeleteUser(ctx, b.ID, u.ID), twofold.ErrNotFound)
		getUser(t, s, a.ID, u.ID)
		if len(codesAt(t, s, u, t0)) != 1 {
			t.Fatal("codes gone after a wrong-app delete")
		}
		uKey, keepKey := userRowID(t, s, a.ID, u.ID), userRowID(t, s, a.ID, keep.ID)
		must(t, s.DeleteUser(ctx, a.ID, u.ID))
		wantErr(t, "second DeleteUser", s.DeleteUser(ctx, a.ID, u.ID), twofold.ErrNotFound)
		wantErr(t, "GetUser after delete", errOf(s.GetUser(ctx, a.ID, u.ID)), twofold.ErrNotFound)
		if c := codesAt(t, s, u, longAgo); len(c) != 0 {
			t.Errorf("codes survived DeleteUser: %+v", c)
		}
		wantErr(t, "GetAuthenticator after delete", errOf(s.GetAuthenticator(ctx, a.ID, u.ID)), twofold.ErrNotFound)
		wantErr(t, "GetQRLink after delete", errOf(s.GetQRLink(ctx, qrMAC(u), t0)), twofold.ErrNotFound)
		// The store has no method to read activities back; count rows with portable SQL.
		// Activities name users by row id, messages (which outlive them) by public id.
		for _, tc := range []struct {
			table string
			user  int64
			want  int
		}{{"activities", uKey, 0}, {"activities", keepKey, 1}, {"messages", u.ID, 1}} {
			var n int
			must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+tc.table+` WHERE user_id = $1`, tc.user).Scan(&n))
			if n != tc.want {
				t.Errorf("%s of user %d after deleting user %d: %d rows, want %d", tc.table, tc.user, u.ID, n, tc.want)
			}
		}
		// The other user keeps everything.
		if len(codesAt(t, s, keep, t0)) != 1 {
			t.Error("another user's codes went too")
		}
		must(t, errOf(s.GetAuthenticator(ctx, a.ID, keep.ID)))
		must(t, errOf(s.GetQRLink(ctx, qrMAC(keep), t0)))
	})
}

func testConcurrency(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("CreateUserOnce", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		var ids [workers]int64
		exactlyOne(t, workers, "CreateUser", func(i int) (bool, error) {
			u := twofold.User{AppID: a.ID, Email: fmt.Sprint(i), CountryCode: 1, Phone: "5551234567", CreatedAt: t0}
			created, err := s.CreateUser(t.Context(), &u)
			ids[i] = u.ID
			return created, err
		})
		for i, id := range ids {
			if id != ids[0] || id == 0 {
				t.Errorf("CreateUser #%d got id %d, #0 got %d", i, id, ids[0])
			}
		}
		if n, _ := s.CountUsers(t.Context(), a.ID); n != 1 {
			t.Errorf("CountUsers = %d, want 1", n)
		}
	})

	t.Run("UseCodeOnce", func(t *testing.T) {
		s := open(t)
		c := mkCode(t, s, mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001"), "login", t0, ttl)
		exactlyOne(t, workers, "UseCode", func(int) (bool, error) { return s.UseCode(t.Context(), c.ID, t0, 3) })
	})

	t.Run("ConsumeCodeOnce", func(t *testing.T) {
		s := open(t)
		c := mkCode(t, s, mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001"), "login", t0, ttl)
		var mu sync.Mutex
		got := map[twofold.CodeCheck]int{}
		race(workers, func(int) {
			r, err := s.ConsumeCode(t.Context(), c.AppID, c.UserID, t0, 3, func(x twofold.OneTimeCode) bool { return x.ID == c.ID })
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got[r]++
			mu.Unlock()
		})
		if got[twofold.CodeAccepted] != 1 || got[twofold.CodeReused] != workers-1 {
			t.Fatalf("parallel checks of the right code: %v; want one accepted, the rest reused", got)
		}
	})

	t.Run("AdvanceStepOnce", func(t *testing.T) {
		s := open(t)
		au := mkAuthenticator(t, s, mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001"))
		exactlyOne(t, workers, "AdvanceStep", func(int) (bool, error) {
			return s.AdvanceStep(t.Context(), au.AppID, au.UserID, au.Version, 1000)
		})
		for _, step := range []int64{1000, 999, 0, -1} {
			if ok, err := s.AdvanceStep(t.Context(), au.AppID, au.UserID, au.Version, step); ok || err != nil {
				t.Errorf("AdvanceStep(%d) after 1000 = %v, %v; want false (replay)", step, ok, err)
			}
		}
	})

	t.Run("IncrCountsEveryCall", func(t *testing.T) {
		s := open(t)
		const each = 4
		var got [workers * each]int64
		race(workers, func(i int) {
			for j := range each {
				n, err := s.Incr(t.Context(), "sends:1", t0, t0.Add(time.Hour), 1)
				if err != nil {
					t.Errorf("Incr: %v", err)
				}
				got[i*each+j] = n
			}
		})
		seen := map[int64]bool{}
		for _, n := range got {
			if n < 1 || n > workers*each || seen[n] {
				t.Errorf("Incr returned %d twice or out of 1..%d", n, workers*each)
			}
			seen[n] = true
		}
		if n, err := s.Incr(t.Context(), "sends:1", t0, t0.Add(time.Hour), 0); n != workers*each || err != nil {
			t.Errorf("final count = %d, %v; want %d", n, err, workers*each)
		}
	})

	t.Run("SpendAttemptCountsEveryCall", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		c := mkCode(t, s, u, "login", t0, ttl)
		race(workers, func(int) {
			if err := s.SpendAttempt(t.Context(), u, t0); err != nil {
				t.Errorf("SpendAttempt: %v", err)
			}
		})
		if got := codeByID(t, s, u, c.ID).Attempts; got != workers {
			t.Errorf("attempts = %d after %d parallel SpendAttempt calls", got, workers)
		}
		if ok, _ := s.UseCode(t.Context(), c.ID, t0, workers-1); ok {
			t.Error("UseCode accepted a code past its attempts")
		}
	})

	t.Run("InsertCodeLeavesOneLive", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		race(workers, func(i int) {
			c := twofold.OneTimeCode{AppID: u.AppID, UserID: u.ID, Channel: twofold.SMS, Action: "login",
				MAC: []byte(fmt.Sprint(i)), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
			if err := s.InsertCode(t.Context(), &c); err != nil {
				t.Errorf("InsertCode: %v", err)
			}
		})
		cs := codesAt(t, s, u, t0)
		if len(cs) != workers {
			t.Fatalf("%d codes, want %d", len(cs), workers)
		}
		var live []int64
		for _, c := range cs {
			if !c.Superseded {
				live = append(live, c.ID)
			}
		}
		if d := diff([]int64{cs[0].ID}, live); d != "" {
			t.Errorf("live codes after %d parallel InsertCode calls; want only the newest:%s", workers, d)
		}
	})
}

func testCodes(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("InsertSupersedesSameActionOnly", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		login1 := mkCode(t, s, u, "login", t0, ttl)
		used := mkCode(t, s, u, "used", t0, ttl)
		useCode(t, s, used.ID, t0, true)
		reset := mkCode(t, s, u, "reset", t0.Add(time.Second), ttl)
		vLogin := mkCode(t, s, v, "login", t0.Add(time.Second), ttl)
		login2 := mkCode(t, s, u, "login", t0.Add(2*time.Second), ttl)
		mkCode(t, s, u, "used", t0.Add(3*time.Second), ttl)
		if d := diff(login2, codeByID(t, s, u, login2.ID)); d != "" {
			t.Errorf("code round trip:%s", d)
		}
		for _, tc := range []struct {
			name string
			c    twofold.OneTimeCode
			want bool
		}{
			{"older code, same action", login1, true}, {"newest code", login2, false}, {"another action", reset, false},
			{"another user, same action", vLogin, false}, {"used code", used, false},
		} {
			if got := codeByID(t, s, twofold.User{AppID: tc.c.AppID, ID: tc.c.UserID}, tc.c.ID); got.Superseded != tc.want {
				t.Errorf("%s: Superseded = %v, want %v", tc.name, got.Superseded, tc.want)
			}
		}
	})

	// The supersede reads the user's live codes alone (the partial index codes_live, migration
	// 00036): it must still mark exactly the earlier live codes of the user and action, whatever
	// else the user (or someone else) has: used, already superseded, expired but not yet swept.
	t.Run("SupersedeMarksOnlyEarlierLiveCodes", func(t *testing.T) {
		s := open(t)
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		w := mkUser(t, s, b.ID, 1, "5550000001") // another application's user
		old := mkCode(t, s, u, "login", t0, ttl) // superseded by used
		used := mkCode(t, s, u, "login", t0.Add(time.Second), ttl)
		useCode(t, s, used.ID, t0.Add(time.Second), true)
		expired := mkCode(t, s, u, "login", t0.Add(-2*ttl), ttl) // live, expired, not swept
		live := mkCode(t, s, u, "login", t0.Add(2*time.Second), ttl)
		reset := mkCode(t, s, u, "reset", t0.Add(2*time.Second), ttl)
		vLogin := mkCode(t, s, v, "login", t0.Add(2*time.Second), ttl)
		wLogin := mkCode(t, s, w, "login", t0.Add(2*time.Second), ttl)
		// Attempts on a live code, to see that the supersede changes nothing but the flag.
		must(t, s.SpendAttempt(t.Context(), u, t0.Add(3*time.Second)))
		before := map[int64]twofold.OneTimeCode{}
		for _, c := range []twofold.OneTimeCode{old, used, expired, live, reset, vLogin, wLogin} {
			before[c.ID] = codeByID(t, s, twofold.User{AppID: c.AppID, ID: c.UserID}, c.ID)
		}
		if !before[expired.ID].Superseded || !before[old.ID].Superseded || before[live.ID].Superseded {
			t.Fatalf("before: old %v, expired %v, live %v superseded; want true, true, false",
				before[old.ID].Superseded, before[expired.ID].Superseded, before[live.ID].Superseded)
		}
		newest := mkCode(t, s, u, "login", t0.Add(4*time.Second), ttl)
		for _, tc := range []struct {
			name string
			c    twofold.OneTimeCode
			want bool
		}{
			{"earlier live code, same action", live, true}, {"already superseded", old, true},
			{"already superseded, expired", expired, true}, {"used, same action", used, false},
			{"another action", reset, false}, {"another user, same action", vLogin, false},
			{"another application's user with the same id", wLogin, false}, {"the new code", newest, false},
		} {
			got := codeByID(t, s, twofold.User{AppID: tc.c.AppID, ID: tc.c.UserID}, tc.c.ID)
			if got.Superseded != tc.want {
				t.Errorf("%s: Superseded = %v, want %v", tc.name, got.Superseded, tc.want)
			}
			if was, ok := before[tc.c.ID]; ok {
				was.Superseded = got.Superseded
				if d := diff(was, got); d != "" {
					t.Errorf("%s: the supersede changed more than the flag:%s", tc.name, d)
				}
			}
		}
	})

	t.Run("SpendAttemptOnlyLiveCodes", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		expired := mkCode(t, s, u, "old", t0.Add(-2*ttl), ttl)
		atExpiry := mkCode(t, s, u, "edge", t0.Add(-ttl), ttl) // expires exactly now
		used := mkCode(t, s, u, "used", t0, ttl)
		useCode(t, s, used.ID, t0, true)
		superseded := mkCode(t, s, u, "login", t0, ttl)
		live := mkCode(t, s, u, "login", t0.Add(time.Second), ttl)
		liveReset := mkCode(t, s, u, "reset", t0.Add(time.Second), ttl)
		other := mkCode(t, s, v, "login", t0, ttl)
		must(t, s.SpendAttempt(t.Context(), u, t0))
		must(t, s.SpendAttempt(t.Context(), u, t0))
		for _, tc := range []struct {
			name string
			c    twofold.OneTimeCode
			want int
		}{
			{"live", live, 2}, {"live, another action", liveReset, 2}, {"expired", expired, 0},
			{"expiring now", atExpiry, 0}, {"used", used, 0}, {"superseded", superseded, 0}, {"another user's", other, 0},
		} {
			if got := codeByID(t, s, twofold.User{AppID: tc.c.AppID, ID: tc.c.UserID}, tc.c.ID).Attempts; got != tc.want {
				t.Errorf("%s code: attempts = %d, want %d", tc.name, got, tc.want)
			}
		}
	})

	t.Run("UseCode", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		expiry := t0.Add(ttl)
		for i, tc := range []struct {
			name       string
			prep       func(t *testing.T, u twofold.User, c twofold.OneTimeCode)
			attempts   int
			now        time.Time
			max        int
			wantUsed   bool
			prevUsedAt time.Time
		}{
			{name: "fresh", now: t0, max: 3, wantUsed: true},
			{name: "last second", now: expiry.Add(-time.Second), max: 3, wantUsed: true},
			{name: "expires now", now: expiry, max: 3},
			{name: "expired", now: expiry.Add(time.Hour), max: 3},
			{name: "attempts at max", attempts: 3, now: t0, max: 3, wantUsed: true},
			{name: "attempts over max", attempts: 4, now: t0, max: 3},
			{name: "used", now: t0.Add(time.Second), max: 3, prevUsedAt: t0,
				prep: func(t *testing.T, _ twofold.User, c twofold.OneTimeCode) { useCode(t, s, c.ID, t0, true) }},
			{name: "superseded", now: t0, max: 3,
				prep: func(t *testing.T, u twofold.User, _ twofold.OneTimeCode) { mkCode(t, s, u, "login", t0.Add(1), ttl) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := mkUser(t, s, a.ID, 1, fmt.Sprintf("55500000%02d", i))
				c := mkCode(t, s, u, "login", t0, ttl)
				for range tc.attempts {
					must(t, s.SpendAttempt(t.Context(), u, t0))
				}
				if tc.prep != nil {
					tc.prep(t, u, c)
				}
				useCode(t, s, c.ID, tc.now, tc.wantUsed, tc.max)
				want := tc.prevUsedAt
				if tc.wantUsed {
					want = tc.now
				}
				if got := codeByID(t, s, u, c.ID).UsedAt; !got.Equal(want) {
					t.Errorf("UsedAt = %v, want %v", got, want)
				}
			})
		}
		useCode(t, s, 1<<40, t0, false) // unknown id
	})

	t.Run("UnexpiredCodesNewestFirst", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		c1, c2 := mkCode(t, s, u, "a", t0, 5*time.Minute), mkCode(t, s, u, "b", t0, ttl)
		c3 := mkCode(t, s, u, "c", t0, time.Minute)
		for _, tc := range []struct {
			now  time.Time
			want []int64
		}{
			{t0, []int64{c3.ID, c2.ID, c1.ID}},
			{t0.Add(time.Minute), []int64{c2.ID, c1.ID}},
			{t0.Add(5*time.Minute - time.Second), []int64{c2.ID, c1.ID}},
			{t0.Add(5 * time.Minute), []int64{c2.ID}},
			{t0.Add(ttl), nil},
		} {
			if d := diff(tc.want, codeIDs(codesAt(t, s, u, tc.now))); d != "" {
				t.Errorf("UnexpiredCodes at t0+%v:%s", tc.now.Sub(t0), d)
			}
		}
	})
}

func testConsumeCode(t *testing.T, s *Store) {
	u := mkUser(t, s, mkApp(t, s, "consume").ID, 1, "5550000077")
	c := mkCode(t, s, u, "", t0, ttl)
	right := func(x twofold.OneTimeCode) bool { return x.ID == c.ID }
	wrong := func(twofold.OneTimeCode) bool { return false }
	for i := range 3 {
		if r, err := s.ConsumeCode(t.Context(), u.AppID, u.ID, t0, 3, wrong); r != twofold.CodeNoMatch || err != nil {
			t.Fatalf("wrong try %d: %v %v", i, r, err)
		}
	}
	// Three wrong tries spent the code: the right token now counts as a fourth wrong one.
	if r, _ := s.ConsumeCode(t.Context(), u.AppID, u.ID, t0, 3, right); r != twofold.CodeNoMatch {
		t.Fatalf("right token after max wrong tries: %v", r)
	}
	c2 := mkCode(t, s, u, "", t0, ttl)
	must(t, s.RefundAttempt(t.Context(), u.AppID, u.ID, t0))
	var seen twofold.OneTimeCode
	if r, _ := s.ConsumeCode(t.Context(), u.AppID, u.ID, t0, 3, func(x twofold.OneTimeCode) bool {
		if x.ID == c2.ID {
			seen = x
		}
		return x.ID == c2.ID
	}); r != twofold.CodeAccepted {
		t.Fatalf("fresh code: %v", r)
	}
	if seen.Channel != c2.Channel || seen.Action != c2.Action || string(seen.MAC) != string(c2.MAC) {
		t.Errorf("matches was given %+v, want the code's channel, action and MAC", seen)
	}
	if r, _ := s.ConsumeCode(t.Context(), u.AppID, u.ID, t0.Add(ttl), 3, func(x twofold.OneTimeCode) bool { return x.ID == c2.ID }); r != twofold.CodeNoMatch {
		t.Fatalf("expired code: %v", r)
	}
}

func testAuthenticators(t *testing.T, s *Store) {
	ctx := t.Context()
	a := mkApp(t, s, "a")
	u := mkUser(t, s, a.ID, 1, "5550000001")
	wantErr(t, "GetAuthenticator before enrolment", errOf(s.GetAuthenticator(ctx, a.ID, u.ID)), twofold.ErrNotFound)
	if ok, err := s.AdvanceStep(ctx, u.AppID, u.ID, 1, 5); ok || err != nil {
		t.Errorf("AdvanceStep without an authenticator = %v, %v; want false", ok, err)
	}
	type advance struct { // AdvanceStep(version, step) after the put, in order
		version, step int64
		want          bool
	}
	for i, tc := range []struct {
		put   twofold.Authenticator
		steps []advance
	}{{
		put: twofold.Authenticator{SecretSealed: []byte{1, 0, 2}, Digits: 8, Period: 60, CreatedAt: t0,
			Version: 42, LastStep: 7}, // ignored: the store sets both
		steps: []advance{{1, 0, true}, {1, 100, true}, {1, 100, false}, {1, 99, false}, {2, 101, false},
			{0, 101, false}, {1, 101, true}},
	}, { // re-enrolment: the old version is stale and the replay record restarts
		put:   twofold.Authenticator{SecretSealed: []byte("new seed"), Digits: 6, Period: 30, CreatedAt: t0.Add(time.Hour)},
		steps: []advance{{1, 500, false}, {2, 50, true}, {2, 50, false}},
	}} {
		au := tc.put
		au.UserID, au.AppID = u.ID, a.ID
		must(t, s.PutAuthenticator(ctx, &au))
		want := tc.put
		want.UserID, want.AppID, want.Version, want.LastStep = u.ID, a.ID, int64(i+1), -1
		if d := diff(want, au); d != "" {
			t.Errorf("PutAuthenticator #%d set:%s", i+1, d)
		}
		got, err := s.GetAuthenticator(ctx, a.ID, u.ID)
		must(t, err)
		if d := diff(want, got); d != "" {
			t.Errorf("GetAuthenticator after put #%d:%s", i+1, d)
		}
		for _, st := range tc.steps {
			if ok, err := s.AdvanceStep(ctx, u.AppID, u.ID, st.version, st.step); ok != st.want || err != nil {
				t.Errorf("put #%d: AdvanceStep(version %d, step %d) = %v, %v; want %v", i+1, st.version, st.step, ok, err, st.want)
			}
			if st.want {
				want.LastStep = st.step
			}
		}
		if got, _ := s.GetAuthenticator(ctx, a.ID, u.ID); got.LastStep != want.LastStep {
			t.Errorf("put #%d: LastStep = %d, want %d", i+1, got.LastStep, want.LastStep)
		}
	}
}

func testQRLinks(t *testing.T, s *Store) {
	ctx := t.Context()
	a := mkApp(t, s, "a")
	u := mkUser(t, s, a.ID, 1, "5550000001")
	want := twofold.QRLink{MAC: []byte{0, 9, 0}, AppID: a.ID, UserID: u.ID, Version: 3, Size: 512,
		URISealed: []byte("sealed uri"), ExpiresAt: t0.Add(ttl)}
	must(t, s.InsertQRLink(ctx, want))
	if err := s.InsertQRLink(ctx, want); err == nil {
		t.Error("InsertQRLink with a duplicate MAC succeeded")
	}
	got, err := s.GetQRLink(ctx, want.MAC, t0)
	must(t, err)
	if d := diff(want, got); d != "" {
		t.Errorf("GetQRLink:%s", d)
	}
	for _, tc := range []struct {
		name string
		mac  []byte
		now  time.Time
	}{
		{"unknown", []byte("no"), t0}, {"expiring now", want.MAC, want.ExpiresAt}, {"expired", want.MAC, t0.Add(time.Hour)},
	} {
		wantErr(t, "GetQRLink "+tc.name, errOf(s.GetQRLink(ctx, tc.mac, tc.now)), twofold.ErrNotFound)
	}
	must(t, s.DeleteUser(ctx, a.ID, u.ID))
	wantErr(t, "GetQRLink after DeleteUser", errOf(s.GetQRLink(ctx, want.MAC, t0)), twofold.ErrNotFound)
}

func testMessages(t *testing.T, s *Store) {
	ctx := t.Context()
	tos := []string{"+15551234567", "+447700900123", "100%off@example.com", "100xoff@example.com",
		"a_b@example.com", "axb@example.com", `back\slash@example.com`, "+15559999999"}
	var all []twofold.Message
	for i, to := range tos {
		m := mkMessage(int64(1+i%2), int64(100+i), fmt.Sprintf("SM%02d", i), to, t0.Add(time.Duration(i)*time.Second))
		m.Body = "plaintext is never stored"
		must(t, s.InsertMessage(ctx, m))
		if m.ID == 0 || (i > 0 && m.ID <= all[i-1].ID) {
			t.Fatalf("InsertMessage set ID %d, want increasing ids", m.ID)
		}
		m.Body = ""
		all = append(all, *m)
	}
	if err := s.InsertMessage(ctx, mkMessage(1, 1, "SM00", "x", t0)); err == nil {
		t.Error("InsertMessage with a duplicate SID succeeded")
	}
	pick := func(idx ...int) (out []twofold.Message) {
		for _, i := range idx {
			out = append(out, all[i])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    twofold.MessageFilter
		want []twofold.Message
	}{
		{"all, newest last", twofold.MessageFilter{}, all},
		{"limit keeps the newest", twofold.MessageFilter{Limit: 3}, pick(5, 6, 7)},
		{"app", twofold.MessageFilter{AppID: 2}, pick(1, 3, 5, 7)},
		{"app and limit", twofold.MessageFilter{AppID: 1, Limit: 2}, pick(4, 6)},
		{"unknown app", twofold.MessageFilter{AppID: 99}, nil},
		{"partial number", twofold.MessageFilter{To: "555"}, pick(0, 7)},
		{"partial number and app", twofold.MessageFilter{To: "555", AppID: 2}, pick(7)},
		{"exact email", twofold.MessageFilter{To: "axb@example.com"}, pick(5)},
		{"percent is literal", twofold.MessageFilter{To: "100%off"}, pick(2)},
		{"lone percent", twofold.MessageFilter{To: "%"}, pick(2)},
		{"underscore is literal", twofold.MessageFilter{To: "a_b"}, pick(4)},
		{"lone underscore", twofold.MessageFilter{To: "_"}, pick(4)},
		{"backslash is literal", twofold.MessageFilter{To: `k\s`}, pick(6)},
		{"no match", twofold.MessageFilter{To: "nobody"}, nil},
	} {
		got, err := s.ListMessages(ctx, tc.f)
		must(t, err)
		if d := diff(tc.want, got); d != "" {
			t.Errorf("ListMessages %s (%+v):%s", tc.name, tc.f, d)
		}
	}
	for i := len(all); i < 105; i++ {
		must(t, s.InsertMessage(ctx, mkMessage(3, 1, fmt.Sprintf("SM%03d", i), "x", t0)))
	}
	got, err := s.ListMessages(ctx, twofold.MessageFilter{})
	if err != nil || len(got) != 100 || got[0].SID != "SM05" || got[99].SID != "SM104" {
		t.Errorf("ListMessages with the default limit: %d messages, %v; want the newest 100", len(got), err)
	}
}

func testUsage(t *testing.T, s *Store) {
	ctx := t.Context()
	dec, jan, feb := time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), t0, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i, kind := range []twofold.UsageKind{twofold.UsageAPICalls, twofold.UsageSMS, twofold.UsageCalls,
		twofold.UsageEmails, twofold.UsageAuths, twofold.UsageUsers} {
		must(t, s.AddUsage(ctx, 1, jan, kind, int64(i+1)))
		must(t, s.AddUsage(ctx, 1, jan.Add(time.Hour), kind, 10))
	}
	must(t, s.AddUsage(ctx, 1, dec, twofold.UsageAPICalls, 5))
	must(t, s.AddUsage(ctx, 1, feb, twofold.UsageAuths, 2))
	must(t, s.AddUsage(ctx, 2, jan, twofold.UsageSMS, 1000))
	if err := s.AddUsage(ctx, 1, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "bogus", 1); err == nil {
		t.Error("AddUsage with an unknown kind succeeded")
	}
	decU := twofold.Usage{Year: 2025, Month: 12, APICalls: 5}
	janU := twofold.Usage{Year: 2026, Month: 1, APICalls: 11, SMS: 12, Calls: 13, Emails: 14, Auths: 15, Users: 16}
	febU := twofold.Usage{Year: 2026, Month: 2, Auths: 2}
	for _, tc := range []struct {
		app   int64
		since time.Time
		want  []twofold.Usage
	}{
		{1, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), []twofold.Usage{decU, janU, febU}},
		{1, dec, []twofold.Usage{decU, janU, febU}},
		{1, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), []twofold.Usage{janU, febU}},
		{1, feb.Add(14 * 24 * time.Hour), []twofold.Usage{febU}},
		{1, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), nil}, // the unknown kind added no row
		{2, dec, []twofold.Usage{{Year: 2026, Month: 1, SMS: 1000}}},
		{3, dec, nil},
	} {
		got, err := s.Usage(ctx, tc.app, tc.since)
		must(t, err)
		if d := diff(tc.want, got); d != "" {
			t.Errorf("Usage(app %d, since %s):%s", tc.app, tc.since.Format("2006-01-02"), d)
		}
	}
}

func testSweep(t *testing.T, s *Store) {
	ctx := t.Context()
	u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
	v := mkUser(t, s, u.AppID, 1, "5550000002")
	mkCode(t, s, u, "a", t0.Add(-ttl), ttl) // expires exactly now: swept
	kept := mkCode(t, s, u, "b", t0, time.Second)
	goneQR, keptQR := mkQRLink(t, s, u, t0), mkQRLink(t, s, v, t0.Add(time.Second))
	incr := func(name string, expires time.Time, delta int64) int64 {
		t.Helper()
		n, err := s.Incr(ctx, name, t0.Add(-time.Hour), expires, delta)
		must(t, err)
		return n
	}
	incr("gone", t0, 5)
	incr("kept", t0.Add(time.Minute), 7)
	spentJWT := func(mac string, expires time.Time) {
		t.Helper()
		must(t, s.tx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO spent_registration_jwts (mac, app_id, expires_at, spent_at) VALUES ($1, $2, $3, $4)`,
				[]byte(mac), u.AppID, unix(expires), unix(t0.Add(-time.Hour)))
			return err
		}))
	}
	spentJWT("gone", t0)
	spentJWT("kept", t0.Add(time.Second))
	if n, err := s.Sweep(ctx, t0); err != nil || n != 4 {
		t.Fatalf("Sweep = %d, %v; want 4 rows", n, err)
	}
	for mac, want := range map[string]int{"gone": 0, "kept": 1} {
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM spent_registration_jwts WHERE mac = $1`, []byte(mac)).Scan(&n))
		if n != want {
			t.Errorf("spent JWT mark %q: %d after Sweep, want %d", mac, n, want)
		}
	}
	if d := diff([]int64{kept.ID}, codeIDs(codesAt(t, s, u, longAgo))); d != "" {
		t.Errorf("codes after Sweep:%s", d)
	}
	wantErr(t, "expired QR link after Sweep", errOf(s.GetQRLink(ctx, goneQR, longAgo)), twofold.ErrNotFound)
	must(t, errOf(s.GetQRLink(ctx, keptQR, t0)))
	if got := incr("kept", t0.Add(time.Minute), 0); got != 7 {
		t.Errorf("live counter = %d after Sweep, want 7", got)
	}
	if got := incr("gone", t0.Add(time.Minute), 0); got != 0 {
		t.Errorf("expired counter = %d after Sweep, want 0 (deleted)", got)
	}
	if n, err := s.Sweep(ctx, t0); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0", n, err)
	}
}
