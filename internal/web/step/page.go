package step

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/clientaddr"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Steps is what the page needs of the step's sessions (hostedstep.Steps).
type Steps interface {
	Open(ctx context.Context, handle, browser string) (hostedstep.View, error)
	StartPush(ctx context.Context, v hostedstep.View, browser string) (hostedstep.Push, error)
	PushStatus(ctx context.Context, v hostedstep.View) (hostedstep.Push, error)
	Send(ctx context.Context, v hostedstep.View, f twofold.Factor, locale string) error
	Check(ctx context.Context, v hostedstep.View, code string) (twofold.Factor, error)
	Abandon(ctx context.Context, v hostedstep.View) error
	AskPasswordless(ctx context.Context, v hostedstep.View, name, clientIP, browser string) (hostedstep.Signin, error)
	SigninStatus(ctx context.Context, v hostedstep.View) (hostedstep.Signin, error)
	BeginPasskey(ctx context.Context, v hostedstep.View) (hostedstep.PasskeyCeremony, error)
	FinishPasskey(ctx context.Context, v hostedstep.View, ceremony string, response []byte) (twofold.Factor, error)
}

// MACer makes keyed hashes under the server's keys (seal.Keyring): the page's CSRF tokens,
// which every server sharing the keys can check.
type MACer interface {
	Lookup(s string) []byte
	Lookups(s string) [][]byte
}

// Config is what the page is built from.
type Config struct {
	Steps     Steps
	Finishers map[string]Finisher // by dialect (the "dialect" of a session's request)
	MACs      MACer
	// Proxies are the reverse proxies trusted to say the browser's address, which a
	// passwordless sign-in's limits per client address count.
	Proxies clientaddr.Proxies
	Log     *slog.Logger // nil: discard
}

// Page serves the hosted step's page.
type Page struct {
	steps     Steps
	finishers map[string]Finisher
	macs      MACer
	proxies   clientaddr.Proxies
	log       *slog.Logger
}

// New returns the page.
func New(c Config) *Page {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Page{steps: c.Steps, finishers: c.Finishers, macs: c.MACs, proxies: c.Proxies, log: c.Log}
}

// Router is where routes are registered: an *http.ServeMux, or the server's mux that notes them.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Routes adds the page's routes: the page, the push status it polls, its forms and its files.
func (p *Page) Routes(mux Router) {
	for _, name := range assetNames() {
		mux.HandleFunc("GET "+Path+"static/"+name, serveAsset)
	}
	mux.HandleFunc("GET "+Path+"{handle}", p.show)
	mux.HandleFunc("GET "+Path+"{handle}/status", p.status)
	mux.HandleFunc("POST "+Path+"{handle}/send", p.post(p.send))
	mux.HandleFunc("POST "+Path+"{handle}/code", p.post(p.code))
	mux.HandleFunc("POST "+Path+"{handle}/continue", p.post(p.cont))
	mux.HandleFunc("POST "+Path+"{handle}/cancel", p.post(p.cancel))
	mux.HandleFunc("POST "+Path+"{handle}/signin", p.post(p.askName))
	mux.HandleFunc("POST "+Path+"{handle}/passkey/options", p.postLimit(maxForm, p.passkeyBegin))
	mux.HandleFunc("POST "+Path+"{handle}/passkey", p.postLimit(maxPasskeyForm, p.passkeyFinish))
}

// visit is one request to an open session's page.
type visit struct {
	handle, browser string
	v               hostedstep.View
	lang            string
}

// base is the page's own path.
func (x *visit) base() string { return Path + url.PathEscape(x.handle) }

// open finds the session the request is for: its handle in the path, and the cookie of the
// browser that began it. Without both it answers with the page that says to start again.
func (p *Page) open(w http.ResponseWriter, r *http.Request) (*visit, bool) {
	handle := r.PathValue("handle")
	browser := Browser(r, handle)
	if browser == "" {
		p.gone(w, r)
		return nil, false
	}
	v, err := p.steps.Open(r.Context(), handle, browser)
	if errors.Is(err, hostedstep.ErrNoSession) {
		p.gone(w, r)
		return nil, false
	}
	if err != nil {
		p.fail(w, r, nil, "open", err)
		return nil, false
	}
	return &visit{handle: handle, browser: browser, v: v, lang: locale(r, &v)}, true
}

