package masterkey_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func ring(t *testing.T, current byte, others ...byte) *seal.Keyring {
	t.Helper()
	var o [][]byte
	for _, b := range others {
		o = append(o, bytes.Repeat([]byte{b}, seal.KeySize))
	}
	r, err := seal.NewRing(bytes.Repeat([]byte{current}, seal.KeySize), o...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// data is what a server under one key left in the database.
type data struct {
	st       *store.Store
	apiKey   string
	app      twofold.App
	devToken string
	auditKey []byte
	// The key recovery codes are hashed with.
	recoveryKey []byte
	// The application's Twilio account (the Verify API), sealed and MAC'd like the API key.
	twilioSID, twilioToken string
	// A Verify totp factor of an entity, its secret sealed.
	service twofold.VerifyService
	entity  twofold.User
	factor  verifyfactors.CreatedTOTP
	// A live verification, its code sealed for sending again.
	verification twofold.Verification
}

// fill opens a fresh database as a server with keys would, and makes one of everything that
// is sealed: an application, a user with an authenticator and a QR link, a device, a message,
// the Web Push key, the audit trail's key, the application's Twilio account, a Verify totp
// factor and a live Verify verification.
func fill(t *testing.T, keys *seal.Keyring) data {
	t.Helper()
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	checked := must(masterkey.Check(ctx, st, keys))(t)
	d := data{st: st, auditKey: must(masterkey.AuditKey(ctx, st, keys, checked))(t), recoveryKey: must(masterkey.RecoveryKey(ctx, st, keys))(t)}
	as := apps.New(st, keys, nil)
	d.app, d.apiKey = must2(as.Create(ctx, apps.CreateParams{Name: "Shop"}))(t)
	u, _ := must2(users.New(st, nil).Register(ctx, d.app.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550123", CountryCode: "1"}))(t)
	must(verify.New(st, nil, keys, verify.Config{}, nil).Enroll(ctx, d.app, u.ID, "", 0))(t)
	ds := devices.New(st, keys, as.Reveal, 0, nil)
	reg, _ := must2(ds.RegistrationToken(ctx, d.app.ID, u.ID))(t)
	d.devToken = must(ds.Register(ctx, reg, publicKey(t), "phone", "cli"))(t).AccessToken
	msg := twofold.Message{SID: "SM1", AppID: d.app.ID, UserID: u.ID, Channel: twofold.SMS, To: "+12015550123",
		BodySealed: keys.Seal([]byte("Your code is 1234567"), deliver.BodyAD("SM1")), Status: "recorded", CreatedAt: t0}
	if err := st.InsertMessage(ctx, &msg); err != nil {
		t.Fatal(err)
	}
	must(push.LoadVAPIDKey(ctx, st, keys, t0))(t)
	client := twofold.StepClient{AppID: d.app.ID, ClientID: "tfc_idp", Name: "IdP", Factors: twofold.Factors, UserMatch: twofold.MatchID, CreatedAt: t0}
	if err := st.CreateStepClient(ctx, &client, func(id int64) map[string][]byte {
		return map[string][]byte{twofold.SecretClient: keys.Seal([]byte("client secret"), store.StepSecretAD(id, twofold.SecretClient))}
	}); err != nil {
		t.Fatal(err)
	}
	acct, token := must2(as.CreateTwilioAccount(ctx, d.app.ID))(t)
	d.twilioSID, d.twilioToken = acct.SID, token
	svc := must(as.CreateVerifyService(ctx, d.app, apps.NewVerifyService("Shop")))(t)
	entity, _ := must2(verifyfactors.New(st, keys, nil).CreateEntity(ctx, d.app, "entity-0001"))(t)
	d.factor = must(verifyfactors.New(st, keys, nil).CreateTOTPFactor(ctx, d.app, svc, entity, verifyfactors.TOTPFactor{Name: "phone"}))(t)
	d.service, d.entity = svc, entity
	id := twofold.NewPublicID()
	v := twofold.Verification{PublicID: id, AppID: d.app.ID, ServiceID: svc.ID, To: "+12015550123", Channel: twofold.SMS,
		CodeMAC: keys.CodeMAC("verification:"+id, "123456"), CodeSealed: keys.Seal([]byte("123456"), verify.VerificationCodeAD(id)),
		CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	send := twofold.VerificationSend{PublicID: twofold.NewPublicID(), Channel: twofold.SMS, At: t0}
	d.verification, _ = must2(st.StartVerification(ctx, v, send, t0, func(twofold.Verification) error { return nil }))(t)
	return d
}

func publicKey(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return must(x509.MarshalPKIXPublicKey(&k.PublicKey))(t)
}

func must[T any](v T, err error) func(testing.TB) T {
	return func(tb testing.TB) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func must2[T, U any](v T, w U, err error) func(testing.TB) (T, U) {
	return func(tb testing.TB) (T, U) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v, w
	}
}

func status(t *testing.T, st *store.Store, keys *seal.Keyring) masterkey.Report {
	t.Helper()
	return must(masterkey.Rekey(t.Context(), st, keys, masterkey.Options{DryRun: true, Now: func() time.Time { return t0 }}))(t)
}

func TestRekeyMovesEverythingButUnseenDevices(t *testing.T) {
	ctx := t.Context()
	a, ba, b := ring(t, 1), ring(t, 2, 1), ring(t, 2)
	d := fill(t, a)

	// Under A alone, nothing is old.
	if rep := status(t, d.st, a); !rep.Done() || rep.Left() != 0 || rep.DevicesWaiting() != 0 {
		t.Fatalf("status under A: %+v", rep)
	}
	// B current, A accepted: everything sealed is A's, the API key and the device's token too.
	before := status(t, d.st, ba)
	for _, tab := range store.SealedTables {
		c := before.Table(tab)
		want := map[store.SealedTable]int64{store.SealedServerKeys: 3}[tab] // VAPID, audit chain, recovery codes; not the check
		if want == 0 {
			want = 1
		}
		if c.OldSealed != want || c.NeedsRekey != want || c.Unreadable != 0 || c.Resealed != 0 {
			t.Errorf("status %s: %+v, want %d old", tab, c, want)
		}
	}
	if before.Table(store.SealedApps).OldMAC != 1 || before.Table(store.SealedTwilioCredentials).OldMAC != 1 || before.DevicesWaiting() != 1 || before.CheckKey != a.ID() || before.Done() {
		t.Fatalf("status before rekey: %+v", before)
	}
	if again := status(t, d.st, ba); again.Left() != before.Left() {
		t.Fatal("status wrote something")
	}

	rep := must(masterkey.Rekey(ctx, d.st, ba, masterkey.Options{PageSize: 1}))(t)
	if !rep.CheckMoved || rep.CheckKey != b.ID() || rep.Left() != 0 || !rep.Done() || rep.DevicesWaiting() != 1 {
		t.Fatalf("rekey: %+v", rep)
	}
	after := status(t, d.st, ba)
	if !after.Done() || after.DevicesWaiting() != 1 {
		t.Fatalf("status after rekey: %+v", after)
	}
	// Idempotent: a second run finds nothing to write.
	for _, c := range must(masterkey.Rekey(ctx, d.st, ba, masterkey.Options{}))(t).Tables {
		if c.Resealed != 0 || c.NeedsRekey != 0 {
			t.Errorf("second rekey wrote %s: %+v", c.Table, c)
		}
	}

	// B alone: every value opens, the API key is found by B's MAC, the check accepts B and
	// refuses A, and the audit trail's key is the one the trail was chained with.
	if rep := status(t, d.st, b); !rep.Done() || rep.Left() != 0 {
		t.Fatalf("status under B alone: %+v", rep)
	}
	if got, err := apps.New(d.st, b, nil).Authenticate(ctx, d.apiKey); err != nil || got.ID != d.app.ID {
		t.Fatalf("API key under B alone: %v", err)
	}
	if got, err := apps.New(d.st, b, nil).AuthenticateTwilio(ctx, d.twilioSID, d.twilioToken); err != nil || got.App.ID != d.app.ID {
		t.Fatalf("Twilio auth token under B alone: %v", err)
	}
	code := otp.TOTP{Secret: d.factor.Secret}.Code(time.Now())
	vf := verifyfactors.New(d.st, b, nil)
	stored := must(vf.Factor(ctx, d.service, d.entity, d.factor.Factor.PublicID))(t)
	if f, err := vf.VerifyFactor(ctx, d.service, d.entity, stored, code); err != nil || f.Status != twofold.FactorVerified {
		t.Fatalf("Verify totp factor under B alone: %+v, %v", f, err)
	}
	v := must(d.st.GetVerification(ctx, d.service.ID, d.verification.PublicID))(t)
	if code, err := b.Open(v.CodeSealed, verify.VerificationCodeAD(v.PublicID)); err != nil || string(code) != "123456" {
		t.Fatalf("a live verification's code under B alone: %q, %v", code, err)
	}
	checked := must(masterkey.Check(ctx, d.st, b))(t)
	if !bytes.Equal(must(masterkey.AuditKey(ctx, d.st, b, checked))(t), d.auditKey) || !bytes.Equal(d.auditKey, a.Subkey(audit.KeyLabel)) {
		t.Fatal("the audit trail's key changed")
	}
	if got := must(masterkey.RecoveryKey(ctx, d.st, b))(t); len(got) != 32 || !bytes.Equal(got, d.recoveryKey) {
		t.Fatal("the recovery codes' key changed with the master key: every recovery code would be lost")
	}
	if _, err := masterkey.Check(ctx, d.st, a); err == nil {
		t.Fatal("after rekey, a server with A alone was accepted")
	}
	if _, err := masterkey.Check(ctx, d.st, ring(t, 1, 3)); err == nil || !strings.Contains(err.Error(), "none of these") {
		t.Fatalf("a ring without B: %v", err)
	}

	// The device was not seen: under B alone its token is unknown (it must register again)...
	if _, err := devices.New(d.st, b, nil, 0, nil).Authenticate(ctx, d.devToken); !errors.Is(err, twofold.ErrNotFound) {
		t.Fatalf("unseen device under B alone: %v, want not found", err)
	}
	// ...but while A is accepted it connects, and is re-MAC'd under B on the way.
	dev := must(devices.New(d.st, ba, nil, 0, nil).Authenticate(ctx, d.devToken))(t)
	if !bytes.Equal(dev.TokenMAC, b.Lookup("device:"+d.devToken)) {
		t.Fatal("device not re-MAC'd under B")
	}
	if rep := status(t, d.st, b); rep.DevicesWaiting() != 0 || !rep.Done() {
		t.Fatalf("status after the device connected: %+v", rep)
	}
	if got := must(devices.New(d.st, b, nil, 0, nil).Authenticate(ctx, d.devToken))(t); got.ID != dev.ID {
		t.Fatal("re-MAC'd device not found under B alone")
	}
}

// A device that connects before rekey runs is re-MAC'd from its plain old MAC; one that
// connects after, from the mark rekey left. Either way its seed opens under its new MAC.
func TestDeviceRemacBeforeAndAfterRekey(t *testing.T) {
	ctx := t.Context()
	a, ba, b := ring(t, 1), ring(t, 2, 1), ring(t, 2)
	for _, rekeyFirst := range []bool{false, true} {
		d := fill(t, a)
		if rekeyFirst {
			must(masterkey.Rekey(ctx, d.st, ba, masterkey.Options{}))(t)
			if marked := must(d.st.DeviceByTokenMAC(ctx, devices.RekeyedTokenMAC(a.ID(), a.Lookup("device:"+d.devToken))))(t); marked.ID == 0 {
				t.Fatal("rekey left no mark")
			}
		}
		dev := must(devices.New(d.st, ba, nil, 0, nil).Authenticate(ctx, d.devToken))(t)
		if !bytes.Equal(dev.TokenMAC, b.Lookup("device:"+d.devToken)) {
			t.Fatalf("rekey first %v: not re-MAC'd", rekeyFirst)
		}
		stored := must(d.st.GetDevice(ctx, dev.AppID, dev.ID))(t)
		if _, id, err := ba.OpenKey(stored.SecretSealed, devices.SeedAD(stored.TokenMAC)); err != nil || id != b.ID() {
			t.Fatalf("rekey first %v: seed %v under %s, want under B", rekeyFirst, err, id)
		}
		// A second connection finds it at once, under B, and changes nothing.
		again := must(devices.New(d.st, ba, nil, 0, nil).Authenticate(ctx, d.devToken))(t)
		if !bytes.Equal(again.SecretSealed, stored.SecretSealed) {
			t.Fatal("a current device was re-sealed again")
		}
	}
}

// A value that opens under no configured key is counted, the run fails, and the database's
// key check stays: a server with only the new key would not be able to read it.
func TestRekeyKeepsTheCheckWhenAValueIsUnreadable(t *testing.T) {
	ctx := t.Context()
	a, ba := ring(t, 1), ring(t, 2, 1)
	d := fill(t, a)
	stranger := ring(t, 9)
	msg := twofold.Message{SID: "SM2", AppID: d.app.ID, Channel: twofold.SMS, To: "+12015550123",
		BodySealed: stranger.Seal([]byte("x"), deliver.BodyAD("SM2")), Status: "recorded", CreatedAt: t0}
	if err := d.st.InsertMessage(ctx, &msg); err != nil {
		t.Fatal(err)
	}
	rep, err := masterkey.Rekey(ctx, d.st, ba, masterkey.Options{})
	if err == nil || rep.CheckMoved || rep.CheckKey != a.ID() || rep.Table(store.SealedMessages).Unreadable != 1 {
		t.Fatalf("rekey with an unreadable value: %v %+v", err, rep)
	}
	if rep.Table(store.SealedMessages).Resealed != 1 || rep.Left() != 1 {
		t.Fatalf("the readable message was not re-sealed, or the unreadable one not counted: %+v", rep)
	}

	// Once the check has moved, an unreadable value still fails the run: status and rekey must
	// not let an operator believe the old keys can go.
	d = fill(t, a)
	if rep := must(masterkey.Rekey(ctx, d.st, ba, masterkey.Options{}))(t); !rep.CheckMoved {
		t.Fatalf("rekey: %+v", rep)
	}
	if err := d.st.InsertMessage(ctx, &twofold.Message{SID: "SM3", AppID: d.app.ID, Channel: twofold.SMS, To: "+12015550123",
		BodySealed: stranger.Seal([]byte("x"), deliver.BodyAD("SM3")), Status: "recorded", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if rep, err := masterkey.Rekey(ctx, d.st, ba, masterkey.Options{}); err == nil || rep.Done() {
		t.Fatalf("rekey after the check moved, with an unreadable value: %v %+v", err, rep)
	}
}

// A run cut short (here: cancelled after its first page) leaves nothing half done; running
// again finishes.
func TestRekeyInterruptedAndRunAgain(t *testing.T) {
	a, ba := ring(t, 1), ring(t, 2, 1)
	d := fill(t, a)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := masterkey.Rekey(ctx, d.st, ba, masterkey.Options{PageSize: 1, Progress: func(store.SealedTable, int64, int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if mid := status(t, d.st, ba); mid.Left() == 0 || mid.CheckKey != a.ID() {
		t.Fatalf("after the interrupted run: %+v", mid)
	}
	if rep := must(masterkey.Rekey(t.Context(), d.st, ba, masterkey.Options{}))(t); !rep.Done() {
		t.Fatalf("second run: %+v", rep)
	}
}

// racingStore lets a "server" change a row between re-keying's read and its write.
type racingStore struct {
	*store.Store
	between func(t store.SealedTable)
}

func (r racingStore) Reseal(ctx context.Context, t store.SealedTable, changes []store.Reseal) (int, error) {
	r.between(t)
	return r.Store.Reseal(ctx, t, changes)
}

// A server that re-seals a row while rekey is at it wins: rekey's compare-and-set misses, the
// row keeps the server's value, and the miss is reported.
func TestRekeyNeverOverwritesAConcurrentChange(t *testing.T) {
	ctx := t.Context()
	a, ba := ring(t, 1), ring(t, 2, 1)
	d := fill(t, a)
	var rotated string
	st := racingStore{d.st, func(tab store.SealedTable) {
		if tab == store.SealedApps && rotated == "" { // an operator rotates the API key meanwhile
			_, rotated = must2(apps.New(d.st, ba, nil).RotateKey(ctx, d.app.ID))(t)
		}
	}}
	rep := must(masterkey.Rekey(ctx, st, ba, masterkey.Options{}))(t)
	if c := rep.Table(store.SealedApps); c.Changed != 1 || c.Resealed != 0 {
		t.Fatalf("apps: %+v, want the one change missed", c)
	}
	as := apps.New(d.st, ba, nil)
	if _, err := as.Authenticate(ctx, rotated); err != nil {
		t.Fatalf("the rotated key was overwritten: %v", err)
	}
	if _, err := as.Authenticate(ctx, d.apiKey); !errors.Is(err, twofold.ErrNotFound) {
		t.Fatalf("the old API key came back: %v", err)
	}
	if rep := status(t, d.st, ba); !rep.Done() {
		t.Fatalf("status: %+v", rep)
	}
}
