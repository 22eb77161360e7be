package oidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// request is what an authorization request asked, kept with the session until its result goes
// back (Finish, Refuse, the token endpoint).
type request struct {
	Dialect       string `json:"dialect"`
	RedirectURI   string `json:"redirect_uri"`
	ResponseType  string `json:"response_type"` // code or id_token
	ResponseMode  string `json:"response_mode"` // query or form_post
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	CodeChallenge string `json:"code_challenge,omitempty"` // S256
	ACR           string `json:"acr,omitempty"`            // the acr the id token answers with
	Name          string `json:"name"`                     // the name the user was given by: preferred_username
	HintSubject   string `json:"hint_sub,omitempty"`       // an id_token_hint's sub, which Entra wants back as sub
	UILocales     string `json:"ui_locales,omitempty"`     // the languages the relying party asks the page in
}

// ACR values: Twofold's own for "a second factor passed" and for "signed in with a passwordless
// push alone" (one factor: the device, with number matching), and the one Entra ID's external
// authentication methods ask for.
const (
	acrMFA          = "urn:twofold:acr:mfa"
	acrPasswordless = "urn:twofold:acr:passwordless"
	acrEntra        = "possessionorinherence"
)

// maxParams bounds an authorization request's form.
const maxParams = 64 << 10

// pkceChallenge is a base64url S256 challenge (RFC 7636 section 4.2: 43 characters).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authorize handles /oauth2/authorize: it checks the client and where the answer goes, then
// who the user is, and sends the browser to the step. Until the redirect URI is known to be
// the client's, an error is a page of its own, never a redirect (RFC 6749 section 4.1.2.1).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxParams)
	if err := r.ParseForm(); err != nil || len(r.URL.RawQuery) > maxParams {
		errorPage(w, http.StatusBadRequest, "The sign-in request could not be read.")
		return
	}
	q := r.Form
	if once := onceEach(q, "client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
		"code_challenge", "code_challenge_method", "request", "request_uri", "id_token_hint", "login_hint", "prompt", "acr_values", "claims",
		"ui_locales"); once != "" {
		errorPage(w, http.StatusBadRequest, "The sign-in request gives "+once+" more than once.")
		return
	}
	c, err := p.clients.Get(ctx, q.Get("client_id"))
	if accesslog.ClientGone(p.log, r, err, "surface", "oidc") {
		return
	}
	if err != nil {
		if !errors.Is(err, twofold.ErrNotFound) {
			p.log.ErrorContext(ctx, "authorize: client", "err", err)
		}
		errorPage(w, http.StatusBadRequest, "The application that sent you here is not known to this server.")
		return
	}
	params := map[string]string{}
	for k := range q {
		params[k] = q.Get(k)
	}
	// An unsigned login_hint is kept apart: a signed request object's names the user, and one in
	// the query beside it must not (anyone who saw one request object could name anyone with it).
	queryHint := params["login_hint"]
	delete(params, "login_hint")
	// A request object's parameters replace the query's (RFC 9101 section 6.3); the query's
	// client_id and response_type, if given, must agree.
	var object *clientJWT
	if raw := params["request"]; raw != "" {
		o, err := p.verifyClientJWT(ctx, c, raw, p.issuer)
		if err == nil && o.ID != "" {
			err = p.spend(ctx, c, "request", o)
		}
		if err != nil {
			p.refuseEarly(w, r, c, params, "invalid_request_object", "The request object is not valid: "+err.Error())
			return
		}
		object = &o
		for _, k := range []string{"client_id", "response_type"} {
			if v, ok := o.all[k].(string); ok && params[k] != "" && v != params[k] {
				p.refuseEarly(w, r, c, params, "invalid_request_object", "The request object's "+k+" differs from the query's.")
				return
			}
		}
		for k, v := range o.all {
			if s, ok := v.(string); ok && k != "iss" && k != "aud" && k != "exp" && k != "iat" && k != "nbf" && k != "jti" {
				params[k] = s
			}
		}
	} else if params["request_uri"] != "" {
		p.refuseEarly(w, r, c, params, "request_uri_not_supported", "Pass the request object by value (request).")
		return
	}

	req := request{Dialect: dialect, RedirectURI: params["redirect_uri"], ResponseType: params["response_type"],
		ResponseMode: params["response_mode"], State: params["state"], Nonce: params["nonce"]}
	if !slices.Contains(c.RedirectURIs, req.RedirectURI) {
		errorPage(w, http.StatusBadRequest, "The address to send you back to is not one this application registered.")
		return
	}
	// From here on, errors go back to the client.
	fail := func(code, desc string) { p.redirectError(w, r, req, code, desc) }
	switch req.ResponseType {
	case "code":
		if req.ResponseMode == "" {
			req.ResponseMode = "query"
		}
	case "id_token":
		if req.ResponseMode == "" || req.ResponseMode == "fragment" {
			req.ResponseMode = "form_post" // an id token never travels in a URL here
		}
	default:
		req.ResponseMode = "query"
		fail("unsupported_response_type", "response_type must be code or id_token.")
		return
	}
	if req.ResponseMode != "query" && req.ResponseMode != "form_post" {
		req.ResponseMode = "query"
		fail("invalid_request", "response_mode must be query or form_post.")
		return
	}
	if !slices.Contains(strings.Fields(params["scope"]), "openid") {
		fail("invalid_scope", "scope must include openid.")
		return
	}
	if req.ResponseType == "id_token" && req.Nonce == "" {
		fail("invalid_request", "nonce is required with response_type id_token.")
		return
	}
	if len(req.State) > 2048 || len(req.Nonce) > 512 {
		fail("invalid_request", "state or nonce is too long.")
		return
	}
	if ch := params["code_challenge"]; ch != "" || params["code_challenge_method"] != "" {
		if params["code_challenge_method"] != "S256" || !pkceChallenge.MatchString(ch) {
			fail("invalid_request", "PKCE: code_challenge_method must be S256 with a 43-character code_challenge.")
			return
		}
		if req.ResponseType != "code" {
			fail("invalid_request", "PKCE applies to the code flow.")
			return
		}
		req.CodeChallenge = ch
	}
	if slices.Contains(strings.Fields(params["prompt"]), "none") {
		fail("interaction_required", "The second factor always needs the user.")
		return
	}
	req.ACR = acrFor(params)
	if l := params["ui_locales"]; len(l) <= 200 {
		req.UILocales = l
	}

	// Who the user is: a signed request object's login_hint, a signed id_token_hint, or (only
	// where the operator allows it for this client) an unsigned login_hint. A client that
	// allows passwordless sign-in may name nobody: the page asks who, and the approval says.
	passwordless := false
	switch {
	case params["id_token_hint"] != "":
		h, err := p.verifyHint(ctx, c, params["id_token_hint"])
		if err != nil {
			fail("invalid_request", "The id_token_hint is not valid: "+err.Error())
			return
		}
		req.Name, req.HintSubject = h.Name, h.Subject
	case object != nil && params["login_hint"] != "": // from the object: the query's was set apart
		req.Name = params["login_hint"]
	case queryHint != "" && c.AllowLoginHint:
		req.Name = queryHint
	case queryHint != "":
		fail("invalid_request", "This client must name the user in a signed request object (request) or an id_token_hint.")
		return
	case c.Passwordless:
		passwordless = true
	default:
		fail("invalid_request", "The user must be named: login_hint in a signed request object, or an id_token_hint.")
		return
	}
	raw, _ := json.Marshal(req)
	var b hostedstep.Begun
	if passwordless {
		b, err = p.steps.BeginPasswordless(ctx, c, raw)
	} else {
		b, err = p.steps.Begin(ctx, c, req.Name, raw)
	}
	switch {
	case errors.Is(err, hostedstep.ErrUnknownUser):
		fail("access_denied", "The user named is not enrolled with this application.")
		return
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		fail("temporarily_unavailable", "Too many sign-ins through this client; try again later.")
		return
	case accesslog.ClientGone(p.log, r, err, "surface", "oidc"):
		return
	case err != nil:
		p.log.ErrorContext(ctx, "authorize: begin", "client_id", c.ClientID, "err", err)
		fail("server_error", "")
		return
	}
	step.Enter(w, r, b, strings.HasPrefix(p.issuer, "https://"))
}

