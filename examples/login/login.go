package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/client"
)

const (
	minPassword     = 10
	maxPassword     = 200
	approvalTTL     = 120 // seconds a OneTouch request may wait for an answer
	pollTwofoldEach = 3 * time.Second
)

func (s *server) signupPage(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.ensure(w, r)
	if sess.Stage == loggedIn {
		redirect(w, r, "/protected")
		return
	}
	s.render(w, http.StatusOK, "signup", sess, view{TwoFactor: true, CountryCode: "1"})
}

func (s *server) signup(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	v := view{
		Email:       strings.ToLower(strings.TrimSpace(r.PostFormValue("email"))),
		Phone:       strings.TrimSpace(r.PostFormValue("phone")),
		CountryCode: strings.TrimPrefix(strings.TrimSpace(r.PostFormValue("country_code")), "+"),
		TwoFactor:   r.PostFormValue("two_factor") == "on",
	}
	password := r.PostFormValue("password")
	fail := func(status int, problem string) {
		v.Problem = problem
		s.render(w, status, "signup", sess, v)
	}
	if problem := checkSignup(v, password); problem != "" {
		fail(http.StatusBadRequest, problem)
		return
	}
	if _, taken := s.users.byEmailAddr(v.Email); taken {
		fail(http.StatusConflict, "An account with this email already exists. Log in instead.")
		return
	}
	hash, err := hashPassword(password)
	if err != nil {
		s.log.Error("hash password", "err", err)
		fail(http.StatusInternalServerError, "Something went wrong. Try again.")
		return
	}
	u := user{Email: v.Email, PasswordHash: hash, Phone: v.Phone, CountryCode: v.CountryCode, CreatedAt: s.now()}
	if v.TwoFactor {
		// Twofold: register the user (email and phone) and keep their Authy id.
		id, err := s.tf.RegisterUser(r.Context(), client.NewUser{Email: u.Email, Phone: u.Phone, CountryCode: u.CountryCode})
		if err != nil {
			s.log.Warn("twofold: register user", "err", err)
			fail(registerProblem(err))
			return
		}
		u.AuthyID = id
	}
	u, err = s.users.create(u)
	switch {
	case errors.Is(err, errEmailTaken):
		fail(http.StatusConflict, "An account with this email already exists. Log in instead.")
		return
	case errors.Is(err, errPhoneTaken):
		// Said as a number Twofold refused is said: whether a number has an account here is
		// its owner's business, not that of whoever types it.
		s.log.Info("sign-up refused: the phone number is another account's")
		fail(http.StatusBadRequest, phoneRefused)
		return
	}
	s.log.Info("signed up", "user", u.ID, "two_factor", u.AuthyID != 0)
	next := session{Stage: loggedIn, UserID: u.ID, Method: "a new account (signed up just now)", Flash: "Welcome! Your account is ready."}
	if u.AuthyID != 0 {
		s.giveRecoveryCodes(r.Context(), &next, u.AuthyID)
	}
	s.sessions.rotate(w, sess.ID, next)
	if len(next.RecoveryCodes) > 0 {
		redirect(w, r, recoveryCodesPath)
		return
	}
	redirect(w, r, "/profile")
}

// checkSignup returns what is wrong with a sign-up form, or "".
func checkSignup(v view, password string) string {
	switch {
	case !emailLike(v.Email):
		return "Enter a valid email address, like ada@example.com."
	case utf8.RuneCountInString(password) < minPassword:
		return fmt.Sprintf("Choose a password of at least %d characters.", minPassword)
	case len(password) > maxPassword:
		return fmt.Sprintf("Choose a password of at most %d characters.", maxPassword)
	case !phoneLike(v.Phone):
		return "Enter your phone number, like 201-555-0123."
	case !countryCodeLike(v.CountryCode):
		return "Enter the country calling code of your phone, like 1 or 44."
	}
	return ""
}

