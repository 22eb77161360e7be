// Package users registers an application's end users and keeps their details: the Authy
// users API (create, status, update, delete, activities) without its wire format.
package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	CreateUser(ctx context.Context, u *twofold.User) (bool, error)
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	UpdateUser(ctx context.Context, u twofold.User) error
	DeleteUser(ctx context.Context, appID, id int64) error
	GetAuthenticator(ctx context.Context, appID, userID int64) (twofold.Authenticator, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	InsertActivity(ctx context.Context, a twofold.Activity) error
	AddUsage(ctx context.Context, appID int64, at time.Time, kind twofold.UsageKind, n int64) error
	UsersByID(ctx context.Context, appID int64, ids []int64) ([]twofold.User, error)
	UserFactors(ctx context.Context, appID int64, ids []int64) (map[int64]twofold.UserFactors, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Service manages users.
type Service struct {
	store Store
	now   func() time.Time
	audit Auditor // nil: nothing is recorded
}

// New returns a Service. now may be nil for time.Now.
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// SetAuditor makes the service record users created and deleted. Call it before the service
// is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// Contact is what identifies a user: email and phone, as the caller wrote them.
type Contact struct {
	Email       string
	Cellphone   string
	CountryCode string
}

// Register creates a user, or returns the existing one with the same phone number in this
// application (Authy's rule: the same person registered twice keeps one id). The number is
// checked by the application's rules (phone.RulesFor): a sandbox application takes any digits.
func (s *Service) Register(ctx context.Context, appID int64, c Contact) (twofold.User, bool, error) {
	rules, err := s.phoneRules(ctx, appID)
	if err != nil {
		return twofold.User{}, false, err
	}
	email, num, err := validate(c, rules)
	if err != nil {
		return twofold.User{}, false, err
	}
	now := s.now().UTC()
	u := twofold.User{AppID: appID, Email: email, CountryCode: num.CountryCode, Phone: num.National, CreatedAt: now, UpdatedAt: now}
	created, err := s.store.CreateUser(ctx, &u)
	if err != nil {
		return twofold.User{}, false, err
	}
	if created {
		if err := s.store.AddUsage(ctx, appID, now, twofold.UsageUsers, 1); err != nil {
			return twofold.User{}, false, err
		}
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditUserCreated, AppID: appID, UserID: u.ID})
	}
	return u, created, nil
}

// phoneRules returns the rules the application's numbers are checked by.
func (s *Service) phoneRules(ctx context.Context, appID int64) (phone.Rules, error) {
	app, err := s.store.GetApp(ctx, appID) // cached by the store: no query per registration
	if err != nil {
		return 0, fmt.Errorf("users: application %d: %w", appID, err)
	}
	return phone.RulesFor(app), nil
}

// validate checks a user's contact details, reporting each bad field with Authy's text for it:
// a blank email "is invalid and can't be blank", a blank cellphone or country_code "is
// invalid" (co-authy's sandbox-era fixtures, spec 2.1), an unknown calling code "is not
// supported".
func validate(c Contact, rules phone.Rules) (string, phone.Number, error) {
	fields := map[string]string{}
	email, err := ValidEmail(c.Email)
	switch {
	case strings.TrimSpace(c.Email) == "":
		fields["email"] = "is invalid and can't be blank"
	case err != nil:
		fields["email"] = "is invalid"
	}
	noPhone, noCountry := strings.TrimSpace(c.Cellphone) == "", strings.TrimSpace(c.CountryCode) == ""
	if noPhone {
		fields["cellphone"] = "is invalid"
	}
	if noCountry {
		fields["country_code"] = "is invalid"
	} else if _, err := phone.ParseCountryCode(c.CountryCode); err != nil {
		fields["country_code"] = "is not supported"
	}
	var num phone.Number
	if _, bad := fields["country_code"]; !noPhone && !bad {
		if num, err = rules.Parse(c.CountryCode, c.Cellphone); err != nil {
			fields["cellphone"] = "is invalid"
		}
	}
	if len(fields) > 0 {
		return "", phone.Number{}, &twofold.Error{Code: twofold.CodeUserNotValid, Message: "User was not valid", Fields: fields}
	}
	return email, num, nil
}

// ValidEmail returns the bare address of s, or an error when s is not one plain address.
func ValidEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", errors.New("invalid email")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", errors.New("invalid email")
	}
	at := strings.LastIndex(s, "@")
	return s[:at] + strings.ToLower(s[at:]), nil // domains are case-insensitive, local parts need not be
}

// Get returns a user of the application, or the Authy "User not found." error.
func (s *Service) Get(ctx context.Context, appID, id int64) (twofold.User, error) {
	u, err := s.store.GetUser(ctx, appID, id)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.User{}, twofold.ErrUserNotFound()
	}
	return u, err
}

