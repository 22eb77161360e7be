package step

import (
	"errors"
	"net/http"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The page of a step begun without a user (a client that allows passwordless sign-in, and an
// authorization request that named nobody): it asks for the username, runs a passwordless
// sign-in (the number to pick on the phone, the wait, polled by the script or Continue without
// it), and once approved goes on as any step that passed. Every name typed gets the same pages:
// the wait with a number, and, when nothing was approved in time or the request was denied,
// one failure page that does not say which, nor whether the name is of anyone.

// Passwordless pages' states: the username form, the wait, the failure.
const (
	stateUsername     = "username"
	stateSignin       = "signin"
	stateSigninFailed = "signin_failed"
)

// anonymous shows a session without a user: the username form (first, or asked for again), or
// where its sign-in is.
func (p *Page) anonymous(w http.ResponseWriter, r *http.Request, x *visit, askAgain bool) {
	if x.v.Session.SigninUUID == "" || askAgain {
		p.render(w, r, http.StatusOK, x, pageState{State: stateUsername})
		return
	}
	p.signinState(w, r, x, false)
}

// signinState shows the session's sign-in: waiting with its number, approved (the session,
// bound now, has passed: Continue goes on, which cont does at once), or failed.
func (p *Page) signinState(w http.ResponseWriter, r *http.Request, x *visit, cont bool) {
	sg, err := p.steps.SigninStatus(r.Context(), x.v)
	switch {
	case errors.Is(err, hostedstep.ErrNotOffered):
		p.render(w, r, http.StatusOK, x, pageState{State: stateUsername})
		return
	case err != nil:
		p.fail(w, r, x, "sign-in status", err)
		return
	}
	switch sg.Status {
	case twofold.Pending:
		st := pageState{State: stateSignin, Number: sg.Number}
		if cont {
			st.Error = "push_not_yet"
		}
		p.render(w, r, http.StatusOK, x, st)
	case twofold.Approved:
		if !p.reopen(w, r, x) {
			return
		}
		switch {
		case cont && x.v.Session.Status == twofold.StepPassed:
			p.finish(w, r, x)
		case !p.settled(w, r, x):
			p.gone(w, r) // approved by a user deleted since
		}
	default:
		p.render(w, r, http.StatusOK, x, pageState{State: stateSigninFailed})
	}
}

// askName runs a passwordless sign-in for the name typed, from the browser's address, and
// shows the wait (after a redirect, so a reload asks nothing new).
func (p *Page) askName(w http.ResponseWriter, r *http.Request, x *visit) {
	if !x.v.NeedsUser() {
		p.again(w, r, x)
		return
	}
	addr := p.proxies.Addr(r)
	if !addr.IsValid() {
		p.fail(w, r, x, "sign-in", errors.New("the browser's address is unknown"))
		return
	}
	name := r.PostFormValue("username")
	_, err := p.steps.AskPasswordless(r.Context(), x.v, name, addr.String(), browserLabel(r.Header.Get("User-Agent")))
	typed := name
	if len(typed) > maxTyped {
		typed = ""
	}
	switch {
	case err == nil:
		http.Redirect(w, r, x.base(), http.StatusSeeOther)
	case twofold.ErrorCode(err) == twofold.CodeInvalidParameter:
		p.render(w, r, http.StatusUnprocessableEntity, x, pageState{State: stateUsername, Error: "err_" + nameKind(x.v), Typed: typed})
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		p.render(w, r, http.StatusTooManyRequests, x, pageState{State: stateUsername, Error: "err_signin_limit", Typed: typed})
	case errors.Is(err, hostedstep.ErrFinished), errors.Is(err, hostedstep.ErrNotOffered), errors.Is(err, hostedstep.ErrNoSession):
		p.again(w, r, x)
	default:
		p.fail(w, r, x, "sign-in", err)
	}
}

// maxTyped bounds the name the form shows again after an error.
const maxTyped = 255

// contSignin is Continue on the wait: on when approved, the wait again (saying so) while
// pending, the failure otherwise.
func (p *Page) contSignin(w http.ResponseWriter, r *http.Request, x *visit) {
	if x.v.Session.SigninUUID == "" {
		p.render(w, r, http.StatusOK, x, pageState{State: stateUsername})
		return
	}
	p.signinState(w, r, x, true)
}

// signinJSON answers the wait's script: pending, approved (the session is bound and passed),
// failed, or none before a name was asked.
func (p *Page) signinJSON(w http.ResponseWriter, r *http.Request, v hostedstep.View) {
	if v.Session.SigninUUID == "" {
		writeJSON(w, http.StatusOK, pushStatus{"none"})
		return
	}
	sg, err := p.steps.SigninStatus(r.Context(), v)
	if err != nil {
		if accesslog.ClientGone(p.log, r, err, "surface", "step") {
			return
		}
		p.log.ErrorContext(r.Context(), "step: sign-in status", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, pushStatus{"pending"})
		return
	}
	switch sg.Status {
	case twofold.Pending, twofold.Approved:
		writeJSON(w, http.StatusOK, pushStatus{string(sg.Status)})
	default:
		writeJSON(w, http.StatusOK, pushStatus{"failed"})
	}
}

// nameKind is what the username form asks for: "email" or "username" (the customer's id), by
// the client's user match.
func nameKind(v hostedstep.View) string {
	if v.Client.UserMatch == twofold.MatchEmail {
		return "email"
	}
	return "username"
}