// emailLike reports whether e is a bare email address (lower case is the caller's business).
func emailLike(e string) bool {
	addr, err := mail.ParseAddress(e)
	return err == nil && addr.Address == e && len(e) <= 254
}

func countryCodeLike(c string) bool {
	return c != "" && len(c) <= 4 && strings.Trim(c, "0123456789") == ""
}

func phoneLike(p string) bool {
	digits := 0
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune(" -().", c):
		default:
			return false
		}
	}
	return digits >= 4 && digits <= 15
}

// phoneRefused is what a phone number that cannot be used for two-factor authentication gets,
// whether Twofold refused it or another account has it: the two must read alike.
const phoneRefused = "This phone number cannot be used for two-factor authentication. Check the number and its country code, or use another one."

// registerProblem says why two-factor registration failed, without Twofold's own words, with
// the status of the page: the number's fault, or Twofold's.
func registerProblem(err error) (int, string) {
	var e *client.Error
	if errors.As(err, &e) && e.HTTPStatus >= 400 && e.HTTPStatus < 500 && e.Code != client.CodeInvalidAPIKey && e.Code != client.CodeRateLimited {
		return http.StatusBadRequest, phoneRefused
	}
	return http.StatusBadGateway, "Two-factor authentication is not available right now. Try again in a moment, or sign up without it."
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.ensure(w, r)
	if sess.Stage == loggedIn {
		redirect(w, r, "/protected")
		return
	}
	// After a sign-in with the phone that did not sign them in, the email they typed.
	s.render(w, http.StatusOK, "login", sess, view{Email: sess.LoginEmail, PasskeySignIn: s.passwordlessPasskeys(r.Context())})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	password := r.PostFormValue("password")
	v := view{Email: email}
	now := s.now()
	if wait, blocked := s.attempts.blocked(email, now); blocked {
		s.log.Warn("log-in refused: too many failures", "email", email)
		v.Problem = fmt.Sprintf("Too many failed attempts for this account. Try again in %d minutes.", int(math.Ceil(wait.Minutes())))
		s.render(w, http.StatusTooManyRequests, "login", sess, v)
		return
	}
	u, found := s.users.byEmailAddr(email)
	hash := dummyHash
	if found {
		hash = u.PasswordHash
	}
	if !checkPassword(hash, password) || !found || len(password) > maxPassword {
		s.attempts.fail(email, now)
		v.Problem = "Wrong email or password."
		s.render(w, http.StatusUnauthorized, "login", sess, v)
		return
	}
	s.attempts.reset(email)

	if u.AuthyID == 0 {
		s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: u.ID, Method: "your password only (two-factor authentication is off)"})
		redirect(w, r, "/protected")
		return
	}
	// The password was right: the session is half logged in, under a new id.
	half := session{Stage: pending2FA, UserID: u.ID}
	if err := s.startSecondStep(r, u, &half); err != nil {
		s.log.Warn("twofold: cannot start the second step", "user", u.ID, "err", err)
		v.Problem = "We could not start the second step of your log-in. Try again in a moment."
		s.render(w, http.StatusBadGateway, "login", sess, v)
		return
	}
	half = s.sessions.rotate(w, sess.ID, half)
	redirect(w, r, secondStepPath(half))
}

