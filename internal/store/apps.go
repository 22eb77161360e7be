package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofold-auth/twofold/internal/twofold"
)

const appColumns = `id, name, sandbox, key_mac, key_sealed, token_length, totp_digits, totp_period, totp_skew,
	sms_enabled, call_enabled, unconfirmed_bypass, callback_url, callback_method, contact_email, created_at, updated_at,
	number_matching, callback_expired, device_totp_period, callback_failures, callback_disabled_at, callback_last_error,
	allowed_countries, sms_provider, call_provider, email_provider,
	custom_messages, custom_codes, console, limits, migration_tools, logo_url,
	passkey_rp_id, passkey_origins, passkey_uv, passkey_usernameless`

func scanApp(row rowScanner) (twofold.App, error) {
	var a twofold.App
	var sandbox, sms, call, bypass, matching, cbExpired, customMessages, customCodes, console, migrationTools int
	var created, updated, disabledAt int64
	var countries string
	var providers [3]string
	var limits, passkeyOrigins string
	var usernameless int
	err := row.Scan(&a.ID, &a.Name, &sandbox, &a.KeyMAC, &a.KeySealed, &a.TokenLength, &a.TOTPDigits, &a.TOTPPeriod,
		&a.TOTPSkew, &sms, &call, &bypass, &a.CallbackURL, &a.CallbackMethod, &a.ContactEmail, &created, &updated,
		&matching, &cbExpired, &a.DeviceTOTPPeriod, &a.CallbackFailures, &disabledAt, &a.CallbackLastError, &countries,
		&providers[0], &providers[1], &providers[2], &customMessages, &customCodes, &console, &limits, &migrationTools, &a.LogoURL,
		&a.PasskeyRPID, &passkeyOrigins, &a.PasskeyUV, &usernameless)
	if err != nil {
		return twofold.App{}, notFound(err)
	}
	a.Sandbox, a.SMSEnabled, a.CallEnabled, a.UnconfirmedBypass = sandbox == 1, sms == 1, call == 1, bypass == 1
	a.NumberMatching, a.CallbackExpired = matching == 1, cbExpired == 1
	a.CustomMessages, a.CustomCodes, a.Console = customMessages == 1, customCodes == 1, console == 1
	a.MigrationTools = migrationTools == 1
	a.PasskeyOrigins, a.PasskeyUsernameless = strings.Fields(passkeyOrigins), usernameless == 1
	if countries != "" {
		a.AllowedCountries = strings.Split(countries, ",")
	}
	for i, ch := range providerChannels {
		if providers[i] != "" {
			if a.Providers == nil {
				a.Providers = map[twofold.Channel]string{}
			}
			a.Providers[ch] = providers[i]
		}
	}
	if a.Limits, err = decodeLimits(limits); err != nil {
		return twofold.App{}, fmt.Errorf("app %d: %w", a.ID, err)
	}
	a.CreatedAt, a.UpdatedAt, a.CallbackDisabledAt = fromUnix(created), fromUnix(updated), fromUnix(disabledAt)
	return a, nil
}

// encodeLimits writes an application's own limits as "kind=N/DURATION,…", sorted.
func encodeLimits(m map[twofold.LimitKind]twofold.Limit) string {
	var parts []string
	for _, k := range twofold.LimitKinds {
		if l, ok := m[k]; ok {
			parts = append(parts, string(k)+"="+l.String())
		}
	}
	return strings.Join(parts, ",")
}

func decodeLimits(s string) (map[twofold.LimitKind]twofold.Limit, error) {
	if s == "" {
		return nil, nil
	}
	m := map[twofold.LimitKind]twofold.Limit{}
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		l, err := twofold.ParseLimit(v)
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
		m[twofold.LimitKind(k)] = l
	}
	return m, nil
}

// providerChannels orders the apps table's *_provider columns.
var providerChannels = [3]twofold.Channel{twofold.SMS, twofold.Call, twofold.Email}

