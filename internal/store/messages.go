package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// InsertMessage records m in the outbox, setting its ID. The body must already be sealed.
func (s *Store) InsertMessage(ctx context.Context, m *twofold.Message) error {
	err := s.w.QueryRowContext(ctx, `INSERT INTO messages (sid, app_id, user_id, channel, recipient, body_sealed, status,
		created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		m.SID, m.AppID, m.UserID, string(m.Channel), m.To, m.BodySealed, m.Status, unix(m.CreatedAt)).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	return nil
}

// ListMessages returns recorded messages, oldest first (newest last).
func (s *Store) ListMessages(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var where []string
	var args []any
	if f.AppID != 0 {
		args = append(args, f.AppID)
		where = append(where, fmt.Sprintf("app_id = $%d", len(args)))
	}
	if f.To != "" {
		args = append(args, "%"+likeEscape(f.To)+"%")
		where = append(where, fmt.Sprintf(`recipient LIKE $%d ESCAPE '\'`, len(args)))
	}
	q := `SELECT id, sid, app_id, user_id, channel, recipient, body_sealed, status, created_at FROM messages`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q = `SELECT * FROM (` + q + fmt.Sprintf(` ORDER BY id DESC LIMIT $%d) AS newest ORDER BY id`, len(args))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []twofold.Message
	for rows.Next() {
		var m twofold.Message
		var channel string
		var created int64
		if err := rows.Scan(&m.ID, &m.SID, &m.AppID, &m.UserID, &channel, &m.To, &m.BodySealed, &m.Status, &created); err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		m.Channel, m.CreatedAt = twofold.Channel(channel), fromUnix(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Incr adds delta to the counter name in the fixed window starting at window and returns the
// new count, atomically. The row is kept until expires.
func (s *Store) Incr(ctx context.Context, name string, window, expires time.Time, delta int64) (int64, error) {
	var n int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO counters (name, window_start, count, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name, window_start) DO UPDATE SET count = counters.count + excluded.count RETURNING count`,
		name, unix(window), delta, unix(expires)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counter %s: %w", name, err)
	}
	return n, nil
}

// AddUsage adds n to one of the application's monthly counters.
func (s *Store) AddUsage(ctx context.Context, appID int64, at time.Time, kind twofold.UsageKind, n int64) error {
	col, ok := usageColumns[kind]
	if !ok {
		return fmt.Errorf("unknown usage counter %q", kind)
	}
	at = at.UTC()
	_, err := s.w.ExecContext(ctx, `INSERT INTO usage_monthly (app_id, year, month, `+col+`) VALUES ($1, $2, $3, $4)
		ON CONFLICT (app_id, year, month) DO UPDATE SET `+col+` = usage_monthly.`+col+` + excluded.`+col,
		appID, at.Year(), int(at.Month()), n)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return nil
}

var usageColumns = map[twofold.UsageKind]string{
	twofold.UsageAPICalls: "api_calls", twofold.UsageSMS: "sms", twofold.UsageCalls: "calls",
	twofold.UsageEmails: "emails", twofold.UsageAuths: "auths", twofold.UsageUsers: "users",
}

// Usage returns the application's monthly counters from the month of since on, oldest first.
func (s *Store) Usage(ctx context.Context, appID int64, since time.Time) ([]twofold.Usage, error) {
	since = since.UTC()
	rows, err := s.r.QueryContext(ctx, `SELECT year, month, api_calls, sms, calls, emails, auths, users FROM usage_monthly
		WHERE app_id = $1 AND year * 12 + month >= $2 ORDER BY year, month`, appID, since.Year()*12+int(since.Month()))
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	var out []twofold.Usage
	for rows.Next() {
		var u twofold.Usage
		if err := rows.Scan(&u.Year, &u.Month, &u.APICalls, &u.SMS, &u.Calls, &u.Emails, &u.Auths, &u.Users); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Sweep deletes what has expired: codes (kept a while past expiry to recognise reuse), counters
// and QR links. It returns how many rows went.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM codes WHERE expires_at <= $1`,
		`DELETE FROM counters WHERE expires_at <= $1`,
		`DELETE FROM qr_links WHERE expires_at <= $1`,
	} {
		res, err := s.w.ExecContext(ctx, q, unix(now))
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
