package verifyfactors

import (
	"context"
	"fmt"
	"strings"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// TOTP factors' configuration bounds and defaults (Twilio's, except that codes have 6 to 8
// digits: internal/otp makes no shorter ones).
const (
	DefaultTimeStep = 30
	DefaultSkew     = 1
	DefaultDigits   = 6
	minTimeStep     = 20
	maxTimeStep     = 60
	maxSkew         = 2
	secretBytes     = 20
	maxName         = 64
)

// TOTPFactor are the parameters of a new totp factor; zero values are the service's settings,
// then the defaults (a negative Config.Skew is a skew of 0).
type TOTPFactor struct {
	Name     string
	Secret   string // base32; "": a new one
	Config   twofold.FactorConfig
	Metadata map[string]string
}

// SecretAD binds a factor's sealed secret to the factor.
func SecretAD(publicID string) string { return "verify-factor:" + publicID }

var algorithms = map[string]otp.Algorithm{"sha1": otp.SHA1, "sha256": otp.SHA256, "sha512": otp.SHA512}

// totpConfig fills in cfg from the service's settings and the defaults, and checks it.
func totpConfig(svc twofold.VerifyService, cfg twofold.FactorConfig) (twofold.FactorConfig, error) {
	st := svc.Settings
	pick := func(v, service, def int) int {
		switch {
		case v != 0:
			return v
		case service != 0:
			return service
		}
		return def
	}
	cfg.TimeStep = pick(cfg.TimeStep, st.TOTPTimeStep, DefaultTimeStep)
	cfg.CodeLength = pick(cfg.CodeLength, st.TOTPCodeLength, DefaultDigits)
	if cfg.Skew == 0 {
		cfg.Skew = pick(0, st.TOTPSkew, DefaultSkew)
	}
	cfg.Skew = max(cfg.Skew, 0)
	cfg.Alg = strings.ToLower(cfg.Alg)
	if cfg.Alg == "" {
		cfg.Alg = "sha1"
	}
	switch {
	case cfg.TimeStep < minTimeStep || cfg.TimeStep > maxTimeStep:
		return cfg, twofold.ErrInvalidParam("config.time_step", fmt.Sprintf("must be %d to %d", minTimeStep, maxTimeStep))
	case cfg.CodeLength < otp.MinDigits || cfg.CodeLength > 8:
		return cfg, twofold.ErrInvalidParam("config.code_length", "must be 6 to 8 (Twofold makes no shorter codes)")
	case cfg.Skew > maxSkew:
		return cfg, twofold.ErrInvalidParam("config.skew", "must be 0 to 2")
	case algorithms[cfg.Alg] == "":
		return cfg, twofold.ErrInvalidParam("config.alg", "must be sha1, sha256 or sha512")
	}
	return cfg, nil
}

func checkName(name string) error {
	if strings.TrimSpace(name) == "" || utf8len(name) > maxName {
		return twofold.ErrInvalidParam("friendly_name", "must be 1 to 64 characters")
	}
	return nil
}

// CreatedTOTP is a new totp factor and its secret, shown once (binding.secret and binding.uri).
type CreatedTOTP struct {
	Factor twofold.VerifyFactor
	Secret []byte
	URI    string
}

// CreateTOTPFactor gives the entity a new, unverified totp factor.
func (s *Service) CreateTOTPFactor(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, p TOTPFactor) (CreatedTOTP, error) {
	if err := checkName(p.Name); err != nil {
		return CreatedTOTP{}, err
	}
	cfg, err := totpConfig(svc, p.Config)
	if err != nil {
		return CreatedTOTP{}, err
	}
	if err := checkMetadata(p.Metadata); err != nil {
		return CreatedTOTP{}, err
	}
	var secret []byte
	if p.Secret != "" {
		if secret, err = otp.DecodeSecret(p.Secret); err != nil || len(secret) < 10 || len(secret) > 64 {
			return CreatedTOTP{}, twofold.ErrInvalidParam("binding.secret", "must be base32 of 10 to 64 bytes")
		}
	} else if secret, err = otp.NewSecret(secretBytes); err != nil {
		return CreatedTOTP{}, err
	}
	now := s.now().UTC()
	f := twofold.VerifyFactor{PublicID: twofold.NewPublicID(), AppID: app.ID, ServiceID: svc.ID, UserID: entity.ID,
		Type: twofold.VerifyFactorTOTP, Name: p.Name, Status: twofold.FactorUnverified, Config: cfg, Metadata: p.Metadata,
		CreatedAt: now, UpdatedAt: now}
	f.SecretSealed = s.keys.Seal(secret, SecretAD(f.PublicID))
	if err := s.insertFactor(ctx, svc, entity, &f); err != nil {
		return CreatedTOTP{}, fmt.Errorf("create totp factor: %w", err)
	}
	issuer := svc.Settings.TOTPIssuer
	if issuer == "" {
		issuer = svc.Name
	}
	key := otp.Key{Issuer: issuer, Account: p.Name, TOTP: s.totp(f, secret)}
	return CreatedTOTP{Factor: f, Secret: secret, URI: key.URI()}, nil
}

func (s *Service) totp(f twofold.VerifyFactor, secret []byte) otp.TOTP {
	return otp.TOTP{Secret: secret, Digits: f.Config.CodeLength, Period: f.Config.TimeStep, Algorithm: algorithms[f.Config.Alg]}
}

// spendCode reports whether code is a code of the totp factor now that no code was accepted at
// its time step or a later one; an accepted code's step is spent.
func (s *Service) spendCode(ctx context.Context, f twofold.VerifyFactor, code string) (bool, error) {
	secret, err := s.keys.Open(f.SecretSealed, SecretAD(f.PublicID))
	if err != nil {
		return false, fmt.Errorf("factor %d: open secret: %w", f.ID, err)
	}
	code = strings.TrimSpace(code)
	t := s.totp(f, secret)
	step, ok := t.Match(code, s.now(), f.Config.Skew)
	if !ok {
		return false, nil
	}
	return s.store.SpendFactorStep(ctx, f.ID, step)
}

// VerifyTOTPFactor checks the first code of an unverified totp factor: the factor, verified when
// the code is right. A verified factor is returned as it is.
func (s *Service) VerifyTOTPFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, code string) (twofold.VerifyFactor, error) {
	if f.Type != twofold.VerifyFactorTOTP || f.Status == twofold.FactorVerified {
		return f, nil
	}
	n, err := s.store.AddFactorFailure(ctx, f.ID)
	if err != nil {
		return f, err
	}
	if n > MaxAttempts {
		return f, ErrFactorMaxAttempts
	}
	ok, err := s.spendCode(ctx, f, code)
	if err != nil || !ok {
		return f, err
	}
	return s.markVerified(ctx, svc, entity, f)
}
