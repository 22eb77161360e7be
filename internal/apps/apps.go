// Package apps manages customer applications: their API keys (sealed at rest, found by keyed
// hash) and their settings.
package apps

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	CreateApp(ctx context.Context, a *twofold.App) error
	UpdateApp(ctx context.Context, a twofold.App) error
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	AppByKeyMAC(ctx context.Context, mac []byte) (twofold.App, error)
	ListApps(ctx context.Context) ([]twofold.App, error)
	CountUsers(ctx context.Context, appID int64) (int64, error)
	Usage(ctx context.Context, appID int64, since time.Time) ([]twofold.Usage, error)
	EnableCallback(ctx context.Context, appID int64) error
	DeleteApp(ctx context.Context, id int64) error

	// The Verify API's credentials and services (twilio.go, verifyservices.go).
	CreateTwilioCredential(ctx context.Context, c *twofold.TwilioCredential) error
	TwilioCredentialBySID(ctx context.Context, sid string) (twofold.TwilioCredential, error)
	TwilioAccount(ctx context.Context, appID int64) (twofold.TwilioCredential, error)
	ListTwilioCredentials(ctx context.Context, appID int64) ([]twofold.TwilioCredential, error)
	ReplaceTwilioSecret(ctx context.Context, appID int64, sid string, mac, sealed []byte) error
	DeleteTwilioCredential(ctx context.Context, appID int64, sid string) error
	CreateVerifyService(ctx context.Context, v *twofold.VerifyService) error
	GetVerifyService(ctx context.Context, appID int64, publicID string) (twofold.VerifyService, error)
	UpdateVerifyService(ctx context.Context, v twofold.VerifyService) error
	DeleteVerifyService(ctx context.Context, appID int64, publicID string) error
	ListVerifyServices(ctx context.Context, appID, after int64, offset, limit int) ([]twofold.VerifyService, error)
	CreateVerifyWebhook(ctx context.Context, w *twofold.VerifyWebhook) error
	GetVerifyWebhook(ctx context.Context, appID, serviceID int64, publicID string) (twofold.VerifyWebhook, error)
	UpdateVerifyWebhook(ctx context.Context, w twofold.VerifyWebhook) error
	DeleteVerifyWebhook(ctx context.Context, appID, serviceID int64, publicID string) error
	ListVerifyWebhooks(ctx context.Context, appID, serviceID, after int64, offset, limit int) ([]twofold.VerifyWebhook, error)
	QueueVerifyEvent(ctx context.Context, appID, serviceID int64, event, eventID string, payload []byte, now time.Time) (int, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Service creates, finds and changes applications.
type Service struct {
	store Store
	keys  *seal.Keyring
	now   func() time.Time
	audit Auditor // nil: nothing is recorded
	// notify wakes the callbacks dispatcher after a Verify webhook event is queued; may be nil.
	notify func()
}

// New returns a Service. now may be nil for time.Now.
func New(store Store, keys *seal.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, keys: keys, now: now}
}

// SetAuditor makes the service record key creation and rotation and changes of settings. Call
// it before the service is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// ErrInvalid wraps every validation failure of an input.
var ErrInvalid = errors.New("invalid")

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// KeyLength is the length of an API key, as Authy's were.
const KeyLength = 32

// NewAPIKey returns a random 32-character alphanumeric key (about 190 bits).
func NewAPIKey() string {
	b := make([]byte, KeyLength)
	for i := range b {
		// Rejection sampling keeps every character equally likely.
		for {
			var r [1]byte
			if _, err := rand.Read(r[:]); err != nil {
				panic("apps: crypto/rand failed: " + err.Error())
			}
			if int(r[0]) < 256/len(keyAlphabet)*len(keyAlphabet) {
				b[i] = keyAlphabet[int(r[0])%len(keyAlphabet)]
				break
			}
		}
	}
	return string(b)
}

