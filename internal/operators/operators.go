// Package operators keeps the people who run a Twofold server: their accounts, passwords
// (argon2id) and the lockout that stops guessing. The console's second factor comes from
// Twofold itself (each operator is a user of the console application, AuthyID).
package operators

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/password"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	CreateOperator(ctx context.Context, o *twofold.Operator) error
	OperatorByEmail(ctx context.Context, email string) (twofold.Operator, error)
	ListOperators(ctx context.Context) ([]twofold.Operator, error)
	DeleteOperator(ctx context.Context, email string) error
	UpdateOperator(ctx context.Context, o twofold.Operator) error
	CountSignInAttempt(ctx context.Context, email string, now time.Time, lockAfter int, lockFor, keep time.Duration) (counted bool, lockedUntil time.Time, err error)
	OperatorSignedIn(ctx context.Context, id int64, now time.Time) (twofold.Operator, error)
}

// Errors of SignIn. They say nothing about which of email and password was wrong, nor whether
// the email is an operator's. ErrLocked and ErrBusy come as a *Refusal.
var (
	ErrBadCredentials = errors.New("wrong email or password")
	ErrLocked         = errors.New("sign-in is locked after repeated failures; try again later")
	ErrBusy           = errors.New("too many sign-ins are being checked at once; try again shortly")
)

// Refusal is a sign-in refused before its password was checked, and how long to wait.
type Refusal struct {
	Err  error // ErrLocked or ErrBusy
	Wait time.Duration
}

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// MinPassword is the shortest password accepted.
const MinPassword = 12

// Service manages operators.
type Service struct {
	store     Store
	params    password.Params
	lockAfter int
	lockFor   time.Duration
	now       func() time.Time
	slots     chan struct{}       // holds one element per password check running
	wait      time.Duration       // longest wait for a slot
	onCheck   func() (end func()) // nil, or called around each password check
}

// DefaultWait is how long SignIn waits for a slot unless WithHashing says otherwise.
const DefaultWait = time.Second

// DefaultSlots is how many password checks run at once unless WithHashing says otherwise: half
// the CPUs (each check keeps Threads cores busy), so the API keeps the rest, and at most four
// (256 MiB with the default costs).
func DefaultSlots() int { return min(max(runtime.GOMAXPROCS(0)/2, 1), 4) }

// forgetAfter is how long the failures counted at an email are kept after the last one.
const forgetAfter = 24 * time.Hour

// New returns a Service. now may be nil for time.Now. Five wrong passwords in a row at one email
// (an operator's or not) lock sign-in to it for 15 minutes; each further wrong one locks it
// again, until a success, a new password, or a day after the last try counted.
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: store, params: password.Default, lockAfter: 5, lockFor: 15 * time.Minute, now: now}
	return s.WithHashing(DefaultSlots(), DefaultWait)
}

// WithParams sets argon2id's costs (tests use cheap ones).
func (s *Service) WithParams(p password.Params) *Service { s.params = p; return s }

// WithHashing bounds the password checks SignIn runs at once to slots; a sign-in that finds
// none free within wait is refused with ErrBusy.
func (s *Service) WithHashing(slots int, wait time.Duration) *Service {
	s.slots, s.wait = make(chan struct{}, max(slots, 1)), wait
	return s
}

// OnCheck sets f to be called as each password check (or its stand-in for an unknown email)
// begins; the function f returns is called as it ends. Tests count and hold checks with it.
func (s *Service) OnCheck(f func() (end func())) *Service { s.onCheck = f; return s }

func (s *Service) checking() (end func()) {
	if s.onCheck == nil {
		return func() {}
	}
	return s.onCheck()
}

func validPassword(email, pw string) error {
	switch {
	case len([]rune(pw)) < MinPassword:
		return fmt.Errorf("the password must have at least %d characters", MinPassword)
	case len(pw) > 1024:
		return errors.New("the password is too long (over 1024 bytes)")
	case strings.EqualFold(strings.TrimSpace(pw), email):
		return errors.New("the password must not be the email address")
	}
	return nil
}

