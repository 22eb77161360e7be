package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/client"
)

// Recovery codes: when two-factor authentication is turned on, Twofold makes the user a set of
// single-use codes, shown once on a page the user must acknowledge; at the second step, "Use a
// recovery code" lets a user who lost their phone in.

const (
	recoveryCodesPath = "/profile/recovery-codes" // the codes, shown once
	recoveryPath      = "/login/recovery"         // the second step with a recovery code
)

// giveRecoveryCodes asks Twofold for a new set of the user's recovery codes and keeps them in
// the session only until the user says they saved them. The sample stores them nowhere else:
// Twofold keeps only their hashes, and nothing can show them again.
func (s *server) giveRecoveryCodes(ctx context.Context, sess *session, authyID int64) {
	// Twofold: make the user's recovery codes (10, the default); the old set stops working.
	set, err := s.tf.GenerateRecoveryCodes(ctx, authyID, 0)
	if err != nil {
		s.log.Warn("twofold: recovery codes", "err", err)
		return
	}
	sess.RecoveryCodes = set.Codes
}

// recoveryCodesPage shows the codes just made, once; the profile sends the user here until they
// acknowledge them.
func (s *server) recoveryCodesPage(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := s.needUser(w, r)
	if !ok {
		return
	}
	if len(sess.RecoveryCodes) == 0 {
		redirect(w, r, "/profile")
		return
	}
	s.render(w, http.StatusOK, "recovery-codes", sess, view{RecoveryCodes: sess.RecoveryCodes})
}

// recoveryCodesSaved is the acknowledgement: the codes leave the session for good.
func (s *server) recoveryCodesSaved(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	if sess.Stage != loggedIn {
		redirect(w, r, "/login")
		return
	}
	if len(sess.RecoveryCodes) > 0 && r.PostFormValue("saved") != "on" {
		s.render(w, http.StatusBadRequest, "recovery-codes", sess, view{RecoveryCodes: sess.RecoveryCodes,
			Problem: "Tick the box once you have saved your recovery codes: they will not be shown again."})
		return
	}
	sess.RecoveryCodes = nil
	sess.Flash = "Recovery codes saved. Keep them somewhere safe."
	s.sessions.save(sess)
	redirect(w, r, "/profile")
}

// recoveryPage is the second step's "Use a recovery code".
func (s *server) recoveryPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.need(w, r, pending2FA)
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "recovery", sess, view{})
}

// maxRecoveryInput bounds what is taken from the recovery code field.
const maxRecoveryInput = 40

func (s *server) checkRecoveryCode(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != pending2FA || !found || u.AuthyID == 0 {
		redirect(w, r, "/")
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	if code == "" || len(code) > maxRecoveryInput || strings.Trim(strings.ToLower(code), "0123456789abcdefghijklmnopqrstuvwxyz- ") != "" {
		s.render(w, http.StatusBadRequest, "recovery", sess, view{Problem: "Type one of your recovery codes, like k7m2-9xqp-4tfh."})
		return
	}
	// Twofold: check the recovery code; it is spent, and the answer says how many are left.
	res, err := s.tf.VerifyResult(r.Context(), u.AuthyID, code, client.VerifyOptions{Force: true})
	if err != nil {
		status, problem := recoveryProblem(err)
		s.log.Info("recovery code refused", "user", u.ID, "err", err)
		s.render(w, status, "recovery", sess, view{Problem: problem})
		return
	}
	s.leaveApproval(r.Context(), &sess) // the request still on the lost phone goes
	method, flash := "a one-time code", ""
	if res.Factor == client.FactorRecoveryCode {
		method = "a recovery code"
		flash = "You used a recovery code: " + strconv.Itoa(res.RecoveryCodesRemaining) +
			" left. If you lost your phone, set up two-factor authentication again in your profile."
	}
	s.log.Info("logged in", "user", u.ID, "with", method)
	s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: u.ID, Method: method, Flash: flash})
	redirect(w, r, "/protected")
}

// recoveryProblem turns a Verify error into the status and words of the recovery page.
func recoveryProblem(err error) (int, string) {
	var e *client.Error
	if errors.As(err, &e) {
		switch e.Code {
		case client.CodeTokenInvalid:
			return http.StatusUnauthorized, "That is not one of your recovery codes. Check it and try again."
		case client.CodeTokenReused:
			return http.StatusUnauthorized, "That recovery code was already used. Each works once: use another one."
		}
	}
	return verifyProblem(err)
}
