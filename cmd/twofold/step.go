package main

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/auth0"
	"github.com/twofold-auth/twofold/internal/clientaddr"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// stepFlags adds the hosted step's flags to serve.
func stepFlags(f *pflag.FlagSet) {
	f.String("jwks-allow-hosts", "", "hosts (host or host:port, comma-separated) the hosted step may fetch key sets from although they are or resolve to loopback, private or link-local addresses: step clients' JWKS URLs (private_key_jwt, signed requests) and their identity providers' (id_token_hint); default: none")
}

// hostedStep adds the hosted second-factor step to the server: its OpenID provider
// (discovery, JWKS, authorize, token), the Auth0 Actions redirect (/auth0/CLIENT_ID) and the
// page users pass it on (/step/). The provider
// needs a stable issuer, the URL relying parties reach the server at: --public-url, or, for a
// server listening on this machine only, its listen address. Without one it stays off, and
// says so.
func hostedStep(routes routeMux, f *pflag.FlagSet, env Env, in *instance, vs *verify.Service, ot *onetouch.Service, pw *passwordless.Service,
	pks *passkeys.Service, proxies clientaddr.Proxies, log *slog.Logger) error {
	allow, err := egress.ParseAllowlist(mustString(f, "jwks-allow-hosts"))
	if err != nil {
		return fmt.Errorf("--jwks-allow-hosts: %w", err)
	}
	if !allow.Empty() {
		log.Info("the hosted step may fetch key sets from private addresses on these hosts", "hosts", allow.String())
	}
	steps := hostedstep.NewSteps(in.store, in.keys, vs, ot, hostedstep.Config{}, in.now)
	steps.SetPasswordless(pw) // for the clients that allow passwordless sign-in
	clients := hostedstep.NewClients(in.store, in.keys, in.now)
	clients.SetAuditor(in.audit)
	finishers := map[string]step.Finisher{}

	issuer, why := stepIssuer(mustString(f, "public-url"), mustString(f, "addr"))
	if issuer != "" {
		// Passkeys, for users whose application's rp id reaches the step's pages (at the
		// issuer: hostedstep's passkeys.go says when).
		steps.SetPasskeys(stepPasskeys{pks}, issuer)
	}
	if issuer == "" {
		log.Info("the hosted step's OpenID provider is off: " + why)
	} else {
		// Others' key sets are fetched through the egress guard: a client's JWKS URL cannot
		// make the server reach a private address unless the operator allows that host.
		keySets := oidc.NewKeySets(egress.New(allow, env.Resolver).Client(10*time.Second), in.now)
		p, err := oidc.New(oidc.Config{Issuer: issuer, Clients: clients, Steps: steps, Keys: signingkeys.New(in.store, in.keys, in.now),
			Remote: keySets, Marks: in.store, MACs: in.keys, Now: in.now, Log: log})
		if err != nil {
			return err
		}
		p.Routes(routes)
		finishers[oidc.Dialect] = p
		// Auth0 Actions send users to /auth0/CLIENT_ID; the token back names the same issuer.
		a0 := auth0.New(auth0.Config{Issuer: p.Issuer(), Clients: clients, Steps: steps, Marks: in.store, MACs: in.keys, Now: in.now, Log: log})
		a0.Routes(routes)
		finishers[auth0.Name] = a0
		log.Info("the hosted step's OpenID provider is on", "issuer", p.Issuer())
	}
	step.New(step.Config{Steps: steps, Finishers: finishers, MACs: in.keys, Proxies: proxies, Log: log}).Routes(routes)
	return nil
}

// stepIssuer is the OpenID provider's issuer: the public URL, else the listen address when it
// is on this machine only and its port is fixed (a development server). Otherwise it is "",
// with the reason. An issuer taken from requests' Host headers would let anyone choose what
// id tokens name.
func stepIssuer(publicURL, addr string) (issuer, why string) {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/"), ""
	}
	const set = "set --public-url (env TWOFOLD_PUBLIC_URL) to the URL relying parties reach this server at, the issuer their id tokens name"
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", set + " (the listen port is not fixed)"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", set + " (the server listens beyond this machine)"
	}
	return "http://" + net.JoinHostPort(host, port), ""
}
