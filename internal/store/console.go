package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The queries of the operators' console: searches, filtered listings (newest first), figures
// per hour for its charts, and deleting an application with everything it owns.

// filter builds a WHERE clause with numbered placeholders.
type filter struct {
	where []string
	args  []any
}

// add appends a condition; each "$?" in it, in order, becomes the placeholder of the next value.
func (f *filter) add(cond string, values ...any) {
	for _, v := range values {
		f.args = append(f.args, v)
		cond = strings.Replace(cond, "$?", "$"+strconv.Itoa(len(f.args)), 1)
	}
	f.where = append(f.where, cond)
}

func (f *filter) sql() string {
	if len(f.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.where, " AND ")
}

// limit appends the LIMIT placeholder's value and returns its clause.
func (f *filter) limit(n int) string {
	if n <= 0 {
		n = 100
	}
	f.args = append(f.args, n)
	return " LIMIT $" + strconv.Itoa(len(f.args))
}

// SearchUsers finds users of the application by what an operator types: an Authy id or phone
// digits (a number matches the id exactly and any phone number containing it, with or without
// its country code), or part of an email address or of the customer's id (case-insensitive).
// An empty query lists the newest users. Results come newest first, at most limit (0: 50).
func (s *Store) SearchUsers(ctx context.Context, appID int64, query string, limit int) ([]twofold.User, error) {
	if limit <= 0 {
		limit = 50
	}
	f := filter{}
	f.add("app_id = $?", appID)
	query = strings.TrimSpace(query)
	if digits := phoneDigits(query); digits != "" {
		like := "%" + digits + "%"
		id, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			id = -1
		}
		f.add(`(phone LIKE $? OR (CAST(country_code AS TEXT) || phone) LIKE $? OR public_id = $?)`, like, like, id)
	} else if query != "" {
		like := "%" + likeEscape(strings.ToLower(query)) + "%"
		f.add(`(LOWER(email) LIKE $? ESCAPE '\' OR LOWER(custom_user_id) LIKE $? ESCAPE '\')`, like, like)
	}
	q := `SELECT ` + userColumns + ` FROM users` + f.sql() + ` ORDER BY id DESC` + f.limit(limit)
	out, err := queryAll(ctx, s.r, scanUser, q, f.args...)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return out, nil
}

// phoneDigits returns the digits of q when q is written like a number ("+1 (201) 555-0123",
// "42"), else "".
func phoneDigits(q string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune(" +-().", r):
		default:
			return ""
		}
	}
	return b.String()
}

// ListApprovals returns approval requests that match f, newest first.
func (s *Store) ListApprovals(ctx context.Context, f twofold.ApprovalFilter) ([]twofold.ApprovalRequest, error) {
	w := filter{}
	if f.AppID != 0 {
		w.add("app_id = $?", f.AppID)
	}
	if f.UserID != 0 && f.AppID != 0 {
		w.add("user_id = (SELECT id FROM users WHERE app_id = $? AND public_id = $?)", f.AppID, f.UserID)
	} else if f.UserID != 0 {
		w.add("user_id IN (SELECT id FROM users WHERE public_id = $?)", f.UserID) // in any application
	}
	if f.Status != "" {
		w.add("status = $?", string(f.Status))
	}
	if !f.Since.IsZero() {
		w.add("created_at >= $?", unix(f.Since))
	}
	q := `SELECT ` + requestColumns + ` FROM approval_requests` + w.sql() + ` ORDER BY id DESC` + w.limit(f.Limit)
	out, err := queryAll(ctx, s.r, scanRequest, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	return out, nil
}

// ListOutbox returns messages that match f, newest first, without their (sealed) bodies: the
// console shows where a message went and what became of it, never the code it carried.
func (s *Store) ListOutbox(ctx context.Context, f twofold.OutboxFilter) ([]twofold.Message, error) {
	w := filter{}
	if f.AppID != 0 {
		w.add("app_id = $?", f.AppID)
	}
	if f.UserID != 0 {
		w.add("user_id = $?", f.UserID)
	}
	if f.Channel != "" {
		w.add("channel = $?", string(f.Channel))
	}
	if f.Status != "" {
		w.add("status = $?", f.Status)
	}
	if !f.Since.IsZero() {
		w.add("created_at >= $?", unix(f.Since))
	}
	q := `SELECT id, sid, app_id, user_id, channel, recipient, status, provider, provider_id, delivery, attempts, error,
		created_at, updated_at FROM messages` + w.sql() + ` ORDER BY id DESC` + w.limit(f.Limit)
	out, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.Message, error) {
		var m twofold.Message
		var channel string
		var created, updated int64
		err := r.Scan(&m.ID, &m.SID, &m.AppID, &m.UserID, &channel, &m.To, &m.Status, &m.Provider, &m.ProviderID,
			&m.Delivery, &m.Attempts, &m.Error, &created, &updated)
		m.Channel, m.CreatedAt, m.UpdatedAt = twofold.Channel(channel), fromUnix(created), fromUnix(updated)
		return m, err
	}, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	return out, nil
}

// ListCallbacks returns callbacks that match f, newest first.
func (s *Store) ListCallbacks(ctx context.Context, f twofold.CallbackFilter) ([]twofold.Callback, error) {
	w := filter{}
	if f.AppID != 0 {
		w.add("c.app_id = $?", f.AppID)
	}
	if f.Status != "" {
		w.add("c.status = $?", f.Status)
	}
	if !f.Since.IsZero() {
		w.add("c.created_at >= $?", unix(f.Since))
	}
	return s.listCallbacks(ctx, `SELECT `+callbackColumns+` FROM callbacks c`+w.sql()+` ORDER BY c.id DESC`+w.limit(f.Limit), w.args...)
}

