// Package userimport brings an application's existing users into Twofold from another service
// (Authy, or another Twofold), keeping the ids the customer's database holds for them, their
// phone numbers and, where one was exportable, their authenticator seeds.
package userimport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// Record is one user as the service they come from knew them.
type Record struct {
	ID          int64  // the id the customer's database holds for this user; kept exactly
	Email       string // may be ""
	CountryCode int    // with Phone; both zero/empty: the user has no phone
	Phone       string // the national number, digits (separators are removed)
	Secret      string // base32 TOTP seed of a generic authenticator; "" for none
	Digits      int    // of Secret's codes: 6 to 8; 0 means 6
	Period      int    // of Secret's codes, in seconds: 0 means 30
	Line        int    // where the record came from (a line number), for reports; 0 if none
}

// Outcome is what became of one record.
type Outcome string

const (
	Imported Outcome = "imported" // written now
	Present  Outcome = "present"  // the application already has this user (a re-run, a resume)
	Failed   Outcome = "failed"   // not written; Reason says why
)

// Result is the outcome of one record, in the order the records were given.
type Result struct {
	ID      int64
	Line    int
	Outcome Outcome
	Reason  string // for Failed
	NoPhone bool   // imported without a phone number: the user can receive no SMS or call
	Seed    bool   // an authenticator seed came with the user
}

// ErrInvalid wraps what Check finds wrong with a record.
var ErrInvalid = errors.New("invalid record")

// ErrConsoleApp refuses an import into the console's own application: its users are the
// operators, made with their passwords and factors by twofold admin, never imported.
var ErrConsoleApp = errors.New("not an application users are imported into")

// MaxID is the largest id a record may keep: ids travel as JSON numbers, and a larger one is
// not exact in JavaScript clients.
const MaxID = 1<<53 - 1

// Batch is the most records one transaction writes (the store's ImportBatch).
const Batch = 1000

// Store is what the importer needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	ImportUsers(ctx context.Context, appID int64, users []twofold.ImportedUser, now time.Time, dryRun bool) ([]twofold.ImportResult, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Service imports users into applications.
type Service struct {
	store Store
	keys  *seal.Keyring
	now   func() time.Time
	audit Auditor // nil: nothing is recorded
}

// New returns a Service. now may be nil for time.Now.
func New(store Store, keys *seal.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, keys: keys, now: now}
}

// SetAuditor makes the service record each batch it imports (counts, never contents).
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

// checked is a record as it will be written.
type checked struct {
	email  string
	number phone.Number // zero: no phone
	seed   []byte       // nil: none
	digits int
	period int
}

// Check validates one record on its own, strictly, as Import would: the id (1 to MaxID), the
// email, the phone number (by the numbering plan, or any 7 to 15 digits for a sandbox
// application), and the seed (base32, at least 80 bits, digits 6-8, period 10-120). The error
// wraps ErrInvalid and says what is wrong in words fit for a report line.
func Check(r Record, sandbox bool) error {
	_, err := check(r, rulesOf(sandbox))
	return err
}

