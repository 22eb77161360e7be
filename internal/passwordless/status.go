package passwordless

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Status returns the application's sign-in with uuid: pending, approved (with the user's Authy
// id: the user signed in), denied or expired. A request past its expiry is expired on read: a
// phantom simply reads so, a request sent is expired as OneTouch expires any (once, with its
// callback). An unknown uuid, or another application's, is 60049, as for approval requests.
func (s *Service) Status(ctx context.Context, app twofold.App, uuid string) (Signin, error) {
	p, err := s.store.GetPasswordless(ctx, app.ID, uuid)
	if errors.Is(err, twofold.ErrNotFound) {
		return Signin{}, &twofold.Error{Code: twofold.CodeRequestNotFound, Message: "Passwordless request not found: " + wiretext.Clip(uuid)}
	}
	if err != nil {
		return Signin{}, err
	}
	out := Signin{UUID: p.UUID, Number: p.Number, ExpiresAt: p.ExpiresAt, Status: p.Status}
	if out.Status == twofold.Pending && !s.now().Before(p.ExpiresAt) {
		out.Status = twofold.Expired
		if p.Sent {
			r, err := s.approvals.Get(ctx, app, uuid)
			switch {
			case err == nil:
				// An answer may have come in just before the expiry: it stands.
				out.Status, p.UserID = r.Status, r.UserID
			case twofold.ErrorCode(err) == twofold.CodeRequestNotFound:
				// Its user was deleted meanwhile, and the request with them.
			default:
				return Signin{}, err
			}
		}
	}
	if out.Status == twofold.Approved {
		out.AuthyID = p.UserID
	}
	return out, nil
}

// BlockedUntil says until when the application's user gets no passwordless requests, because
// they denied one as not requested (onetouch.NotRequestedReason) less than BlockFor ago; zero
// when they are not blocked (or unknown). It is read from the store: the denied request itself.
func (s *Service) BlockedUntil(ctx context.Context, app twofold.App, userID int64) (time.Time, error) {
	sub, err := s.store.PasswordlessSubject(ctx, app.ID, twofold.MatchID, strconv.FormatInt(userID, 10))
	if errors.Is(err, twofold.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if until := s.blockedUntil(sub); until.After(s.now()) {
		return until, nil
	}
	return time.Time{}, nil
}

// blockedUntil is the end of the user's block, in the past when there is none.
func (s *Service) blockedUntil(sub twofold.PasswordlessSubject) time.Time {
	if sub.LastNotRequested.IsZero() {
		return time.Time{}
	}
	return sub.LastNotRequested.Add(s.cfg.BlockFor)
}
