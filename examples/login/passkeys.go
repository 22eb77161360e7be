package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/client"
)

// Passkeys. Twofold is the relying party's verifier: this sample asks it for a ceremony's
// options, hands them to the browser (static/app.js: PublicKeyCredential.parse…OptionsFromJSON,
// then navigator.credentials), and sends the browser's answer (PublicKeyCredential.toJSON()) back
// to Twofold, which checks the challenge, the origin, the rp id, the signature and the counter.
// The ceremony's id never leaves this server: it is kept in the session that began it, so an
// answer is only ever finished for the browser that was asked.
//
// Three ceremonies, each a pair of JSON calls from the page:
//   - on the profile, "Add a passkey": /profile/passkeys/begin and /finish (logged in);
//   - on the login page, "Sign in with a passkey", usernameless: /login/passkey/begin and /finish
//     from an anonymous session, when the Twofold application allows passwordless sign-in;
//   - at the second step, "Use a passkey": the same two calls from a half-logged-in session, for
//     that user's passkeys only.

const (
	passkeyLoginPath   = "/login/passkey"
	passkeyProfilePath = "/profile/passkeys"
	maxPasskeyName     = 64
	maxCredentialJSON  = 32 << 10 // a credential's JSON is a few kilobytes at most
)

// ceremony kinds, kept in the session with the ceremony's id.
const (
	ceremonyRegister     = "register"
	ceremonySecondFactor = "second-factor"
	ceremonyPasswordless = "passwordless"
)

// passkeyAnswer is what the page's script gets from a begin or finish call.
type passkeyAnswer struct {
	Options json.RawMessage `json:"options,omitempty"` // begin: {"publicKey": {...}}
	Next    string          `json:"next,omitempty"`    // finish: where to go now
	Problem string          `json:"problem,omitempty"` // what to tell the user
}

// passkeysOn reports whether the Twofold application has passkeys (a relying party id).
func (s *server) passkeysOn(ctx context.Context) bool {
	on, _ := s.passkeyModes.get(ctx, s.pk, s.now())
	return on
}

// passwordlessPasskeys reports whether the login page offers "Sign in with a passkey": the
// Twofold application allows sign-in with a passkey alone (usernameless).
func (s *server) passwordlessPasskeys(ctx context.Context) bool {
	_, usernameless := s.passkeyModes.get(ctx, s.pk, s.now())
	return usernameless
}

// jsonForm reads a POST from the page's script: a form with the CSRF token, answered in JSON.
func (s *server) jsonForm(w http.ResponseWriter, r *http.Request) (session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxCredentialJSON+4<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, passkeyAnswer{Problem: "That request was not understood. Reload the page and try again."})
		return session{}, false
	}
	sess, ok := s.sessions.load(r)
	if !ok || !validCSRF(sess, r) {
		writeJSON(w, http.StatusForbidden, passkeyAnswer{Problem: "This page has expired. Reload it and try again."})
		return session{}, false
	}
	return sess, true
}

// credentialField returns the form's credential, the browser's PublicKeyCredential.toJSON(), if
// it is a JSON object of a sane size. What is in it is Twofold's to judge.
func credentialField(r *http.Request) (json.RawMessage, bool) {
	c := strings.TrimSpace(r.PostFormValue("credential"))
	if c == "" || len(c) > maxCredentialJSON || !json.Valid([]byte(c)) || c[0] != '{' {
		return nil, false
	}
	return json.RawMessage(c), true
}

// passkeyName is the name typed for a new passkey, or a default.
func passkeyName(r *http.Request) (string, bool) {
	name := strings.Join(strings.Fields(r.PostFormValue("name")), " ")
	if name == "" {
		name = browserSummary(r.UserAgent())
	}
	return name, utf8.RuneCountInString(name) <= maxPasskeyName && utf8.ValidString(name)
}

