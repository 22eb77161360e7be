package apps

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify services: named configurations inside an application, made and changed through the
// Verify API. Invalid settings are InvalidSettings whose fields are named as in the settings'
// JSON (twofold.VerifyServiceSettings) plus "name" and "code_length"; the API maps them to its
// parameter names.

// Limits of a service's settings (Twilio's, where it documents them).
const (
	MaxServiceName = 32 // FriendlyName: "up to 32 characters"
	maxServiceText = 255
)

// NewVerifyService returns a service named name with the defaults of a new Verify service:
// 6-digit codes, TOTP 6 digits every 30 seconds with a skew of 1, and a keypress asked for before
// a call reads its code.
func NewVerifyService(name string) twofold.VerifyService {
	return twofold.VerifyService{Name: name, CodeLength: 6, Settings: twofold.VerifyServiceSettings{
		DTMFInputRequired: true, TOTPTimeStep: 30, TOTPCodeLength: 6, TOTPSkew: 1,
	}}
}

// CreateVerifyService validates v (made from NewVerifyService) and stores it as a new service
// of the application.
func (s *Service) CreateVerifyService(ctx context.Context, app twofold.App, v twofold.VerifyService) (twofold.VerifyService, error) {
	v.Name = strings.TrimSpace(v.Name)
	if err := validateService(v); err != nil {
		return twofold.VerifyService{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	v.ID, v.PublicID, v.AppID, v.CreatedAt, v.UpdatedAt = 0, twofold.NewPublicID(), app.ID, now, now
	if err := s.store.CreateVerifyService(ctx, &v); err != nil {
		return twofold.VerifyService{}, err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerifyServiceCreated, AppID: app.ID, Details: map[string]string{"service": v.PublicID}})
	return v, nil
}

// VerifyService returns the application's service with publicID (ErrNotFound if none).
func (s *Service) VerifyService(ctx context.Context, app twofold.App, publicID string) (twofold.VerifyService, error) {
	if !twofold.ValidPublicID(publicID) {
		return twofold.VerifyService{}, twofold.ErrNotFound
	}
	return s.store.GetVerifyService(ctx, app.ID, publicID)
}

// VerifyServices lists up to limit of the application's services, oldest first: after the one
// with row id after when after > 0, else from the offset-th.
func (s *Service) VerifyServices(ctx context.Context, app twofold.App, after int64, offset, limit int) ([]twofold.VerifyService, error) {
	return s.store.ListVerifyServices(ctx, app.ID, after, offset, limit)
}

// UpdateVerifyService stores v, a service read with VerifyService and changed, after
// validating it.
func (s *Service) UpdateVerifyService(ctx context.Context, app twofold.App, v twofold.VerifyService) (twofold.VerifyService, error) {
	before, err := s.store.GetVerifyService(ctx, app.ID, v.PublicID)
	if err != nil {
		return twofold.VerifyService{}, err
	}
	v.Name = strings.TrimSpace(v.Name)
	if err := validateService(v); err != nil {
		return twofold.VerifyService{}, err
	}
	v.ID, v.AppID, v.CreatedAt, v.UpdatedAt = before.ID, app.ID, before.CreatedAt, s.now().UTC().Truncate(time.Second)
	if err := s.store.UpdateVerifyService(ctx, v); err != nil {
		return twofold.VerifyService{}, err
	}
	if changed := changedServiceSettings(before, v); len(changed) > 0 {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerifyServiceUpdated, AppID: app.ID,
			Details: map[string]string{"service": v.PublicID, "changed": strings.Join(changed, ",")}})
	}
	return v, nil
}

// DeleteVerifyService removes the application's service with publicID and its verifications.
func (s *Service) DeleteVerifyService(ctx context.Context, app twofold.App, publicID string) error {
	if !twofold.ValidPublicID(publicID) {
		return twofold.ErrNotFound
	}
	if err := s.store.DeleteVerifyService(ctx, app.ID, publicID); err != nil {
		return err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerifyServiceDeleted, AppID: app.ID, Details: map[string]string{"service": publicID}})
	return nil
}

