package main

import (
	"fmt"
	"log/slog"
	"net/url"

	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/egress"
)

// egressGuards builds the guards that pushes and callbacks connect through, from
// --push-allow-hosts and --callback-allow-hosts.
func egressGuards(f *pflag.FlagSet, env Env, log *slog.Logger) (pushes, callbacks *egress.Guard, err error) {
	pushAllow, err := egress.ParseAllowlist(mustString(f, "push-allow-hosts"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source(f, "push-allow-hosts"), err)
	}
	cbAllow, err := egress.ParseAllowlist(mustString(f, "callback-allow-hosts"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", source(f, "callback-allow-hosts"), err)
	}
	if !pushAllow.Empty() {
		log.Info("push endpoints may reach private addresses on these hosts", "hosts", pushAllow.String())
	}
	if !cbAllow.Empty() {
		log.Info("callbacks may reach private addresses on these hosts", "hosts", cbAllow.String())
	}
	for _, name := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if env.Getenv(name) != "" {
			log.Warn("pushes and callbacks connect directly, not through the proxy in the environment: a proxy would reach addresses the guard refuses", "variable", name)
			break
		}
	}
	return egress.New(pushAllow, env.Resolver), egress.New(cbAllow, env.Resolver), nil
}

// portOf is u's port, or its scheme's default.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}