// hourly runs a query whose rows are (hour in Unix seconds, key, count).
func (s *Store) hourly(ctx context.Context, what, q string, args ...any) ([]twofold.HourCount, error) {
	out, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.HourCount, error) {
		var c twofold.HourCount
		var hour int64
		err := r.Scan(&hour, &c.Key, &c.Count)
		c.Hour = time.Unix(hour, 0).UTC()
		return c, err
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s per hour: %w", what, err)
	}
	return out, nil
}

// MessagesPerHour counts the outbox's messages by hour of creation and status, from since on,
// for one application or all (appID 0), oldest hour first.
func (s *Store) MessagesPerHour(ctx context.Context, appID int64, since time.Time) ([]twofold.HourCount, error) {
	w := filter{}
	w.add("created_at >= $?", unix(since))
	if appID != 0 {
		w.add("app_id = $?", appID)
	}
	return s.hourly(ctx, "messages", `SELECT (created_at / 3600) * 3600 AS hour, status, COUNT(*) FROM messages`+w.sql()+`
		GROUP BY hour, status ORDER BY hour, status`, w.args...)
}

// VerificationsPerHour counts verifications by hour and outcome (the audit trail's
// verification.succeeded and verification.failed), from since on, for one application or all.
func (s *Store) VerificationsPerHour(ctx context.Context, appID int64, since time.Time) ([]twofold.HourCount, error) {
	from, err := s.auditFromTime(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("verifications per hour: %w", err)
	}
	w := filter{}
	w.add("id >= $?", from)
	w.add("at >= $?", unixNano(since))
	w.add("action IN ($?, $?)", twofold.AuditVerificationOK, twofold.AuditVerificationFailed)
	if appID != 0 {
		w.add("app_id = $?", appID)
	}
	return s.hourly(ctx, "verifications", `SELECT (at / 3600000000000) * 3600 AS hour, action, COUNT(*) FROM audit_log`+w.sql()+`
		GROUP BY hour, action ORDER BY hour, action`, w.args...)
}

// AnswerTimes returns how long users took to answer the approval requests answered (approved or
// denied) from since on, for one application or all, at most limit (0: 1000), newest first.
func (s *Store) AnswerTimes(ctx context.Context, appID int64, since time.Time, limit int) ([]twofold.AnswerTime, error) {
	if limit <= 0 {
		limit = 1000
	}
	w := filter{}
	w.add("processed_at >= $?", unix(since))
	w.add("status IN ('approved', 'denied')")
	if appID != 0 {
		w.add("app_id = $?", appID)
	}
	out, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.AnswerTime, error) {
		var a twofold.AnswerTime
		var status string
		var secs int64
		err := r.Scan(&status, &secs)
		a.Status, a.Took = twofold.ApprovalStatus(status), time.Duration(max(secs, 0))*time.Second
		return a, err
	}, `SELECT status, processed_at - created_at FROM approval_requests`+w.sql()+` ORDER BY processed_at DESC`+w.limit(limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("answer times: %w", err)
	}
	return out, nil
}

// DeleteApp deletes the application and everything it owns, in one transaction: its users with
// their devices (and push subscriptions), authenticators, codes, approval requests and
// activities; its passwordless requests, outbox messages, callbacks, phone verifications, spent
// registration JWTs, usage and refusal counts.
// The audit trail keeps its entries (it is append-only). An unknown id is ErrNotFound.
func (s *Store) DeleteApp(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM callbacks WHERE app_id = $1`,
			`DELETE FROM messages WHERE app_id = $1`,
			`DELETE FROM delivery_refusals WHERE app_id = $1`,
			`DELETE FROM usage_monthly WHERE app_id = $1`,
			`DELETE FROM push_subscriptions WHERE app_id = $1`,
			`DELETE FROM approval_requests WHERE app_id = $1`,
			`DELETE FROM approval_groups WHERE app_id = $1`,
			`DELETE FROM passwordless_requests WHERE app_id = $1`,
			`DELETE FROM devices WHERE app_id = $1`,
			`DELETE FROM phone_verifications WHERE app_id = $1`,
			`DELETE FROM spent_registration_jwts WHERE app_id = $1`,
			`DELETE FROM step_sessions WHERE app_id = $1`,
			`DELETE FROM step_client_secrets WHERE client_id IN (SELECT id FROM step_clients WHERE app_id = $1)`,
			`DELETE FROM step_clients WHERE app_id = $1`,
			`DELETE FROM verifications WHERE app_id = $1`,
			`DELETE FROM verify_challenges WHERE app_id = $1`,
			`DELETE FROM verify_factors WHERE app_id = $1`,
			`DELETE FROM verify_webhooks WHERE app_id = $1`,
			`DELETE FROM verify_services WHERE app_id = $1`,
			`DELETE FROM passkey_ceremonies WHERE app_id = $1`,
			`DELETE FROM passkeys WHERE app_id = $1`,
			`DELETE FROM passkey_handles WHERE app_id = $1`,
			`DELETE FROM twilio_credentials WHERE app_id = $1`,
			`DELETE FROM users WHERE app_id = $1`, // cascades to codes, authenticators and their steps, tokens, QR links, activities
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE id = $1`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete app %d: %w", id, err)
	}
	return nil
}