// ExportPhone gives a user's phone number for a customer moving its users elsewhere (Authy's
// phone-number export). It is refused (60154) unless the application has enabled the migration
// tools, as the seed export is: with it an API key reads every user's full number, where
// users/{id}/status shows the last four digits. The export is recorded in the audit trail,
// without the number.
func (s *Service) ExportPhone(ctx context.Context, app twofold.App, id int64) (twofold.User, error) {
	if !app.MigrationTools {
		return twofold.User{}, twofold.ErrPhoneExportDisabled()
	}
	u, err := s.Get(ctx, app.ID, id)
	if err != nil {
		return twofold.User{}, err
	}
	if u.Phone == "" {
		// A user registered by QR code has none. Not 60026: the user exists, and may have a
		// seed to export; an importer brings it over without a phone.
		return twofold.User{}, twofold.Errorf(twofold.CodePhoneNumberNotFound,
			"Phone number not found: the user was registered without one (by QR code).")
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditUserExported, AppID: app.ID, UserID: u.ID,
		Details: map[string]string{"what": "phone_number"}})
	return u, nil
}

// Status is what users/{id}/status reports.
type Status struct {
	User       twofold.User
	Registered bool     // has an authenticator app or a registered device
	Devices    []string // kinds of device the user has, e.g. "authenticator", "cli"
	Detailed   []twofold.Device
}

// Status returns a user's status.
func (s *Service) Status(ctx context.Context, appID, id int64) (Status, error) {
	u, err := s.Get(ctx, appID, id)
	if err != nil {
		return Status{}, err
	}
	st := Status{User: u, Devices: []string{}}
	switch _, err := s.store.GetAuthenticator(ctx, appID, id); {
	case err == nil:
		st.Registered = true
		st.Devices = append(st.Devices, "authenticator")
	case !errors.Is(err, twofold.ErrNotFound):
		return Status{}, err
	}
	devs, err := s.store.ListDevices(ctx, appID, id)
	if err != nil {
		return Status{}, err
	}
	for _, d := range devs {
		st.Registered = true
		st.Devices = append(st.Devices, d.OSType)
	}
	st.Detailed = devs
	return st, nil
}

// Change is a partial update of a user's contact details; empty fields stay.
type Change = Contact

// Update changes a user's email and/or phone number.
func (s *Service) Update(ctx context.Context, appID, id int64, c Change) (twofold.User, error) {
	u, err := s.Get(ctx, appID, id)
	if err != nil {
		return twofold.User{}, err
	}
	if c.Email == "" && c.Cellphone == "" && c.CountryCode == "" {
		return twofold.User{}, twofold.ErrInvalidParam("email", "Parameter is required")
	}
	merged := Contact{Email: u.Email, Cellphone: u.Phone, CountryCode: fmt.Sprint(u.CountryCode)}
	if c.Email != "" {
		merged.Email = c.Email
	}
	if c.Cellphone != "" {
		merged.Cellphone = c.Cellphone
	}
	if c.CountryCode != "" {
		merged.CountryCode = c.CountryCode
	}
	rules, err := s.phoneRules(ctx, appID)
	if err != nil {
		return twofold.User{}, err
	}
	email, num, err := validate(merged, rules)
	if err != nil {
		return twofold.User{}, err
	}
	u.Email, u.CountryCode, u.Phone, u.UpdatedAt = email, num.CountryCode, num.National, s.now().UTC()
	if err := s.store.UpdateUser(ctx, u); errors.Is(err, twofold.ErrConflict) {
		return twofold.User{}, &twofold.Error{Code: twofold.CodeUserNotValid, Message: "User was not valid",
			Fields: map[string]string{"cellphone": "is already used by another user"}}
	} else if err != nil {
		return twofold.User{}, err
	}
	return u, nil
}

// Delete removes a user with its codes and authenticator.
func (s *Service) Delete(ctx context.Context, appID, id int64) error {
	err := s.store.DeleteUser(ctx, appID, id)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrUserNotFound()
	}
	if err == nil {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditUserDeleted, AppID: appID, UserID: id})
	}
	return err
}

// ActivityTypes are the activity types Authy accepted.
var ActivityTypes = []string{"password_reset", "banned", "unbanned", "cookie_login"}

// RegisterActivity records an activity for a user.
func (s *Service) RegisterActivity(ctx context.Context, appID, id int64, typ string, data map[string]string, ip string) error {
	if _, err := s.Get(ctx, appID, id); err != nil {
		return err
	}
	known := false
	for _, t := range ActivityTypes {
		known = known || t == typ
	}
	if !known {
		return twofold.ErrInvalidParam("type", "must be one of "+strings.Join(ActivityTypes, ", "))
	}
	if data == nil {
		data = map[string]string{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("activity data: %w", err)
	}
	if len(raw) > 4096 || len(ip) > 64 {
		return twofold.ErrInvalidParam("data", "is too large")
	}
	return s.store.InsertActivity(ctx, twofold.Activity{AppID: appID, UserID: id, Type: typ, Data: string(raw), IP: ip, CreatedAt: s.now().UTC()})
}
