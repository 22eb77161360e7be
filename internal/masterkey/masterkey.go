// Package masterkey is what ties a database to its master keys: the key check that refuses a
// server the wrong master key, the audit trail's stored key, and re-keying, which re-seals every
// sealed value and re-MACs every API key under the current master key so that an old one can be
// dropped (twofold master-key rekey and status).
//
// A rotation runs with a ring of keys (seal.NewRing): the current key seals and MACs everything
// new, the others open and recognise what they made. Re-keying moves what it can; what it cannot
// (one-time codes, registration tokens, devices' access tokens: their secrets are not stored)
// is recognised under every key of the ring until it lapses or, for a device, until it next
// connects and is re-MAC'd (devices.Service.Authenticate).
package masterkey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// The server_keys rows this package keeps: the key check (Lookup(checkLabel) under the
// database's master key, nothing sealed), the audit trail's key and the recovery codes' key
// (sealed).
const (
	CheckRow         = store.KeyCheckRow
	AuditChainRow    = "audit-chain"
	RecoveryCodesRow = "recovery-codes"
	checkLabel       = "master key check"
)

// KeyStore keeps the server's own keys.
type KeyStore interface {
	ServerKeyOrCreate(ctx context.Context, k store.ServerKey) (store.ServerKey, error)
}

