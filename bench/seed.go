package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
)

// seedAD is the additional data a user's TOTP seed is sealed with. It is a copy of seedAD in
// internal/verify/check.go, which is unexported (and that package is not the bench's to change).
// checkSeeded proves the copy right on every run: seeded users' codes must verify through the
// real API, or the bench stops.
func seedAD(appID, userID int64) string { return fmt.Sprintf("totp:%d:%d", appID, userID) }

// codeContext is what a one-time code's MAC binds it to. It is a copy of codeContext in
// internal/verify/verify.go (unexported); checkSeeded proves it right the same way.
func codeContext(appID, userID int64, action string) string {
	return strconv.FormatInt(appID, 10) + ":" + strconv.FormatInt(userID, 10) + ":" + action
}

// storeDB is the bench's own connection to the server's database, for what the API is too slow
// or has no call for: seeding users before the server starts, and between measurements resetting
// replay records, issuing codes and deleting the users users/new made. It writes the rows the
// server writes (the schema of internal/store/migrations), sealed with the server's master key.
type storeDB struct {
	db    *sql.DB
	pg    bool
	keys  *seal.Keyring
	appID int64
	// The application's settings, read from its row.
	totpDigits, totpPeriod, tokenLength int
}

// openStoreDB opens the database the server s uses and the master key in its data directory
// (or TWOFOLD_MASTER_KEY, as the server reads it). The CLI has created both.
func openStoreDB(ctx context.Context, s *server) (*storeDB, error) {
	master, _, err := seal.LoadMasterKey(s.dataDir, os.Getenv("TWOFOLD_MASTER_KEY"), false)
	if err != nil {
		return nil, err
	}
	keys, err := seal.New(master)
	if err != nil {
		return nil, err
	}
	d := &storeDB{keys: keys, appID: s.appID, pg: s.database != ""}
	if d.pg {
		d.db, err = sql.Open("pgx", s.database)
	} else {
		// synchronous=OFF: the bench's own writes need no durability. busy_timeout: the server
		// may be writing; wait for it as the CLI does.
		path := filepath.Join(s.dataDir, store.DatabaseFile)
		d.db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=synchronous(OFF)&_pragma=foreign_keys(1)&_txlock=immediate")
	}
	if err != nil {
		return nil, err
	}
	if !d.pg {
		d.db.SetMaxOpenConns(1) // one writer, as the server has
	}
	err = d.db.QueryRowContext(ctx, `SELECT totp_digits, totp_period, token_length FROM apps WHERE id = $1`, d.appID).
		Scan(&d.totpDigits, &d.totpPeriod, &d.tokenLength)
	if err != nil {
		d.db.Close()
		return nil, fmt.Errorf("read the bench's application: %w", err)
	}
	return d, nil
}

func (d *storeDB) close() error { return d.db.Close() }

// insertRows writes n rows into table, row(i, vals) filling the values of row i (len(cols)), in
// large transactions: on PostgreSQL with COPY, on SQLite with multi-row INSERTs. progress, if
// set, is called after every chunk with the rows written so far.
func (d *storeDB) insertRows(ctx context.Context, table string, cols []string, n int, row func(i int, vals []any), progress func(done int)) error {
	const chunk = 50_000
	vals := make([]any, len(cols))
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		var err error
		if d.pg {
			err = d.copyChunk(ctx, table, cols, start, end, row)
		} else {
			err = d.insertChunk(ctx, table, cols, start, end, row, vals)
		}
		if err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		if progress != nil {
			progress(end)
		}
	}
	return nil
}

func (d *storeDB) copyChunk(ctx context.Context, table string, cols []string, start, end int, row func(int, []any)) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		i := start
		vals := make([]any, len(cols))
		_, err := pc.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i >= end {
				return nil, nil
			}
			row(i, vals)
			i++
			return vals, nil
		}))
		return err
	})
}

