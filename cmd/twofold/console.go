package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/clientaddr"
	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// consoleHandler is the operators' web console, mounted at /console/, over the server's own
// services: operators sign in with a password and a code or push from Twofold itself.
func consoleHandler(in *instance, us *users.Service, vs *verify.Service, ds *devices.Service, ot *onetouch.Service,
	pw *passwordless.Service, pk *passkeys.Service, rc *recovery.Service, cb *callback.Dispatcher, router *deliver.Router, publicURL string, signin signinConfig, onRoute func(string), log *slog.Logger) http.Handler {
	factors := console.NewFactors(console.Services{
		EnsureConsole: in.apps.EnsureConsole, CreateCustomUser: in.store.CreateCustomUser, ListDevices: in.store.ListDevices,
		Enroll: vs.Enroll, Check: vs.Check, RegistrationToken: ds.RegistrationToken,
		CreateApproval: ot.Create, GetApproval: ot.Get, GetAuthenticator: in.store.GetAuthenticator,
	}, in.now)
	deps := console.Deps{
		Operators: operators.New(in.store, in.now).WithHashing(signin.checks, operators.DefaultWait),
		Lookup:    in.store, Factors: factors,
		Apps: in.apps, Users: us, Devices: ds, Queries: in.store, Groups: ot,
		Callbacks: cb, EnrolmentQR: vs, StepClients: stepClients(in), Passwordless: pw,
		Twilio: in.apps, Passkeys: pk, RecoveryCodes: rc,
	}
	if in.audit != nil {
		deps.Audit = in.audit
	}
	defaults := console.Defaults{Limits: vs.ServerLimits(), Providers: map[twofold.Channel]string{}}
	for _, ch := range []twofold.Channel{twofold.SMS, twofold.Call, twofold.Email} {
		defaults.Providers[ch] = router.Default(ch)
	}
	return console.New(deps, console.Config{PublicURL: publicURL, Now: in.now, Log: log,
		SignInPerAddress: signin.perAddress, SignInPerAccount: signin.perAccount, TrustedProxies: signin.proxies, OnRoute: onRoute,
		Defaults: defaults})
}

// signinConfig bounds the console's password sign-in.
type signinConfig struct {
	perAddress, perAccount twofold.Limit
	checks                 int                // password checks at once
	proxies                clientaddr.Proxies // trusted for X-Forwarded-For
}

func signinFlags(f *pflag.FlagSet) {
	f.String("signin-limit-address", "20/1m", "console sign-ins per client address, N/DURATION or off")
	f.String("signin-limit-account", "10/1m", "console sign-ins per email typed, an operator's or not, N/DURATION or off")
	f.Int("signin-checks", operators.DefaultSlots(), "console passwords checked at once (argon2id, 64 MiB and 2 cores each); a sign-in that finds none free within a second gets 429; default half the CPUs, at most 4")
}

func parseSigninFlags(f *pflag.FlagSet) (signinConfig, error) {
	var c signinConfig
	var err error
	if c.perAddress, err = parseLimit(mustString(f, "signin-limit-address")); err != nil {
		return c, fmt.Errorf("%s: %w", source(f, "signin-limit-address"), err)
	}
	if c.perAccount, err = parseLimit(mustString(f, "signin-limit-account")); err != nil {
		return c, fmt.Errorf("%s: %w", source(f, "signin-limit-account"), err)
	}
	if c.checks, _ = f.GetInt("signin-checks"); c.checks < 1 || c.checks > 1024 {
		return c, fmt.Errorf("%s must be 1 to 1024, not %d", source(f, "signin-checks"), c.checks)
	}
	c.proxies, err = trustedProxies(f)
	return c, err
}

// trustedProxies reads --trusted-proxies: whose X-Forwarded-For says the client's address,
// wherever a limit or a page needs it.
func trustedProxies(f *pflag.FlagSet) (clientaddr.Proxies, error) {
	p, err := clientaddr.ParseProxies(mustString(f, "trusted-proxies"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source(f, "trusted-proxies"), err)
	}
	return p, nil
}
