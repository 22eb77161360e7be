package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The master key rotation part of runConformance (conformance_test.go): reading sealed values
// page by page, writing them back with a compare-and-set, re-MACing a device, spending a
// registration JWT under several MACs, and counting what cannot be re-MAC'd.

func testRekey(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("PagesCoverEveryRowInOrder", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := fillSealed(t, s, 5)
		for _, tab := range SealedTables {
			n, err := s.CountSealed(ctx, tab)
			must(t, err)
			for _, size := range []int{1, 2, 3, 100} {
				got := allSealed(t, s, tab, size)
				same(t, fmt.Sprintf("%s in pages of %d", tab, size), want[tab], withoutKeys(tab, got))
				if int64(len(got)) != n {
					t.Errorf("%s: CountSealed = %d, pages hold %d", tab, n, len(got))
				}
			}
		}
		if _, err := s.SealedPage(ctx, "users", SealedRow{}, 10); err == nil {
			t.Error("SealedPage of a table without sealed values: want an error")
		}
	})

	t.Run("ResealIsCompareAndSet", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		fillSealed(t, s, 3)
		for _, tab := range SealedTables {
			rows := allSealed(t, s, tab, 100)
			var changes []Reseal
			for i, r := range rows {
				c := Reseal{Old: r, MAC: r.MAC, Sealed: []byte(fmt.Sprint("resealed ", tab, i))}
				if remacs(tab) {
					c.MAC = append([]byte("new:"), r.MAC...)
				}
				changes = append(changes, c)
			}
			// The last row changes between the read and the write: it must keep the new value.
			stale := changes[len(changes)-1]
			stale.Old.Sealed = []byte("not what the row holds")
			changes[len(changes)-1] = stale
			n, err := s.Reseal(ctx, tab, changes)
			must(t, err)
			if n != len(changes)-1 {
				t.Errorf("%s: Reseal changed %d rows, want %d (all but the stale one)", tab, n, len(changes)-1)
			}
			got := allSealed(t, s, tab, 100)
			for i, r := range got {
				wantRow := changes[i]
				if i == len(got)-1 {
					same(t, fmt.Sprintf("%s: the stale row", tab), rows[i], r)
					continue
				}
				if !bytes.Equal(r.Sealed, wantRow.Sealed) {
					t.Errorf("%s row %d: sealed %q, want %q", tab, i, r.Sealed, wantRow.Sealed)
				}
				if remacs(tab) && !bytes.Equal(r.MAC, wantRow.MAC) {
					t.Errorf("%s row %d: MAC %q, want %q", tab, i, r.MAC, wantRow.MAC)
				}
			}
			// Writing the same changes again changes nothing: they no longer match.
			if n, err := s.Reseal(ctx, tab, changes); err != nil || n != 0 {
				t.Errorf("%s: Reseal again = %d, %v; want 0", tab, n, err)
			}
		}
	})

	t.Run("ResealedAppIsFoundByItsNewMAC", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "shop")
		if _, err := s.AppByKeyMAC(ctx, a.KeyMAC); err != nil { // in any cache now
			t.Fatal(err)
		}
		row := allSealed(t, s, SealedApps, 10)[0]
		n, err := s.Reseal(ctx, SealedApps, []Reseal{{Old: row, MAC: []byte("mac under B"), Sealed: []byte("sealed under B")}})
		if err != nil || n != 1 {
			t.Fatalf("Reseal = %d, %v", n, err)
		}
		got, err := s.AppByKeyMAC(ctx, []byte("mac under B"))
		if err != nil || got.ID != a.ID || string(got.KeySealed) != "sealed under B" {
			t.Fatalf("AppByKeyMAC(new) = %+v, %v", got, err)
		}
		wantErr(t, "AppByKeyMAC(old)", errOf(s.AppByKeyMAC(ctx, a.KeyMAC)), twofold.ErrNotFound)
		if g := getApp(t, s, a.ID); string(g.KeyMAC) != "mac under B" {
			t.Fatalf("GetApp: key MAC %q", g.KeyMAC)
		}
	})

	t.Run("RemacDevice", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		d := mkDevice(t, s, u, "phone", t0)
		other := mkDevice(t, s, u, "tablet", t0)
		moved, err := s.RemacDevice(ctx, d.ID, d.TokenMAC, []byte("mac under B"), []byte("seed under B"))
		if err != nil || !moved {
			t.Fatalf("RemacDevice = %v, %v", moved, err)
		}
		got, err := s.DeviceByTokenMAC(ctx, []byte("mac under B"))
		if err != nil || got.ID != d.ID || string(got.SecretSealed) != "seed under B" {
			t.Fatalf("DeviceByTokenMAC(new) = %+v, %v", got, err)
		}
		wantErr(t, "DeviceByTokenMAC(old)", errOf(s.DeviceByTokenMAC(ctx, d.TokenMAC)), twofold.ErrNotFound)
		// From a MAC the device no longer has (another request moved it first), or for a device
		// that is gone: nothing happens.
		if moved, err := s.RemacDevice(ctx, d.ID, d.TokenMAC, []byte("mac under C"), []byte("x")); err != nil || moved {
			t.Errorf("RemacDevice from a stale MAC = %v, %v; want false", moved, err)
		}
		must(t, s.DeleteDevice(ctx, u.AppID, d.ID))
		if moved, err := s.RemacDevice(ctx, d.ID, []byte("mac under B"), []byte("mac under C"), []byte("x")); err != nil || moved {
			t.Errorf("RemacDevice of a removed device = %v, %v; want false", moved, err)
		}
		same(t, "the other device", other, noErr(s.DeviceByTokenMAC(ctx, other.TokenMAC))(t))
	})

	t.Run("RegisterDeviceOnceMACs", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "a")
		u := mkUser(t, s, app.ID, 1, "5550000001")
		register := func(name string, macs ...string) error {
			var bs [][]byte
			for _, m := range macs {
				bs = append(bs, []byte(m))
			}
			d := newDevice(name)
			return s.RegisterDeviceOnceMACs(ctx, bs, app.ID, u.ID, t0.Add(ttl), t0, &d)
		}
		must(t, register("first", "jwt under A")) // before the rotation: spent under A alone
		for _, tc := range []struct {
			name string
			macs []string
		}{
			{"same key", []string{"jwt under A"}},
			{"new key current, old accepted", []string{"jwt under B", "jwt under A"}},
		} {
			wantErr(t, tc.name, register("again "+tc.name, tc.macs...), twofold.ErrConflict)
		}
		must(t, register("second", "other jwt under B", "other jwt under A")) // spent under both
		for _, macs := range [][]string{{"other jwt under B"}, {"other jwt under A"}, {"other jwt under A", "other jwt under B"}} {
			wantErr(t, fmt.Sprint("second JWT under ", macs), register(fmt.Sprint("again ", macs), macs...), twofold.ErrConflict)
		}
		devs := noErr(s.ListDevices(ctx, app.ID, u.ID))(t)
		if len(devs) != 2 || devs[0].Name != "first" || devs[1].Name != "second" {
			t.Fatalf("devices: %+v; want the first and the second, no device of a refused JWT", devs)
		}
		if err := s.RegisterDeviceOnceMACs(ctx, nil, app.ID, u.ID, t0, t0, &twofold.Device{}); err == nil {
			t.Fatal("no MAC: want an error")
		}
		// The marks belong to the application: the user removed (with its devices), a JWT spent
		// for it stays spent, and would otherwise make the user again with another device.
		must(t, s.DeleteUser(ctx, app.ID, u.ID))
		u = mkUser(t, s, app.ID, 1, "5550000001")
		wantErr(t, "a JWT of a removed user", register("after the user's removal", "jwt under A"), twofold.ErrConflict)
		if devs := noErr(s.ListDevices(ctx, app.ID, u.ID))(t); len(devs) != 0 {
			t.Fatalf("the user made again has devices %+v", devs)
		}
		// Servers part-way through a rotation (rings {A, B} and {B, A}: the same keys, current
		// first) race to spend one JWT: exactly one registers a device, and none fails otherwise
		// (on PostgreSQL, inserting the MACs in ring order would deadlock).
		rings := [][]string{{"raced under B", "raced under A"}, {"raced under A", "raced under B"}}
		exactlyOne(t, workers, "RegisterDeviceOnceMACs", func(i int) (bool, error) {
			err := register(fmt.Sprint("raced ", i), rings[i%len(rings)]...)
			if err == twofold.ErrConflict {
				return false, nil
			}
			return err == nil, err
		})
	})

	// Migration 16 moves the spent JWTs out of registration_tokens: the used rows that have not
	// expired come along (some are JWTs spent by their text), the rest stay where they are. The
	// migration reads the database's clock, so this test's times are the real time's.
	t.Run("SpentRegistrationJWTsMigration", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "a")
		u := mkUser(t, s, app.ID, 1, "5550000001")
		db := migrationDB(t, s)
		// Below migration 17 users have no public id: rows name them by row id, which becomes
		// their public id on the way back up.
		var key int64
		must(t, s.r.QueryRowContext(ctx, `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, app.ID, u.ID).Scan(&key))
		p := noErr(migrator(db, s.pg))(t)
		must(t, errOf(p.DownTo(ctx, 15)))
		now := time.Now()
		for _, r := range []struct {
			mac  string
			used bool
			exp  time.Time
		}{{"spent", true, now.Add(time.Hour)}, {"spent, expired", true, now.Add(-time.Hour)}, {"unused", false, now.Add(time.Hour)}} {
			var used any
			if r.used {
				used = unix(now.Add(-time.Minute))
			}
			_, err := s.w.ExecContext(ctx, `INSERT INTO registration_tokens (mac, app_id, user_id, expires_at, used_at)
				VALUES ($1, $2, $3, $4, $5)`, []byte(r.mac), app.ID, key, unix(r.exp), used)
			must(t, err)
		}
		must(t, errOf(p.Up(ctx)))
		u = getUser(t, s, app.ID, key)
		register := func(name, mac string) error {
			d := newDevice(name)
			return s.RegisterDeviceOnceMACs(ctx, [][]byte{[]byte(mac)}, app.ID, u.ID, now.Add(time.Hour), now, &d)
		}
		wantErr(t, "a JWT spent before the migration", register("again", "spent"), twofold.ErrConflict)
		must(t, register("expired mark", "spent, expired"))
		must(t, register("unused token's MAC", "unused"))
		if id := noErr(s.RegistrationTokenApp(ctx, []byte("unused")))(t); id != app.ID {
			t.Fatalf("the unused registration token after the migration: app %d", id)
		}
	})

	t.Run("MoveKeyCheck", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		if _, _, ok, err := s.LastRekey(ctx); err != nil || ok {
			t.Fatalf("LastRekey before any = %v, %v", ok, err)
		}
		must(t, errOf(s.ServerKeyOrCreate(ctx, ServerKey{Name: KeyCheckRow, PublicKey: []byte("check A"), PrivateSealed: []byte{}, CreatedAt: t0})))
		if moved, err := s.MoveKeyCheck(ctx, []byte("check C"), []byte("check B"), []byte("id C"), t0); err != nil || moved {
			t.Fatalf("MoveKeyCheck from a hash the check does not hold = %v, %v", moved, err)
		}
		if _, _, ok, _ := s.LastRekey(ctx); ok {
			t.Fatal("a move that did not happen was recorded")
		}
		for i, step := range []struct{ from, to, prev string }{{"check A", "check B", "id A"}, {"check B", "check C", "id B"}} {
			at := t0.Add(time.Duration(i) * time.Hour)
			if moved, err := s.MoveKeyCheck(ctx, []byte(step.from), []byte(step.to), []byte(step.prev), at); err != nil || !moved {
				t.Fatalf("MoveKeyCheck %s = %v, %v", step.prev, moved, err)
			}
			prev, when, ok, err := s.LastRekey(ctx)
			if err != nil || !ok || string(prev) != step.prev || !when.Equal(at) {
				t.Fatalf("LastRekey after %d moves = %q %v %v %v", i+1, prev, when, ok, err)
			}
		}
		check := allSealed(t, s, SealedServerKeys, 10)
		if len(check) != 2 || check[0].Name != KeyCheckRow || string(check[0].MAC) != "check C" || len(check[1].Sealed) != 0 {
			t.Fatalf("server keys after the moves: %+v", check)
		}
	})

	t.Run("LiveMACRows", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "a")
		u := mkUser(t, s, app.ID, 1, "5550000001")
		mkCode(t, s, u, "live", t0, ttl)
		mkCode(t, s, u, "live later", t0.Add(time.Minute), ttl)
		mkCode(t, s, u, "expired", t0.Add(-time.Hour), ttl)
		spent := mkCode(t, s, u, "used", t0, ttl)
		useCode(t, s, spent.ID, t0, true)
		mkToken(t, s, u, "live", t0.Add(time.Hour))
		mkToken(t, s, u, "expired", t0.Add(-time.Hour))
		d := newDevice("jwt")
		must(t, s.RegisterDeviceOnceMACs(ctx, [][]byte{[]byte("jwt under A"), []byte("jwt under B")}, app.ID, u.ID, t0.Add(4*time.Minute), t0, &d))
		mkQRLink(t, s, u, t0.Add(2*time.Minute))
		pv := twofold.PhoneVerification{UUID: "pv-1", AppID: app.ID, Phone: "+15550000001", Via: twofold.SMS,
			MAC: []byte("pv mac"), CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Minute)}
		must(t, s.InsertPhoneVerification(ctx, &pv))
		svc := mkVerifyService(t, s, app.ID, "svc")
		mkVerification(t, s, svc, "+15550000001", t0.Add(5*time.Minute))
		approved := mkVerification(t, s, svc, "+15550000002", t0.Add(6*time.Minute))
		must(t, errOf(s.EndVerification(ctx, svc.ID, approved.PublicID, twofold.VerificationApproved, t0)))
		mkVerification(t, s, svc, "+15550000003", t0.Add(-time.Minute))
		got := noErr(s.LiveMACRows(ctx, t0))(t)
		same(t, "LiveMACRows", []LiveMACs{
			{Table: "codes", Live: 2, LapseBy: t0.Add(time.Minute + ttl)},
			{Table: "phone_verifications", Live: 1, LapseBy: t0.Add(3 * time.Minute)},
			{Table: "registration_tokens", Live: 1, LapseBy: t0.Add(time.Hour)},
			{Table: "spent_registration_jwts", Live: 2, LapseBy: t0.Add(4 * time.Minute)},
			{Table: "qr_links", Live: 1, LapseBy: t0.Add(2 * time.Minute)},
			{Table: "verifications", Live: 1, LapseBy: t0.Add(5 * time.Minute)},
		}, got)
		later := noErr(s.LiveMACRows(ctx, t0.Add(24*time.Hour)))(t)
		for _, l := range later {
			if l.Live != 0 || !l.LapseBy.IsZero() {
				t.Errorf("a day later: %+v, want none live", l)
			}
		}
	})
}

// fillSealed puts n rows with sealed values in every table that has them (server_keys: n named
// keys, one with nothing sealed), and returns them per table in key order.
func fillSealed(t *testing.T, s *Store, n int) map[SealedTable][]SealedRow {
	t.Helper()
	ctx := t.Context()
	want := map[SealedTable][]SealedRow{}
	app := mkApp(t, s, "owner")
	want[SealedApps] = append(want[SealedApps], SealedRow{ID: app.ID, MAC: app.KeyMAC, Sealed: app.KeySealed})
	for i := range n {
		if i > 0 {
			a := mkApp(t, s, fmt.Sprint("app", i))
			want[SealedApps] = append(want[SealedApps], SealedRow{ID: a.ID, MAC: a.KeyMAC, Sealed: a.KeySealed})
		}
		u := mkUser(t, s, app.ID, 1, fmt.Sprint("55500000", 10+i))
		auth := twofold.Authenticator{UserID: u.ID, AppID: app.ID, SecretSealed: []byte(fmt.Sprint("seed", i)), Digits: 6,
			Period: 30, CreatedAt: t0}
		must(t, s.PutAuthenticator(ctx, &auth))
		want[SealedAuthenticators] = append(want[SealedAuthenticators], SealedRow{ID: u.ID, AppID: app.ID, Sealed: auth.SecretSealed})
		d := mkDevice(t, s, u, "phone", t0)
		want[SealedDevices] = append(want[SealedDevices], SealedRow{ID: d.ID, MAC: d.TokenMAC, Sealed: d.SecretSealed})
		m := mkMessage(app.ID, u.ID, fmt.Sprint("SM", i), "+1555", t0)
		must(t, s.InsertMessage(ctx, m))
		want[SealedMessages] = append(want[SealedMessages], SealedRow{ID: m.ID, Name: m.SID, Sealed: m.BodySealed})
		mac := []byte{0xff - byte(i), 0x00, byte(i)} // inserted out of key order
		must(t, s.InsertQRLink(ctx, twofold.QRLink{MAC: mac, AppID: app.ID, UserID: u.ID, Version: 1, Size: 300,
			URISealed: []byte(fmt.Sprint("uri", i)), ExpiresAt: t0.Add(ttl)}))
		want[SealedQRLinks] = append([]SealedRow{{MAC: mac, Sealed: []byte(fmt.Sprint("uri", i))}}, want[SealedQRLinks]...)
		k := ServerKey{Name: fmt.Sprint("key-", n-i), PublicKey: []byte(fmt.Sprint("pub", i)),
			PrivateSealed: []byte(fmt.Sprint("priv", i)), CreatedAt: t0}
		if i == 0 {
			k.PrivateSealed = []byte{} // like the master key check
		}
		must(t, errOf(s.ServerKeyOrCreate(ctx, k)))
		want[SealedServerKeys] = append([]SealedRow{{Name: k.Name, MAC: k.PublicKey, Sealed: k.PrivateSealed}}, want[SealedServerKeys]...)
		c := twofold.StepClient{AppID: app.ID, ClientID: fmt.Sprint("tfc_", i), Name: "idp", Factors: twofold.Factors,
			UserMatch: twofold.MatchID, CreatedAt: t0}
		secret := []byte(fmt.Sprint("secret", i))
		must(t, s.CreateStepClient(ctx, &c, func(int64) map[string][]byte { return map[string][]byte{twofold.SecretClient: secret} }))
		want[SealedStepSecrets] = append(want[SealedStepSecrets], SealedRow{Name: twofold.SecretClient, Sealed: secret})
		for _, kind := range []string{twofold.TwilioAccount, twofold.TwilioKey} {
			if kind == twofold.TwilioAccount && i > 0 {
				continue // one account per application
			}
			c := mkTwilioCredential(t, s, app.ID, kind, fmt.Sprint(kind, i))
			want[SealedTwilioCredentials] = append(want[SealedTwilioCredentials], SealedRow{ID: c.ID, Name: c.SID, MAC: c.SecretMAC, Sealed: c.SecretSealed})
		}
		svc := mkVerifyService(t, s, app.ID, fmt.Sprint("svc", i))
		f := mkVerifyFactor(t, s, svc, u.ID, "totp")
		want[SealedVerifyFactors] = append(want[SealedVerifyFactors], SealedRow{ID: f.ID, Name: f.PublicID, Sealed: f.SecretSealed})
		push := twofold.VerifyFactor{PublicID: fmt.Sprintf("%032x", fmt.Sprint("push", i)), AppID: app.ID, ServiceID: svc.ID, UserID: u.ID,
			Type: twofold.VerifyFactorPush, Name: "push", Status: twofold.FactorVerified, SecretSealed: []byte("public key"), CreatedAt: t0, UpdatedAt: t0}
		must(t, s.InsertVerifyFactor(ctx, &push)) // holds nothing sealed
		v := mkVerification(t, s, svc, fmt.Sprint("+1555000", 1000+i), t0.Add(ttl))
		want[SealedVerifications] = append(want[SealedVerifications], SealedRow{ID: v.ID, Name: v.PublicID, Sealed: v.CodeSealed})
		ended := mkVerification(t, s, svc, fmt.Sprint("+1555001", 1000+i), t0.Add(ttl))
		must(t, errOf(s.EndVerification(ctx, svc.ID, ended.PublicID, twofold.VerificationCanceled, t0))) // its code is gone: nothing sealed
	}
	return want
}

// allSealed reads table tab page by page.
func allSealed(t *testing.T, s *Store, tab SealedTable, size int) []SealedRow {
	t.Helper()
	var out []SealedRow
	var after SealedRow
	for {
		page, err := s.SealedPage(t.Context(), tab, after, size)
		must(t, err)
		out = append(out, page...)
		if len(page) < size {
			return out
		}
		after = page[len(page)-1]
	}
}

// remacs reports whether re-keying table tab re-makes its MAC column too.
func remacs(tab SealedTable) bool {
	return tab == SealedApps || tab == SealedDevices || tab == SealedServerKeys || tab == SealedTwilioCredentials
}

// withoutKeys drops the rows' Key, the store's own page order (opaque to its callers), and the
// row ids of step client secrets, which the store's callers never learn.
func withoutKeys(tab SealedTable, rows []SealedRow) []SealedRow {
	out := make([]SealedRow, len(rows))
	for i, r := range rows {
		r.Key = 0
		if tab == SealedStepSecrets {
			r.ID = 0
		}
		out[i] = r
	}
	return out
}
