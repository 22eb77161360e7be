package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// passwordlessFlags are serve's settings of passwordless sign-in (POST
// /onetouch/json/passwordless_requests).
func passwordlessFlags(f *pflag.FlagSet) {
	def := passwordless.DefaultConfig()
	f.String("passwordless-limit-username", def.PerUsername.String(), "passwordless sign-ins per username typed (a user's or not), per application, N/DURATION or off")
	f.String("passwordless-limit-address", def.PerAddress.String(), "passwordless sign-ins per client address (the request's user_ip; IPv6: per /64), per application, N/DURATION or off")
	f.String("passwordless-limit-user", def.PerUser.String(), "passwordless sign-ins sent to one user however named (email, custom_user_id, authy_id); past it they are answered alike but not sent, N/DURATION or off")
	f.Duration("passwordless-block", def.BlockFor, "how long a user who denies a passwordless sign-in as not requested gets no more (at most 24h)")
}

// parsePasswordlessFlags reads passwordlessFlags into the service's configuration.
func parsePasswordlessFlags(f *pflag.FlagSet) (passwordless.Config, error) {
	cfg := passwordless.DefaultConfig()
	for flag, dst := range map[string]*twofold.Limit{"passwordless-limit-username": &cfg.PerUsername,
		"passwordless-limit-address": &cfg.PerAddress, "passwordless-limit-user": &cfg.PerUser} {
		l, err := parseLimit(mustString(f, flag))
		if err != nil {
			return passwordless.Config{}, fmt.Errorf("%s: %w", source(f, flag), err)
		}
		if l.Off() {
			l = passwordless.Unlimited // the service takes a zero limit as its default
		}
		*dst = l
	}
	cfg.BlockFor, _ = f.GetDuration("passwordless-block")
	if cfg.BlockFor <= 0 || cfg.BlockFor > passwordless.MaxBlock {
		return passwordless.Config{}, fmt.Errorf("%s must be more than 0 and at most 24h, not %s", source(f, "passwordless-block"), cfg.BlockFor)
	}
	return cfg, nil
}
