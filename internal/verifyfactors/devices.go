package verifyfactors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Twofold's own authenticators as Verify push factors. A user enrolled with Twofold's web or CLI
// authenticator (the Authy API's registration link or QR code) has devices holding P-256 keys;
// each is a verified push factor of the entity in every service, made when the entity's factors
// are read and gone with the device. A challenge of such a factor is a OneTouch approval request
// to the user (without number matching: Verify has nowhere to show the number), which the
// authenticators show and answer as any other; the challenge reads the request's answer. This is
// how a Verify application uses Twofold's app instead of building its own.

// Approvals is OneTouch (internal/onetouch.Service).
type Approvals interface {
	Create(ctx context.Context, app twofold.App, userID int64, p onetouch.CreateParams) (twofold.ApprovalRequest, error)
	Get(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error)
	Announce(r twofold.ApprovalRequest)
}

// ErrDeviceFactor refuses what a factor that is a Twofold device does not take: an answer
// through the Verify API (the authenticator answers) or its deletion (remove the device).
var ErrDeviceFactor = errors.New("the factor is a Twofold authenticator's device")

// SetApprovals makes the users' Twofold devices push factors, challenged through a. Call it
// before the service is used; without it devices are not factors.
func (s *Service) SetApprovals(a Approvals) { s.approvals = a }

// DevicePlatform is the notification_platform of a factor that is a Twofold device.
const DevicePlatform = "twofold"

// syncDevices makes a factor of each of the entity's devices that has none in svc, and deletes
// those whose device is gone.
func (s *Service) syncDevices(ctx context.Context, svc twofold.VerifyService, entity twofold.User) error {
	if s.approvals == nil {
		return nil
	}
	devs, err := s.store.ListDevices(ctx, entity.AppID, entity.ID)
	if err != nil {
		return fmt.Errorf("sync devices: %w", err)
	}
	factors, err := s.store.ListVerifyFactors(ctx, svc.ID, entity.ID, 0, 0, maxFactors)
	if err != nil {
		return fmt.Errorf("sync devices: %w", err)
	}
	gone := map[int64]twofold.VerifyFactor{}
	for _, f := range factors {
		if f.DeviceID != 0 {
			gone[f.DeviceID] = f
		}
	}
	for _, d := range devs {
		if _, ok := gone[d.ID]; ok {
			delete(gone, d.ID)
			continue
		}
		now := s.now().UTC()
		f := twofold.VerifyFactor{PublicID: twofold.NewPublicID(), AppID: entity.AppID, ServiceID: svc.ID, UserID: entity.ID,
			Type: twofold.VerifyFactorPush, Name: d.Name, Status: twofold.FactorVerified, SecretSealed: d.PublicKey,
			Config:   twofold.FactorConfig{Alg: "ES256", NotificationPlatform: DevicePlatform, SdkVersion: d.OSType},
			Metadata: map[string]string{}, DeviceID: d.ID, CreatedAt: now, UpdatedAt: now}
		err := s.insertFactor(ctx, svc, entity, &f)
		if errors.Is(err, twofold.ErrConflict) {
			continue // another request made it, with its event
		}
		if err != nil {
			return fmt.Errorf("sync devices: %w", err)
		}
	}
	for _, f := range gone {
		err := s.deleteFactor(ctx, svc, entity, f)
		if errors.Is(err, twofold.ErrNotFound) {
			continue // another request deleted it, with its event
		}
		if err != nil {
			return fmt.Errorf("sync devices: %w", err)
		}
	}
	return nil
}

// askDevice makes the approval request a challenge of a device's factor is.
func (s *Service) askDevice(ctx context.Context, app twofold.App, entity twofold.User, p NewChallenge) (string, error) {
	ttl := max(int64(p.ExpiresAt.Sub(s.now())/time.Second), 1)
	details := make(map[string]string, len(p.Details.Fields))
	for _, fl := range p.Details.Fields {
		details[fl.Label] = fl.Value
	}
	off := false
	r, err := s.approvals.Create(ctx, app, entity.ID, onetouch.CreateParams{Message: p.Details.Message, Details: details,
		HiddenDetails: p.HiddenDetails, SecondsToExpire: &ttl, NumberMatching: &off})
	if err != nil {
		return "", err
	}
	return r.UUID, nil
}

// refresh reads the answer of a pending challenge's approval request into the challenge.
func (s *Service) refresh(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) (twofold.VerifyChallenge, error) {
	if c.Status != twofold.ChallengePending || c.ApprovalUUID == "" || s.approvals == nil {
		return c, nil
	}
	r, err := s.approvals.Get(ctx, app, c.ApprovalUUID)
	var te *twofold.Error
	if errors.As(err, &te) {
		return c, nil // the request is gone (its user's data was deleted): the challenge expires
	}
	if err != nil {
		return c, err
	}
	if r.Status != twofold.Approved && r.Status != twofold.Denied {
		return c, nil
	}
	got, err := s.answerAt(ctx, svc, entity, c, string(r.Status), r.ProcessedAt)
	if errors.Is(err, ErrNotPending) {
		// Answered by a request racing this one, or the device answered after the challenge's
		// own expiry: what is stored stands.
		return s.store.GetVerifyChallenge(ctx, svc.ID, entity.ID, c.PublicID)
	}
	return got, err
}

// Notify sends the challenge's push again: to the user's Twofold devices for a challenge of a
// device's factor (their event streams and Web Push). Other push factors' apps are not reached
// (Twofold has no APNs or FCM credentials of the customer's app) and poll.
func (s *Service) Notify(ctx context.Context, app twofold.App, f twofold.VerifyFactor, c twofold.VerifyChallenge) error {
	if c.StatusAt(s.now()) != twofold.ChallengePending {
		return ErrNotPending
	}
	if f.DeviceID == 0 || c.ApprovalUUID == "" || s.approvals == nil {
		return nil
	}
	r, err := s.approvals.Get(ctx, app, c.ApprovalUUID)
	if err != nil {
		return err
	}
	if r.Status == twofold.Pending {
		s.approvals.Announce(r)
	}
	return nil
}