func rulesOf(sandbox bool) phone.Rules {
	if sandbox {
		return phone.AnyDigits
	}
	return phone.Plan
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func check(r Record, rules phone.Rules) (checked, error) {
	var c checked
	if r.ID < 1 || r.ID > MaxID {
		return c, invalid("id %d is not between 1 and %d", r.ID, int64(MaxID))
	}
	if r.Email != "" {
		email, err := users.ValidEmail(r.Email)
		if err != nil {
			return c, invalid("email is not one plain address")
		}
		c.email = email
	}
	switch {
	case r.CountryCode == 0 && r.Phone == "":
	case r.CountryCode == 0:
		return c, invalid("a phone number without a country code")
	case r.Phone == "":
		return c, invalid("a country code without a phone number")
	default:
		n, err := rules.Parse(strconv.Itoa(r.CountryCode), r.Phone)
		if errors.Is(err, phone.ErrCountryCode) {
			return c, invalid("country code %d is not a calling code", r.CountryCode)
		}
		if err != nil {
			return c, invalid("the phone number is not valid for country code %d", r.CountryCode)
		}
		c.number = n
	}
	if r.Secret == "" {
		if r.Digits != 0 || r.Period != 0 {
			return c, invalid("digits or period without a seed")
		}
		return c, nil
	}
	seed, err := otp.DecodeSecret(r.Secret)
	if err != nil {
		return c, invalid("the seed is not base32")
	}
	if len(seed) < 10 {
		return c, invalid("the seed has %d bits, fewer than 80", len(seed)*8)
	}
	c.seed, c.digits, c.period = seed, r.Digits, r.Period
	if c.digits == 0 {
		c.digits = 6
	}
	if c.period == 0 {
		c.period = 30
	}
	if c.digits < 6 || c.digits > 8 {
		return c, invalid("digits %d is not 6, 7 or 8", c.digits)
	}
	if c.period < 10 || c.period > 120 {
		return c, invalid("period %d is not 10 to 120 seconds", c.period)
	}
	return c, nil
}

// Import writes records into application appID, Batch at a time, each batch in one
// transaction: each record becomes a user with the id it had, its phone number and its seed
// (sealed), with replay protection starting at the current time step, so a code used before
// the move cannot be used again after it. A record whose id the application already has is
// Present (nothing is changed), so a re-run or a resume after a crash duplicates no one; a
// record Check refuses, one whose id came earlier in records, or one whose phone number another
// user of the application has, is Failed. Ids the application hands out later never collide
// with imported ones. dryRun checks everything and writes nothing. An error means a batch could
// not be written (the batches before it were); the results are then those of the batches
// written.
func (s *Service) Import(ctx context.Context, appID int64, records []Record, dryRun bool) ([]Result, error) {
	app, err := s.store.GetApp(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("application %d: %w", appID, err)
	}
	if app.Console {
		return nil, fmt.Errorf("%w: application %d is the console's own, whose users are the operators", ErrConsoleApp, appID)
	}
	rules := phone.RulesFor(app)
	results := make([]Result, 0, len(records))
	seen := make(map[int64]int, len(records)) // id -> line (or position) of its first record
	for start := 0; start < len(records); start += Batch {
		batch := records[start:min(start+Batch, len(records))]
		got, err := s.importBatch(ctx, app, rules, batch, seen, dryRun)
		if err != nil {
			return results, err
		}
		results = append(results, got...)
	}
	return results, nil
}

func (s *Service) importBatch(ctx context.Context, app twofold.App, rules phone.Rules, records []Record, seen map[int64]int, dryRun bool) ([]Result, error) {
	now := s.now().UTC()
	results := make([]Result, len(records))
	var write []twofold.ImportedUser
	var at []int // results index of each of write
	for i, r := range records {
		res := Result{ID: r.ID, Line: r.Line}
		c, err := check(r, rules)
		if first, dup := seen[r.ID]; err == nil && dup {
			err = fmt.Errorf("%w: id %d came before, at %d", ErrInvalid, r.ID, first)
		}
		if err != nil {
			res.Outcome, res.Reason = Failed, err.Error()
			results[i] = res
			continue
		}
		seen[r.ID] = max(r.Line, 1)
		u := twofold.ImportedUser{User: twofold.User{ID: r.ID, AppID: app.ID, Email: c.email,
			CountryCode: c.number.CountryCode, Phone: c.number.National, CreatedAt: now}}
		if c.seed != nil {
			t := otp.TOTP{Secret: c.seed, Digits: c.digits, Period: c.period, Algorithm: otp.SHA1}
			u.Authenticator = &twofold.Authenticator{AppID: app.ID, UserID: r.ID,
				SecretSealed: s.keys.Seal(c.seed, verify.AuthenticatorSeedAD(app.ID, r.ID)),
				Digits:       c.digits, Period: c.period,
				// The step of the move, and those before, count as used: a code seen at the old
				// service cannot be replayed here.
				LastStep: t.Step(now), CreatedAt: now}
		}
		res.NoPhone, res.Seed = c.number.National == "", c.seed != nil
		results[i] = res
		write = append(write, u)
		at = append(at, i)
	}
	stored, err := s.store.ImportUsers(ctx, app.ID, write, now, dryRun)
	if err != nil {
		return nil, err
	}
	counts := map[Outcome]int{}
	seeds := 0
	for k, st := range stored {
		res := &results[at[k]]
		switch st.Status {
		case twofold.ImportWritten:
			res.Outcome = Imported
			if res.Seed {
				seeds++
			}
		case twofold.ImportPresent:
			res.Outcome, res.NoPhone, res.Seed = Present, false, false
		case twofold.ImportPhoneTaken:
			res.Outcome, res.NoPhone, res.Seed = Failed, false, false
			res.Reason = fmt.Sprintf("the phone number is already user %d's", st.Owner)
		}
	}
	for _, r := range results {
		counts[r.Outcome]++
	}
	if !dryRun && s.audit != nil && counts[Imported] > 0 {
		s.audit.Record(ctx, twofold.AuditEvent{Actor: "cli", Action: twofold.AuditUsersImported, AppID: app.ID,
			Details: map[string]string{"imported": strconv.Itoa(counts[Imported]), "present": strconv.Itoa(counts[Present]),
				"failed": strconv.Itoa(counts[Failed]), "seeds": strconv.Itoa(seeds)}})
	}
	return results, nil
}
