// Package passkeys registers WebAuthn credentials (passkeys) for the users of an application and
// signs them in with them, as a second factor or, where the application allows it, usernameless
// (issue 21). go-webauthn verifies the ceremonies; this package keeps their state server-side,
// single use and expiring, bound to the application and user, and keeps the credential
// records: sign counters moved only forward by compare-and-set (a counter going back is a
// cloned authenticator, refused and reported), backup flags, transports.
package passkeys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	PasskeyHandle(ctx context.Context, appID, userID int64, handle []byte) ([]byte, error)
	UserByPasskeyHandle(ctx context.Context, appID int64, handle []byte) (int64, error)
	InsertPasskeyCeremony(ctx context.Context, c twofold.PasskeyCeremony) error
	ConsumePasskeyCeremony(ctx context.Context, appID int64, id, kind string, now time.Time) (twofold.PasskeyCeremony, error)
	InsertPasskey(ctx context.Context, p *twofold.Passkey, max int) error
	ListPasskeys(ctx context.Context, appID, userID int64) ([]twofold.Passkey, error)
	PasskeyByCredentialID(ctx context.Context, appID int64, credentialID []byte) (twofold.Passkey, error)
	UsePasskey(ctx context.Context, appID, id int64, count uint32, backupState bool, now time.Time) (bool, error)
	DeletePasskey(ctx context.Context, appID, userID int64, publicID string) (twofold.Passkey, error)
}

// Limiter counts a sign-in try against the user's failure limit before it is judged
// (*verify.Service): release gives it back after a success.
type Limiter interface {
	Attempt(ctx context.Context, app twofold.App, userID int64) (release func(context.Context) error, err error)
}

// Auditor records security-relevant events; it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// CeremonyTTL is how long a begun ceremony can be finished.
const CeremonyTTL = 5 * time.Minute

// MaxPerUser bounds a user's passkeys.
const MaxPerUser = 20

// MaxName is the longest passkey name, in characters.
const MaxName = 64

// Service runs passkey ceremonies.
type Service struct {
	store   Store
	limiter Limiter
	audit   Auditor
	now     func() time.Time
}

// New returns a Service. limiter and audit may be nil (nothing counted or recorded); now may
// be nil for time.Now.
func New(store Store, limiter Limiter, audit Auditor, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, limiter: limiter, audit: audit, now: now}
}

// Ceremony is a begun ceremony: its id, and the options for the browser, go-webauthn's
// CredentialCreation or CredentialAssertion JSON ({"publicKey": {...}}).
type Ceremony struct {
	ID      string
	Options json.RawMessage
}

// Login is a successful sign-in.
type Login struct {
	UserID       int64
	Passkey      twofold.Passkey
	UserVerified bool
}

// Errors of the service.
func errNotConfigured() *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeysNotConfigured,
		"Passkeys are not configured for this application: the operator must set its relying party id.")
}
func errCeremony() *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeyCeremonyNotFound, "Passkey ceremony not found, expired or already finished.")
}
func errAssertion(why string) *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeyInvalid, "Passkey sign-in refused: %s.", why)
}
func errRegistration(why string) *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeyRegistration, "Passkey registration refused: %s.", why)
}
func errCloned() *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeyCloned,
		"Passkey sign-in refused: the authenticator's signature counter went back, a sign of a cloned authenticator.")
}

// ErrPasskeyNotFound is the answer for a passkey the user does not have.
func ErrPasskeyNotFound() *twofold.Error {
	return twofold.Errorf(twofold.CodePasskeyNotFound, "Passkey not found.")
}

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// relyingParty is go-webauthn configured as the application's relying party.
func relyingParty(app twofold.App) (*webauthn.WebAuthn, error) {
	if !app.PasskeysEnabled() {
		return nil, errNotConfigured()
	}
	timeout := webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL} // expiry is enforced by the store
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  app.PasskeyRPID,
		RPDisplayName:         app.Name,
		RPOrigins:             app.PasskeyAllowedOrigins(),
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.UserVerificationRequirement(app.PasskeyUserVerification()),
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, twofold.Errorf(twofold.CodePasskeysNotConfigured, "Passkeys are misconfigured for this application: %s.", clip(err.Error()))
	}
	return wa, nil
}

