package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Master key rotation (twofold master-key rekey) reads every sealed value page by page, in key
// order, and writes back those it re-sealed under the current key a page at a time, each with a
// compare-and-set on what it read: a value a server changed meanwhile is left as the server
// wrote it (under its own current key), never overwritten with an older one. Every page is a
// short transaction, so a running server is never held up for long.

// SealedTable names a table that holds sealed values.
type SealedTable string

const (
	SealedApps           SealedTable = "apps"                // key_sealed; MAC: key_mac (re-MAC'd too)
	SealedAuthenticators SealedTable = "authenticators"      // secret_sealed; ID: the user's public id, AppID
	SealedDevices        SealedTable = "devices"             // secret_sealed; MAC: token_mac
	SealedMessages       SealedTable = "messages"            // body_sealed; Name: sid
	SealedQRLinks        SealedTable = "qr_links"            // uri_sealed; MAC: mac, the row's key (never changed)
	SealedServerKeys     SealedTable = "server_keys"         // private_sealed; Name: name, MAC: public_key
	SealedStepSecrets    SealedTable = "step_client_secrets" // secret_sealed; ID: id, Key: client_id, Name: kind
	// secret_sealed; ID: id, Name: sid, MAC: secret_mac (re-MAC'd too)
	SealedTwilioCredentials SealedTable = "twilio_credentials"
	// secret_sealed of totp factors (a push factor's is its public key, not sealed); ID: id,
	// Name: public_id
	SealedVerifyFactors SealedTable = "verify_factors"
	// code_sealed of verifications not ended yet (an ended one's is empty); ID: id, Name: public_id
	SealedVerifications SealedTable = "verifications"
)

// SealedTables are all of them, in the order re-keying walks them.
var SealedTables = []SealedTable{SealedApps, SealedAuthenticators, SealedDevices, SealedMessages, SealedQRLinks, SealedServerKeys,
	SealedStepSecrets, SealedTwilioCredentials, SealedVerifyFactors, SealedVerifications}

// SealedRow is one row's sealed value and what its additional data is made of.
type SealedRow struct {
	ID     int64  // apps, devices, messages, step_client_secrets: id; authenticators: the user's public id
	Key    int64  // authenticators: the page order (the user's row id, opaque outside the store); step_client_secrets: client_id
	AppID  int64  // authenticators: app_id
	Name   string // messages: sid; server_keys: name; step_client_secrets: kind; twilio_credentials: sid; verify_factors, verifications: public_id
	MAC    []byte // apps: key_mac; devices: token_mac; qr_links: mac; server_keys: public_key; twilio_credentials: secret_mac
	Sealed []byte
}

// Reseal replaces a row's sealed value (and for apps, devices, server_keys and
// twilio_credentials its MAC column) if the row still holds what Old says.
type Reseal struct {
	Old    SealedRow
	MAC    []byte // the new MAC; ignored for authenticators, messages, qr_links and step_client_secrets
	Sealed []byte
}

// The server_keys rows of the database's master key check: KeyCheckRow holds a keyed hash
// under the master key the database is set up with; RekeyedRow, once a re-keying moved the
// check, the id of the key it moved from (public_key) and when (created_at).
const (
	KeyCheckRow = "master-key-check"
	RekeyedRow  = "master-key-rekeyed"
)