// Check refuses master keys none of which is the one the database is set up with (several
// instances, or a TWOFOLD_MASTER_KEY typed wrong): with them nothing sealed could be read, and
// new secrets would be sealed under a key the others lack. It returns the key of the ring that
// matched, as a ring of one. A fresh database is set up with the current key; Rekey moves the
// check to the current key once everything is re-sealed.
func Check(ctx context.Context, st KeyStore, keys *seal.Keyring) (*seal.Keyring, error) {
	got, err := st.ServerKeyOrCreate(ctx, store.ServerKey{Name: CheckRow, PublicKey: keys.Lookup(checkLabel),
		PrivateSealed: []byte{}, CreatedAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	if k := checked(keys, got.PublicKey); k != nil {
		return k, nil
	}
	if len(keys.IDs()) > 1 {
		return nil, errors.New("none of these master keys (TWOFOLD_MASTER_KEY or master.key, and the other keys) is the one " +
			"the database is set up with: give every instance the database's master key, as the current key or as another")
	}
	return nil, errors.New("this master key is not the one the database was set up with: use the same master.key " +
		"(or TWOFOLD_MASTER_KEY) on every instance")
}

// checked returns the member of keys whose check MAC is mac, or nil.
func checked(keys *seal.Keyring, mac []byte) *seal.Keyring {
	for _, k := range keys.Members() {
		if hmac.Equal(mac, k.Lookup(checkLabel)) {
			return k
		}
	}
	return nil
}

// AuditKey returns the key that chains the audit trail. It is a stored key, sealed with the
// master key, so the trail survives a rotation of the master key: when there is none yet, it is
// the subkey the trail was always chained with, derived from the database's master key (the
// member Check returned), sealed under the current key. Servers starting at once store the same
// key; the first insert wins.
func AuditKey(ctx context.Context, st KeyStore, keys, checked *seal.Keyring) ([]byte, error) {
	ad := store.ServerKeyAD(AuditChainRow)
	row, err := st.ServerKeyOrCreate(ctx, store.ServerKey{Name: AuditChainRow, PublicKey: []byte{},
		PrivateSealed: keys.Seal(checked.Subkey(audit.KeyLabel), ad), CreatedAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	key, err := keys.Open(row.PrivateSealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open the audit trail's key with these master keys: %w", err)
	}
	return key, nil
}

// RecoveryKey returns the key recovery codes are hashed with. Unlike one-time codes, which lapse
// within minutes, a recovery code lives until it is used, so its hash must not depend on the
// master key: the key is random, stored sealed (re-sealed by Rekey), and outlives rotations of
// the master key. Servers starting at once store the same key; the first insert wins.
func RecoveryKey(ctx context.Context, st KeyStore, keys *seal.Keyring) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("recovery codes' key: %w", err)
	}
	ad := store.ServerKeyAD(RecoveryCodesRow)
	row, err := st.ServerKeyOrCreate(ctx, store.ServerKey{Name: RecoveryCodesRow, PublicKey: []byte{},
		PrivateSealed: keys.Seal(fresh, ad), CreatedAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	key, err := keys.Open(row.PrivateSealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open the recovery codes' key with these master keys: %w", err)
	}
	return key, nil
}

// Store is what re-keying needs from persistence.
type Store interface {
	CountSealed(ctx context.Context, t store.SealedTable) (int64, error)
	SealedPage(ctx context.Context, t store.SealedTable, after store.SealedRow, n int) ([]store.SealedRow, error)
	Reseal(ctx context.Context, t store.SealedTable, changes []store.Reseal) (int, error)
	LiveMACRows(ctx context.Context, now time.Time) ([]store.LiveMACs, error)
	MoveKeyCheck(ctx context.Context, old, mac, previous []byte, at time.Time) (bool, error)
}

// Options tune a Rekey run.
type Options struct {
	DryRun   bool // count only (status): write nothing
	PageSize int  // rows read, and written back, per transaction; 0: 100
	// Progress, when set, is called after every page with the rows of table read so far.
	Progress func(table store.SealedTable, done, total int64)
	Now      func() time.Time // for the live rows' expiry; nil: time.Now
}

// Table counts one table's rows.
type Table struct {
	Table store.SealedTable `json:"table"`
	Rows  int64             `json:"rows"`
	// OldSealed rows were sealed under another key than the current one; OldMAC rows have a MAC
	// made under another key: an application's API key, or a device's access token (which only
	// the device's next connection can re-MAC). Both count what was found before writing.
	OldSealed int64 `json:"old_sealed"`
	OldMAC    int64 `json:"old_mac"`
	// NeedsRekey rows are to be written: sealed under another key, or an API key MAC'd under
	// one. (A device whose seed is re-sealed already but whose token waits for it is not.)
	NeedsRekey int64 `json:"needs_rekey"`
	// Resealed rows were written back under the current key (Rekey); Changed rows had been
	// changed by a server between reading and writing and were left as it wrote them.
	Resealed int64 `json:"resealed"`
	Changed  int64 `json:"changed"`
	// Unreadable values open under no key of the ring.
	Unreadable int64 `json:"unreadable"`
}

// Report is what a Rekey run found and did.
type Report struct {
	Current seal.KeyID   // the ring's current key
	Others  []seal.KeyID // the ring's other keys
	// CheckKey is the key the database's key check matches: Current once re-keying finished.
	CheckKey   seal.KeyID
	CheckMoved bool // this run moved the key check to the current key
	Tables     []Table
	Live       []store.LiveMACs // short-lived rows whose MACs cannot be re-made
}

// Table returns the counts of table t.
func (r Report) Table(t store.SealedTable) Table {
	for _, c := range r.Tables {
		if c.Table == t {
			return c
		}
	}
	return Table{Table: t}
}

// DevicesWaiting is how many devices have an access token MAC'd under another key than the
// current one: they are re-MAC'd when they next connect, and must register again if the key
// their token was MAC'd under is dropped first.
func (r Report) DevicesWaiting() int64 { return r.Table(store.SealedDevices).OldMAC }

// Left is how many values still need another key than the current one, devices' access tokens
// and short-lived rows aside: after a Rekey that wrote them all, 0 (unless servers still seal
// under an old key). Unreadable values count.
func (r Report) Left() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.NeedsRekey - t.Resealed + t.Unreadable
	}
	return n
}

// Done reports that nothing but devices not seen since and short-lived rows needs a key other
// than the current one: the database's key check included.
func (r Report) Done() bool { return r.Left() == 0 && r.CheckKey == r.Current }

// Rekey walks every sealed value, page by page. Each one sealed under another key than the
// current one is re-sealed under it, and each API key MAC'd under another is re-MAC'd (so
// re-sealed under its new additional data); each device whose token is MAC'd under another key
// is marked with that key's id (devices.RekeyedTokenMAC) and its seed re-sealed, so its next
// connection finds it and re-MACs it. Pages are written back with a compare-and-set each, so a
// server's concurrent change is never overwritten. When every value opened, the database's key
// check moves to the current key last: from then on a server given only an old key is refused.
// A run is idempotent; an interrupted run is finished by running again. With DryRun it counts
// and writes nothing (twofold master-key status).
func Rekey(ctx context.Context, st Store, keys *seal.Keyring, opt Options) (Report, error) {
	if opt.PageSize <= 0 {
		opt.PageSize = 100
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ids := keys.IDs()
	rep := Report{Current: ids[0], Others: ids[1:]}
	var check *store.SealedRow
	for _, t := range store.SealedTables {
		total, err := st.CountSealed(ctx, t)
		if err != nil {
			return rep, err
		}
		counts := Table{Table: t}
		var after store.SealedRow
		for {
			page, err := st.SealedPage(ctx, t, after, opt.PageSize)
			if err != nil {
				return rep, err
			}
			var changes []store.Reseal
			for _, row := range page {
				if t == store.SealedServerKeys && row.Name == CheckRow {
					check = &row
					continue
				}
				c, ok := rekeyRow(keys, t, row, &counts)
				if ok {
					changes = append(changes, c)
				}
			}
			if len(changes) > 0 && !opt.DryRun {
				n, err := st.Reseal(ctx, t, changes)
				if err != nil {
					return rep, err
				}
				counts.Resealed += int64(n)
				counts.Changed += int64(len(changes) - n)
			}
			counts.Rows += int64(len(page))
			if opt.Progress != nil {
				opt.Progress(t, counts.Rows, max(total, counts.Rows))
			}
			if len(page) < opt.PageSize {
				break
			}
			after = page[len(page)-1]
		}
		rep.Tables = append(rep.Tables, counts)
	}
	if check != nil {
		if k := checked(keys, check.MAC); k != nil {
			rep.CheckKey = k.ID()
		}
	}
	live, err := st.LiveMACRows(ctx, opt.Now())
	if err != nil {
		return rep, err
	}
	rep.Live = live
	unreadable := int64(0)
	for _, t := range rep.Tables {
		unreadable += t.Unreadable
	}
	switch {
	case opt.DryRun:
		return rep, nil
	case unreadable > 0:
		return rep, fmt.Errorf("%d sealed values open under none of the configured master keys: the database's key check "+
			"stays with the key it matches", unreadable)
	case check == nil || rep.CheckKey == rep.Current:
		return rep, nil
	}
	// Recording which key the check moved from, and when, lets a server that no longer holds
	// that key refuse registration JWTs issued before: one may have been spent under it alone.
	moved, err := st.MoveKeyCheck(ctx, check.MAC, keys.Lookup(checkLabel), rep.CheckKey[:], opt.Now())
	if err != nil {
		return rep, err
	}
	if moved {
		rep.CheckKey, rep.CheckMoved = rep.Current, true
	}
	return rep, nil
}

// rekeyRow judges one row of table t, counting what it finds in counts, and returns the change
// that puts it under the current key, if it needs one.
func rekeyRow(keys *seal.Keyring, t store.SealedTable, row store.SealedRow, counts *Table) (store.Reseal, bool) {
	var ad string
	switch t {
	case store.SealedApps:
		ad = apps.KeyAD(row.MAC)
	case store.SealedAuthenticators:
		ad = verify.AuthenticatorSeedAD(row.AppID, row.ID)
	case store.SealedDevices:
		ad = devices.SeedAD(row.MAC)
	case store.SealedMessages:
		ad = deliver.BodyAD(row.Name)
	case store.SealedQRLinks:
		ad = verify.QRLinkAD(row.MAC)
	case store.SealedServerKeys:
		if len(row.Sealed) == 0 {
			return store.Reseal{}, false // a public key alone: nothing sealed
		}
		ad = store.ServerKeyAD(row.Name)
	case store.SealedStepSecrets:
		ad = store.StepSecretAD(row.Key, row.Name)
	case store.SealedTwilioCredentials:
		ad = apps.TwilioSecretAD(row.Name)
	case store.SealedVerifyFactors:
		ad = verifyfactors.SecretAD(row.Name)
	case store.SealedVerifications:
		ad = verify.VerificationCodeAD(row.Name)
	}
	plain, id, err := keys.OpenKey(row.Sealed, ad)
	if err != nil {
		counts.Unreadable++
		return store.Reseal{}, false
	}
	needs := id != keys.ID()
	if needs {
		counts.OldSealed++
	}
	change := store.Reseal{Old: row, MAC: row.MAC}
	switch t {
	case store.SealedApps:
		// The API key is in hand: its MAC moves to the current key now, and the sealed key,
		// bound to its MAC, with it.
		if mac := keys.Lookup(string(plain)); !hmac.Equal(mac, row.MAC) {
			counts.OldMAC++
			change.MAC, ad = mac, apps.KeyAD(mac)
			needs = true
		}
	case store.SealedTwilioCredentials:
		// The token or secret is in hand: its MAC moves to the current key (the sealed value is
		// bound to the SID, which stays).
		if mac := keys.Lookup(string(plain)); !hmac.Equal(mac, row.MAC) {
			counts.OldMAC++
			change.MAC = mac
			needs = true
		}
	case store.SealedDevices:
		// A device's seed is sealed under the key its token was MAC'd under (both are made
		// together, and re-MAC'd together), until re-keying re-seals it: then the token MAC is
		// marked with its key's id first, and the seed's additional data names the marked MAC.
		if _, marked := devices.RekeyedKey(row.MAC); marked {
			counts.OldMAC++
		} else if needs {
			counts.OldMAC++
			change.MAC = devices.RekeyedTokenMAC(id, row.MAC)
			ad = devices.SeedAD(change.MAC)
		}
	}
	if !needs {
		return store.Reseal{}, false
	}
	counts.NeedsRekey++
	change.Sealed = keys.Seal(plain, ad)
	return change, true
}