func (d *storeDB) insertChunk(ctx context.Context, table string, cols []string, start, end int, row func(int, []any), vals []any) error {
	const perStmt = 500 // rows per INSERT: well under SQLite's 32,766 parameters
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmts := map[int]*sql.Stmt{}
	args := make([]any, 0, perStmt*len(cols))
	for i := start; i < end; i += perStmt {
		k := min(perStmt, end-i)
		st, ok := stmts[k]
		if !ok {
			if st, err = tx.PrepareContext(ctx, multiInsert(table, cols, k)); err != nil {
				return err
			}
			stmts[k] = st
		}
		args = args[:0]
		for j := i; j < i+k; j++ {
			row(j, vals)
			args = append(args, vals...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// multiInsert is INSERT INTO table (cols) VALUES (?, …), … for rows rows (SQLite only). The
// parameters are anonymous: modernc.org/sqlite looks each numbered one ($N) up by name, which
// makes binding thousands of them quadratic.
func multiInsert(table string, cols []string, rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(cols, ", "),
		strings.TrimSuffix(strings.Repeat(one+", ", rows), ", "))
}

// seeded describes the users seedUsers wrote: ids first … first+n-1; the first half hold an
// authenticator app (TOTP), the rest none (they receive SMS codes).
type seeded struct {
	first    int64
	n        int
	totpN    int    // users first … first+totpN-1 have an authenticator
	totpKey  []byte // derives each user's TOTP secret (totpSecret)
	duration time.Duration
}

func (s seeded) id(i int) int64 { return s.first + int64(i) }

// totpSecret is user id's TOTP secret: derived, so a million users need no table in memory.
func (s seeded) totpSecret(id int64) []byte {
	m := hmac.New(sha256.New, s.totpKey)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	m.Write(b[:])
	return m.Sum(nil)[:20]
}

// seedPhone is the phone number (national significant number, as users/new stores it) of the
// i-th seeded user: US numbers in area codes the API-registered users (201) do not use.
func seedPhone(i int) string {
	areas := []int{202, 212, 213, 310, 312, 415}
	const per = 8_000_000 // exchanges 200–999: every number valid
	return fmt.Sprintf("%d%07d", areas[i/per], 2_000_000+i%per)
}

const maxSeedUsers = 6 * 8_000_000

// seedUsers writes n users of the bench's application straight into the database, before the
// server starts: the first half with an authenticator app whose seed is sealed as
// internal/verify seals it, the rest without one. They are confirmed (they have verified before),
// so a verification is the steady-state one. Progress goes to the log.
func (d *storeDB) seedUsers(ctx context.Context, n int) (seeded, error) {
	if n > maxSeedUsers {
		return seeded{}, fmt.Errorf("at most %d users can be seeded", maxSeedUsers)
	}
	// The numbers must be ones users/new would store as they are: check a sample.
	for _, i := range []int{0, n / 2, n - 1} {
		num, err := phone.Parse("1", seedPhone(i))
		if err != nil || num.National != seedPhone(i) {
			return seeded{}, fmt.Errorf("seed phone number %s: %v (%q)", seedPhone(i), err, num.National)
		}
	}
	s := seeded{n: n, totpN: n / 2, totpKey: make([]byte, 32)}
	rand.Read(s.totpKey)
	var maxID sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT MAX(id) FROM users`).Scan(&maxID); err != nil {
		return seeded{}, err
	}
	s.first = maxID.Int64 + 1
	t0 := time.Now()
	now := t0.Unix()
	last := t0
	total := n + s.totpN
	progress := func(base int) func(int) {
		return func(done int) {
			if time.Since(last) >= 2*time.Second || base+done == total {
				last = time.Now()
				logf("seeding: %d of %d rows (%d users, %d authenticators), %s", base+done, total, n, s.totpN,
					time.Since(t0).Round(100*time.Millisecond))
			}
		}
	}
	// A seeded user's public id (what the API names it by) is its row id, as for every user of an
	// installation that imported none: the bench's own SQL and the API's calls agree.
	err := d.insertRows(ctx, "users", []string{"id", "public_id", "app_id", "email", "country_code", "phone", "confirmed",
		"custom_user_id", "created_at", "updated_at"}, n, func(i int, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] = s.id(i), s.id(i), d.appID, fmt.Sprintf("s%d@bench.example", i), 1, seedPhone(i), 1, "", now, now
	}, progress(0))
	if err != nil {
		return seeded{}, err
	}
	// The seed in authenticators, its replay state in authenticator_steps (migration 00035). On
	// SQLite authenticators keeps its retired version and last_step columns, NOT NULL: the store
	// gives them placeholders, and so does the bench.
	cols := []string{"user_id", "app_id", "secret_sealed", "digits", "period", "created_at"}
	if !d.pg {
		cols = append(cols, "version", "last_step")
	}
	err = d.insertRows(ctx, "authenticators", cols, s.totpN, func(i int, v []any) {
		id := s.id(i)
		v[0], v[1], v[2], v[3], v[4], v[5] = id, d.appID, d.keys.Seal(s.totpSecret(id), seedAD(d.appID, id)),
			d.totpDigits, d.totpPeriod, now
		if !d.pg {
			v[6], v[7] = 0, -1
		}
	}, progress(n))
	if err != nil {
		return seeded{}, err
	}
	err = d.insertRows(ctx, "authenticator_steps", []string{"user_id", "version", "last_step"}, s.totpN, func(i int, v []any) {
		v[0], v[1], v[2] = s.id(i), 1, -1
	}, nil)
	if err != nil {
		return seeded{}, err
	}
	if d.pg {
		// Explicit ids leave the identity sequence behind: the API's users come after them.
		if _, err := d.db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))`); err != nil {
			return seeded{}, err
		}
		if _, err := d.db.ExecContext(ctx, `SELECT setval('user_public_ids', (SELECT MAX(public_id) FROM users))`); err != nil {
			return seeded{}, err
		}
		// As autovacuum would soon after a bulk load; the planner then knows the tables' sizes.
		for _, t := range []string{"users", "authenticators", "authenticator_steps"} {
			if _, err := d.db.ExecContext(ctx, `ANALYZE `+t); err != nil {
				return seeded{}, err
			}
		}
	} else {
		if _, err := d.db.ExecContext(ctx, `UPDATE user_public_ids SET next = (SELECT MAX(public_id) FROM users) + 1`); err != nil {
			return seeded{}, err
		}
		if _, err := d.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return seeded{}, err
		}
	}
	s.duration = time.Since(t0)
	return s, nil
}