// MoveKeyCheck moves the master key check from the keyed hash old to mac, and records that it
// moved from the key with id previous at time at, in one transaction: false (and nothing
// written) when the check no longer holds old.
func (s *Store) MoveKeyCheck(ctx context.Context, old, mac, previous []byte, at time.Time) (bool, error) {
	var moved bool
	err := s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE server_keys SET public_key = $1 WHERE name = $2 AND public_key = $3`,
			mac, KeyCheckRow, old)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		moved = true
		_, err = tx.ExecContext(ctx, `INSERT INTO server_keys (name, public_key, private_sealed, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET public_key = excluded.public_key, created_at = excluded.created_at`,
			RekeyedRow, previous, []byte{}, unix(at))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("move the master key check: %w", err)
	}
	return moved, nil
}

// LastRekey returns what the latest MoveKeyCheck recorded: the id of the key the check moved
// from, and when; ok is false if it never moved.
func (s *Store) LastRekey(ctx context.Context) (previous []byte, at time.Time, ok bool, err error) {
	var sec int64
	err = s.r.QueryRowContext(ctx, `SELECT public_key, created_at FROM server_keys WHERE name = $1`, RekeyedRow).Scan(&previous, &sec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("last rekey: %w", err)
	}
	return previous, fromUnix(sec), true, nil
}

// ServerKeyAD is the additional data of a server key's sealed private part: its name, so the
// ciphertext opens only in its row.
func ServerKeyAD(name string) string { return "server_key:" + name }

// CountSealed returns how many rows table t has.
func (s *Store) CountSealed(ctx context.Context, t SealedTable) (int64, error) {
	if _, ok := sealedSQL[t]; !ok {
		return 0, fmt.Errorf("count sealed: unknown table %q", t)
	}
	var n int64
	q := `SELECT count(*) FROM ` + string(t)
	switch t {
	case SealedVerifyFactors:
		q += ` WHERE factor_type = 'totp'`
	case SealedVerifications:
		q += ` WHERE length(code_sealed) > 0`
	}
	if err := s.r.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", t, err)
	}
	return n, nil
}

// sealedSQL is, per table, the query of a page (rows after $1 in key order, at most $2) and
// the compare-and-set that re-seals one row.
var sealedSQL = map[SealedTable]struct{ page, update string }{
	SealedApps: {
		`SELECT id, key_mac, key_sealed FROM apps WHERE id > $1 ORDER BY id LIMIT $2`,
		`UPDATE apps SET key_mac = $1, key_sealed = $2 WHERE id = $3 AND key_mac = $4 AND key_sealed = $5`},
	SealedAuthenticators: {
		`SELECT a.user_id, u.public_id, a.app_id, a.secret_sealed FROM authenticators a JOIN users u ON u.id = a.user_id
			WHERE a.user_id > $1 ORDER BY a.user_id LIMIT $2`,
		`UPDATE authenticators SET secret_sealed = $1 WHERE user_id = $2 AND secret_sealed = $3`},
	SealedDevices: {
		`SELECT id, token_mac, secret_sealed FROM devices WHERE id > $1 ORDER BY id LIMIT $2`,
		`UPDATE devices SET token_mac = $1, secret_sealed = $2 WHERE id = $3 AND token_mac = $4 AND secret_sealed = $5`},
	SealedMessages: {
		`SELECT id, sid, body_sealed FROM messages WHERE id > $1 ORDER BY id LIMIT $2`,
		`UPDATE messages SET body_sealed = $1 WHERE id = $2 AND body_sealed = $3`},
	SealedQRLinks: {
		`SELECT mac, uri_sealed FROM qr_links WHERE mac > $1 ORDER BY mac LIMIT $2`,
		`UPDATE qr_links SET uri_sealed = $1 WHERE mac = $2 AND uri_sealed = $3`},
	SealedServerKeys: {
		`SELECT name, public_key, private_sealed FROM server_keys WHERE name > $1 ORDER BY name LIMIT $2`,
		`UPDATE server_keys SET public_key = $1, private_sealed = $2 WHERE name = $3 AND public_key = $4 AND private_sealed = $5`},
	SealedStepSecrets: {
		`SELECT id, client_id, kind, secret_sealed FROM step_client_secrets WHERE id > $1 ORDER BY id LIMIT $2`,
		`UPDATE step_client_secrets SET secret_sealed = $1 WHERE id = $2 AND secret_sealed = $3`},
	SealedTwilioCredentials: {
		`SELECT id, sid, secret_mac, secret_sealed FROM twilio_credentials WHERE id > $1 ORDER BY id LIMIT $2`,
		`UPDATE twilio_credentials SET secret_mac = $1, secret_sealed = $2 WHERE id = $3 AND secret_mac = $4 AND secret_sealed = $5`},
	SealedVerifyFactors: {
		`SELECT id, public_id, secret_sealed FROM verify_factors WHERE id > $1 AND factor_type = 'totp' ORDER BY id LIMIT $2`,
		`UPDATE verify_factors SET secret_sealed = $1 WHERE id = $2 AND secret_sealed = $3`},
	SealedVerifications: {
		`SELECT id, public_id, code_sealed FROM verifications WHERE id > $1 AND length(code_sealed) > 0 ORDER BY id LIMIT $2`,
		`UPDATE verifications SET code_sealed = $1 WHERE id = $2 AND code_sealed = $3`},
}

// SealedPage returns up to n rows of table t that follow after in the table's key order (id,
// user_id, mac or name); the zero SealedRow starts at the beginning. Pass the last row of a
// page to get the next.
func (s *Store) SealedPage(ctx context.Context, t SealedTable, after SealedRow, n int) ([]SealedRow, error) {
	q, ok := sealedSQL[t]
	if !ok {
		return nil, fmt.Errorf("sealed page: unknown table %q", t)
	}
	var cursor any = after.ID
	switch t {
	case SealedAuthenticators:
		cursor = after.Key
	case SealedQRLinks:
		cursor = nonNil(after.MAC)
	case SealedServerKeys:
		cursor = after.Name
	}
	rows, err := s.r.QueryContext(ctx, q.page, cursor, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t, err)
	}
	defer rows.Close()
	var out []SealedRow
	for rows.Next() {
		var r SealedRow
		switch t {
		case SealedApps, SealedDevices:
			err = rows.Scan(&r.ID, &r.MAC, &r.Sealed)
		case SealedAuthenticators:
			err = rows.Scan(&r.Key, &r.ID, &r.AppID, &r.Sealed)
		case SealedMessages, SealedVerifyFactors, SealedVerifications:
			err = rows.Scan(&r.ID, &r.Name, &r.Sealed)
		case SealedQRLinks:
			err = rows.Scan(&r.MAC, &r.Sealed)
		case SealedServerKeys:
			err = rows.Scan(&r.Name, &r.MAC, &r.Sealed)
		case SealedStepSecrets:
			err = rows.Scan(&r.ID, &r.Key, &r.Name, &r.Sealed)
		case SealedTwilioCredentials:
			err = rows.Scan(&r.ID, &r.Name, &r.MAC, &r.Sealed)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", t, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", t, err)
	}
	return out, nil
}

// Reseal writes changes to rows of table t in one transaction, each a compare-and-set on the
// row's old MAC and sealed value, and returns how many rows it changed; the others had been
// changed (or deleted) since they were read.
func (s *Store) Reseal(ctx context.Context, t SealedTable, changes []Reseal) (int, error) {
	q, ok := sealedSQL[t]
	if !ok {
		return 0, fmt.Errorf("reseal: unknown table %q", t)
	}
	var changed int
	err := s.tx(ctx, func(tx *Tx) error {
		changed = 0
		for _, c := range changes {
			o := c.Old
			var args []any
			switch t {
			case SealedApps, SealedDevices, SealedTwilioCredentials:
				args = []any{c.MAC, c.Sealed, o.ID, o.MAC, o.Sealed}
			case SealedAuthenticators:
				args = []any{c.Sealed, o.Key, o.Sealed}
			case SealedMessages, SealedStepSecrets, SealedVerifyFactors, SealedVerifications:
				args = []any{c.Sealed, o.ID, o.Sealed}
			case SealedQRLinks:
				args = []any{c.Sealed, o.MAC, o.Sealed}
			case SealedServerKeys:
				args = []any{nonNil(c.MAC), nonNil(c.Sealed), o.Name, nonNil(o.MAC), nonNil(o.Sealed)}
			}
			res, err := tx.ExecContext(ctx, q.update, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			changed += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reseal %s: %w", t, err)
	}
	return changed, nil
}

// nonNil keeps an empty byte string from being bound as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// LiveMACs counts the live rows of a table whose MACs cannot be re-made under a new key (the
// code or token they hash is not stored): they are recognised under every key of the ring
// until they lapse on their own.
type LiveMACs struct {
	Table   string
	Live    int64
	LapseBy time.Time // the latest expiry among them; zero when there are none
}

// LiveMACRows returns LiveMACs, at now, for one-time codes, phone verifications, registration
// tokens, spent registration JWTs (remembered until they expire), QR links and Verify
// verifications.
func (s *Store) LiveMACRows(ctx context.Context, now time.Time) ([]LiveMACs, error) {
	var out []LiveMACs
	for _, q := range []struct{ table, where string }{
		{"codes", `used_at IS NULL AND superseded = 0 AND expires_at > $1`},
		{"phone_verifications", `verified_at = 0 AND superseded = 0 AND expires_at > $1`},
		{"registration_tokens", `expires_at > $1`},
		{"spent_registration_jwts", `expires_at > $1`},
		{"qr_links", `expires_at > $1`},
		// A Verify verification's code MAC, and its sealed code (kept to send the same code
		// again), are never re-made: both lapse with it.
		{"verifications", `status = 'pending' AND expires_at > $1`},
	} {
		l := LiveMACs{Table: q.table}
		var lapse int64
		err := s.r.QueryRowContext(ctx, `SELECT count(*), COALESCE(max(expires_at), 0) FROM `+q.table+` WHERE `+q.where, unix(now)).
			Scan(&l.Live, &lapse)
		if err != nil {
			return nil, fmt.Errorf("count live %s: %w", q.table, err)
		}
		l.LapseBy = fromUnix(lapse)
		out = append(out, l)
	}
	return out, nil
}

// RegisterDeviceOnceMACs is RegisterDeviceOnce for a credential known by several MACs, one per
// master key of the ring: it is recorded as spent under every one, with d created, in one
// transaction, and a credential spent before under any of them is ErrConflict. So a
// registration JWT spent before a master key rotation stays spent after it, and two servers
// part-way through one (whose rings share a key) cannot each spend it. The marks belong to the
// application, not to the user: they outlive the user's removal, until expires.
func (s *Store) RegisterDeviceOnceMACs(ctx context.Context, macs [][]byte, appID, userID int64, expires, now time.Time, d *twofold.Device) error {
	if len(macs) == 0 {
		return fmt.Errorf("register device: no MAC")
	}
	// In one order for every caller: on PostgreSQL two transactions inserting the same MACs in
	// opposite orders would deadlock instead of one of them finding the other's.
	macs = slices.SortedFunc(slices.Values(macs), bytes.Compare)
	err := s.tx(ctx, func(tx *Tx) error {
		for _, mac := range macs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO spent_registration_jwts (mac, app_id, expires_at, spent_at)
				VALUES ($1, $2, $3, $4)`, mac, appID, unix(expires), unix(now)); err != nil {
				return err
			}
		}
		d.AppID, d.UserID = appID, userID
		return tx.QueryRowContext(ctx, `INSERT INTO devices (app_id, user_id, public_key, token_mac, name, os_type,
			secret_sealed, digits, period, last_step, created_at, last_seen_at)
			VALUES ($1, `+userKey("$1", "$2")+`, $3, $4, $5, $6, $7, $8, $9, -1, $10, $10) RETURNING id`,
			d.AppID, d.UserID, d.PublicKey, d.TokenMAC, d.Name, d.OSType, d.SecretSealed, d.Digits, d.Period, unix(now)).Scan(&d.ID)
	})
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("register device: %w", err)
	}
	return nil
}