// reopen reads the session again after a change (a factor passed).
func (p *Page) reopen(w http.ResponseWriter, r *http.Request, x *visit) bool {
	v, err := p.steps.Open(r.Context(), x.handle, x.browser)
	if errors.Is(err, hostedstep.ErrNoSession) {
		p.gone(w, r)
		return false
	}
	if err != nil {
		p.fail(w, r, x, "reopen", err)
		return false
	}
	x.v = v
	return true
}

// maxForm bounds a form the page posts: a token, a code and a factor.
const maxForm = 8 << 10

// post wraps the forms' handlers: the form is read with a size limit, must not come from
// another site, and must carry the session's CSRF token; otherwise nothing changes.
func (p *Page) post(next func(http.ResponseWriter, *http.Request, *visit)) http.HandlerFunc {
	return p.postLimit(maxForm, next)
}

// postLimit is post with a form of at most limit bytes.
func (p *Page) postLimit(limit int64, next func(http.ResponseWriter, *http.Request, *visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := r.ParseForm(); err != nil {
			p.message(w, r, http.StatusBadRequest, "refused", nil)
			return
		}
		x, ok := p.open(w, r)
		if !ok {
			return
		}
		// Sec-Fetch-Site is the browser's word that the form came from this origin; the token
		// is what counts, for browsers that do not send it.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" || !p.validCSRF(x, r.PostFormValue("csrf")) {
			p.message(w, r, http.StatusForbidden, "refused", x)
			return
		}
		next(w, r, x)
	}
}

// csrf is the session's form token: a keyed hash of its handle and of the browser's cookie,
// which a page of another site can neither read nor make.
func (p *Page) csrf(x *visit) string {
	return base64.RawURLEncoding.EncodeToString(p.macs.Lookup(csrfInput(x)))
}

func csrfInput(x *visit) string { return "step-csrf:" + x.handle + "\x00" + x.browser }

// validCSRF compares a posted token with the session's under every accepted key, in constant
// time.
func (p *Page) validCSRF(x *visit, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(got) == 0 {
		return false
	}
	ok := false
	for _, mac := range p.macs.Lookups(csrfInput(x)) {
		ok = hmac.Equal(mac, got) || ok
	}
	return ok
}

// show is the page: where the session is, or the factor the user chose (?via=), or the
// default one: a push with number matching when the user has a device, else the first the
// client offers.
func (p *Page) show(w http.ResponseWriter, r *http.Request) {
	x, ok := p.open(w, r)
	if !ok {
		return
	}
	if p.settled(w, r, x) {
		return
	}
	via := r.URL.Query().Get("via")
	if x.v.NeedsUser() {
		p.anonymous(w, r, x, via == "username")
		return
	}
	if via == "choose" {
		p.render(w, r, http.StatusOK, x, pageState{State: "choose"})
		return
	}
	f := twofold.Factor(via)
	if f == twofold.FactorRecoveryCode && x.v.RecoveryCodes > 0 || len(x.v.Offer) == 0 {
		f = twofold.FactorRecoveryCode // settled: the user has recovery codes
	} else if !slices.Contains(x.v.Offer, f) {
		f = defaultFactor(x.v.Offer)
	}
	p.factor(w, r, x, f, "", http.StatusOK)
}

// settled answers for a session that is no longer waiting for a factor, or has none to offer:
// passed (continue to the application), failed (a push denied), done, or nothing offered.
func (p *Page) settled(w http.ResponseWriter, r *http.Request, x *visit) bool {
	switch x.v.Session.Status {
	case twofold.StepPassed:
		p.render(w, r, http.StatusOK, x, pageState{State: "passed"})
	case twofold.StepFailed:
		if x.v.NeedsUser() { // a passwordless step fails only when cancelled: it went back already
			p.gone(w, r)
			return true
		}
		p.render(w, r, http.StatusOK, x, pageState{State: "denied"})
	case twofold.StepPending:
		if x.v.NeedsUser() {
			return false // the page asks who
		}
		if len(x.v.Offer) == 0 && x.v.RecoveryCodes == 0 {
			p.render(w, r, http.StatusOK, x, pageState{State: "none"})
			return true
		}
		return false
	default:
		p.gone(w, r)
	}
	return true
}

func defaultFactor(offer []twofold.Factor) twofold.Factor {
	if slices.Contains(offer, twofold.FactorPush) {
		return twofold.FactorPush
	}
	if len(offer) == 0 {
		return twofold.FactorRecoveryCode // all a user with recovery codes and nothing else has
	}
	return offer[0]
}

