// Package userimport brings an application's existing users into Twofold from another service
// (Authy, or another Twofold), keeping the ids the customer's database holds for them, their
// phone numbers and, where one was exportable, their authenticator seeds.
package userimport

import (
	"context"
	"errors"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
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

// Store is what the importer needs from persistence.
type Store interface{}

// Service imports users into applications.
type Service struct {
	store Store
	keys  *seal.Keyring
	now   func() time.Time
}

// New returns a Service. now may be nil for time.Now.
func New(store Store, keys *seal.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, keys: keys, now: now}
}

// Check validates one record on its own, strictly, as Import would: the id (1 to 2^53-1), the
// email, the phone number (the numbering plan, unless sandbox), and the seed (base32, at least
// 80 bits, digits 6-8, period 10-120). The error wraps ErrInvalid and says what is wrong in
// words fit for a report line.
func Check(r Record, sandbox bool) error {
	return errors.New("userimport.Check: not implemented yet")
}

// Import writes records into application appID in one transaction: each becomes a user with
// the id it had, its phone number and its seed (sealed), with replay protection starting at
// the current time step, so a code used before the move cannot be used again after it.
// A record whose id the application already has is Present (nothing is changed), so a re-run
// or a resume after a crash duplicates no one; a record Check refuses, or whose phone number
// another user of the application has, is Failed. Ids the application hands out later never
// collide with imported ones. dryRun checks everything and writes nothing.
func (s *Service) Import(ctx context.Context, appID int64, records []Record, dryRun bool) ([]Result, error) {
	return nil, errors.New("userimport.Import: not implemented yet")
}
