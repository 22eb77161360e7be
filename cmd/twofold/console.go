package main

import (
	"log/slog"
	"net/http"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// consoleHandler is the operators' web console, mounted at /console/, over the server's own
// services: operators sign in with a password and a code or push from Twofold itself.
func consoleHandler(in *instance, us *users.Service, vs *verify.Service, ds *devices.Service, ot *onetouch.Service,
	publicURL string, onRoute func(string), log *slog.Logger) http.Handler {
	factors := console.NewFactors(console.Services{
		EnsureConsole: in.apps.EnsureConsole, CreateCustomUser: in.store.CreateCustomUser, ListDevices: in.store.ListDevices,
		Enroll: vs.Enroll, Check: vs.Check, RegistrationToken: ds.RegistrationToken,
		CreateApproval: ot.Create, GetApproval: ot.Get, GetAuthenticator: in.store.GetAuthenticator,
	}, in.now)
	deps := console.Deps{
		Operators: operators.New(in.store, in.now), Lookup: in.store, Factors: factors,
		Apps: in.apps, Users: us, Devices: ds, Queries: in.store,
	}
	if in.audit != nil {
		deps.Audit = in.audit
	}
	return console.New(deps, console.Config{PublicURL: publicURL, Now: in.now, Log: log, OnRoute: onRoute})
}