// channels are the code factors' delivery channels.
var channels = map[twofold.Factor]twofold.Channel{twofold.FactorSMS: twofold.SMS, twofold.FactorCall: twofold.Call, twofold.FactorEmail: twofold.Email}

// factor shows the page of one factor, with an error (a key of the texts) if any.
func (p *Page) factor(w http.ResponseWriter, r *http.Request, x *visit, f twofold.Factor, errKey string, status int) {
	switch f {
	case twofold.FactorPush:
		p.push(w, r, x, errKey, status)
	case twofold.FactorTOTP:
		p.render(w, r, status, x, pageState{State: "code", Via: f, Error: errKey})
	case twofold.FactorRecoveryCode:
		p.render(w, r, status, x, pageState{State: "recovery", Via: f, Error: errKey})
	case twofold.FactorPasskey:
		p.render(w, r, status, x, pageState{State: statePasskey, Via: f, Error: errKey})
	default:
		state := "send"
		if x.v.Session.SentChannel != "" && x.v.Session.SentChannel == channels[f] {
			state = "sent"
		}
		p.render(w, r, status, x, pageState{State: state, Via: f, Error: errKey})
	}
}

// push shows the push page: it asks the device (or finds the request already pending, so a
// reload sends nothing new) and shows the number to pick there. A request answered meanwhile
// settles the session first.
func (p *Page) push(w http.ResponseWriter, r *http.Request, x *visit, errKey string, status int) {
	ctx := r.Context()
	if x.v.Session.ApprovalUUID != "" {
		ps, err := p.steps.PushStatus(ctx, x.v)
		if err != nil && !errors.Is(err, hostedstep.ErrNotOffered) {
			p.fail(w, r, x, "push status", err)
			return
		}
		if ps.Status == twofold.Approved || ps.Status == twofold.Denied {
			if p.reopen(w, r, x) && !p.settled(w, r, x) {
				p.render(w, r, http.StatusOK, x, pageState{State: "choose"})
			}
			return
		}
	}
	req, err := p.steps.StartPush(ctx, x.v, browserLabel(r.Header.Get("User-Agent")))
	switch {
	case err == nil:
		p.render(w, r, status, x, pageState{State: "push", Via: twofold.FactorPush, Number: req.Number, Error: errKey})
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		p.render(w, r, http.StatusTooManyRequests, x, pageState{State: "choose", Error: "err_push_limit"})
	case errors.Is(err, hostedstep.ErrNotOffered):
		p.render(w, r, http.StatusConflict, x, pageState{State: "choose", Error: "err_not_offered"})
	case errors.Is(err, hostedstep.ErrFinished), errors.Is(err, hostedstep.ErrNoSession):
		if p.reopen(w, r, x) && !p.settled(w, r, x) {
			p.gone(w, r)
		}
	default:
		p.fail(w, r, x, "start push", err)
	}
}

// pushStatus is what the page's script polls: the push's status, as the session sees it.
type pushStatus struct {
	// pending, approved, denied, expired, or none (no push); a passwordless sign-in's is
	// pending, approved, failed (denied or expired, alike) or none (no name asked yet)
	Status string `json:"status"`
}

// status answers the page's script: whether the push was answered. An answer settles the
// session; the script then submits the page's Continue form, which goes on.
func (p *Page) status(w http.ResponseWriter, r *http.Request) {
	handle := r.PathValue("handle")
	v, err := p.steps.Open(r.Context(), handle, Browser(r, handle))
	if err != nil {
		if accesslog.ClientGone(p.log, r, err, "surface", "step") {
			return
		}
		if !errors.Is(err, hostedstep.ErrNoSession) {
			p.log.ErrorContext(r.Context(), "step: push status", "err", err)
		}
		writeJSON(w, http.StatusNotFound, pushStatus{"expired"})
		return
	}
	switch v.Session.Status {
	case twofold.StepPassed:
		writeJSON(w, http.StatusOK, pushStatus{"approved"})
		return
	case twofold.StepFailed:
		writeJSON(w, http.StatusOK, pushStatus{"denied"})
		return
	case twofold.StepDone:
		writeJSON(w, http.StatusNotFound, pushStatus{"expired"})
		return
	}
	if v.NeedsUser() {
		p.signinJSON(w, r, v)
		return
	}
	if v.Session.ApprovalUUID == "" {
		writeJSON(w, http.StatusOK, pushStatus{"none"})
		return
	}
	ps, err := p.steps.PushStatus(r.Context(), v)
	if err != nil {
		if accesslog.ClientGone(p.log, r, err, "surface", "step") {
			return
		}
		p.log.ErrorContext(r.Context(), "step: push status", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, pushStatus{"pending"})
		return
	}
	writeJSON(w, http.StatusOK, pushStatus{string(ps.Status)})
}

