package onetouch

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// ForDevice lists the device's user's requests with status ("" for all), newest first, expiring
// due ones, and marks them seen (Authy's "notified").
func (s *Service) ForDevice(ctx context.Context, d twofold.Device, status twofold.ApprovalStatus, limit int) ([]twofold.ApprovalRequest, error) {
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	return s.forDevice(ctx, d, status, func(app twofold.App) ([]twofold.ApprovalRequest, error) {
		return s.store.ListApprovalRequests(ctx, d.AppID, d.UserID, status, limit)
	})
}

// ForDeviceSince is ForDevice for the requests newer than after (at most 50, the newest) and
// those of ids, newest first: an event stream's wake-up reads what is new and what it sent
// while pending, not every request since the oldest of those.
func (s *Service) ForDeviceSince(ctx context.Context, d twofold.Device, after int64, ids []int64) ([]twofold.ApprovalRequest, error) {
	return s.forDevice(ctx, d, "", func(app twofold.App) ([]twofold.ApprovalRequest, error) {
		return s.store.ListApprovalRequestsSince(ctx, d.AppID, d.UserID, after, ids, 50)
	})
}

func (s *Service) forDevice(ctx context.Context, d twofold.Device, status twofold.ApprovalStatus,
	list func(twofold.App) ([]twofold.ApprovalRequest, error)) ([]twofold.ApprovalRequest, error) {
	app, err := s.store.GetApp(ctx, d.AppID)
	if err != nil {
		return nil, err
	}
	reqs, err := list(app)
	if err != nil {
		return nil, err
	}
	out := reqs[:0]
	var seen []int64
	for _, r := range reqs {
		if r, err = s.expireIfDue(ctx, app, r); err != nil {
			return nil, err
		}
		if status != "" && r.Status != status {
			continue
		}
		if !r.Notified {
			seen = append(seen, r.ID)
			r.Notified = true
		}
		out = append(out, r)
	}
	return out, s.store.MarkNotified(ctx, seen)
}

// OneForDevice returns one request of the device's user.
func (s *Service) OneForDevice(ctx context.Context, d twofold.Device, uuid string) (twofold.ApprovalRequest, error) {
	app, err := s.store.GetApp(ctx, d.AppID)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	r, err := s.Get(ctx, app, uuid)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	// Another user's request of the same application is as unknown as another app's.
	if r.UserID != d.UserID {
		return twofold.ApprovalRequest{}, &twofold.Error{Code: twofold.CodeRequestNotFound, Message: "Approval request not found: " + wiretext.Clip(uuid)}
	}
	if !r.Notified {
		if err := s.store.MarkNotified(ctx, []int64{r.ID}); err != nil {
			return twofold.ApprovalRequest{}, err
		}
		r.Notified = true
	}
	return r, nil
}

// Answer is a device's decision on a request.
type Answer struct {
	Status    twofold.ApprovalStatus // approved or denied
	Timestamp int64                  // Unix seconds when the device signed
	Signature string                 // base64 ECDSA P-256 signature of AnswerMessage
	Number    string                 // for number matching
	Reason    string                 // why a request was denied
}

// NotRequestedReason is the reason a device denies a request with when its user did not ask for
// it ("I didn't request this"). It is signed with the answer like any reason and reaches the
// callback; a passwordless request denied with it blocks the user's next passwordless requests
// for a while (package passwordless).
const NotRequestedReason = twofold.ReasonNotRequested

// AnswerMessage is the exact byte string a device signs: it binds the decision to one request,
// one moment and, when asked, the matched number, so no answer can be replayed or altered.
func AnswerMessage(uuid string, status twofold.ApprovalStatus, timestamp int64, number, reason string) []byte {
	return []byte(strings.Join([]string{"twofold-onetouch-v1", uuid, string(status), strconv.FormatInt(timestamp, 10), number, reason}, "\n"))
}

// record appends e to the audit trail, if the service keeps one.
func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// notPending refuses an answer that lost: the request was answered, expired or closed first, or
// its group was decided.
func notPending(out outcome) error {
	if out.group.ID != 0 && out.group.Status != twofold.Pending {
		return twofold.Errorf(twofold.CodeNotPending, "Approval request is no longer pending: its group was already decided (%s).", out.group.Status)
	}
	return twofold.Errorf(twofold.CodeNotPending, "Approval request is no longer pending.")
}

// NumberTries is how many wrong matching numbers a request takes: the first leaves it pending
// (a slip of the finger, or a misread digit), the second denies it. Someone who approves
// without looking at the sign-in page guesses right 2 times in 90 at most.
const NumberTries = 2

