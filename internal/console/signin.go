package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Signing in takes two steps. The password (operators.SignIn, with its lockout) opens a short
// session that reaches only the second-factor pages; a code from the operator's authenticator,
// or a push approved on their device, turns it into a signed-in session. Each step gives a new
// session id.

type signinData struct {
	Email, Error string
	Locked       bool
}

func (c *console) signinForm(w http.ResponseWriter, r *http.Request) {
	if q := c.session(r); q != nil && q.sess.stage == stageFull {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, signinData{})
}

// renderSignin shows the sign-in form with a fresh CSRF token, given to the browser as a
// cookie too (there is no session yet to keep it in).
func (c *console) renderSignin(w http.ResponseWriter, r *http.Request, status int, d signinData) {
	token := randomToken()
	c.setCookie(w, r, signinCookie, token, int(halfMaxAge.Seconds()))
	c.render(w, r, status, "signin", &view{Title: "Sign in", CSRF: token, Data: d})
}

func (c *console) signin(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(signinCookie)
	form := r.PostFormValue("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		c.forbidden(w, r, "The sign-in form has expired. Reload the page and try again.")
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	if wait, ok := c.signinAllowed(r, email); !ok {
		c.refuseSignin(w, r, wait, signinData{Email: email,
			Error: "Too many sign-in attempts. Wait " + roundUp(wait) + " before trying again."})
		return
	}
	op, err := c.d.Operators.SignIn(r.Context(), email, r.PostFormValue("password"))
	wait := time.Minute // how long a refusal asks to wait, unless it says
	if refusal := (*operators.Refusal)(nil); errors.As(err, &refusal) {
		wait = refusal.Wait
	}
	switch {
	case errors.Is(err, operators.ErrBadCredentials):
		c.record(r.Context(), "console", twofold.AuditOperatorLoginFailed, map[string]string{"reason": "password"})
		c.renderSignin(w, r, http.StatusUnauthorized, signinData{Email: email, Error: "Wrong email or password."})
		return
	case errors.Is(err, operators.ErrLocked):
		c.record(r.Context(), "console", twofold.AuditOperatorLoginFailed, map[string]string{"reason": "locked"})
		c.refuseSignin(w, r, wait, signinData{Email: email, Locked: true,
			Error: "Sign-in to this account is locked after repeated wrong passwords. Try again in " + roundUp(wait) +
				", or have the password reset with: twofold admin password " + email})
		return
	case errors.Is(err, operators.ErrBusy):
		c.refuseSignin(w, r, wait, signinData{Email: email,
			Error: "The server is busy checking other sign-ins. Wait " + roundUp(wait) + " and try again."})
		return
	case accesslog.ClientGone(c.cfg.Log, r, r.Context().Err(), "surface", "console"):
		return // the browser has gone: logged once, at DEBUG
	case err != nil:
		c.fail(w, r, err)
		return
	}
	ctx := audit.WithActor(r.Context(), actor(op))
	totp, device, err := c.d.Factors.Enrolled(ctx, op)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !totp && !device {
		c.record(ctx, actor(op), twofold.AuditOperatorLoginFailed, map[string]string{"reason": "no_second_factor"})
		c.render(w, r, http.StatusForbidden, "message", &view{Title: "No second factor", Data: message{
			Heading: "Set up your second factor first",
			Text:    "Signing in to the console takes a code from your authenticator, or a push to Twofold's authenticator, and this account has neither. On the server, run:",
			Code:    "twofold admin enrol " + op.Email, Link: "/console/signin", LinkText: "Back to sign-in"}})
		return
	}
	old := ""
	if ck, err := r.Cookie(sessionCookie); err == nil {
		old = ck.Value
	}
	id, _ := c.sessions.start(old, op, stageFactor)
	c.setCookie(w, r, sessionCookie, id, 0)
	c.setCookie(w, r, signinCookie, "", -1)
	http.Redirect(w, r, "/console/signin/factor", http.StatusSeeOther)
}

type factorData struct {
	Email        string
	TOTP, Device bool
	Error        string
}

func (c *console) factorData(ctx context.Context, q *request, errText string) (factorData, error) {
	totp, device, err := c.d.Factors.Enrolled(ctx, q.sess.op)
	return factorData{Email: q.sess.op.Email, TOTP: totp, Device: device, Error: errText}, err
}

func (c *console) renderFactor(w http.ResponseWriter, r *http.Request, q *request, status int, errText string) {
	d, err := c.factorData(r.Context(), q, errText)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "factor", &view{Title: "Second factor", CSRF: q.sess.csrf, Data: d})
}