// send sends a code by the channel the user chose, in the page's language, and shows the
// form for it (after a redirect to the page, so a reload does not send again).
func (p *Page) send(w http.ResponseWriter, r *http.Request, x *visit) {
	if p.settled(w, r, x) {
		return
	}
	f := twofold.Factor(r.PostFormValue("factor"))
	if _, ok := channels[f]; !ok || !slices.Contains(x.v.Offer, f) {
		p.render(w, r, http.StatusConflict, x, pageState{State: "choose", Error: "err_not_offered"})
		return
	}
	err := p.steps.Send(r.Context(), x.v, f, x.lang)
	switch {
	case err == nil:
		http.Redirect(w, r, x.base()+"?via="+string(f), http.StatusSeeOther)
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		p.render(w, r, http.StatusTooManyRequests, x, pageState{State: "send", Via: f, Error: "err_send_limit"})
	case errors.Is(err, hostedstep.ErrNotOffered):
		p.render(w, r, http.StatusConflict, x, pageState{State: "choose", Error: "err_not_offered"})
	case errors.Is(err, hostedstep.ErrFinished):
		p.again(w, r, x)
	case twofold.ErrorCode(err) != twofold.CodeInternal:
		// Not sent (a channel the application turned off, a country it does not allow, a
		// landline): the user can choose another way.
		p.log.InfoContext(r.Context(), "step: code not sent", "channel", f, "err", err)
		p.render(w, r, http.StatusUnprocessableEntity, x, pageState{State: "send", Via: f, Error: "err_send_failed"})
	default:
		p.fail(w, r, x, "send", err)
	}
}

// codeFactor is the factor whose code the page asks for when the form does not say: the
// channel of the code last sent, else the authenticator, else the default.
func codeFactor(v hostedstep.View) twofold.Factor {
	for f, ch := range channels {
		if ch == v.Session.SentChannel && slices.Contains(v.Offer, f) {
			return f
		}
	}
	if slices.Contains(v.Offer, twofold.FactorTOTP) {
		return twofold.FactorTOTP
	}
	return defaultFactor(v.Offer)
}

// maxCode bounds what is taken from the code field.
const maxCode = 16

// code checks a code the user typed: their authenticator's or the one the session sent. One
// that passes goes back to the relying party through the Finisher.
func (p *Page) code(w http.ResponseWriter, r *http.Request, x *visit) {
	if p.settled(w, r, x) {
		return
	}
	via := twofold.Factor(r.PostFormValue("via"))
	switch {
	case via == twofold.FactorRecoveryCode && x.v.RecoveryCodes > 0:
	case !slices.Contains(x.v.Offer, via) || via == twofold.FactorPush:
		via = codeFactor(x.v)
	}
	code := strings.Map(func(c rune) rune {
		if c == ' ' || c == '-' || c == '\u00a0' {
			return -1 // people type codes with the spaces they are shown with
		}
		return c
	}, r.PostFormValue("code"))
	if code == "" || len(code) > maxCode {
		p.factor(w, r, x, via, "err_wrong", http.StatusUnprocessableEntity)
		return
	}
	_, err := p.steps.Check(r.Context(), x.v, code)
	switch {
	case err == nil:
		p.finish(w, r, x)
	case errors.Is(err, hostedstep.ErrFinished):
		p.again(w, r, x)
	case errors.Is(err, hostedstep.ErrNotOffered):
		p.render(w, r, http.StatusConflict, x, pageState{State: "choose", Error: "err_not_offered"})
	default:
		switch twofold.ErrorCode(err) {
		case twofold.CodeRateLimited:
			p.factor(w, r, x, via, "err_too_many", http.StatusTooManyRequests)
		case twofold.CodeTokenReused:
			if via == twofold.FactorRecoveryCode {
				p.factor(w, r, x, via, "err_recovery_reused", http.StatusUnprocessableEntity)
				break
			}
			p.factor(w, r, x, via, "err_reused", http.StatusUnprocessableEntity)
		case twofold.CodeTokenInvalid, twofold.CodePhoneVerificationIncorrect:
			p.factor(w, r, x, via, "err_wrong", http.StatusUnprocessableEntity)
		case twofold.CodeUserDoesNotExist, twofold.CodeUserNotFound:
			p.gone(w, r) // deleted meanwhile
		default:
			p.fail(w, r, x, "check", err)
		}
	}
}

