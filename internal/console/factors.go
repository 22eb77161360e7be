// Package console is the operators' web console. Its sign-in eats Twofold's own cooking: an
// operator is a user of the console application, and the second factor is a code from their
// authenticator or a push approved on their registered device, checked by the same services
// that serve customers.
package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// Services are the parts of Twofold the console's second factor uses.
type Services struct {
	EnsureConsole     func(ctx context.Context) (twofold.App, error)
	CreateCustomUser  func(ctx context.Context, u *twofold.User) (bool, error)
	ListDevices       func(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	Enroll            func(ctx context.Context, app twofold.App, userID int64, label string, qrSize int) (verify.Enrollment, error)
	Check             func(ctx context.Context, app twofold.App, userID int64, token string, p verify.CheckParams) (verify.Method, error)
	RegistrationToken func(ctx context.Context, appID, userID int64) (string, time.Time, error)
	CreateApproval    func(ctx context.Context, app twofold.App, userID int64, p onetouch.CreateParams) (twofold.ApprovalRequest, error)
	GetApproval       func(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error)
	// GetAuthenticator tells whether the operator has a TOTP seed (Enrolled); nil: assume so.
	GetAuthenticator func(ctx context.Context, appID, userID int64) (twofold.Authenticator, error)
}

// Factors gives operators their second factor.
type Factors struct {
	s   Services
	now func() time.Time
}

// NewFactors returns Factors over s. now may be nil for time.Now.
func NewFactors(s Services, now func() time.Time) *Factors {
	if now == nil {
		now = time.Now
	}
	return &Factors{s: s, now: now}
}

// User returns the console application and the operator's user in it, creating both as needed.
func (f *Factors) User(ctx context.Context, op twofold.Operator) (twofold.App, twofold.User, error) {
	app, err := f.s.EnsureConsole(ctx)
	if err != nil {
		return twofold.App{}, twofold.User{}, fmt.Errorf("console application: %w", err)
	}
	now := f.now().UTC()
	u := twofold.User{AppID: app.ID, Email: op.Email, CustomUserID: "operator:" + op.Email, CreatedAt: now, UpdatedAt: now}
	if _, err := f.s.CreateCustomUser(ctx, &u); err != nil {
		return twofold.App{}, twofold.User{}, fmt.Errorf("operator's console user: %w", err)
	}
	return app, u, nil
}

// Enrolment is how an operator sets up their second factor.
type Enrolment struct {
	TOTPURI           string    // otpauth://totp/… for any authenticator app (replaces an earlier seed)
	QRLink            string    // the token of the page that shows TOTPURI as a QR code (EnrolmentPath)
	RegistrationToken string    // registers Twofold's authenticator (CLI or web) as a device, for pushes
	TokenExpires      time.Time // when RegistrationToken stops working
}

// Enrol gives the operator a new TOTP seed and a device registration token.
func (f *Factors) Enrol(ctx context.Context, op twofold.Operator) (Enrolment, error) {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return Enrolment{}, err
	}
	e, err := f.s.Enroll(ctx, app, u.ID, op.Email, 0)
	if err != nil {
		return Enrolment{}, fmt.Errorf("authenticator: %w", err)
	}
	token, expires, err := f.s.RegistrationToken(ctx, app.ID, u.ID)
	if err != nil {
		return Enrolment{}, fmt.Errorf("device registration: %w", err)
	}
	return Enrolment{TOTPURI: e.URI, QRLink: e.QRLink, RegistrationToken: token, TokenExpires: expires}, nil
}

// EnrolmentPath is the console's page of an enrolment's QR code, under the server's URL.
func EnrolmentPath(qrLink string) string { return Prefix + "enrol/" + qrLink }

// HasDevice reports whether the operator can approve a push.
func (f *Factors) HasDevice(ctx context.Context, op twofold.Operator) (bool, error) {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return false, err
	}
	devs, err := f.s.ListDevices(ctx, app.ID, u.ID)
	return len(devs) > 0, err
}

// Enrolled says which second factors the operator has: a TOTP seed for an authenticator app,
// and registered devices (which give codes and approve pushes). An operator with neither
// cannot sign in to the console until `twofold admin enrol`.
func (f *Factors) Enrolled(ctx context.Context, op twofold.Operator) (totp, device bool, err error) {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return false, false, err
	}
	devs, err := f.s.ListDevices(ctx, app.ID, u.ID)
	if err != nil {
		return false, false, err
	}
	totp = true
	if f.s.GetAuthenticator != nil {
		_, err := f.s.GetAuthenticator(ctx, app.ID, u.ID)
		switch {
		case errors.Is(err, twofold.ErrNotFound):
			totp = false
		case err != nil:
			return false, false, err
		}
	}
	return totp, len(devs) > 0, nil
}

// CheckCode verifies a code from the operator's authenticator or device. Failures are counted
// against the same limits as customers' users.
func (f *Factors) CheckCode(ctx context.Context, op twofold.Operator, code string) error {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return err
	}
	_, err = f.s.Check(ctx, app, u.ID, code, verify.CheckParams{Force: true})
	return err
}

// Push asks the operator's devices to approve a sign-in; the request says from where.
func (f *Factors) Push(ctx context.Context, op twofold.Operator, details map[string]string) (twofold.ApprovalRequest, error) {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	ttl := int64(120)
	return f.s.CreateApproval(ctx, app, u.ID, onetouch.CreateParams{
		Message: "Sign in to the Twofold console as " + op.Email, Details: details, SecondsToExpire: &ttl,
	})
}

// PushStatus returns a push's state: pending, approved, denied or expired. A request of another
// operator is not found.
func (f *Factors) PushStatus(ctx context.Context, op twofold.Operator, uuid string) (twofold.ApprovalRequest, error) {
	app, u, err := f.User(ctx, op)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	r, err := f.s.GetApproval(ctx, app, uuid)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if r.UserID != u.ID {
		return twofold.ApprovalRequest{}, twofold.ErrNotFound
	}
	return r, nil
}
