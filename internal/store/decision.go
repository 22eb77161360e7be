package store

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Decide runs fn in one write transaction about user userID of application appID, and returns
// once it is committed (nil) or undone (fn's error, or the store's). fn reads and writes through
// the twofold.Decision it is given (decision.go's methods), and only through it.
//
// Decisions are serialised, so what fn reads (a failure count, a code's attempts, a TOTP step)
// stays true until it commits: on SQLite by the one writer; on PostgreSQL by the audit trail's
// lock, which every decision takes first, across instances (the chain needs it anyway, and with
// it the decisions of one instance share a transaction and a commit, as on SQLite). What a
// decision changes (codes, steps, a user's limits) is changed only in decisions, or by a
// compare-and-set. Both engines run decisions in the batches of batch.go, each under a
// savepoint of its own: one decision that fails is undone alone.
func (s *Store) Decide(ctx context.Context, appID, userID int64, fn func(twofold.Decision) error) error {
	err := s.chained(ctx, func(tx *Tx) error {
		return fn(&decision{s: s, ctx: ctx, tx: tx, appID: appID, userID: userID})
	})
	if err != nil {
		return fmt.Errorf("decide for user %d: %w", userID, err)
	}
	return nil
}

// chained runs fn in a write transaction that may append to the audit trail (appendAudit,
// auditEntries) with the change it makes, so that the two commit together. It holds the trail's
// tip from the start (chainTip: on PostgreSQL the trail's lock, taken before any other, so that
// lock order is the same everywhere), and on PostgreSQL it runs in the batches of the audit
// writer (batch.go), which share that lock and one commit, as every write does on SQLite.
func (s *Store) chained(ctx context.Context, fn func(*Tx) error) error {
	run := s.tx
	if s.audit != nil {
		run = func(ctx context.Context, fn func(*Tx) error) error { return s.audit.do(ctx, false, fn) }
	}
	return run(ctx, func(tx *Tx) error {
		if err := s.chainTip(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// auditEntries appends entries in tx, which chained runs.
func (s *Store) auditEntries(ctx context.Context, tx *Tx, entries []twofold.AuditEntry) error {
	for _, e := range entries {
		details, err := encodeDetails(e.Event.Details)
		if err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, &e.Event, details, e.Chain); err != nil {
			return fmt.Errorf("append audit event: %w", err)
		}
	}
	return nil
}

// decision is a twofold.Decision in tx.
type decision struct {
	s             *Store
	ctx           context.Context
	tx            *Tx
	appID, userID int64
}

func (d *decision) Window(w twofold.LimitWindow) (int64, time.Time, bool, error) {
	var n, refused int64
	var oldest *int64
	err := d.tx.QueryRowContext(d.ctx, `SELECT count(*) FILTER (WHERE slot >= 0), min(at) FILTER (WHERE slot >= 0),
		count(*) FILTER (WHERE slot < 0) FROM limit_slots WHERE name = $1 AND at > $2`, w.Name, nanos(w.Since)).
		Scan(&n, &oldest, &refused)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("limit %s: %w", w.Name, err)
	}
	var at time.Time
	if oldest != nil {
		at = time.Unix(0, *oldest).UTC()
	}
	return n, at, refused > 0, nil
}

func (d *decision) Hit(name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error) {
	h, err := d.s.hit(d.ctx, d.tx, name, now, l)
	if err != nil {
		return twofold.LimitHit{}, fmt.Errorf("limit %s: %w", name, err)
	}
	return h, nil
}

func (d *decision) RecordRefusal(name string, now time.Time, window time.Duration) (bool, error) {
	first, err := claimSlot(d.ctx, d.tx, name, refusalSlot, nanos(now), slotExpiry(nanos(now), window), nanos(now.Add(-window)))
	if err != nil {
		return false, fmt.Errorf("limit %s: record refusal: %w", name, err)
	}
	return first, nil
}

func (d *decision) ConsumeCode(now time.Time, maxAttempts int, matches func(twofold.OneTimeCode) bool) (twofold.CodeCheck, error) {
	r, err := consumeCode(d.ctx, d.tx, d.appID, d.userID, now, maxAttempts, matches)
	if err != nil {
		return twofold.CodeNoMatch, fmt.Errorf("check code: %w", err)
	}
	return r, nil
}

func (d *decision) RefundAttempt(now time.Time) error {
	return refundAttempt(d.ctx, d.tx, d.appID, d.userID, now)
}

func (d *decision) AdvanceStep(version, step int64) (bool, error) {
	return advanceStep(d.ctx, d.tx, d.appID, d.userID, version, step)
}

func (d *decision) AdvanceDeviceStep(deviceID, step int64) (bool, error) {
	// Only a device of the decision's user: a device id is no capability.
	res, err := d.tx.ExecContext(d.ctx, `UPDATE devices SET last_step = $1
		WHERE id = $2 AND app_id = $3 AND user_id = `+userKey("$3", "$4")+` AND last_step < $1`, step, deviceID, d.appID, d.userID)
	if err != nil {
		return false, fmt.Errorf("advance device step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (d *decision) SpendRecoveryCode(macs [][]byte, now time.Time) (twofold.RecoverySpend, error) {
	r, err := spendRecoveryCode(d.ctx, d.tx, d.appID, d.userID, macs, now)
	if err != nil {
		return 0, fmt.Errorf("spend recovery code of user %d: %w", d.userID, err)
	}
	return r, nil
}

func (d *decision) InsertCode(c *twofold.OneTimeCode) error {
	if c.AppID != d.appID || c.UserID != d.userID {
		return fmt.Errorf("insert code: the decision is about user %d of application %d", d.userID, d.appID)
	}
	if err := insertCode(d.ctx, d.tx, c); err != nil {
		return fmt.Errorf("insert code: %w", err)
	}
	return nil
}

func (d *decision) InsertMessage(m *twofold.Message) error { return insertMessage(d.ctx, d.tx, m) }

func (d *decision) ConfirmUser() error { return confirmUser(d.ctx, d.tx, d.appID, d.userID) }

func (d *decision) Audit(e twofold.AuditEntry) error {
	return d.s.auditEntries(d.ctx, d.tx, []twofold.AuditEntry{e})
}