// ValidAPIKey reports whether k has the shape of an Authy API key: 32 ASCII letters and digits.
func ValidAPIKey(k string) bool {
	if len(k) != KeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !strings.ContainsRune(keyAlphabet, rune(k[i])) {
			return false
		}
	}
	return true
}

// CreateParams describe a new application.
type CreateParams struct {
	Name    string
	APIKey  string // optional: import an existing Authy key
	Sandbox bool
}

// Create makes an application and returns it with its API key in clear; the key is not
// recoverable from the app later except by an operator with the master key (Reveal).
func (s *Service) Create(ctx context.Context, p CreateParams) (twofold.App, string, error) {
	name := strings.TrimSpace(p.Name)
	if err := validName(name); err != nil {
		return twofold.App{}, "", err
	}
	key := p.APIKey
	if key == "" {
		key = NewAPIKey()
	} else if !ValidAPIKey(key) {
		return twofold.App{}, "", fmt.Errorf("%w: an API key is 32 letters and digits", ErrInvalid)
	}
	now := s.now().UTC()
	a := twofold.App{Name: name, Sandbox: p.Sandbox, Settings: twofold.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
	s.setKey(&a, key)
	if err := s.store.CreateApp(ctx, &a); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return twofold.App{}, "", fmt.Errorf("%w: that API key belongs to another application", ErrInvalid)
		}
		return twofold.App{}, "", err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditAppCreated, AppID: a.ID, Details: map[string]string{
		"name": a.Name, "sandbox": strconv.FormatBool(a.Sandbox), "imported_key": strconv.FormatBool(p.APIKey != "")}})
	return a, key, nil
}

func (s *Service) setKey(a *twofold.App, key string) {
	a.KeyMAC = s.keys.Lookup(key)
	// The sealed key is bound to its lookup hash: a ciphertext moved to another row won't open.
	a.KeySealed = s.keys.Seal([]byte(key), KeyAD(a.KeyMAC))
}

// KeyAD binds an application's sealed API key to its lookup hash.
func KeyAD(mac []byte) string { return fmt.Sprintf("app-key:%x", mac) }

// Reveal returns the application's API key in clear.
func (s *Service) Reveal(a twofold.App) (string, error) {
	key, err := s.keys.Open(a.KeySealed, KeyAD(a.KeyMAC))
	if err != nil {
		return "", fmt.Errorf("open API key of app %d: %w", a.ID, err)
	}
	return string(key), nil
}

// RotateKey gives the application a new API key; the old one stops working at once.
func (s *Service) RotateKey(ctx context.Context, id int64) (twofold.App, string, error) {
	a, err := s.store.GetApp(ctx, id)
	if err != nil {
		return twofold.App{}, "", err
	}
	key := NewAPIKey()
	s.setKey(&a, key)
	a.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateApp(ctx, a); err != nil {
		return twofold.App{}, "", err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditAppKeyRotated, AppID: a.ID})
	return a, key, nil
}

// Authenticate returns the application whose API key is key.
func (s *Service) Authenticate(ctx context.Context, key string) (twofold.App, error) {
	if !ValidAPIKey(key) {
		return twofold.App{}, twofold.ErrNotFound
	}
	// While the master key is rotated, a key not yet re-keyed is found by an older key's hash.
	var a twofold.App
	var err error
	for _, mac := range s.keys.Lookups(key) {
		if a, err = s.store.AppByKeyMAC(ctx, mac); !errors.Is(err, twofold.ErrNotFound) {
			break
		}
	}
	if err == nil && a.Console {
		// The console's application has no API: its key would let a caller register a device
		// for an operator and so become their second factor.
		return twofold.App{}, twofold.ErrNotFound
	}
	return a, err
}

// Get returns one application.
func (s *Service) Get(ctx context.Context, id int64) (twofold.App, error) {
	return s.store.GetApp(ctx, id)
}

// List returns every application.
func (s *Service) List(ctx context.Context) ([]twofold.App, error) { return s.store.ListApps(ctx) }