// cont is the push page's Continue: the page's script submits it once the push was answered,
// and a user without JavaScript presses it.
func (p *Page) cont(w http.ResponseWriter, r *http.Request, x *visit) {
	if x.v.Session.Status == twofold.StepPassed {
		p.finish(w, r, x)
		return
	}
	if p.settled(w, r, x) {
		return
	}
	if x.v.NeedsUser() {
		p.contSignin(w, r, x)
		return
	}
	if x.v.Session.ApprovalUUID == "" {
		p.render(w, r, http.StatusOK, x, pageState{State: "choose"})
		return
	}
	ps, err := p.steps.PushStatus(r.Context(), x.v)
	if err != nil {
		p.fail(w, r, x, "push status", err)
		return
	}
	switch ps.Status {
	case twofold.Approved:
		if p.reopen(w, r, x) {
			p.finish(w, r, x)
		}
	case twofold.Denied:
		p.render(w, r, http.StatusOK, x, pageState{State: "denied"})
	case twofold.Pending:
		p.render(w, r, http.StatusOK, x, pageState{State: "push", Via: twofold.FactorPush, Number: ps.Number, Error: "push_not_yet"})
	default:
		p.render(w, r, http.StatusOK, x, pageState{State: "choose", Error: "push_expired"})
	}
}

// cancel sends the user back to the relying party with a refusal.
func (p *Page) cancel(w http.ResponseWriter, r *http.Request, x *visit) {
	if x.v.Session.Status == twofold.StepDone {
		p.gone(w, r)
		return
	}
	fin, ok := p.finishers[Dialect(x.v)]
	if !ok {
		p.fail(w, r, x, "cancel", errors.New("no finisher for dialect "+Dialect(x.v)))
		return
	}
	reason := "The user cancelled the second factor."
	if x.v.NeedsUser() {
		reason = "The user cancelled the sign-in."
	}
	if x.v.Session.Status == twofold.StepFailed {
		reason = "The user denied the request on their device."
	}
	// Nothing passes the session afterwards, and its push leaves the user's phone.
	if err := p.steps.Abandon(r.Context(), x.v); err != nil {
		p.fail(w, r, x, "cancel", err)
		return
	}
	if err := fin.Refuse(w, r, x.v, reason); err != nil {
		p.fail(w, r, x, "refuse", err)
	}
}

// finish hands a passed session back to its relying party through its dialect's Finisher:
// the only way the page sends anyone elsewhere.
func (p *Page) finish(w http.ResponseWriter, r *http.Request, x *visit) {
	if x.v.Session.Status != twofold.StepPassed && !p.reopen(w, r, x) {
		return
	}
	fin, ok := p.finishers[Dialect(x.v)]
	if !ok {
		p.fail(w, r, x, "finish", errors.New("no finisher for dialect "+Dialect(x.v)))
		return
	}
	err := fin.Finish(w, r, x.v)
	switch {
	case err == nil:
	case errors.Is(err, hostedstep.ErrFinished):
		p.gone(w, r) // handed back already (a second tab, a double submit)
	default:
		p.fail(w, r, x, "finish", err)
	}
}

// again answers a form for a session that another request settled meanwhile.
func (p *Page) again(w http.ResponseWriter, r *http.Request, x *visit) {
	if p.reopen(w, r, x) && !p.settled(w, r, x) {
		p.render(w, r, http.StatusOK, x, pageState{State: "choose"})
	}
}

// gone is the page for a step that cannot go on: expired, finished, or opened without the
// cookie of the browser that began it.
func (p *Page) gone(w http.ResponseWriter, r *http.Request) {
	p.message(w, r, http.StatusNotFound, "expired", nil)
}

// fail logs an unexpected error and answers with the error page.
func (p *Page) fail(w http.ResponseWriter, r *http.Request, x *visit, what string, err error) {
	if accesslog.ClientGone(p.log, r, err, "surface", "step") {
		return
	}
	p.log.ErrorContext(r.Context(), "step: "+what, "err", err)
	p.message(w, r, http.StatusInternalServerError, "error", x)
}