// user is a user as go-webauthn sees it.
type user struct {
	id     int64
	name   string // what the browser shows the account as; "" for "user <id>"
	handle []byte
	creds  []webauthn.Credential
}

func (u *user) WebAuthnID() []byte { return u.handle }
func (u *user) WebAuthnName() string {
	if u.name != "" {
		return u.name
	}
	return "user " + strconv.FormatInt(u.id, 10)
}
func (u *user) WebAuthnDisplayName() string                { return u.WebAuthnName() }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// credential is p as go-webauthn's credential record.
func credential(p twofold.Passkey) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, len(p.Transports))
	for i, t := range p.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: p.CredentialID, PublicKey: p.PublicKey, AttestationFormat: p.AttestationFormat,
		Transport: transports, Flags: webauthn.CredentialFlags{UserPresent: true, BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount}}
}

// load returns the user with their handle (made now if they have none) and passkeys; an
// unknown user is 60026.
func (s *Service) load(ctx context.Context, app twofold.App, userID int64) (*user, []twofold.Passkey, error) {
	if userID <= 0 {
		return nil, nil, twofold.ErrUserNotFound()
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	handle, err := s.store.PasskeyHandle(ctx, app.ID, userID, fresh)
	if errors.Is(err, twofold.ErrNotFound) {
		return nil, nil, twofold.ErrUserNotFound()
	}
	if err != nil {
		return nil, nil, err
	}
	list, err := s.store.ListPasskeys(ctx, app.ID, userID)
	if err != nil {
		return nil, nil, err
	}
	u := &user{id: userID, handle: handle}
	for _, p := range list {
		u.creds = append(u.creds, credential(p))
	}
	return u, list, nil
}

// newID returns 32 random hex digits.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanName trims a passkey's name and checks its length.
func cleanName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > MaxName {
		return "", twofold.ErrInvalidParam("name", fmt.Sprintf("must be at most %d characters", MaxName))
	}
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) >= 0 {
		return "", twofold.ErrInvalidParam("name", "must not contain control characters")
	}
	return name, nil
}

// begin stores a ceremony and returns it with its options.
func (s *Service) begin(ctx context.Context, app twofold.App, userID int64, kind, name string, options any, session *webauthn.SessionData) (Ceremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey options: %w", err)
	}
	sess, err := json.Marshal(session)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey session: %w", err)
	}
	now := s.now()
	c := twofold.PasskeyCeremony{ID: newID(), AppID: app.ID, UserID: userID, Kind: kind, Session: sess, Name: name,
		CreatedAt: now, ExpiresAt: now.Add(CeremonyTTL)}
	if err := s.store.InsertPasskeyCeremony(ctx, c); err != nil {
		return Ceremony{}, err
	}
	return Ceremony{ID: c.ID, Options: opts}, nil
}

// consume finishes the application's ceremony id of kind, once; for a user's ceremony userID
// must be its user.
func (s *Service) consume(ctx context.Context, app twofold.App, id, kind string) (twofold.PasskeyCeremony, webauthn.SessionData, error) {
	var sess webauthn.SessionData
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return twofold.PasskeyCeremony{}, sess, errCeremony()
	}
	c, err := s.store.ConsumePasskeyCeremony(ctx, app.ID, id, kind, s.now())
	if errors.Is(err, twofold.ErrNotFound) {
		return c, sess, errCeremony()
	}
	if err != nil {
		return c, sess, err
	}
	if err := json.Unmarshal(c.Session, &sess); err != nil {
		return c, sess, fmt.Errorf("passkey session: %w", err)
	}
	return c, sess, nil
}

// clip shortens a library's message for an answer.
func clip(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimRight(s, ". ")
}

// why is a go-webauthn error's description for an answer: what check failed, never a secret.
func why(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.Details != "" && pe.DevInfo != "" && pe.DevInfo != "<nil>" {
			return clip(pe.Details + ": " + pe.DevInfo)
		}
		if pe.Details != "" {
			return clip(pe.Details)
		}
		return clip(pe.Type)
	}
	return clip(err.Error())
}
