package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// AppendAudit appends e to the audit trail in one write transaction: it reads the last entry's
// hash (nil before the first entry), gives e the next id (the last id + 1, so ids have no gaps),
// sets e.PrevHash and e.Hash = chain(prev, *e) with those, and inserts it. e.At, Actor, Action,
// AppID, UserID and Details must be set.
//
// Appends are serialised, so concurrent appends still form one chain: by the write transaction on
// SQLite (the single writer, BEGIN IMMEDIATE across processes), by LOCK TABLE audit_log IN
// EXCLUSIVE MODE, taken before reading the last entry, on PostgreSQL (lockAudit). On both, the
// appends waiting at once are made in one transaction (batch.go), which takes the lock once.
func (s *Store) AppendAudit(ctx context.Context, e *twofold.AuditEvent, chain func(prev []byte, e twofold.AuditEvent) []byte) error {
	details, err := encodeDetails(e.Details)
	if err != nil {
		return err
	}
	run := s.tx1
	if s.audit != nil {
		run = func(ctx context.Context, fn func(*Tx) error) error { return s.audit.do(ctx, true, fn) }
	}
	err = run(ctx, func(tx *Tx) error { return s.appendAudit(ctx, tx, e, details, chain) })
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// chainTip makes tx know the audit trail's last entry, and on PostgreSQL hold the lock that
// keeps it the last (lockAudit): the first append of a batch reads it, the others follow on.
func (s *Store) chainTip(ctx context.Context, tx *Tx) error {
	if tx.audit.known {
		return nil
	}
	if err := s.lockAudit(ctx, tx); err != nil {
		return err
	}
	var last, at int64
	var prev []byte
	err := tx.QueryRowContext(ctx, `SELECT id, at, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&last, &at, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	tx.audit = auditTip{known: true, id: last, at: at, hash: prev}
	return nil
}

// appendAudit is AppendAudit in tx, with e's details encoded.
func (s *Store) appendAudit(ctx context.Context, tx *Tx, e *twofold.AuditEvent, details string, chain func(prev []byte, e twofold.AuditEvent) []byte) error {
	if err := s.chainTip(ctx, tx); err != nil {
		return err
	}
	next := *e
	next.ID, next.PrevHash = tx.audit.id+1, tx.audit.hash
	if unixNano(next.At) < tx.audit.at {
		// An entry that waited while a later one was appended, or a clock stepped back: at
		// never decreases along the trail, which reads "since" a time rely on (auditFromTime).
		next.At = time.Unix(0, tx.audit.at).UTC()
	}
	next.Hash = chain(next.PrevHash, next)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, app_id, user_id, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, next.ID, unixNano(next.At), next.Actor, next.Action,
		next.AppID, next.UserID, details, next.PrevHash, next.Hash); err != nil {
		return err
	}
	tx.audit = auditTip{known: true, id: next.ID, at: unixNano(next.At), hash: next.Hash}
	*e = next
	return nil
}

// auditTip is the last entry of the audit trail as a transaction last read or wrote it. The
// batcher restores it when a transaction that appended is undone.
type auditTip struct {
	known bool
	id    int64
	at    int64 // Unix nanoseconds
	hash  []byte
}

// ListAudit returns entries of the audit trail that match f, oldest first (by id).
func (s *Store) ListAudit(ctx context.Context, f twofold.AuditFilter) ([]twofold.AuditEvent, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.AppID != 0 {
		add("app_id = $%d", f.AppID)
	}
	if f.UserID != 0 {
		add("user_id = $%d AND user_id <> 0", f.UserID) // <> 0: the partial index audit_log_by_user applies
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if !f.Since.IsZero() {
		from, err := s.auditFromTime(ctx, f.Since)
		if err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		add("id >= $%d", from)
		add("at >= $%d", unixNano(f.Since))
	}
	if f.AfterID != 0 {
		add("id > $%d", f.AfterID)
	}
	q := `SELECT id, at, actor, action, app_id, user_id, details, prev_hash, hash FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	if f.Newest {
		q = fmt.Sprintf(`SELECT * FROM (%s ORDER BY id DESC LIMIT $%d) AS newest ORDER BY id`, q, len(args))
	} else {
		q += fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	}
	out, err := queryAll(ctx, s.r, scanAudit, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// auditFromTime returns an id from which on every entry at or after t lies: the first id whose
// entry is at or after t less auditTimeSlack, found by binary search over ids, since at never
// decreases along the trail (appendAudit). With it a read "since" a time is a range of ids on
// the primary key or an index ending in id, and no index by time is kept up on every append.
// Entries appended before migration 34 were in at order only to within the time an append
// waits; the slack covers that.
func (s *Store) auditFromTime(ctx context.Context, t time.Time) (int64, error) {
	var lo, hi sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT MIN(id) FROM audit_log), (SELECT MAX(id) FROM audit_log)`).Scan(&lo, &hi); err != nil || !lo.Valid {
		return 0, err
	}
	want := unixNano(t.Add(-auditTimeSlack))
	first, last := lo.Int64, hi.Int64+1 // the answer is in [first, last]; last: none is that late
	for first < last {
		mid := first + (last-first)/2
		var id, at int64
		err := s.r.QueryRowContext(ctx, `SELECT id, at FROM audit_log WHERE id >= $1 ORDER BY id LIMIT 1`, mid).Scan(&id, &at)
		if err != nil {
			return 0, fmt.Errorf("find the audit trail's entries since %s: %w", t.Format(time.RFC3339), err)
		}
		if at >= want {
			last = mid
		} else {
			first = id + 1
		}
	}
	return first, nil
}

// auditTimeSlack bounds how far before a later entry's at an earlier entry's may lie.
const auditTimeSlack = time.Minute

// AuditPage returns at most n entries with ids greater than afterID, oldest first: the whole
// trail, page by page, for verification and export.
func (s *Store) AuditPage(ctx context.Context, afterID int64, n int) ([]twofold.AuditEvent, error) {
	return s.ListAudit(ctx, twofold.AuditFilter{AfterID: afterID, Limit: n})
}

func scanAudit(r rowScanner) (twofold.AuditEvent, error) {
	var e twofold.AuditEvent
	var at int64
	var details string
	if err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.AppID, &e.UserID, &details, &e.PrevHash, &e.Hash); err != nil {
		return twofold.AuditEvent{}, err
	}
	if at != 0 {
		e.At = time.Unix(0, at).UTC()
	}
	if details != "" && details != "{}" {
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			// Kept readable, so verification reports the entry rather than failing to list it.
			e.Details = map[string]string{"(undecodable details)": details}
		}
	}
	return e, nil
}

// encodeDetails is the stored form of details: a JSON object with sorted keys ("{}" when empty).
func encodeDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d) // sorts the keys
	if err != nil {
		return "", fmt.Errorf("audit details: %w", err)
	}
	return string(b), nil
}

// unixNano stores a time as Unix nanoseconds; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
