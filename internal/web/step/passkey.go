package step

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// "Use a passkey" (hostedstep's passkeys.go says when it is offered). The page's script asks
// {handle}/passkey/options for a ceremony, hands its options to navigator.credentials.get, and
// posts the answer (PublicKeyCredential.toJSON()) with the ceremony's id to {handle}/passkey,
// which passes the step and hands the user back as any factor does. The ceremony is bound to
// the session's user and finished once by the passkeys service; the page's CSRF token binds the
// posts to the browser that began the step.

const (
	statePasskey = "passkey"
	// maxPasskeyForm bounds the passkey form: a credential's JSON is a few kilobytes.
	maxPasskeyForm = 32 << 10
)

// passkeyOptions is the script's answer: the ceremony to finish, and the browser's options.
type passkeyOptions struct {
	Ceremony string          `json:"ceremony,omitempty"`
	Options  json.RawMessage `json:"options,omitempty"`
	Error    string          `json:"error,omitempty"` // what the page says, in its language
}

// passkeyBegin answers the script with a new ceremony for the session's user.
func (p *Page) passkeyBegin(w http.ResponseWriter, r *http.Request, x *visit) {
	if x.v.Session.Status != twofold.StepPending || x.v.NeedsUser() {
		writeJSON(w, http.StatusConflict, passkeyOptions{Error: tr(x.lang, "err_not_offered")})
		return
	}
	c, err := p.steps.BeginPasskey(r.Context(), x.v)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, passkeyOptions{Ceremony: c.ID, Options: c.Options})
	case errors.Is(err, hostedstep.ErrNotOffered), errors.Is(err, hostedstep.ErrFinished):
		writeJSON(w, http.StatusConflict, passkeyOptions{Error: tr(x.lang, "err_not_offered")})
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		writeJSON(w, http.StatusTooManyRequests, passkeyOptions{Error: tr(x.lang, "err_too_many")})
	case accesslog.ClientGone(p.log, r, err, "surface", "step"):
		return
	default:
		p.log.ErrorContext(r.Context(), "step: begin passkey", "err", err)
		writeJSON(w, http.StatusInternalServerError, passkeyOptions{Error: tr(x.lang, "error_text")})
	}
}

// passkeyFinish checks the assertion the script posted; one that passes hands the user back.
func (p *Page) passkeyFinish(w http.ResponseWriter, r *http.Request, x *visit) {
	if p.settled(w, r, x) {
		return
	}
	ceremony := r.PostFormValue("ceremony")
	credential := strings.TrimSpace(r.PostFormValue("credential"))
	if ceremony == "" || len(ceremony) > 100 || credential == "" || !json.Valid([]byte(credential)) {
		p.render(w, r, http.StatusUnprocessableEntity, x, pageState{State: statePasskey, Via: twofold.FactorPasskey, Error: "err_passkey"})
		return
	}
	_, err := p.steps.FinishPasskey(r.Context(), x.v, ceremony, []byte(credential))
	switch {
	case err == nil:
		p.finish(w, r, x)
	case errors.Is(err, hostedstep.ErrFinished):
		p.again(w, r, x)
	case errors.Is(err, hostedstep.ErrNotOffered):
		p.render(w, r, http.StatusConflict, x, pageState{State: "choose", Error: "err_not_offered"})
	case errors.Is(err, hostedstep.ErrPasskeyRefused):
		p.log.InfoContext(r.Context(), "step: passkey refused", "err", err)
		p.render(w, r, http.StatusUnprocessableEntity, x, pageState{State: statePasskey, Via: twofold.FactorPasskey, Error: "err_passkey"})
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		p.render(w, r, http.StatusTooManyRequests, x, pageState{State: statePasskey, Via: twofold.FactorPasskey, Error: "err_too_many"})
	default:
		p.fail(w, r, x, "finish passkey", err)
	}
}