// passkeyRegisterBegin starts "Add a passkey" on the profile.
func (s *server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.jsonForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != loggedIn || !found || u.AuthyID == 0 || !s.passkeysOn(r.Context()) {
		writeJSON(w, http.StatusForbidden, passkeyAnswer{Problem: "Turn on two-factor authentication first."})
		return
	}
	name, ok := passkeyName(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, passkeyAnswer{Problem: "Give the passkey a shorter name (at most 64 characters)."})
		return
	}
	// Twofold: begin a registration for this user; the options go to the browser, the id stays here.
	c, err := s.pk.BeginPasskeyRegistration(r.Context(), u.AuthyID, name)
	if err != nil {
		s.log.Warn("twofold: begin passkey registration", "user", u.ID, "err", err)
		writeJSON(w, http.StatusBadGateway, passkeyAnswer{Problem: "Passkeys are not available right now. Try again in a moment."})
		return
	}
	sess.PasskeyCeremony, sess.PasskeyKind, sess.PasskeyName = c.ID, ceremonyRegister, name
	s.sessions.save(sess)
	writeJSON(w, http.StatusOK, passkeyAnswer{Options: c.Options})
}

// passkeyRegisterFinish sends the browser's new credential to Twofold.
func (s *server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.jsonForm(w, r)
	if !ok {
		return
	}
	ceremony, kind, name := sess.PasskeyCeremony, sess.PasskeyKind, sess.PasskeyName
	// A ceremony is finished once, right or wrong: the next try begins anew.
	sess.PasskeyCeremony, sess.PasskeyKind, sess.PasskeyName = "", "", ""
	s.sessions.save(sess)
	u, found := s.users.get(sess.UserID)
	cred, okCred := credentialField(r)
	if sess.Stage != loggedIn || !found || u.AuthyID == 0 || kind != ceremonyRegister || ceremony == "" || !okCred {
		writeJSON(w, http.StatusBadRequest, passkeyAnswer{Problem: "The passkey was not added. Try again."})
		return
	}
	// Twofold: verify the new credential and keep it as one of the user's passkeys.
	pk, err := s.pk.FinishPasskeyRegistration(r.Context(), u.AuthyID, ceremony, cred, name)
	if err != nil {
		s.log.Info("twofold: passkey registration refused", "user", u.ID, "err", err)
		writeJSON(w, passkeyStatus(err), passkeyAnswer{Problem: "The passkey was not added. Try again."})
		return
	}
	s.log.Info("passkey added", "user", u.ID, "passkey", pk.ID)
	sess.Flash = "Passkey “" + pk.Name + "” added. Use it to sign in."
	s.sessions.save(sess)
	writeJSON(w, http.StatusOK, passkeyAnswer{Next: "/profile"})
}

// passkeyDelete removes one of the user's passkeys, from the profile.
func (s *server) passkeyDelete(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != loggedIn || !found || u.AuthyID == 0 || !s.passkeysOn(r.Context()) {
		redirect(w, r, "/")
		return
	}
	// Twofold: delete the passkey; Twofold checks that it is this user's.
	if err := s.pk.DeletePasskey(r.Context(), u.AuthyID, r.PathValue("id")); err != nil {
		s.log.Warn("twofold: delete passkey", "user", u.ID, "err", err)
		sess.Problem = "The passkey could not be removed. Try again."
	} else {
		sess.Flash = "Passkey removed. Remove it from your device or password manager too."
	}
	s.sessions.save(sess)
	redirect(w, r, "/profile")
}

// passkeyLoginBegin starts a sign-in with a passkey: usernameless from the login page (an
// anonymous session), or for the user of a half-logged-in session at the second step.
func (s *server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.jsonForm(w, r)
	if !ok {
		return
	}
	var userID int64
	kind := ceremonyPasswordless
	switch sess.Stage {
	case pending2FA:
		u, found := s.users.get(sess.UserID)
		if !found || u.AuthyID == 0 || !s.passkeysOn(r.Context()) {
			writeJSON(w, http.StatusForbidden, passkeyAnswer{Problem: "Use another way to finish logging in."})
			return
		}
		userID, kind = u.AuthyID, ceremonySecondFactor
	case anonymous:
		if !s.passwordlessPasskeys(r.Context()) {
			writeJSON(w, http.StatusForbidden, passkeyAnswer{Problem: "Signing in with a passkey alone is not turned on here. Log in with your password."})
			return
		}
	default:
		writeJSON(w, http.StatusOK, passkeyAnswer{Next: "/protected"})
		return
	}
	// Twofold: begin a sign-in (userID 0: any of the application's passkeys, the browser picks).
	c, err := s.pk.BeginPasskeyLogin(r.Context(), userID)
	if err != nil {
		s.log.Warn("twofold: begin passkey login", "kind", kind, "err", err)
		writeJSON(w, http.StatusBadGateway, passkeyAnswer{Problem: "Passkeys are not available right now. Use another way."})
		return
	}
	sess.PasskeyCeremony, sess.PasskeyKind = c.ID, kind
	s.sessions.save(sess)
	writeJSON(w, http.StatusOK, passkeyAnswer{Options: c.Options})
}

