// Package operators keeps the people who run a Twofold server: their accounts, passwords
// (argon2id) and the lockout that stops guessing. The console's second factor comes from
// Twofold itself (each operator is a user of the console application, AuthyID).
package operators

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

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
	OperatorSignIn(ctx context.Context, id int64, ok bool, now time.Time, lockAfter int, lockFor time.Duration) (twofold.Operator, error)
}

// Errors of SignIn. They say nothing about which of email and password was wrong.
var (
	ErrBadCredentials = errors.New("wrong email or password")
	ErrLocked         = errors.New("sign-in is locked after repeated failures; try again later")
)

// MinPassword is the shortest password accepted.
const MinPassword = 12

// Service manages operators.
type Service struct {
	store     Store
	params    password.Params
	lockAfter int
	lockFor   time.Duration
	now       func() time.Time
}

// New returns a Service. now may be nil for time.Now. Five wrong passwords in a row lock
// sign-in for 15 minutes; each further wrong one, until a success, locks it again.
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, params: password.Default, lockAfter: 5, lockFor: 15 * time.Minute, now: now}
}

// WithParams sets argon2id's costs (tests use cheap ones).
func (s *Service) WithParams(p password.Params) *Service { s.params = p; return s }

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

// SignIn checks an operator's password: the first step of a console login. Unknown emails
// take as long as wrong passwords; a locked account is refused without checking or counting.
func (s *Service) SignIn(ctx context.Context, email, pw string) (twofold.Operator, error) {
	o, err := s.store.OperatorByEmail(ctx, strings.TrimSpace(email))
	if errors.Is(err, twofold.ErrNotFound) {
		password.Dummy(pw)
		return twofold.Operator{}, ErrBadCredentials
	}
	if err != nil {
		return twofold.Operator{}, err
	}
	now := s.now()
	if o.Locked(now) {
		return twofold.Operator{}, ErrLocked
	}
	err = password.Check(pw, o.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMismatch) {
		return twofold.Operator{}, err
	}
	o, serr := s.store.OperatorSignIn(ctx, o.ID, err == nil, now.UTC(), s.lockAfter, s.lockFor)
	if serr != nil {
		return twofold.Operator{}, serr
	}
	if err != nil {
		return twofold.Operator{}, ErrBadCredentials
	}
	return o, nil
}
