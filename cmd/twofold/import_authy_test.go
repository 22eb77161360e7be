package main

import (
	"testing"

	"github.com/twofold-auth/twofold/internal/userimport/authyexport/authyexporttest"
)

// The CLI tests of from-authy read users from authyexporttest's stand-in for Authy's exports,
// in the words below.

const exportKey = authyexporttest.Key // an Authy-shaped key

// exportUser is a user of the Authy export server.
type exportUser struct {
	cc     any    // country_code as the source writes it: a number, or a string as Authy does
	phone  string // "" for a user without a phone
	secret string // "" for a user without an exportable seed (the Authy app's)
	otp    string
}

// authyExport is the stand-in server. What a test changes in limit, retryAfter, disabled and
// onRequest (in with) is the server's: limit is its map, the others are handed to it.
type authyExport struct {
	*authyexporttest.Server
	limit      map[string]int    // path → 429s still to answer before serving it
	retryAfter string            // the Retry-After of those 429s ("" for none)
	disabled   bool              // the migration tools are disabled: 60154
	onRequest  func(path string) // called with each request, before it is answered
}

func newAuthyExport(t *testing.T, users map[int64]exportUser) *authyExport {
	served := make(map[int64]authyexporttest.User, len(users))
	for id, u := range users {
		served[id] = authyexporttest.User{CountryCode: u.cc, Phone: u.phone, Secret: u.secret, OTP: u.otp}
	}
	s := authyexporttest.New(t, served)
	return &authyExport{Server: s, limit: s.Limit}
}

// with changes the server's behaviour while it serves.
func (a *authyExport) with(change func()) {
	a.With(func() {
		change()
		a.RetryAfter, a.Disabled, a.OnRequest = a.retryAfter, a.disabled, a.onRequest
	})
}

func (a *authyExport) served(path string) int { return a.Served(path) }