// Update is a partial change: nil fields stay as they are.
type Update struct {
	Name              *string
	Sandbox           *bool
	TokenLength       *int
	TOTPDigits        *int
	TOTPPeriod        *int
	TOTPSkew          *int
	SMSEnabled        *bool
	CallEnabled       *bool
	UnconfirmedBypass *bool
	CallbackURL       *string
	CallbackMethod    *string
	CallbackExpired   *bool
	ContactEmail      *string
	NumberMatching    *bool
	DeviceTOTPPeriod  *int
	AllowedCountries  *[]string // ISO regions; an empty list allows all
	CustomMessages    *bool
	CustomCodes       *bool
	MigrationTools    *bool
	LogoURL           *string // "" removes the logo
	// Passkeys: the relying party id ("" turns passkeys off), its origins (empty: https://<rp
	// id>), the user-verification policy and whether usernameless sign-in is allowed.
	PasskeyRPID         *string
	PasskeyOrigins      *[]string
	PasskeyUV           *string
	PasskeyUsernameless *bool
	// Providers sets the provider of each channel named; "" returns it to the server's default.
	Providers map[twofold.Channel]string
	// Limits sets the application's own limit of each kind named; nil returns it to the
	// server's.
	Limits map[twofold.LimitKind]*twofold.Limit
	// EnableCallback resumes callback delivery paused after failures.
	EnableCallback bool
}

// Update applies u to application id after validating every field; when some are not valid,
// nothing changes and the error is InvalidSettings (or wraps ErrInvalid) naming every one.
func (s *Service) Update(ctx context.Context, id int64, u Update) (twofold.App, error) {
	before, err := s.store.GetApp(ctx, id)
	if err != nil {
		return twofold.App{}, err
	}
	a, err := apply(before, u)
	if err != nil {
		return twofold.App{}, err
	}
	return s.save(ctx, before, a, u)
}

// apply returns a changed by u, validated.
func apply(a twofold.App, u Update) (twofold.App, error) {
	set(&a.Name, u.Name)
	set(&a.Sandbox, u.Sandbox)
	set(&a.TokenLength, u.TokenLength)
	set(&a.TOTPDigits, u.TOTPDigits)
	set(&a.TOTPPeriod, u.TOTPPeriod)
	set(&a.TOTPSkew, u.TOTPSkew)
	set(&a.SMSEnabled, u.SMSEnabled)
	set(&a.CallEnabled, u.CallEnabled)
	set(&a.UnconfirmedBypass, u.UnconfirmedBypass)
	set(&a.CallbackURL, u.CallbackURL)
	set(&a.CallbackMethod, u.CallbackMethod)
	set(&a.ContactEmail, u.ContactEmail)
	set(&a.CallbackExpired, u.CallbackExpired)
	set(&a.NumberMatching, u.NumberMatching)
	set(&a.DeviceTOTPPeriod, u.DeviceTOTPPeriod)
	set(&a.AllowedCountries, u.AllowedCountries)
	set(&a.LogoURL, u.LogoURL)
	set(&a.CustomMessages, u.CustomMessages)
	set(&a.CustomCodes, u.CustomCodes)
	set(&a.MigrationTools, u.MigrationTools)
	set(&a.PasskeyRPID, u.PasskeyRPID)
	set(&a.PasskeyOrigins, u.PasskeyOrigins)
	set(&a.PasskeyUV, u.PasskeyUV)
	set(&a.PasskeyUsernameless, u.PasskeyUsernameless)
	if len(u.Limits) > 0 {
		limits := map[twofold.LimitKind]twofold.Limit{}
		for k, l := range a.Limits {
			limits[k] = l
		}
		for k, l := range u.Limits {
			if !slices.Contains(twofold.LimitKinds, k) {
				return twofold.App{}, fmt.Errorf("%w: unknown limit %q (known: %v)", ErrInvalid, k, twofold.LimitKinds)
			}
			if l == nil {
				delete(limits, k)
			} else {
				limits[k] = *l
			}
		}
		a.Limits = limits
	}
	if len(u.Providers) > 0 {
		providers := map[twofold.Channel]string{}
		for ch, name := range a.Providers {
			providers[ch] = name
		}
		for ch, name := range u.Providers {
			if name = strings.ToLower(strings.TrimSpace(name)); name == "" {
				delete(providers, ch)
			} else {
				providers[ch] = name
			}
		}
		a.Providers = providers
	}
	a.Name = strings.TrimSpace(a.Name)
	a.CallbackURL = strings.TrimSpace(a.CallbackURL)
	a.LogoURL = strings.TrimSpace(a.LogoURL)
	a.PasskeyRPID = strings.ToLower(strings.TrimSpace(a.PasskeyRPID))
	a.PasskeyUV = strings.ToLower(strings.TrimSpace(a.PasskeyUV))
	a.PasskeyOrigins = normalizeOrigins(a.PasskeyOrigins)
	a.ContactEmail = strings.TrimSpace(a.ContactEmail)
	a.CallbackMethod = strings.ToUpper(strings.TrimSpace(a.CallbackMethod))
	if err := validate(a); err != nil {
		return twofold.App{}, err
	}
	return a, nil
}

