package apps

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Credentials for the Verify API (internal/verifyapi), in Twilio's shape: an application has
// one account, an AC… SID with an auth token, and any number of API keys, SK… SIDs with a
// secret. A caller authenticates with HTTP Basic, the SID as user name and the token or secret
// as password. Tokens and secrets are shown once, when they are made: the store keeps their
// keyed hash, to check them in constant time, and seals them bound to their SID (so master key
// re-keying can re-make the hash, and the account's token can sign webhooks as Twilio's does).

// Prefixes of the SIDs of credentials.
const (
	AccountSIDPrefix = "AC"
	KeySIDPrefix     = "SK"
)

// NewSID returns prefix and 32 random lower-case hex digits: Twilio's shape of a SID (twilio-node
// refuses an account SID that does not start with AC).
func NewSID(prefix string) string { return prefix + twofold.NewPublicID() }

// ValidSID reports whether s is prefix followed by 32 lower-case hex digits.
func ValidSID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	return ok && twofold.ValidPublicID(rest)
}

// TwilioSecretAD binds a credential's sealed token or secret to its SID.
func TwilioSecretAD(sid string) string { return "twilio-secret:" + sid }

// maxKeyName bounds an API key's friendly name.
const maxKeyName = 64

// setSecret makes a new token or secret for c and returns it, with its hash and sealed copy on
// c (nothing is stored yet).
func (s *Service) setSecret(c *twofold.TwilioCredential) string {
	secret := twofold.NewPublicID()
	if c.Kind == twofold.TwilioKey {
		secret = NewAPIKey() // 32 letters and digits, as Twilio's API key secrets
	}
	c.SecretMAC = s.keys.Lookup(secret)
	c.SecretSealed = s.keys.Seal([]byte(secret), TwilioSecretAD(c.SID))
	return secret
}

// CreateTwilioAccount gives the application its account SID and auth token, returned in clear
// this once. An application that has one already keeps it: rotate its token instead.
func (s *Service) CreateTwilioAccount(ctx context.Context, appID int64) (twofold.TwilioCredential, string, error) {
	a, err := s.store.GetApp(ctx, appID)
	if err != nil {
		return twofold.TwilioCredential{}, "", err
	}
	if a.Console {
		return twofold.TwilioCredential{}, "", fmt.Errorf("%w: the console's application has no API", ErrInvalid)
	}
	c := twofold.TwilioCredential{AppID: appID, SID: NewSID(AccountSIDPrefix), Kind: twofold.TwilioAccount, CreatedAt: s.now().UTC()}
	token := s.setSecret(&c)
	if err := s.store.CreateTwilioCredential(ctx, &c); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return twofold.TwilioCredential{}, "", fmt.Errorf("%w: application %d has a Twilio account SID already; rotate its token instead", ErrInvalid, appID)
		}
		return twofold.TwilioCredential{}, "", err
	}
	s.recordCredential(ctx, twofold.AuditTwilioCredentialCreated, c)
	return c, token, nil
}

// RotateTwilioToken gives the application's account a new auth token, returned in clear; the
// old one stops working at once. ErrNotFound when the application has no account.
func (s *Service) RotateTwilioToken(ctx context.Context, appID int64) (twofold.TwilioCredential, string, error) {
	c, err := s.store.TwilioAccount(ctx, appID)
	if err != nil {
		return twofold.TwilioCredential{}, "", err
	}
	token := s.setSecret(&c)
	if err := s.store.ReplaceTwilioSecret(ctx, appID, c.SID, c.SecretMAC, c.SecretSealed); err != nil {
		return twofold.TwilioCredential{}, "", err
	}
	s.recordCredential(ctx, twofold.AuditTwilioCredentialRotated, c)
	return c, token, nil
}