// onceEach returns the first of names given more than once (RFC 6749 section 3.1), or "".
func onceEach(q url.Values, names ...string) string {
	for _, n := range names {
		if len(q[n]) > 1 {
			return n
		}
	}
	return ""
}

// acrFor is the acr the id token answers with: Entra's when it asked for it (in acr_values or the
// claims parameter), else Twofold's.
func acrFor(params map[string]string) string {
	if slices.Contains(strings.Fields(params["acr_values"]), acrEntra) || strings.Contains(params["claims"], acrEntra) {
		return acrEntra
	}
	return acrMFA
}

// refuseEarly answers a request that failed before its redirect URI was chosen: to the
// redirect URI when the query's is the client's, else with a page.
func (p *Provider) refuseEarly(w http.ResponseWriter, r *http.Request, c twofold.StepClient, params map[string]string, code, desc string) {
	if !slices.Contains(c.RedirectURIs, params["redirect_uri"]) {
		errorPage(w, http.StatusBadRequest, desc)
		return
	}
	mode := "query"
	if params["response_mode"] == "form_post" || params["response_type"] == "id_token" {
		mode = "form_post"
	}
	p.redirectError(w, r, request{RedirectURI: params["redirect_uri"], ResponseMode: mode, State: params["state"]}, code, desc)
}

// redirectError sends the browser back to the client with an error (RFC 6749 section 4.1.2.1).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req request, code, desc string) {
	v := url.Values{"error": {code}, "iss": {p.issuer}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if req.State != "" {
		v.Set("state", req.State)
	}
	p.respond(w, r, req, v)
}

// respond sends values back to the client's redirect URI, in the query or as a form post.
func (p *Provider) respond(w http.ResponseWriter, r *http.Request, req request, v url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if req.ResponseMode == "form_post" {
		step.FormPost(w, req.RedirectURI, v)
		return
	}
	u, _ := url.Parse(req.RedirectURI)
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// errorPage answers an authorization request that cannot go back to its client.
func errorPage(w http.ResponseWriter, status int, msg string) { step.ErrorPage(w, status, msg) }