// CreateApp inserts a, setting its ID. A key already in use is ErrConflict.
func (s *Store) CreateApp(ctx context.Context, a *twofold.App) error {
	err := s.w.QueryRowContext(ctx, `INSERT INTO apps (name, sandbox, key_mac, key_sealed, token_length, totp_digits,
		totp_period, totp_skew, sms_enabled, call_enabled, unconfirmed_bypass, callback_url, callback_method, contact_email,
		created_at, updated_at, number_matching, callback_expired, device_totp_period, allowed_countries,
		sms_provider, call_provider, email_provider, custom_messages, custom_codes, console, limits, migration_tools, logo_url,
		passkey_rp_id, passkey_origins, passkey_uv, passkey_usernameless)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
		$21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33) RETURNING id`,
		a.Name, b2i(a.Sandbox), a.KeyMAC, a.KeySealed, a.TokenLength, a.TOTPDigits, a.TOTPPeriod, a.TOTPSkew,
		b2i(a.SMSEnabled), b2i(a.CallEnabled), b2i(a.UnconfirmedBypass), a.CallbackURL, a.CallbackMethod, a.ContactEmail,
		unix(a.CreatedAt), unix(a.UpdatedAt), b2i(a.NumberMatching), b2i(a.CallbackExpired), a.DeviceTOTPPeriod,
		strings.Join(a.AllowedCountries, ","), a.Provider(twofold.SMS), a.Provider(twofold.Call),
		a.Provider(twofold.Email), b2i(a.CustomMessages), b2i(a.CustomCodes), b2i(a.Console),
		encodeLimits(a.Limits), b2i(a.MigrationTools), a.LogoURL,
		a.PasskeyRPID, strings.Join(a.PasskeyOrigins, " "), a.PasskeyUV, b2i(a.PasskeyUsernameless)).Scan(&a.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	return nil
}

// UpdateApp writes every mutable field of a (name, sandbox, key, settings), not its callback
// health, which only delivery outcomes and EnableCallback change.
func (s *Store) UpdateApp(ctx context.Context, a twofold.App) error {
	res, err := s.w.ExecContext(ctx, `UPDATE apps SET name = $1, sandbox = $2, key_mac = $3, key_sealed = $4,
		token_length = $5, totp_digits = $6, totp_period = $7, totp_skew = $8, sms_enabled = $9, call_enabled = $10,
		unconfirmed_bypass = $11, callback_url = $12, callback_method = $13, contact_email = $14, updated_at = $15,
		number_matching = $16, callback_expired = $17, device_totp_period = $18, allowed_countries = $19,
		sms_provider = $20, call_provider = $21, email_provider = $22, custom_messages = $23, custom_codes = $24,
		limits = $25, migration_tools = $26, logo_url = $27,
		passkey_rp_id = $29, passkey_origins = $30, passkey_uv = $31, passkey_usernameless = $32 WHERE id = $28`,
		a.Name, b2i(a.Sandbox), a.KeyMAC, a.KeySealed, a.TokenLength, a.TOTPDigits, a.TOTPPeriod, a.TOTPSkew,
		b2i(a.SMSEnabled), b2i(a.CallEnabled), b2i(a.UnconfirmedBypass), a.CallbackURL, a.CallbackMethod, a.ContactEmail,
		unix(a.UpdatedAt), b2i(a.NumberMatching), b2i(a.CallbackExpired), a.DeviceTOTPPeriod,
		strings.Join(a.AllowedCountries, ","), a.Provider(twofold.SMS), a.Provider(twofold.Call),
		a.Provider(twofold.Email), b2i(a.CustomMessages), b2i(a.CustomCodes), encodeLimits(a.Limits),
		b2i(a.MigrationTools), a.LogoURL, a.ID,
		a.PasskeyRPID, strings.Join(a.PasskeyOrigins, " "), a.PasskeyUV, b2i(a.PasskeyUsernameless))
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("update app %d: %w", a.ID, err)
	}
	return mustAffect(res)
}