// Create adds an operator. An email already used is twofold.ErrConflict.
func (s *Service) Create(ctx context.Context, email, pw string) (twofold.Operator, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != strings.TrimSpace(email) {
		return twofold.Operator{}, fmt.Errorf("%q is not an email address", email)
	}
	if err := validPassword(addr.Address, pw); err != nil {
		return twofold.Operator{}, err
	}
	hash, err := password.Hash(pw, s.params)
	if err != nil {
		return twofold.Operator{}, err
	}
	o := twofold.Operator{Email: addr.Address, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateOperator(ctx, &o); err != nil {
		return twofold.Operator{}, err
	}
	return o, nil
}

// SetPassword replaces an operator's password and lifts a lockout.
func (s *Service) SetPassword(ctx context.Context, email, pw string) error {
	o, err := s.store.OperatorByEmail(ctx, email)
	if err != nil {
		return err
	}
	if err := validPassword(o.Email, pw); err != nil {
		return err
	}
	if o.PasswordHash, err = password.Hash(pw, s.params); err != nil {
		return err
	}
	o.UpdatedAt = s.now().UTC()
	return s.store.UpdateOperator(ctx, o)
}

// List returns every operator.
func (s *Service) List(ctx context.Context) ([]twofold.Operator, error) {
	return s.store.ListOperators(ctx)
}

// Remove deletes an operator.
func (s *Service) Remove(ctx context.Context, email string) error {
	return s.store.DeleteOperator(ctx, email)
}

// SignIn checks an operator's password: the first step of a console login.
//
// Its cost is bounded twice before any password is hashed. The attempt needs one of a few
// slots (argon2id takes 64 MiB and a core a while), waiting briefly, else it is ErrBusy. Then
// it is counted at the email, in the store: the lockout is decided there, atomically and for
// every server sharing the database, so parallel guesses cannot all pass it, and a locked email
// (ErrLocked) is refused without a check. Unknown emails are counted, locked and checked
// (against nothing, at the same cost) exactly as known ones, so no answer tells them apart.
func (s *Service) SignIn(ctx context.Context, email, pw string) (twofold.Operator, error) {
	email = strings.TrimSpace(email)
	if err := s.acquire(ctx); err != nil {
		return twofold.Operator{}, err
	}
	o, err := s.check(ctx, email, pw)
	<-s.slots
	if err != nil {
		return twofold.Operator{}, err
	}
	return s.store.OperatorSignedIn(ctx, o.ID, s.now().UTC())
}

// acquire takes a password check's slot, waiting at most s.wait.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return &Refusal{Err: ErrBusy, Wait: max(s.wait, time.Second)}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// check counts the attempt, then checks the password, in a slot.
func (s *Service) check(ctx context.Context, email, pw string) (twofold.Operator, error) {
	now := s.now()
	counted, until, err := s.store.CountSignInAttempt(ctx, email, now.UTC(), s.lockAfter, s.lockFor, forgetAfter)
	if err != nil {
		return twofold.Operator{}, err
	}
	if !counted {
		return twofold.Operator{}, &Refusal{Err: ErrLocked, Wait: until.Sub(now)}
	}
	o, err := twofold.Operator{}, twofold.ErrNotFound // an email no store can hold is no operator's
	if storable(email) {
		o, err = s.store.OperatorByEmail(ctx, email)
	}
	if err != nil && !errors.Is(err, twofold.ErrNotFound) {
		return twofold.Operator{}, err
	}
	end := s.checking()
	if err == nil {
		err = password.Check(pw, o.PasswordHash)
	} else {
		password.Dummy(pw, s.params)
		err = password.ErrMismatch
	}
	end()
	if errors.Is(err, password.ErrMismatch) {
		return twofold.Operator{}, ErrBadCredentials
	}
	return o, err
}

// storable reports whether email could be an operator's: text PostgreSQL can hold, of a
// length an address can have.
func storable(email string) bool {
	return len(email) <= 320 && utf8.ValidString(email) && !strings.ContainsRune(email, 0)
}