// validateService reports every setting of v that is not valid.
func validateService(v twofold.VerifyService) error {
	var bad InvalidSettings
	fail := func(field, format string, args ...any) {
		bad = append(bad, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if n := utf8.RuneCountInString(v.Name); n == 0 || n > MaxServiceName || !plainText(v.Name) {
		fail("name", "must be 1 to %d characters, without control characters", MaxServiceName)
	}
	if v.CodeLength < 4 || v.CodeLength > 10 {
		fail("code_length", "must be 4 to 10")
	}
	st := v.Settings
	if st.TOTPTimeStep < 20 || st.TOTPTimeStep > 60 {
		fail("totp_time_step", "must be 20 to 60 seconds")
	}
	if st.TOTPCodeLength < 3 || st.TOTPCodeLength > 8 {
		fail("totp_code_length", "must be 3 to 8")
	}
	if st.TOTPSkew < 0 || st.TOTPSkew > 2 {
		fail("totp_skew", "must be 0 to 2")
	}
	for _, f := range []struct{ field, value string }{
		{"totp_issuer", st.TOTPIssuer}, {"tts_name", st.TTSName}, {"default_template_sid", st.DefaultTemplateSID},
		{"push_apn_credential_sid", st.PushAPNCredentialSID}, {"push_fcm_credential_sid", st.PushFCMCredentialSID},
		{"whatsapp_msg_service_sid", st.WhatsAppMsgServiceSID}, {"whatsapp_from", st.WhatsAppFrom},
	} {
		if utf8.RuneCountInString(f.value) > maxServiceText || !plainText(f.value) {
			fail(f.field, "must be at most %d characters, without control characters", maxServiceText)
		}
	}
	if len(bad) > 0 {
		return bad
	}
	return nil
}

// plainText reports whether s has no control or format characters: a service's texts reach
// messages, otpauth URIs and logs.
func plainText(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
}

// changedServiceSettings names what differs between two versions of a service, never the values.
func changedServiceSettings(a, b twofold.VerifyService) []string {
	var out []string
	if a.Name != b.Name {
		out = append(out, "name")
	}
	if a.CodeLength != b.CodeLength {
		out = append(out, "code_length")
	}
	x, y := a.Settings, b.Settings
	for _, f := range []struct {
		name    string
		differs bool
	}{
		{"lookup_enabled", x.LookupEnabled != y.LookupEnabled},
		{"skip_sms_to_landlines", x.SkipSMSToLandlines != y.SkipSMSToLandlines},
		{"dtmf_input_required", x.DTMFInputRequired != y.DTMFInputRequired},
		{"tts_name", x.TTSName != y.TTSName},
		{"psd2_enabled", x.PSD2Enabled != y.PSD2Enabled},
		{"do_not_share_warning_enabled", x.DoNotShareWarningEnabled != y.DoNotShareWarningEnabled},
		{"custom_code_enabled", x.CustomCodeEnabled != y.CustomCodeEnabled},
		{"default_template_sid", x.DefaultTemplateSID != y.DefaultTemplateSID},
		{"push", x.PushIncludeDate != y.PushIncludeDate || x.PushAPNCredentialSID != y.PushAPNCredentialSID ||
			x.PushFCMCredentialSID != y.PushFCMCredentialSID},
		{"totp", x.TOTPIssuer != y.TOTPIssuer || x.TOTPTimeStep != y.TOTPTimeStep || x.TOTPCodeLength != y.TOTPCodeLength ||
			x.TOTPSkew != y.TOTPSkew},
		{"whatsapp", x.WhatsAppMsgServiceSID != y.WhatsAppMsgServiceSID || x.WhatsAppFrom != y.WhatsAppFrom},
		{"verify_event_subscription_enabled", x.VerifyEventSubscription != y.VerifyEventSubscription},
	} {
		if f.differs {
			out = append(out, f.name)
		}
	}
	return out
}