func (c *console) factorForm(w http.ResponseWriter, r *http.Request, q *request) {
	c.renderFactor(w, r, q, http.StatusOK, "")
}

// code checks a code from the operator's authenticator app or device.
func (c *console) code(w http.ResponseWriter, r *http.Request, q *request) {
	op := q.sess.op
	ctx := audit.WithActor(r.Context(), actor(op))
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, r.PostFormValue("code"))
	if code == "" {
		c.renderFactor(w, r, q, http.StatusUnprocessableEntity, "Enter the code your authenticator shows.")
		return
	}
	err := c.d.Factors.CheckCode(ctx, op, code)
	if err == nil {
		c.signedIn(w, r, q, "code")
		return
	}
	var te *twofold.Error
	if !errors.As(err, &te) {
		c.fail(w, r, err)
		return
	}
	c.record(ctx, actor(op), twofold.AuditOperatorLoginFailed, map[string]string{"reason": "code"})
	switch te.Code {
	case twofold.CodeRateLimited:
		wait := "a while"
		if te.RetryAfter > 0 {
			wait = roundUp(te.RetryAfter)
		}
		c.renderFactor(w, r, q, http.StatusTooManyRequests, "Too many wrong codes. Wait "+wait+" before trying again.")
	case twofold.CodeTokenReused:
		c.renderFactor(w, r, q, http.StatusUnauthorized, "That code was used already. Wait for the next one.")
	default:
		c.renderFactor(w, r, q, http.StatusUnauthorized, "That code is not right. Enter the one your authenticator shows now.")
	}
}

// signinAllowed counts a sign-in against the limits per client address and per account (the
// email as typed, in lower case, an operator's or not), and says how long to wait when over.
//
// These limits sit in front of the password check to keep one client, or a flood at one
// account, from taking this server's capacity: each check costs argon2id's memory and a core.
// They are kept in this process, not the store: they protect this server's resources, and a
// limit in the store would cost a database write per refused request, the very load they are
// there to stop. Behind a load balancer each server allows the limit, which scales with the
// capacity it protects. What must hold across servers, the number of guesses at a password, is
// the lockout, counted in the store (operators.Service.SignIn).
func (c *console) signinAllowed(r *http.Request, email string) (time.Duration, bool) {
	now := c.cfg.Now()
	address := c.cfg.TrustedProxies.Key(r).String()
	if ok, wait := c.perAddress.Take(address, now); !ok {
		return wait, false
	}
	account := sha256.Sum256([]byte(strings.ToLower(email))) // a key of fixed size, whatever was typed
	if ok, wait := c.perAccount.Take(string(account[:]), now); !ok {
		c.perAddress.GiveBack(address) // refused: it spends neither
		return wait, false
	}
	return 0, true
}

// refuseSignin answers a sign-in refused before its password was checked: 429, with the form
// again and Retry-After.
func (c *console) refuseSignin(w http.ResponseWriter, r *http.Request, wait time.Duration, d signinData) {
	w.Header().Set("Retry-After", strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1)))
	c.renderSignin(w, r, http.StatusTooManyRequests, d)
}