// numberMissed counts a wrong matching number for the request and returns how many more it
// takes. When it leaves the request pending, the count commits together with audit's entry
// (made for the tries left), in one decision serialised with the user's others, so parallel
// answers cannot get more tries. A count is kept for the longest a request may live (MaxTTL):
// it outlives the request it is about.
func (s *Service) numberMissed(ctx context.Context, r twofold.ApprovalRequest, now time.Time, audit func(left int) twofold.AuditEvent) (int, error) {
	left := 0
	err := s.store.Decide(ctx, r.AppID, r.UserID, func(d twofold.Decision) error {
		hit, err := d.Hit("onetouch_number:"+strconv.FormatInt(r.AppID, 10)+":"+r.UUID, now,
			twofold.Limit{N: NumberTries - 1, Window: s.cfg.MaxTTL + time.Minute})
		if err != nil || hit.Refused {
			return err
		}
		left = NumberTries - 1 // the tries left after this one: the one that denies
		for _, e := range s.entries(ctx, audit(left)) {
			if err := d.Audit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count a wrong number for request %s: %w", r.UUID, err)
	}
	return left, nil
}

// Answer records a device's signed decision. The first answer wins; an answer to an expired or
// answered request, with a bad signature or a stale timestamp, or from a device of another user
// is refused. A wrong matching number leaves the request pending once (60080 with the request
// still pending) and denies it the second time (60080, denied).
func (s *Service) Answer(ctx context.Context, d twofold.Device, uuid string, a Answer) (twofold.ApprovalRequest, error) {
	if a.Status != twofold.Approved && a.Status != twofold.Denied {
		return twofold.ApprovalRequest{}, twofold.ErrInvalidParam("status", "must be approved or denied")
	}
	if len(a.Reason) > 200 {
		return twofold.ApprovalRequest{}, twofold.ErrInvalidParam("reason", "must be at most 200 characters")
	}
	r, err := s.OneForDevice(ctx, d, uuid)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if r.Status != twofold.Pending {
		return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeNotPending, "Approval request is no longer pending: it is %s.", r.Status)
	}
	now := s.now().UTC()
	signedAt := time.Unix(a.Timestamp, 0)
	if d := now.Sub(signedAt); d > s.cfg.SignatureSkew || d < -s.cfg.SignatureSkew {
		return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeInvalidSignature, "The answer's timestamp is too far from the server's time.")
	}
	sig, err := decodeSignature(a.Signature)
	if err != nil || !devices.VerifySignature(d, AnswerMessage(r.UUID, a.Status, a.Timestamp, a.Number, a.Reason), sig) {
		return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeInvalidSignature, "The answer's signature is not valid for this device.")
	}
	status, reason := a.Status, a.Reason
	mismatch := r.Number != "" && a.Status == twofold.Approved && subtle.ConstantTimeCompare([]byte(r.Number), []byte(a.Number)) != 1
	if mismatch {
		left, err := s.numberMissed(ctx, r, now, func(left int) twofold.AuditEvent {
			return twofold.AuditEvent{Actor: twofold.DeviceActor(d.ID), Action: twofold.AuditApprovalNumberMismatch,
				AppID: r.AppID, UserID: r.UserID, Details: map[string]string{"uuid": r.UUID,
					"device_id": strconv.FormatInt(d.ID, 10), "tries_left": strconv.Itoa(left)}}
		})
		if err != nil {
			return twofold.ApprovalRequest{}, err
		}
		if left > 0 {
			return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeRequestInvalid,
				"The number did not match the one shown; the request is still pending. Check the number and try again: another wrong number denies it.")
		}
		status, reason = twofold.Denied, "number mismatch"
	}
	app, err := s.store.GetApp(ctx, d.AppID)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	by := &answerer{actor: twofold.DeviceActor(d.ID), details: map[string]string{"device_id": strconv.FormatInt(d.ID, 10)}}
	out, err := s.finish(ctx, app, r, status, reason, d, a.Signature, now, by)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if !out.won {
		return twofold.ApprovalRequest{}, notPending(out)
	}
	if out.decided {
		s.groupDecided(out.group, out.members, out.queued)
	}
	final, err := s.store.GetApprovalRequest(ctx, app.ID, r.UUID)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if mismatch {
		return final, twofold.Errorf(twofold.CodeRequestInvalid, "The number did not match the one shown; the request was denied.")
	}
	return final, nil
}