// Validate reports what Update would refuse in u (every setting that is not valid), changing
// nothing: a form checks the fields it could read while it reports those it could not.
func (s *Service) Validate(ctx context.Context, id int64, u Update) error {
	a, err := s.store.GetApp(ctx, id)
	if err != nil {
		return err
	}
	_, err = apply(a, u)
	return err
}

// save stores a, the application before changed by u.
func (s *Service) save(ctx context.Context, before, a twofold.App, u Update) (twofold.App, error) {
	a.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateApp(ctx, a); err != nil {
		return twofold.App{}, err
	}
	if u.EnableCallback {
		if err := s.store.EnableCallback(ctx, a.ID); err != nil {
			return twofold.App{}, err
		}
		a.CallbackHealth = twofold.CallbackHealth{}
	}
	changed := changedSettings(before, a)
	if u.EnableCallback {
		changed = append(changed, "callback_enabled")
	}
	if len(changed) > 0 {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditAppUpdated, AppID: a.ID,
			Details: map[string]string{"changed": strings.Join(changed, ",")}})
	}
	return a, nil
}

// changedSettings names what differs between two versions of an application, by the names
// `twofold app show --json` uses. It never says what the values were: a callback URL may carry
// credentials, a contact email is personal data.
func changedSettings(a, b twofold.App) []string {
	var out []string
	for _, f := range []struct {
		name    string
		differs bool
	}{
		{"name", a.Name != b.Name},
		{"sandbox", a.Sandbox != b.Sandbox},
		{"token_length", a.TokenLength != b.TokenLength},
		{"totp_digits", a.TOTPDigits != b.TOTPDigits},
		{"totp_period", a.TOTPPeriod != b.TOTPPeriod},
		{"totp_window", a.TOTPSkew != b.TOTPSkew},
		{"sms_enabled", a.SMSEnabled != b.SMSEnabled},
		{"call_enabled", a.CallEnabled != b.CallEnabled},
		{"unconfirmed_bypass", a.UnconfirmedBypass != b.UnconfirmedBypass},
		{"callback_url", a.CallbackURL != b.CallbackURL},
		{"callback_method", a.CallbackMethod != b.CallbackMethod},
		{"callback_expired", a.CallbackExpired != b.CallbackExpired},
		{"contact_email", a.ContactEmail != b.ContactEmail},
		{"number_matching", a.NumberMatching != b.NumberMatching},
		{"device_totp_period", a.DeviceTOTPPeriod != b.DeviceTOTPPeriod},
		{"allowed_countries", !slices.Equal(a.AllowedCountries, b.AllowedCountries)},
		{"custom_messages", a.CustomMessages != b.CustomMessages},
		{"custom_codes", a.CustomCodes != b.CustomCodes},
		{"migration_tools", a.MigrationTools != b.MigrationTools},
		{"logo_url", a.LogoURL != b.LogoURL},
		{"passkey_rp_id", a.PasskeyRPID != b.PasskeyRPID},
		{"passkey_origins", !slices.Equal(a.PasskeyOrigins, b.PasskeyOrigins)},
		{"passkey_user_verification", a.PasskeyUserVerification() != b.PasskeyUserVerification()},
		{"passkey_usernameless", a.PasskeyUsernameless != b.PasskeyUsernameless},
		{"sms_provider", a.Provider(twofold.SMS) != b.Provider(twofold.SMS)},
		{"call_provider", a.Provider(twofold.Call) != b.Provider(twofold.Call)},
		{"email_provider", a.Provider(twofold.Email) != b.Provider(twofold.Email)},
		{"limits", !maps.Equal(a.Limits, b.Limits)},
	} {
		if f.differs {
			out = append(out, f.name)
		}
	}
	return out
}