// GetApp returns the application with id.
func (s *Store) GetApp(ctx context.Context, id int64) (twofold.App, error) {
	return s.cachedApp(ctx, strconv.FormatInt(id, 10), `SELECT `+appColumns+` FROM apps WHERE id = $1`, id)
}

// AppByKeyMAC finds the application whose API key hashes to mac.
func (s *Store) AppByKeyMAC(ctx context.Context, mac []byte) (twofold.App, error) {
	return s.cachedApp(ctx, "mac:"+string(mac), `SELECT `+appColumns+` FROM apps WHERE key_mac = $1`, mac)
}

// cachedApp answers an application lookup (query with arg, named key in the cache) from the
// cache of a SQLite store, else from the database. Every API request looks its application up
// by key, and reading and decoding its row was a seventh of a verification's CPU; reading the
// generation instead costs a third of that, and requests arriving together share that read.
func (s *Store) cachedApp(ctx context.Context, key, query string, arg any) (twofold.App, error) {
	if s.apps == nil {
		return scanApp(s.r.QueryRowContext(ctx, query, arg))
	}
	gen, err := s.appsGen.get(ctx)
	if err != nil {
		return twofold.App{}, fmt.Errorf("apps generation: %w", err)
	}
	if a, ok := s.apps.get(gen, key); ok {
		return a, nil
	}
	a, err := scanApp(s.r.QueryRowContext(ctx, query, arg))
	if err == nil {
		s.apps.put(gen, key, a)
	}
	return a, err
}

// maxCachedApps bounds the cache; there are as many entries as applications in use, twice.
const maxCachedApps = 4096

// appsGeneration reads the generation of the apps table, which the cache is valid for.
func (s *Store) appsGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.r.QueryRowContext(ctx, `SELECT n FROM generations WHERE name = 'apps'`).Scan(&gen)
	return gen, err
}

// appCache holds applications read at one generation of the apps table. A trigger (migration
// 00011) bumps the generation on every insert, update and delete of an application, whoever
// makes it (this server, the CLI, another process), and every lookup reads it first: when it
// has moved, everything cached is dropped. So the cache is never stale: an application read
// after the generation was read is at least as new as that generation, and any change since
// moves it. (A cache trusted for even 100 ms let a rotated key work on after `twofold app
// rotate-key` had returned.) Cached applications are shared: their maps and slices are
// read-only, as for every App the store returns.
type appCache struct {
	mu   sync.Mutex
	gen  int64
	apps map[string]twofold.App
}

func newAppCache() *appCache { return &appCache{apps: map[string]twofold.App{}} }

func (c *appCache) get(gen int64, key string) (twofold.App, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		clear(c.apps)
		c.gen = gen
		return twofold.App{}, false
	}
	a, ok := c.apps[key]
	return a, ok
}

func (c *appCache) put(gen int64, key string, a twofold.App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen && len(c.apps) < maxCachedApps {
		c.apps[key] = a
	}
}

// ListApps returns every application, oldest first.
func (s *Store) ListApps(ctx context.Context) ([]twofold.App, error) {
	apps, err := queryAll(ctx, s.r, scanApp, `SELECT `+appColumns+` FROM apps ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return twofold.ErrNotFound
	}
	return nil
}

// isUniqueViolation recognises a unique-constraint failure in either engine.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

// EnableCallback resumes callback delivery for the application and forgets past failures. Its
// callbacks not yet delivered are due at once: they were kept for this, and their next try,
// set before the pause by the backoff, may be an hour away.
func (s *Store) EnableCallback(ctx context.Context, appID int64) error {
	err := s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE apps SET callback_failures = 0, callback_disabled_at = 0, callback_last_error = ''
			WHERE id = $1`, appID)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE callbacks SET next_attempt_at = 0 WHERE app_id = $1 AND status = 'pending'`, appID)
		return err
	})
	if err != nil {
		return fmt.Errorf("enable callback of app %d: %w", appID, err)
	}
	return nil
}
