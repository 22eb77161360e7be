package console_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// A user who reported a passwordless request they did not make is shown blocked on their page,
// until when; once the block ends, or for another user, nothing is said.
func TestUserPageShowsPasswordlessBlock(t *testing.T) {
	f := newFixture(t, console.Config{})
	ctx := t.Context()
	pw := passwordless.New(f.st, f.ot, passwordless.DefaultConfig(), f.clock.Now)
	f.deps.Passwordless = pw
	f.h = console.New(f.deps, f.cfg)
	b := f.signedIn()
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	ada := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	bob := twofold.User{AppID: a.ID, Email: "bob@example.com", CountryCode: 1, Phone: "2015550199", CreatedAt: f.clock.Now()}
	for _, u := range []*twofold.User{&ada, &bob} {
		if _, err := f.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	token, _, err := f.devices.RegistrationToken(ctx, a.ID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := f.registerDevice(token)
	s, err := pw.Begin(ctx, a, passwordless.Start{Email: "ada@example.com", UserIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(s.UUID, twofold.Denied, ts, "", onetouch.NotRequestedReason))
	sig, _ := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	if _, err := f.ot.Answer(ctx, p.dev, s.UUID, onetouch.Answer{Status: twofold.Denied, Timestamp: ts,
		Signature: base64.StdEncoding.EncodeToString(sig), Reason: onetouch.NotRequestedReason}); err != nil {
		t.Fatal(err)
	}

	users := "/console/apps/" + itoa(a.ID) + "/users/"
	until := f.clock.Now().Add(time.Hour).UTC()
	b.get(users + itoa(ada.ID))
	b.contains(`id="passwordless-blocked"`, "Passwordless sign-in blocked until", `datetime="`+until.Format(time.RFC3339)+`"`,
		"the user reported a request they did not make")
	b.get(users + itoa(bob.ID))
	b.lacks("passwordless-blocked")
	f.clock.Advance(time.Hour)
	b.get(users + itoa(ada.ID))
	b.lacks("passwordless-blocked")
}