// roundUp says a duration in whole minutes (or seconds under a minute).
func roundUp(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	}
	m := int((d + time.Minute - 1) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// push asks the operator's device to approve this sign-in; the request says from where.
func (c *console) push(w http.ResponseWriter, r *http.Request, q *request) {
	op := q.sess.op
	ctx := audit.WithActor(r.Context(), actor(op))
	ip := r.RemoteAddr
	if a := c.cfg.TrustedProxies.Addr(r); a.IsValid() {
		ip = a.String()
	}
	details := map[string]string{"IP address": ip}
	if ua := r.UserAgent(); ua != "" {
		details["Browser"] = truncate(ua, 200)
	}
	req, err := c.d.Factors.Push(ctx, op, details)
	var te *twofold.Error
	switch {
	case errors.As(err, &te) && te.Code == twofold.CodeRateLimited:
		c.renderFactor(w, r, q, http.StatusTooManyRequests, "Too many sign-in requests are waiting on your device. Answer or let them expire, then try again.")
		return
	case errors.As(err, &te) && te.Code == twofold.CodeUnregisteredUser:
		c.renderFactor(w, r, q, http.StatusConflict, "No device is registered to approve sign-ins. Use a code instead.")
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.sessions.update(q.sid, func(s *session) { s.push, s.number = req.UUID, req.Number })
	http.Redirect(w, r, "/console/signin/push", http.StatusSeeOther)
}

// truncate cuts s to at most n bytes of valid UTF-8 (a header may hold any byte but NUL).
func truncate(s string, n int) string {
	return strings.ToValidUTF8(s[:min(len(s), n)], "")
}

type pushData struct {
	UUID, Number, Email, Error string
}

func (c *console) pushWait(w http.ResponseWriter, r *http.Request, q *request) {
	if q.sess.push == "" {
		http.Redirect(w, r, "/console/signin/factor", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "push", &view{Title: "Approve on your device", CSRF: q.sess.csrf,
		Data: pushData{UUID: q.sess.push, Number: q.sess.number, Email: q.sess.op.Email}})
}

// pushStatus answers the waiting page's polls: {"status": "pending"|"approved"|"denied"|"expired"}.
// Only the session's own push can be polled.
func (c *console) pushStatus(w http.ResponseWriter, r *http.Request, q *request) {
	uuid := r.URL.Query().Get("uuid")
	if uuid == "" || subtle.ConstantTimeCompare([]byte(uuid), []byte(q.sess.push)) != 1 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such sign-in request"})
		return
	}
	req, err := c.d.Factors.PushStatus(r.Context(), q.sess.op, uuid)
	if errors.Is(err, twofold.ErrNotFound) || twofold.ErrorCode(err) == twofold.CodeRequestNotFound {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such sign-in request"})
		return
	}
	if err != nil {
		if accesslog.ClientGone(c.cfg.Log, r, err, "surface", "console") {
			return
		}
		c.cfg.Log.Error("console: push status", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": string(req.Status)})
}

// pushComplete signs in once the session's push is approved.
func (c *console) pushComplete(w http.ResponseWriter, r *http.Request, q *request) {
	op := q.sess.op
	ctx := audit.WithActor(r.Context(), actor(op))
	if q.sess.push == "" {
		http.Redirect(w, r, "/console/signin/factor", http.StatusSeeOther)
		return
	}
	req, err := c.d.Factors.PushStatus(ctx, op, q.sess.push)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	switch req.Status {
	case twofold.Approved:
		c.signedIn(w, r, q, "push")
	case twofold.Pending:
		c.render(w, r, http.StatusAccepted, "push", &view{Title: "Approve on your device", CSRF: q.sess.csrf,
			Data: pushData{UUID: q.sess.push, Number: q.sess.number, Email: op.Email, Error: "Not approved yet: answer the request on your device."}})
	default:
		c.sessions.update(q.sid, func(s *session) { s.push, s.number = "", "" })
		msg := "The request expired before it was answered. Send another, or use a code."
		if req.Status == twofold.Denied {
			msg = "The sign-in was denied on your device."
			c.record(ctx, actor(op), twofold.AuditOperatorLoginFailed, map[string]string{"reason": "push_denied"})
		}
		c.renderFactor(w, r, q, http.StatusUnauthorized, msg)
	}
}

// signedIn turns the half session into a signed-in one, with a new id.
func (c *console) signedIn(w http.ResponseWriter, r *http.Request, q *request, method string) {
	op := q.sess.op
	id, _ := c.sessions.start(q.sid, op, stageFull)
	c.setCookie(w, r, sessionCookie, id, 0)
	c.record(r.Context(), actor(op), twofold.AuditOperatorLogin, map[string]string{"method": method})
	c.cfg.Log.Info("console: operator signed in", "operator", op.Email, "method", method)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *console) signout(w http.ResponseWriter, r *http.Request, q *request) {
	c.sessions.delete(q.sid)
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// record writes an event to the audit trail, if there is one.
func (c *console) record(ctx context.Context, who, action string, details map[string]string) {
	if c.d.Audit != nil {
		c.d.Audit.Record(ctx, twofold.AuditEvent{Actor: who, Action: action, Details: details})
	}
}