// startSecondStep asks the user's authenticator app for approval when they have one (OneTouch),
// and otherwise sends a code by SMS. It fills in the session's second step. An error means that
// nothing could be started and the user must not get in.
func (s *server) startSecondStep(r *http.Request, u user, sess *session) error {
	ctx := r.Context()
	// Twofold: which devices does the user have?
	st, err := s.tf.UserStatus(ctx, u.AuthyID)
	if err != nil {
		return fmt.Errorf("user status: %w", err)
	}
	// A user without any authenticator (one imported from Authy whose Authy app's seeds could not
	// come along, or one who never added it) is asked to add one once the code is right.
	sess.OfferApp = !hasAuthenticator(st) && u.AskedToAddApp.IsZero()
	// Twofold: has the user passkeys? Then "Use a passkey" is offered beside the app and the code.
	if keys, failed := s.userPasskeys(ctx, u); !failed && len(keys) > 0 {
		sess.HasPasskeys, sess.OfferApp = true, false
	}
	if st.CanApprove() {
		appName := "the sample"
		if app, err := s.twofoldApp(ctx); err == nil {
			appName = app.Name
		}
		// Twofold: a OneTouch approval request; the answer comes to /authy/callback.
		a, err := s.tf.CreateApprovalRequest(ctx, u.AuthyID, client.ApprovalRequest{
			Message: "Log in to " + appName,
			Details: map[string]string{
				"Email":   u.Email,
				"IP":      clientIP(r),
				"Browser": browserSummary(r.UserAgent()),
			},
			HiddenDetails:   map[string]string{"user_id": u.ID},
			SecondsToExpire: approvalTTL,
		})
		if err == nil {
			s.approvals.add(a.UUID, approval{UserID: u.ID, AuthyID: u.AuthyID, Status: "pending", Created: s.now()})
			sess.ApprovalUUID, sess.Number = a.UUID, a.Number
			return nil
		}
		s.log.Warn("twofold: approval request failed; sending a code instead", "user", u.ID, "err", err)
		sess.Flash = "Your authenticator app could not be reached."
	}
	s.sendSMS(ctx, u, sess, false)
	return nil
}

// sendSMS sends a code by SMS (force: even when the user has an app) and prepares the code page.
func (s *server) sendSMS(ctx context.Context, u user, sess *session, force bool) {
	// Twofold: send a code by SMS.
	sent, err := s.tf.RequestSMS(ctx, u.AuthyID, client.SendOptions{Force: force})
	sess.Resent = sess.CodeVia != "" && sess.SendProblem == ""
	sess.CodeVia, sess.SendProblem = "sms", ""
	switch {
	case err != nil:
		sess.SendProblem = sendProblem(s, err, "the SMS")
	case sent.Ignored:
		sess.CodeVia = "app"
	}
}

// leaveApproval ends the wait for the session's OneTouch request, which the log-in goes on
// without (a code instead, or the log-in cancelled), and closes the request: otherwise it would
// wait on the user's phone until it expired, and could still be approved there, for nothing.
func (s *server) leaveApproval(ctx context.Context, sess *session) {
	uuid := sess.ApprovalUUID
	sess.ApprovalUUID, sess.Number = "", ""
	if uuid == "" {
		return
	}
	// Twofold: close the approval request (Twofold's addition to the Authy API); its devices drop it.
	_, err := s.tf.CloseApprovalRequest(ctx, uuid)
	switch {
	case err == nil:
		s.approvals.settle(uuid, "expired", "closed")
	case client.IsCode(err, client.CodeNotPending): // answered meanwhile: the answer goes unused
	default: // it expires on its own
		s.log.Warn("twofold: close approval request", "uuid", uuid, "err", err)
	}
}

func sendProblem(s *server, err error, what string) string {
	s.log.Warn("twofold: sending a code", "what", what, "err", err)
	var e *client.Error
	if errors.As(err, &e) && e.Code == client.CodeRateLimited {
		return "Too many codes were sent. Use the last one you received, or try again " + retryText(e.RetryAfter) + "."
	}
	return "We could not send " + what + ". Try again, or choose another way below."
}

func retryText(d time.Duration) string {
	switch {
	case d <= 0:
		return "in a few minutes"
	case d < time.Minute:
		return fmt.Sprintf("in %d seconds", int(d.Seconds()))
	}
	return fmt.Sprintf("in %d minutes", int(math.Ceil(d.Minutes())))
}