// passkeyLoginFinish sends the browser's assertion to Twofold and, when Twofold verified it,
// logs the session in.
func (s *server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.jsonForm(w, r)
	if !ok {
		return
	}
	ceremony, kind := sess.PasskeyCeremony, sess.PasskeyKind
	sess.PasskeyCeremony, sess.PasskeyKind = "", ""
	s.sessions.save(sess)
	cred, okCred := credentialField(r)
	want := map[stage]string{anonymous: ceremonyPasswordless, pending2FA: ceremonySecondFactor}[sess.Stage]
	const refused = "That passkey did not sign you in. Try again, or use another way."
	if ceremony == "" || kind != want || !okCred {
		writeJSON(w, http.StatusBadRequest, passkeyAnswer{Problem: refused})
		return
	}
	// Twofold: verify the assertion (signature, challenge, origin, rp id, counter).
	got, err := s.pk.FinishPasskeyLogin(r.Context(), ceremony, cred)
	if err != nil {
		s.log.Info("twofold: passkey sign-in refused", "kind", kind, "err", err)
		writeJSON(w, passkeyStatus(err), passkeyAnswer{Problem: refused})
		return
	}
	var u user
	var found bool
	if kind == ceremonySecondFactor {
		u, found = s.users.get(sess.UserID)
		found = found && u.AuthyID == got.UserID // Twofold asked for this user's passkeys only
	} else {
		u, found = s.users.byAuthyID(got.UserID)
	}
	if !found {
		s.log.Warn("a passkey of another user, or of nobody here", "kind", kind, "twofold_user", got.UserID)
		writeJSON(w, http.StatusUnauthorized, passkeyAnswer{Problem: refused})
		return
	}
	method := "your password and a passkey (“" + got.Passkey.Name + "”)"
	if kind == ceremonyPasswordless {
		method = "a passkey (“" + got.Passkey.Name + "”), without a password"
	}
	if kind == ceremonySecondFactor {
		s.leaveApproval(r.Context(), &sess) // the push request waiting on the phone is not needed
	}
	s.log.Info("logged in with a passkey", "user", u.ID, "kind", kind, "user_verified", got.UserVerified)
	s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: u.ID, Method: method})
	writeJSON(w, http.StatusOK, passkeyAnswer{Next: "/protected"})
}

// passkeyStatus is the status of the page's answer when Twofold refused a credential: the
// user's (401), or Twofold's trouble (502).
func passkeyStatus(err error) int {
	var e *client.Error
	if errors.As(err, &e) && e.HTTPStatus >= 400 && e.HTTPStatus < 500 {
		if e.Code == client.CodeRateLimited {
			return http.StatusTooManyRequests
		}
		return http.StatusUnauthorized
	}
	return http.StatusBadGateway
}

// userPasskeys lists the user's passkeys for the profile; failed reports that Twofold did not say.
func (s *server) userPasskeys(ctx context.Context, u user) (list []client.Passkey, failed bool) {
	if u.AuthyID == 0 || !s.passkeysOn(ctx) {
		return nil, false
	}
	// Twofold: the user's passkeys.
	list, err := s.pk.Passkeys(ctx, u.AuthyID)
	if err != nil {
		s.log.Warn("twofold: passkeys", "user", u.ID, "err", err)
		return nil, true
	}
	return list, false
}
