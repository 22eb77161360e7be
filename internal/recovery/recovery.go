// Package recovery gives a user a set of single-use recovery codes for when their phone is
// lost: made and shown once, stored only as keyed hashes, each spent once (a compare-and-set in
// the store), the whole set replaced at once when made again. Every surface uses it: the Authy
// API's extension and verify, the hosted second-factor step, the console and the login sample.
package recovery

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Alphabet is what codes are made of: lowercase letters and digits without the ones a person
// confuses when reading or typing (0 o, 1 l i). 31 symbols, so 12 of them carry 59 bits.
const Alphabet = "23456789abcdefghjkmnpqrstuvwxyz"

const (
	// Length is the number of symbols of a code, shown in groups of GroupLen joined by '-'.
	Length   = 12
	GroupLen = 4
	// DefaultCount codes make a set unless asked otherwise, between MinCount and MaxCount.
	DefaultCount = 10
	MinCount     = 5
	MaxCount     = 20
)

// Normalize returns the code a person typed in its one canonical form (lowercase, without
// spaces or dashes), and whether it has the shape of a recovery code at all. The canonical form
// is what is hashed and spent: "K7M2 9XQP 4TFH" and "k7m2-9xqp-4tfh" are the same code.
func Normalize(typed string) (string, bool) {
	if len(typed) > 4*Length { // a bound before any work: a code with a separator between each symbol
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(typed); i++ {
		c := typed[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if strings.IndexByte(Alphabet, c) < 0 {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != Length {
		return "", false
	}
	return b.String(), true
}

// Shaped reports whether typed has the shape of a recovery code (never that of a numeric token:
// a code is 12 symbols, a token 6 to 10 digits).
func Shaped(typed string) bool {
	_, ok := Normalize(typed)
	return ok
}

// format shows a canonical code in groups: k7m2-9xqp-4tfh.
func format(code string) string {
	var parts []string
	for i := 0; i < len(code); i += GroupLen {
		parts = append(parts, code[i:min(i+GroupLen, len(code))])
	}
	return strings.Join(parts, "-")
}

// newCode returns a uniformly random canonical code.
func newCode() (string, error) {
	b := make([]byte, Length)
	n := big.NewInt(int64(len(Alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", fmt.Errorf("random recovery code: %w", err)
		}
		b[i] = Alphabet[v.Int64()]
	}
	return string(b), nil
}

// Store is what the service needs from persistence (*store.Store).
type Store interface {
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	ReplaceRecoveryCodes(ctx context.Context, appID, userID int64, macs [][]byte, now time.Time) error
	RecoveryCodes(ctx context.Context, appID, userID int64) (twofold.RecoveryCodes, error)
	SpendRecoveryCode(ctx context.Context, appID, userID int64, macs [][]byte, now time.Time) (twofold.RecoverySpend, twofold.RecoveryCodes, error)
	DeleteRecoveryCodes(ctx context.Context, appID, userID int64) (int64, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Service makes, describes, spends and revokes recovery codes.
type Service struct {
	store Store
	key   []byte // the recovery codes' key (masterkey.RecoveryKey)
	now   func() time.Time
	audit Auditor
}

// New returns a Service that hashes codes with key, the server's recovery codes' key
// (masterkey.RecoveryKey): random, stored sealed under the master key and re-sealed by a
// rotation, so a set made before a rotation still works after the old master key is gone. now
// may be nil for time.Now; audit may be nil to record nothing.
func New(store Store, key []byte, audit Auditor, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, key: key, now: now, audit: audit}
}

// mac is the keyed hash a code is stored and found under, bound to its application and user.
func (s *Service) mac(appID, userID int64, code string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(macContext(appID, userID)))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// macContext binds a code's hash to its application and user: a hash is useless for anyone else.
func macContext(appID, userID int64) string {
	return "recovery:" + strconv.FormatInt(appID, 10) + ":" + strconv.FormatInt(userID, 10)
}

// ErrReused is the refusal of a code of the set that was spent before: a 401 like a wrong
// token (the Authy clients' regexes on "Token is invalid" still classify it), with its own
// words so the customer can tell the user.
func ErrReused() *twofold.Error {
	return &twofold.Error{Code: twofold.CodeTokenReused, Message: "Token is invalid. Recovery code was already used.", Token: "is invalid"}
}

// user checks that the user exists: 60026 otherwise.
func (s *Service) user(ctx context.Context, appID, userID int64) error {
	_, err := s.store.GetUser(ctx, appID, userID)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrUserNotFound()
	}
	return err
}

// Generate makes a new set of count codes (0 for DefaultCount) for the user, replacing the old
// set whole, and returns the codes, formatted for people. They are never shown again.
func (s *Service) Generate(ctx context.Context, app twofold.App, userID int64, count int) ([]string, twofold.RecoveryCodes, error) {
	if count == 0 {
		count = DefaultCount
	}
	if count < MinCount || count > MaxCount {
		return nil, twofold.RecoveryCodes{}, twofold.ErrInvalidParam("count", fmt.Sprintf("must be between %d and %d", MinCount, MaxCount))
	}
	if err := s.user(ctx, app.ID, userID); err != nil {
		return nil, twofold.RecoveryCodes{}, err
	}
	codes := make([]string, 0, count)
	macs := make([][]byte, 0, count)
	seen := map[string]bool{}
	for len(codes) < count {
		c, err := newCode()
		if err != nil {
			return nil, twofold.RecoveryCodes{}, err
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		codes = append(codes, format(c))
		macs = append(macs, s.mac(app.ID, userID, c))
	}
	now := s.now()
	if err := s.store.ReplaceRecoveryCodes(ctx, app.ID, userID, macs, now); err != nil {
		if errors.Is(err, twofold.ErrNotFound) {
			return nil, twofold.RecoveryCodes{}, twofold.ErrUserNotFound()
		}
		return nil, twofold.RecoveryCodes{}, err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditRecoveryCodesGenerated, AppID: app.ID, UserID: userID,
		Details: map[string]string{"count": strconv.Itoa(count)}})
	return codes, twofold.RecoveryCodes{Total: count, Remaining: count, CreatedAt: now}, nil
}

// Status describes the user's set (counts and when it was made, never the codes).
func (s *Service) Status(ctx context.Context, app twofold.App, userID int64) (twofold.RecoveryCodes, error) {
	if err := s.user(ctx, app.ID, userID); err != nil {
		return twofold.RecoveryCodes{}, err
	}
	return s.store.RecoveryCodes(ctx, app.ID, userID)
}

// Remaining describes the set of a user known to exist (users/{id}/status, the console).
func (s *Service) Remaining(ctx context.Context, app twofold.App, userID int64) (twofold.RecoveryCodes, error) {
	return s.store.RecoveryCodes(ctx, app.ID, userID)
}

// Spend spends the user's code typed, once. It does not count attempts: its callers do, before
// calling it (verify's failure limit). Errors: ErrTokenInvalid (not a code of the set), ErrReused.
func (s *Service) Spend(ctx context.Context, app twofold.App, userID int64, typed string) (twofold.RecoveryCodes, error) {
	code, ok := Normalize(typed)
	if !ok {
		return twofold.RecoveryCodes{}, twofold.ErrTokenInvalid()
	}
	result, rc, err := s.store.SpendRecoveryCode(ctx, app.ID, userID, [][]byte{s.mac(app.ID, userID, code)}, s.now())
	if err != nil {
		return twofold.RecoveryCodes{}, err
	}
	switch result {
	case twofold.RecoverySpent:
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditRecoveryCodeUsed, AppID: app.ID, UserID: userID,
			Details: map[string]string{"remaining": strconv.Itoa(rc.Remaining)}})
		return rc, nil
	case twofold.RecoveryReused:
		return twofold.RecoveryCodes{}, ErrReused()
	}
	return twofold.RecoveryCodes{}, twofold.ErrTokenInvalid()
}

// Revoke removes the user's whole set (an operator's decision in the console) and says how many
// codes it held.
func (s *Service) Revoke(ctx context.Context, app twofold.App, userID int64) (int64, error) {
	n, err := s.store.DeleteRecoveryCodes(ctx, app.ID, userID)
	if err != nil {
		return 0, err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditRecoveryCodesRevoked, AppID: app.ID, UserID: userID,
		Details: map[string]string{"count": strconv.FormatInt(n, 10)}})
	return n, nil
}

// Shaped is the package's Shaped, for verify.RecoveryCodes.
func (s *Service) Shaped(token string) bool { return Shaped(token) }