// CreateTwilioKey gives the application a new API key, its secret returned in clear this once.
// The application needs its account first: the API answers with the account's SID.
func (s *Service) CreateTwilioKey(ctx context.Context, appID int64, name string) (twofold.TwilioCredential, string, error) {
	name = strings.TrimSpace(name)
	if len(name) > maxKeyName || strings.ContainsFunc(name, isControl) {
		return twofold.TwilioCredential{}, "", fmt.Errorf("%w: an API key's name is at most %d characters, without control characters", ErrInvalid, maxKeyName)
	}
	if _, err := s.store.TwilioAccount(ctx, appID); errors.Is(err, twofold.ErrNotFound) {
		return twofold.TwilioCredential{}, "", fmt.Errorf("%w: application %d has no Twilio account SID yet: create it first", ErrInvalid, appID)
	} else if err != nil {
		return twofold.TwilioCredential{}, "", err
	}
	c := twofold.TwilioCredential{AppID: appID, SID: NewSID(KeySIDPrefix), Kind: twofold.TwilioKey, Name: name, CreatedAt: s.now().UTC()}
	secret := s.setSecret(&c)
	if err := s.store.CreateTwilioCredential(ctx, &c); err != nil {
		return twofold.TwilioCredential{}, "", err
	}
	s.recordCredential(ctx, twofold.AuditTwilioCredentialCreated, c)
	return c, secret, nil
}

// RevokeTwilioKey removes one of the application's API keys: it stops working at once. The
// account is not revoked this way (rotate its token).
func (s *Service) RevokeTwilioKey(ctx context.Context, appID int64, sid string) error {
	if !ValidSID(KeySIDPrefix, sid) {
		return fmt.Errorf("%w: %q is not an API key SID (SK and 32 hex digits)", ErrInvalid, sid)
	}
	if err := s.store.DeleteTwilioCredential(ctx, appID, sid); err != nil {
		return err
	}
	s.recordCredential(ctx, twofold.AuditTwilioCredentialRevoked, twofold.TwilioCredential{AppID: appID, SID: sid, Kind: twofold.TwilioKey})
	return nil
}

// TwilioCredentials lists the application's credentials, the account first (secrets are only
// hashed and sealed in them).
func (s *Service) TwilioCredentials(ctx context.Context, appID int64) ([]twofold.TwilioCredential, error) {
	if _, err := s.store.GetApp(ctx, appID); err != nil {
		return nil, err
	}
	return s.store.ListTwilioCredentials(ctx, appID)
}

func (s *Service) recordCredential(ctx context.Context, action string, c twofold.TwilioCredential) {
	s.record(ctx, twofold.AuditEvent{Action: action, AppID: c.AppID, Details: map[string]string{"sid": c.SID, "kind": c.Kind}})
}

// TwilioCaller is who a Verify API request authenticated as.
type TwilioCaller struct {
	App        twofold.App
	AccountSID string // the application's account SID, whichever credential was used
	SID        string // the credential used: the account's SID or an API key's
}

// AuthenticateTwilio checks HTTP Basic credentials of the Verify API: an account SID and its
// auth token, or an API key SID and its secret. Anything else is ErrNotFound, with no hint of
// which part was wrong. The token is compared by keyed hash in constant time, under every key
// of the ring (a credential not yet re-keyed was hashed under an older one).
func (s *Service) AuthenticateTwilio(ctx context.Context, user, password string) (TwilioCaller, error) {
	if !ValidSID(AccountSIDPrefix, user) && !ValidSID(KeySIDPrefix, user) || password == "" {
		return TwilioCaller{}, twofold.ErrNotFound
	}
	c, err := s.store.TwilioCredentialBySID(ctx, user)
	if err != nil {
		return TwilioCaller{}, err
	}
	ok := false
	for _, mac := range s.keys.Lookups(password) {
		ok = hmac.Equal(mac, c.SecretMAC) || ok
	}
	if !ok {
		return TwilioCaller{}, twofold.ErrNotFound
	}
	a, err := s.store.GetApp(ctx, c.AppID)
	if err != nil {
		return TwilioCaller{}, err
	}
	if a.Console {
		return TwilioCaller{}, twofold.ErrNotFound // as Authenticate: the console's application has no API
	}
	account := c.SID
	if c.Kind != twofold.TwilioAccount {
		acct, err := s.store.TwilioAccount(ctx, c.AppID)
		if err != nil {
			return TwilioCaller{}, err
		}
		account = acct.SID
	}
	return TwilioCaller{App: a, AccountSID: account, SID: c.SID}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
