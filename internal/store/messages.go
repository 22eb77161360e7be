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
	return s.tx1(ctx, func(tx *Tx) error { return insertMessage(ctx, tx, m) })
}

// insertMessage is InsertMessage in tx.
func insertMessage(ctx context.Context, tx *Tx, m *twofold.Message) error {
	err := tx.QueryRowContext(ctx, `INSERT INTO messages (sid, app_id, user_id, channel, recipient, body_sealed, status,
		provider, provider_id, delivery, attempts, error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
		m.SID, m.AppID, m.UserID, string(m.Channel), m.To, m.BodySealed, m.Status, m.Provider, m.ProviderID, m.Delivery,
		m.Attempts, m.Error, unix(m.CreatedAt), unix(m.UpdatedAt)).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	return nil
}

// UpdateMessage records the outcome of handing message sid to its provider.
func (s *Store) UpdateMessage(ctx context.Context, m twofold.Message) error {
	res, err := s.w.ExecContext(ctx, `UPDATE messages SET status = $1, provider_id = $2, delivery = $3, attempts = $4,
		error = $5, updated_at = $6 WHERE sid = $7`,
		m.Status, m.ProviderID, m.Delivery, m.Attempts, m.Error, unix(m.UpdatedAt), m.SID)
	if err != nil {
		return fmt.Errorf("update message %s: %w", m.SID, err)
	}
	return mustAffect(res)
}

// SetDelivery records a provider's later report on a message it accepted (a delivery receipt),
// found by the provider's id. An unknown id is ErrNotFound.
func (s *Store) SetDelivery(ctx context.Context, provider, providerID, delivery, errText string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE messages SET delivery = $1, error = $2, updated_at = $3
		WHERE provider = $4 AND provider_id = $5 AND provider_id <> ''`, delivery, errText, unix(at), provider, providerID)
	if err != nil {
		return fmt.Errorf("message delivery: %w", err)
	}
	return mustAffect(res)
}

// ListMessages returns recorded messages, oldest first (newest last).
func (s *Store) ListMessages(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := messageWhere(f)
	args = append(args, f.Limit)
	q := `SELECT * FROM (SELECT id, sid, app_id, user_id, channel, recipient, body_sealed, status, provider, provider_id,
		delivery, attempts, error, created_at, updated_at FROM messages` + where +
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d) AS newest ORDER BY id`, len(args))
	out, err := queryAll(ctx, s.r, scanMessage, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

func scanMessage(r rowScanner) (twofold.Message, error) {
	var m twofold.Message
	var channel string
	var created, updated int64
	err := r.Scan(&m.ID, &m.SID, &m.AppID, &m.UserID, &channel, &m.To, &m.BodySealed, &m.Status, &m.Provider,
		&m.ProviderID, &m.Delivery, &m.Attempts, &m.Error, &created, &updated)
	m.Channel, m.CreatedAt, m.UpdatedAt = twofold.Channel(channel), fromUnix(created), fromUnix(updated)
	return m, err
}

func messageWhere(f twofold.MessageFilter) (string, []any) {
	var where []string
	var args []any
	if f.AppID != 0 {
		args = append(args, f.AppID)
		where = append(where, fmt.Sprintf("app_id = $%d", len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, unix(f.Since))
		where = append(where, fmt.Sprintf("created_at >= $%d", len(args)))
	}
	if f.To != "" {
		// SQLite's LIKE ignores ASCII case and PostgreSQL's does not: compare lower-cased, alike.
		args = append(args, "%"+likeEscape(strings.ToLower(f.To))+"%")
		where = append(where, fmt.Sprintf(`LOWER(recipient) LIKE $%d ESCAPE '\'`, len(args)))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// AddRefusal counts one send refused for reason on the UTC day of at.