func (s *server) waitPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.need(w, r, pending2FA)
	if !ok {
		return
	}
	if sess.ApprovalUUID == "" {
		redirect(w, r, "/login/code")
		return
	}
	a, _ := s.approvals.get(sess.ApprovalUUID)
	s.render(w, http.StatusOK, "wait", sess, view{Number: sess.Number, Expired: a.Status == "expired", PasskeySignIn: sess.HasPasskeys})
}

// waitStatus is what the wait page polls: the request's state, from the callback or, failing
// that, from Twofold.
func (s *server) waitStatus(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	if !ok || sess.Stage != pending2FA || sess.ApprovalUUID == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "gone"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": s.approvalStatus(r.Context(), sess, false)})
}

// approvalStatus returns the state of the session's request. The callback normally brings the
// answer; Twofold is asked too (every few seconds, or at once with now) in case the callback
// cannot reach this sample.
func (s *server) approvalStatus(ctx context.Context, sess session, now bool) string {
	a, ok := s.approvals.get(sess.ApprovalUUID)
	if !ok || a.UserID != sess.UserID {
		return "expired"
	}
	if a.Status == "pending" && (now || s.approvals.due(sess.ApprovalUUID, s.now(), pollTwofoldEach)) {
		// Twofold: read the approval request.
		got, err := s.tf.ApprovalRequest(ctx, sess.ApprovalUUID)
		switch {
		case err != nil:
			s.log.Warn("twofold: read approval request", "uuid", sess.ApprovalUUID, "err", err)
		case got.Status == "approved" || got.Status == "denied" || got.Status == "expired":
			a, _ = s.approvals.settle(sess.ApprovalUUID, got.Status, "poll")
		}
	}
	return a.Status
}

// waitFinish ends the wait: the page posts here when the poll sees an answer (or the user
// presses Continue without JavaScript).
func (s *server) waitFinish(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	if sess.Stage != pending2FA || sess.ApprovalUUID == "" {
		redirect(w, r, "/")
		return
	}
	switch status := s.approvalStatus(r.Context(), sess, true); status {
	case "approved":
		a, _ := s.approvals.get(sess.ApprovalUUID)
		s.log.Info("logged in with OneTouch", "user", sess.UserID, "answer_via", a.Via)
		s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: sess.UserID,
			Method: "approval in your authenticator app (OneTouch)"})
		redirect(w, r, "/protected")
	case "denied":
		s.log.Info("log-in refused on the device", "user", sess.UserID)
		s.sessions.destroy(w, sess.ID)
		redirect(w, r, "/login/refused")
	default: // pending, or expired: the wait page says which
		if status == "pending" {
			sess.Flash = "Not approved yet."
			s.sessions.save(sess)
		}
		redirect(w, r, "/login/wait")
	}
}

func (s *server) refusedPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "refused", s.sessions.ensure(w, r), view{})
}

func (s *server) codePage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.need(w, r, pending2FA)
	if !ok {
		return
	}
	if sess.ApprovalUUID != "" {
		redirect(w, r, "/login/wait")
		return
	}
	s.render(w, http.StatusOK, "code", sess, s.codeView(sess))
}

// codeView is what the code page says: how the code came, to which phone, or why it did not.
func (s *server) codeView(sess session) view {
	v := view{CodeVia: sess.CodeVia, Resent: sess.Resent, SendProblem: sess.SendProblem, PasskeySignIn: sess.HasPasskeys}
	if u, ok := s.users.get(sess.UserID); ok {
		v.MaskedPhone = maskPhone(u.CountryCode, u.Phone)
	}
	return v
}