// resetSteps forgets the replay records of users first … first+n-1, so their current TOTP codes
// verify again: the bench's way to reuse a small store's users within one 30-second step.
func (d *storeDB) resetSteps(ctx context.Context, first int64, n int) error {
	_, err := d.db.ExecContext(ctx, `UPDATE authenticator_steps SET last_step = -1
		WHERE user_id IN (SELECT user_id FROM authenticators WHERE app_id = $1 AND user_id >= $2 AND user_id < $3)
			AND last_step <> -1`, d.appID, first, first+int64(n))
	if err != nil {
		return fmt.Errorf("reset TOTP steps: %w", err)
	}
	return nil
}

// issueCodes gives each user a new live SMS code, as sms/{id} would (without sending it),
// deleting the codes of the users in [lo, hi) first, as the sweep does once they expire: a user
// holds one code, not one per phase of the bench (the default send limit is 5 per 10 minutes),
// and every live code is judged on each verification. It returns the codes, by position in ids.
func (d *storeDB) issueCodes(ctx context.Context, ids []int64, lo, hi int64) ([]string, error) {
	if err := d.deleteCodes(ctx, lo, hi); err != nil {
		return nil, err
	}
	codes := make([]string, len(ids))
	for i := range ids {
		codes[i] = randomDigits(d.tokenLength)
	}
	now := time.Now()
	created, expires := now.Unix(), now.Add(10*time.Minute).Unix() // the server's default code TTL
	err := d.insertRows(ctx, "codes", []string{"app_id", "user_id", "channel", "action", "mac", "attempts", "superseded",
		"created_at", "expires_at"}, len(ids), func(i int, v []any) {
		v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] = d.appID, ids[i], "sms", "",
			d.keys.CodeMAC(codeContext(d.appID, ids[i], ""), codes[i]), 0, 0, created, expires
	}, nil)
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// deleteCodes deletes every code of the users in [lo, hi).
func (d *storeDB) deleteCodes(ctx context.Context, lo, hi int64) error {
	if _, err := d.db.ExecContext(ctx, `DELETE FROM codes WHERE user_id >= $1 AND user_id < $2`, lo, hi); err != nil {
		return fmt.Errorf("delete codes: %w", err)
	}
	return nil
}

// expirePending expires the pending approval requests of the users, as the server's expiry
// would once their time is up.
func (d *storeDB) expirePending(ctx context.Context, userIDs []int64) error {
	for _, id := range userIDs {
		if _, err := d.db.ExecContext(ctx, `UPDATE approval_requests SET status = 'expired'
			WHERE user_id = $1 AND status = 'pending'`, id); err != nil {
			return fmt.Errorf("expire approval requests: %w", err)
		}
	}
	return nil
}

func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10 // the bias does not matter for a bench
	}
	return string(b)
}

// maxUserID is the highest user id in the store.
// clearFailures deletes the failures counted for the bench's users (the lockout of
// verify-totp-locked), so that the scenarios after it start unlocked.
func (d *storeDB) clearFailures(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM limit_slots WHERE name LIKE $1`, fmt.Sprintf("verify-failures:%d:%%", d.appID))
	return err
}

func (d *storeDB) maxUserID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	err := d.db.QueryRowContext(ctx, `SELECT MAX(id) FROM users`).Scan(&id)
	return id.Int64, err
}

// countUsers is the number of users in the store.
func (d *storeDB) countUsers(ctx context.Context) (int64, error) {
	var n int64
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// deleteUsers removes the users with ids in (after, upTo]: those users/new made, so the store
// keeps its size for the next scenarios.
func (d *storeDB) deleteUsers(ctx context.Context, after, upTo int64) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM users WHERE app_id = $1 AND id > $2 AND id <= $3`, d.appID, after, upTo)
	if err != nil {
		return fmt.Errorf("delete the users users/new made: %w", err)
	}
	return nil
}

// pgSchema is a fresh schema of its own for one store on PostgreSQL.
type pgSchema struct {
	admin *sql.DB
	name  string
	dsn   string // the configured DSN with search_path set to the schema
}

func newPGSchema(ctx context.Context, dsn string) (*pgSchema, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("-postgres: want a postgres:// URL")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	p := &pgSchema{admin: admin, name: fmt.Sprintf("bench_%x", b)}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+p.name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create schema on PostgreSQL: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		p.drop(ctx)
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", p.name)
	u.RawQuery = q.Encode()
	p.dsn = u.String()
	return p, nil
}

// drop removes the schema and everything in it.
func (p *pgSchema) drop(ctx context.Context) {
	if _, err := p.admin.ExecContext(ctx, `DROP SCHEMA `+p.name+` CASCADE`); err != nil {
		logf("drop schema %s: %v", p.name, err)
	}
	p.admin.Close()
}
