package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testRaces is the part of runConformance that races, with the suite's workers, the methods that
// read and then write in one transaction and are not raced elsewhere: on SQLite the single
// writer serialises them, on PostgreSQL their locks must.
func testRaces(t *testing.T, open func(t *testing.T) *Store) {
	pv := func(a twofold.App, phone string, i int) *twofold.PhoneVerification {
		return &twofold.PhoneVerification{UUID: fmt.Sprint("pv-", phone, "-", i), AppID: a.ID, Phone: phone,
			Via: twofold.SMS, MAC: []byte(fmt.Sprint("mac", i)), CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
	}

	t.Run("PhoneVerificationOnce", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		must(t, s.InsertPhoneVerification(t.Context(), pv(a, "+15550000001", 0)))
		exactlyOne(t, workers, "ConsumePhoneVerification", func(int) (bool, error) {
			_, accepted, err := s.ConsumePhoneVerification(t.Context(), a.ID, "+15550000001", t0, 3,
				func(twofold.PhoneVerification) bool { return true })
			return accepted, err
		})
	})

	t.Run("PhoneVerificationAttempts", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		must(t, s.InsertPhoneVerification(t.Context(), pv(a, "+15550000001", 0)))
		var mu sync.Mutex
		found := 0
		race(workers, func(int) {
			f, accepted, err := s.ConsumePhoneVerification(t.Context(), a.ID, "+15550000001", t0, 3,
				func(twofold.PhoneVerification) bool { return false })
			if err != nil || accepted {
				t.Errorf("wrong code: accepted %v, err %v", accepted, err)
			}
			if f {
				mu.Lock()
				found++
				mu.Unlock()
			}
		})
		if found != 3 {
			t.Errorf("%d of %d parallel wrong codes were checked, want 3 (the attempts allowed)", found, workers)
		}
		if v, err := s.LatestPhoneVerification(t.Context(), a.ID, "+15550000001", ""); err != nil || v.Attempts != 3 {
			t.Errorf("attempts = %d, %v; want 3", v.Attempts, err)
		}
	})

	t.Run("InsertPhoneVerificationLeavesOneLive", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		race(workers, func(i int) {
			if err := s.InsertPhoneVerification(t.Context(), pv(a, "+15550000001", i)); err != nil {
				t.Errorf("InsertPhoneVerification: %v", err)
			}
		})
		var live int
		must(t, s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM phone_verifications WHERE superseded = 0`).Scan(&live))
		if live != 1 {
			t.Errorf("%d live verifications after %d parallel sends, want 1", live, workers)
		}
		latest, err := s.LatestPhoneVerification(t.Context(), a.ID, "+15550000001", "")
		must(t, err)
		if latest.Superseded {
			t.Errorf("the newest verification %+v is superseded", latest)
		}
	})

	t.Run("PushSubscriptionCap", func(t *testing.T) {
		s := open(t)
		d := mkDevice(t, s, mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001"), "one", t0)
		const max = 3
		var mu sync.Mutex
		ok := 0
		race(workers, func(i int) {
			err := s.UpsertPushSubscription(t.Context(), &PushSubscription{AppID: d.AppID, DeviceID: d.ID, Kind: "ntfy",
				Endpoint: fmt.Sprint("https://ntfy.example/", i), CreatedAt: t0}, max)
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
			case !errors.Is(err, twofold.ErrConflict):
				t.Errorf("UpsertPushSubscription: %v", err)
			}
		})
		subs, err := s.PushSubscriptionsForUser(t.Context(), d.AppID, d.UserID)
		must(t, err)
		if ok != max || len(subs) != max {
			t.Errorf("%d subscriptions accepted, %d stored, of %d parallel new endpoints; want %d", ok, len(subs), workers, max)
		}
	})

	t.Run("LinkCustomUserOnce", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		var mu sync.Mutex
		linked := map[string]int{}
		race(workers, func(i int) {
			id := fmt.Sprint("customer-", i)
			got, err := s.LinkCustomUser(t.Context(), u.AppID, u.ID, id, t0)
			switch {
			case err == nil:
				if got.CustomUserID != id {
					t.Errorf("LinkCustomUser(%s) returned %q", id, got.CustomUserID)
				}
				mu.Lock()
				linked[id]++
				mu.Unlock()
			case !errors.Is(err, twofold.ErrConflict):
				t.Errorf("LinkCustomUser: %v", err)
			}
		})
		if len(linked) != 1 {
			t.Fatalf("%d different ids linked to one user: %v; want 1", len(linked), linked)
		}
		for id := range linked {
			if got := getUser(t, s, u.AppID, u.ID); got.CustomUserID != id {
				t.Errorf("stored custom id %q, want the winner's %q", got.CustomUserID, id)
			}
		}
	})

	t.Run("CreateCustomUserOnce", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		var ids [workers]int64
		exactlyOne(t, workers, "CreateCustomUser", func(i int) (bool, error) {
			u := twofold.User{AppID: a.ID, Email: fmt.Sprint(i), CustomUserID: "customer-1", CreatedAt: t0}
			created, err := s.CreateCustomUser(t.Context(), &u)
			ids[i] = u.ID
			return created, err
		})
		for i, id := range ids {
			if id != ids[0] || id == 0 {
				t.Errorf("CreateCustomUser #%d got id %d, #0 got %d", i, id, ids[0])
			}
		}
	})

	t.Run("RegisterDeviceOnceOnce", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		exactlyOne(t, workers, "RegisterDeviceOnce", func(i int) (bool, error) {
			d := twofold.Device{Name: "phone", OSType: "cli", PublicKey: []byte("pk"), TokenMAC: []byte(fmt.Sprint("tok", i)),
				SecretSealed: []byte("s"), Digits: 7, Period: 10}
			err := s.RegisterDeviceOnce(t.Context(), []byte("jwt"), u.AppID, u.ID, t0.Add(time.Hour), t0, &d)
			if errors.Is(err, twofold.ErrConflict) {
				return false, nil
			}
			return err == nil, err
		})
		if devs, err := s.ListDevices(t.Context(), u.AppID, u.ID); err != nil || len(devs) != 1 {
			t.Errorf("%d devices, %v; want 1", len(devs), err)
		}
	})
}