// set overwrites *dst with *src when src is given.
func set[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// EnsureFirst creates a first application when there is none, so a fresh server is callable at
// once. It returns the app and true when it made one.
func (s *Service) EnsureFirst(ctx context.Context) (twofold.App, bool, error) {
	list, err := s.store.ListApps(ctx)
	if err != nil {
		return twofold.App{}, false, err
	}
	for _, a := range list {
		if !a.Console {
			return a, false, nil
		}
	}
	a, _, err := s.Create(ctx, CreateParams{Name: "My first app"})
	if err != nil {
		return twofold.App{}, false, err
	}
	return a, true, nil
}

// ConsoleName is the name of the console's own application.
const ConsoleName = "Twofold Console"

// EnsureConsole returns the console's own application, creating it the first time: operators
// are its users, and their second factor is Twofold's (TOTP or push).
func (s *Service) EnsureConsole(ctx context.Context) (twofold.App, error) {
	list, err := s.store.ListApps(ctx)
	if err != nil {
		return twofold.App{}, err
	}
	for _, a := range list {
		if a.Console {
			return a, nil
		}
	}
	now := s.now().UTC()
	a := twofold.App{Name: ConsoleName, Console: true, Settings: twofold.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
	a.SMSEnabled, a.CallEnabled = false, false // operators use an authenticator
	a.NumberMatching = true                    // a push approves only the login shown on screen
	s.setKey(&a, NewAPIKey())
	if err := s.store.CreateApp(ctx, &a); err != nil {
		return twofold.App{}, err
	}
	return a, nil
}

// Stats is what app/stats reports: users now, and a year of monthly counters.
type Stats struct {
	TotalUsers int64
	Months     []twofold.Usage // oldest first, one per month from the app's creation (at most 12), zeros included
}

// Stats returns the application's statistics.
func (s *Service) Stats(ctx context.Context, a twofold.App) (Stats, error) {
	total, err := s.store.CountUsers(ctx, a.ID)
	if err != nil {
		return Stats{}, err
	}
	now := s.now().UTC()
	first := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC)
	if created := a.CreatedAt.UTC(); created.After(first) {
		first = time.Date(created.Year(), created.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := s.store.Usage(ctx, a.ID, first)
	if err != nil {
		return Stats{}, err
	}
	byMonth := map[[2]int]twofold.Usage{}
	for _, u := range rows {
		byMonth[[2]int{u.Year, u.Month}] = u
	}
	var months []twofold.Usage
	for m := first; !m.After(now); m = m.AddDate(0, 1, 0) {
		u, ok := byMonth[[2]int{m.Year(), int(m.Month())}]
		if !ok {
			u = twofold.Usage{Year: m.Year(), Month: int(m.Month())}
		}
		months = append(months, u)
	}
	return Stats{TotalUsers: total, Months: months}, nil
}