// sendCode sends a new code by SMS (/login/sms) or a voice call (/login/call), even when the
// user has the app: the "Send me a code instead", "Resend code" and "Call me instead" buttons.
func (s *server) sendCode(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != pending2FA || !found || u.AuthyID == 0 {
		redirect(w, r, "/")
		return
	}
	s.leaveApproval(r.Context(), &sess)
	if strings.HasSuffix(r.URL.Path, "/call") {
		// Twofold: call the user, who hears the code.
		_, err := s.tf.RequestCall(r.Context(), u.AuthyID, client.SendOptions{Force: true})
		sess.Resent = sess.CodeVia == "call" && sess.SendProblem == ""
		sess.CodeVia, sess.SendProblem = "call", ""
		if err != nil {
			sess.SendProblem = sendProblem(s, err, "the call")
		}
	} else {
		s.sendSMS(r.Context(), u, &sess, true)
	}
	s.sessions.save(sess)
	redirect(w, r, "/login/code")
}

func (s *server) checkCode(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != pending2FA || !found || u.AuthyID == 0 {
		redirect(w, r, "/")
		return
	}
	v := s.codeView(sess)
	code := strings.Map(func(c rune) rune {
		if c == ' ' || c == '-' {
			return -1
		}
		return c
	}, r.PostFormValue("code"))
	if code == "" || len(code) > 12 || strings.Trim(code, "0123456789") != "" {
		v.Problem = "Type the digits of your code."
		s.render(w, http.StatusBadRequest, "code", sess, v)
		return
	}
	// Twofold: check the code (force: even if the user never confirmed their phone).
	err := s.tf.Verify(r.Context(), u.AuthyID, code, client.VerifyOptions{Force: true})
	if err != nil {
		status, problem := verifyProblem(err)
		s.log.Info("code refused", "user", u.ID, "err", err)
		v.Problem = problem
		s.render(w, status, "code", sess, v)
		return
	}
	how := map[string]string{
		"sms":  "a code sent to your phone by SMS",
		"call": "a code read out in a phone call",
		"app":  "a code from your authenticator app",
	}[sess.CodeVia]
	s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: u.ID, Method: cmpOr(how, "a one-time code")})
	if sess.OfferApp && u.AskedToAddApp.IsZero() {
		redirect(w, r, addAppPath)
		return
	}
	redirect(w, r, "/protected")
}

// hasAuthenticator reports whether users/{id}/status shows a way to log in besides codes by SMS
// or voice: an authenticator app (Authy's app, or in Twofold a device or a TOTP authenticator),
// or a hardware token. Authy's answers did not always agree with themselves (a device in
// detailed_devices with registered false), so any sign of one counts.
func hasAuthenticator(st client.UserStatus) bool {
	if st.Registered || st.HasHardToken || len(st.DetailedDevices) > 0 {
		return true
	}
	for _, d := range st.Devices {
		if d != "" && d != "sms" {
			return true
		}
	}
	return false
}

// verifyProblem turns a Verify error into the status and words of the code page.
func verifyProblem(err error) (int, string) {
	var e *client.Error
	if !errors.As(err, &e) {
		return http.StatusBadGateway, "We could not check your code just now. Try again in a moment."
	}
	switch e.Code {
	case client.CodeTokenInvalid: // 60020
		return http.StatusUnauthorized, "That code is wrong or has expired. Check it and try again, or send a new one."
	case client.CodeTokenReused: // 60019
		return http.StatusUnauthorized, "That code was already used. Send a new one."
	case client.CodeRateLimited: // 60003
		return http.StatusTooManyRequests, "Too many tries. Wait, then try again " + retryText(e.RetryAfter) + "."
	}
	return http.StatusBadGateway, "We could not check your code just now. Try again in a moment."
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	s.sessions.destroy(w, sess.ID)
	notice := "You are logged out."
	if sess.Stage == pending2FA {
		notice = "Log-in cancelled."
		s.leaveApproval(r.Context(), &sess)
	}
	s.sessions.start(w, session{Flash: notice})
	redirect(w, r, "/login")
}

func (s *server) protectedPage(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.needUser(w, r)
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "protected", sess, view{Email: u.Email, Method: sess.Method, TwoFactor: u.AuthyID != 0})
}

// clientIP is the peer's address. Behind a reverse proxy, use the address it reports instead,
// from a header only that proxy can set.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