func (s *Store) AddRefusal(ctx context.Context, appID int64, at time.Time, ch twofold.Channel, reason string) error {
	day := at.UTC().Truncate(24 * time.Hour)
	_, err := s.w.ExecContext(ctx, `INSERT INTO delivery_refusals (app_id, day, channel, reason, count) VALUES ($1, $2, $3, $4, 1)
		ON CONFLICT (app_id, day, channel, reason) DO UPDATE SET count = delivery_refusals.count + 1`,
		appID, unix(day), string(ch), reason)
	if err != nil {
		return fmt.Errorf("count refusal: %w", err)
	}
	return nil
}

// DeliverySummary counts messages by channel, provider and status, and refusals by channel and
// reason (from the start of since's UTC day: refusals are counted per day), for one application
// or all (appID 0).
func (s *Store) DeliverySummary(ctx context.Context, appID int64, since time.Time) ([]twofold.DeliveryCount, error) {
	where, args := messageWhere(twofold.MessageFilter{AppID: appID, Since: since})
	sent, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.DeliveryCount, error) {
		var c twofold.DeliveryCount
		var ch string
		err := r.Scan(&ch, &c.Provider, &c.Status, &c.Count)
		c.Channel = twofold.Channel(ch)
		return c, err
	}, `SELECT channel, provider, status, COUNT(*) FROM messages`+where+`
		GROUP BY channel, provider, status ORDER BY channel, provider, status`, args...)
	if err != nil {
		return nil, fmt.Errorf("delivery summary: %w", err)
	}
	// SUM of a PostgreSQL BIGINT is NUMERIC: cast it back.
	q := `SELECT channel, reason, CAST(SUM(count) AS BIGINT) FROM delivery_refusals WHERE day >= $1`
	args = []any{unix(since.UTC().Truncate(24 * time.Hour))}
	if appID != 0 {
		q += ` AND app_id = $2`
		args = append(args, appID)
	}
	refused, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.DeliveryCount, error) {
		c := twofold.DeliveryCount{Status: "refused"}
		var ch string
		err := r.Scan(&ch, &c.Reason, &c.Count)
		c.Channel = twofold.Channel(ch)
		return c, err
	}, q+` GROUP BY channel, reason ORDER BY channel, reason`, args...)
	if err != nil {
		return nil, fmt.Errorf("delivery summary: %w", err)
	}
	return append(sent, refused...), nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Incr adds delta to the counter name in the fixed window starting at window and returns the
// new count, atomically. The row is kept until expires. (The API's request rate, a capacity
// limit, counts here; the failure and send limits are sliding windows: Hit, limits.go.)
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

// Sweep deletes what has expired: codes (kept a while past expiry to recognise reuse), counters,
// limits' events, QR links and the marks of spent registration JWTs; and marks hand-overs a crash interrupted as failed. It returns
// how many rows changed.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM codes WHERE expires_at <= $1`,
		`DELETE FROM counters WHERE expires_at <= $1`,
		`DELETE FROM limit_slots WHERE expires_at <= $1`,
		`DELETE FROM qr_links WHERE expires_at <= $1`,
		`DELETE FROM spent_registration_jwts WHERE expires_at <= $1`, // the JWT itself is refused as expired
		`DELETE FROM signin_lockouts WHERE expires_at <= $1`,
		`DELETE FROM step_sessions WHERE expires_at <= $1`, // a session outlives its code; refused once expired
		// Kept two days past expiry: a request denied as not requested blocks its user for up to
		// a day (passwordless.MaxBlock) from its answer, which comes before its expiry.
		`DELETE FROM passwordless_requests WHERE expires_at <= $1 - 172800`,
		`DELETE FROM verifications WHERE expires_at <= $1`, // the Verify API answers 404 for them anyway
		// A hand-over cut short by a crash never finishes: after an hour, say what happened.
		`UPDATE messages SET status = 'failed', error = 'interrupted: the server stopped before the provider answered',
			updated_at = $1 WHERE status = 'sending' AND created_at <= $1 - 3600`,
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
