package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Step clients are the relying parties of the hosted second-factor step: the identity
// providers and applications that send an application's users to the step mid-login, as
// `twofold oidc-client` manages them. An application's page lists its clients and makes new
// ones; a client's page gives the endpoints its relying party needs, edits its settings,
// rotates its secrets and deletes it.
//
// A secret is shown once. The post that makes it keeps it in the operator's session and
// redirects to the client's page, which takes it from there: reloading that page shows it no
// more, and never posts again (a reloaded post would make another client or secret).

// StepClients manages step clients (*hostedstep.Clients).
type StepClients interface {
	Create(ctx context.Context, appID int64, sp hostedstep.Spec) (hostedstep.Created, error)
	List(ctx context.Context, appID int64) ([]twofold.StepClient, error)
	Get(ctx context.Context, clientID string) (twofold.StepClient, error)
	Update(ctx context.Context, clientID string, sp hostedstep.Spec, rot hostedstep.Rotation) (hostedstep.Created, error)
	Delete(ctx context.Context, clientID string) error
}

// shownSecrets are a client's secrets in clear, on their way to its page.
type shownSecrets struct {
	ClientID    string
	Secret      string // the OIDC client_secret; "" when not just made
	Auth0Secret string // the Auth0 Action's secret; "" when not just made
	Made        bool   // the client itself was just made
}

func (c *console) stepClientRoutes(m routeNotes) {
	const base = "/console/apps/{app}/clients/"
	m.HandleFunc("GET "+base+"new", c.app(c.clientNew))
	m.HandleFunc("POST "+base+"new", c.post(c.app(c.clientCreate)))
	m.HandleFunc("GET "+base+"{client}", c.stepClient(c.clientShow))
	m.HandleFunc("POST "+base+"{client}", c.post(c.stepClient(c.clientSave)))
	m.HandleFunc("GET "+base+"{client}/rotate/{kind}", c.stepClient(c.clientRotateConfirm))
	m.HandleFunc("POST "+base+"{client}/rotate/{kind}", c.post(c.stepClient(c.clientRotate)))
	m.HandleFunc("GET "+base+"{client}/delete", c.stepClient(c.clientDeleteConfirm))
	m.HandleFunc("POST "+base+"{client}/delete", c.post(c.stepClient(c.clientDelete)))
}

// stepClient wraps the handlers of one client's pages: the client must belong to the
// application of the address, so another application's client is not found through it.
func (c *console) stepClient(next func(http.ResponseWriter, *http.Request, *request, twofold.App, twofold.StepClient)) http.HandlerFunc {
	return c.app(func(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
		cl, err := c.d.StepClients.Get(r.Context(), r.PathValue("client"))
		if errors.Is(err, twofold.ErrNotFound) || (err == nil && cl.AppID != a.ID) {
			c.notFound(w, r, q)
			return
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		next(w, r, q, a, cl)
	})
}

func clientURL(a twofold.App, cl twofold.StepClient) string {
	return appURL(a) + "/clients/" + url.PathEscape(cl.ClientID)
}

// clientForm is a client's settings as a form shows them.
type clientForm struct {
	V       map[string]string // by field, as shown
	Factors []factorChoice    // in the order offered: the checked ones first
	Matches []choice          // how users are named
	Errors  map[string]string // by field
	Error   string            // for the whole form
}

type factorChoice struct {
	Value, Label string
	On           bool
}

type choice struct{ Value, Label string }

var factorLabels = map[twofold.Factor]string{
	twofold.FactorPush:  "Push: approve on their device, picking the number shown",
	twofold.FactorTOTP:  "A code from their authenticator app or device",
	twofold.FactorSMS:   "A code by SMS",
	twofold.FactorCall:  "A code read by a voice call",
	twofold.FactorEmail: "A code by email",
}

// factorNames are the factors' short names, for lists.
var factorNames = map[twofold.Factor]string{twofold.FactorPush: "push", twofold.FactorTOTP: "authenticator code",
	twofold.FactorSMS: "SMS", twofold.FactorCall: "call", twofold.FactorEmail: "email"}

var userMatches = []choice{
	{string(twofold.MatchID), "Twofold id (authy_id)"},
	{string(twofold.MatchCustomID), "Your own id for the user (custom_user_id)"},
	{string(twofold.MatchEmail), "Email"},
}

// matchName is how a client names users, for lists.
func matchName(m twofold.UserMatch) string {
	switch m {
	case twofold.MatchCustomID:
		return "customer's id"
	case twofold.MatchEmail:
		return "email"
	}
	return "Twofold id"
}

// clientPlaceholders are what the empty fields show.
var clientPlaceholders = map[string]string{
	"name":            "Okta",
	"hint_jwks_url":   "https://login.microsoftonline.com/common/discovery/v2.0/keys",
	"hint_issuer":     "https://login.microsoftonline.com/TENANT_ID/v2.0",
	"client_jwks_url": "https://app.example.com/.well-known/jwks.json",
	"auth0_domain":    "acme.us.auth0.com",
}

// formOf is a client's settings as the form shows them (a new client's defaults for the zero
// client).
func formOf(cl twofold.StepClient) clientForm {
	if len(cl.Factors) == 0 {
		cl.Factors = twofold.Factors
	}
	if cl.UserMatch == "" {
		cl.UserMatch = twofold.MatchID
	}
	v := map[string]string{"name": cl.Name, "redirect_uris": strings.Join(cl.RedirectURIs, "\n"), "user_match": string(cl.UserMatch),
		"allow_login_hint": checked(cl.AllowLoginHint), "hint_jwks_url": cl.HintJWKSURL, "hint_issuer": cl.HintIssuer,
		"client_jwks_url": cl.ClientJWKSURL, "auth0_domain": cl.Auth0Domain, "passwordless": checked(cl.Passwordless)}
	return clientForm{V: v, Factors: factorChoices(cl.Factors), Matches: userMatches, Errors: map[string]string{}}
}

// factorChoices are the factors' checkboxes: on, in the order offered, then the others. A
// form posts its checked boxes in this order, so saving keeps the order the client had.
func factorChoices(on []twofold.Factor) []factorChoice {
	var out []factorChoice
	for _, f := range on {
		if label, ok := factorLabels[f]; ok && !slices.ContainsFunc(out, func(x factorChoice) bool { return x.Value == string(f) }) {
			out = append(out, factorChoice{Value: string(f), Label: label, On: true})
		}
	}
	for _, f := range twofold.Factors {
		if !slices.Contains(on, f) {
			out = append(out, factorChoice{Value: string(f), Label: factorLabels[f]})
		}
	}
	return out
}

// parseClient reads the form into a spec of every setting, and the form as posted with the
// problems the console finds itself (the service's are added by checkClient).
func parseClient(r *http.Request) (hostedstep.Spec, clientForm) {
	v := map[string]string{}
	for _, f := range []string{"name", "redirect_uris", "user_match", "hint_jwks_url", "hint_issuer", "client_jwks_url", "auth0_domain"} {
		v[f] = strings.TrimSpace(r.PostFormValue(f))
	}
	loginHint, passwordless := r.PostFormValue("allow_login_hint") != "", r.PostFormValue("passwordless") != ""
	v["allow_login_hint"], v["passwordless"] = checked(loginHint), checked(passwordless)
	// URIs hold no spaces: one per line, or separated by spaces as pasted.
	uris := strings.Fields(v["redirect_uris"])
	v["redirect_uris"] = strings.Join(uris, "\n")
	factors := []twofold.Factor{}
	for _, f := range r.PostForm["factors"] {
		factors = append(factors, twofold.Factor(f))
	}
	match := twofold.UserMatch(v["user_match"])
	sp := hostedstep.Spec{Name: ptr(v["name"]), RedirectURIs: &uris, Factors: &factors, UserMatch: &match,
		AllowLoginHint: &loginHint, HintJWKSURL: ptr(v["hint_jwks_url"]), HintIssuer: ptr(v["hint_issuer"]),
		ClientJWKSURL: ptr(v["client_jwks_url"]), Auth0Domain: ptr(v["auth0_domain"]), Passwordless: &passwordless}
	form := clientForm{V: v, Factors: factorChoices(factors), Matches: userMatches, Errors: map[string]string{}}
	if len(factors) == 0 {
		// The service takes none for all; a form with every box cleared means something else.
		form.Errors["factors"] = "Choose at least one factor."
	}
	return sp, form
}

// clientFields are the form's fields by the service's names for them.
var clientFields = map[string]string{"redirect_uri": "redirect_uris"}

// report adds the problems of err (the service's invalid-parameter error) to the form, each
// beside its field, and says whether err was one; any other error is the caller's.
func (f *clientForm) report(err error) bool {
	var te *twofold.Error
	if !errors.As(err, &te) || te.Code != twofold.CodeInvalidParameter {
		return false
	}
	for field, msg := range te.Fields {
		if name, ok := clientFields[field]; ok {
			field = name
		}
		if _, ok := f.Errors[field]; ok {
			continue // the console's own message says more
		}
		f.Errors[field] = clientMessage(field, msg)
	}
	if len(te.Fields) == 0 {
		f.Error = "Not saved: " + sentence(te.Message)
	}
	return true
}

// clientMessage is the service's message about a field as a sentence beside that field.
func clientMessage(field, msg string) string {
	msg = strings.ReplaceAll(msg, "with hint_jwks_url", "with the identity provider's key set")
	subjects := map[string]string{"name": "The name", "user_match": "This", "hint_jwks_url": "The key set URL",
		"hint_issuer": "The issuer", "client_jwks_url": "The key set URL", "auth0_domain": "The domain",
		"passwordless": "Passwordless sign-in"}
	if s, ok := subjects[field]; ok && (strings.HasPrefix(msg, "is ") || strings.HasPrefix(msg, "must ") || strings.HasPrefix(msg, "needs ")) {
		msg = s + " " + msg
	}
	return sentence(msg)
}

// check completes the form's problems with what the service would refuse of sp applied to cl,
// and says whether there are any.
func (f *clientForm) check(sp hostedstep.Spec, cl twofold.StepClient) bool {
	f.report(sp.Check(cl))
	if len(f.Errors) > 0 && f.Error == "" {
		f.Error = errorCount(len(f.Errors))
	}
	return len(f.Errors) > 0 || f.Error != ""
}

type clientNewData struct {
	App  twofold.App
	Form clientForm
}

func (c *console) clientNew(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	c.page(w, r, q, http.StatusOK, "client_new", "New step client of "+a.Name, "apps", clientNewData{App: a, Form: formOf(twofold.StepClient{})})
}

func (c *console) clientCreate(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	sp, form := parseClient(r)
	var made hostedstep.Created
	err := errInvalidForm
	if !form.check(sp, twofold.StepClient{}) {
		made, err = c.d.StepClients.Create(r.Context(), a.ID, sp)
	}
	if err != nil {
		if err != errInvalidForm && !form.report(err) {
			c.fail(w, r, err)
			return
		}
		if form.Error == "" {
			form.Error = errorCount(len(form.Errors))
		}
		c.page(w, r, q, http.StatusUnprocessableEntity, "client_new", "New step client of "+a.Name, "apps", clientNewData{App: a, Form: form})
		return
	}
	c.keepSecrets(q, made, true)
	c.flash(q, "Step client "+made.Client.Name+" made.")
	http.Redirect(w, r, clientURL(a, made.Client), http.StatusSeeOther)
}

// errInvalidForm stands for a form the console refused before asking the service.
var errInvalidForm = errors.New("console: invalid form")

// keepSecrets holds the secrets just made for the client's page, which shows them once.
func (c *console) keepSecrets(q *request, made hostedstep.Created, isNew bool) {
	if made.Secret == "" && made.Auth0Secret == "" {
		return
	}
	s := &shownSecrets{ClientID: made.Client.ClientID, Secret: made.Secret, Auth0Secret: made.Auth0Secret, Made: isNew}
	c.sessions.update(q.sid, func(x *session) { x.secrets = s })
}

// endpoints are what a relying party is configured with.
type endpoints struct {
	Issuer, Discovery, Authorize, Token, JWKS string
	Auth0                                     string // the Action's redirect URL; "" for a client without an Auth0 tenant
	FromRequest                               bool   // no public URL: the addresses are this request's
}

// The provider's endpoints (internal/oidc, internal/auth0), under the issuer.
const (
	pathDiscovery = "/.well-known/openid-configuration"
	pathAuthorize = "/oauth2/authorize"
	pathToken     = "/oauth2/token"
	pathJWKS      = "/oauth2/jwks"
	pathAuth0     = "/auth0/"
)

func (c *console) endpoints(r *http.Request, cl twofold.StepClient) endpoints {
	iss := c.apiBase(r)
	e := endpoints{Issuer: iss, Discovery: iss + pathDiscovery, Authorize: iss + pathAuthorize, Token: iss + pathToken,
		JWKS: iss + pathJWKS, FromRequest: c.cfg.PublicURL == ""}
	if cl.Auth0Domain != "" {
		e.Auth0 = iss + pathAuth0 + url.PathEscape(cl.ClientID)
	}
	return e
}

type clientData struct {
	App     twofold.App
	Client  twofold.StepClient
	Form    clientForm
	Shown   *shownSecrets
	End     endpoints
	Factors []string // the factors offered, by name
	Match   string   // how users are named
}

func (c *console) clientPage(w http.ResponseWriter, r *http.Request, q *request, status int, a twofold.App, cl twofold.StepClient, form clientForm) {
	d := clientData{App: a, Client: cl, Form: form, End: c.endpoints(r, cl), Match: matchName(cl.UserMatch)}
	for _, f := range cl.Factors {
		d.Factors = append(d.Factors, factorNames[f])
	}
	if status == http.StatusOK {
		d.Shown = c.sessions.takeSecrets(q.sid, cl.ClientID)
	}
	c.page(w, r, q, status, "client", cl.Name+" · "+a.Name, "apps", d)
}

func (c *console) clientShow(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	c.clientPage(w, r, q, http.StatusOK, a, cl, formOf(cl))
}

func (c *console) clientSave(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	sp, form := parseClient(r)
	var up hostedstep.Created
	err := errInvalidForm
	if !form.check(sp, cl) {
		up, err = c.d.StepClients.Update(r.Context(), cl.ClientID, sp, hostedstep.Rotation{})
	}
	if err != nil {
		if errors.Is(err, twofold.ErrNotFound) { // deleted meanwhile
			c.notFound(w, r, q)
			return
		}
		if err != errInvalidForm && !form.report(err) {
			c.fail(w, r, err)
			return
		}
		if form.Error == "" {
			form.Error = errorCount(len(form.Errors))
		}
		c.clientPage(w, r, q, http.StatusUnprocessableEntity, a, cl, form)
		return
	}
	// A new Auth0 tenant gets the Action's secret, shown once like the others.
	c.keepSecrets(q, up, false)
	c.flash(q, "Settings saved.")
	http.Redirect(w, r, clientURL(a, up.Client), http.StatusSeeOther)
}

// rotation is the secret a rotation address names, and its name for people.
func rotation(cl twofold.StepClient, kind string) (hostedstep.Rotation, string, bool) {
	switch {
	case kind == "secret":
		return hostedstep.Rotation{Secret: true}, "client secret", true
	case kind == "auth0-secret" && cl.Auth0Domain != "":
		return hostedstep.Rotation{Auth0Secret: true}, "Auth0 Action secret", true
	}
	return hostedstep.Rotation{}, "", false
}

func (c *console) clientRotateConfirm(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	rot, what, ok := rotation(cl, r.PathValue("kind"))
	if !ok {
		c.notFound(w, r, q)
		return
	}
	text := "A new client secret is made and shown once. The current one stops working at once: the relying party cannot redeem codes or sign request objects with it until it has the new one."
	if rot.Auth0Secret {
		text = "A new secret is made and shown once. The current one stops working at once: the Auth0 Action's redirects are refused until its secret (TWOFOLD_SECRET) holds the new one."
	}
	c.page(w, r, q, http.StatusOK, "confirm", "Rotate the "+what+" of "+cl.Name, "apps", confirmData{
		App: a, Heading: "Rotate the " + what + " of " + cl.Name + "?", Text: text,
		Action: clientURL(a, cl) + "/rotate/" + r.PathValue("kind"), Button: "Rotate the " + what, Danger: true, Cancel: clientURL(a, cl)})
}

func (c *console) clientRotate(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	rot, what, ok := rotation(cl, r.PathValue("kind"))
	if !ok {
		c.notFound(w, r, q)
		return
	}
	up, err := c.d.StepClients.Update(r.Context(), cl.ClientID, hostedstep.Spec{}, rot)
	if errors.Is(err, twofold.ErrNotFound) {
		c.notFound(w, r, q)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.keepSecrets(q, up, false)
	c.flash(q, "New "+what+" made: the old one no longer works.")
	http.Redirect(w, r, clientURL(a, cl), http.StatusSeeOther)
}

func (c *console) clientDeleteConfirm(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	c.page(w, r, q, http.StatusOK, "confirm", "Delete "+cl.Name, "apps", confirmData{
		App: a, Heading: "Delete the step client " + cl.Name + "?",
		Text: "This cannot be undone; the audit trail keeps a record that it happened.",
		Consequences: []string{"its relying party can no longer send users to the step: their sign-ins fail",
			"its secrets stop working at once", "users in its step now lose their sign-in"},
		Action: clientURL(a, cl) + "/delete", Button: "Delete the client", Danger: true, Cancel: clientURL(a, cl)})
}

func (c *console) clientDelete(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cl twofold.StepClient) {
	if err := c.d.StepClients.Delete(r.Context(), cl.ClientID); err != nil && !errors.Is(err, twofold.ErrNotFound) {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Step client "+cl.Name+" deleted.")
	http.Redirect(w, r, appURL(a)+"#step-clients", http.StatusSeeOther)
}

// clientRow is a client as an application's page lists it.
type clientRow struct {
	C       twofold.StepClient
	Factors []string
	Match   string
	URIs    []string // the first redirect URIs
	More    int      // how many more the client's page shows
}

// listedURIs is how many redirect URIs a row shows: a client may have ten, each long.
const listedURIs = 2

// appClients are an application's step clients and the form for a new one.
type appClients struct {
	Rows []clientRow
	Form clientForm
}

// stepClientsOf lists an application's clients for its page; nil without step clients.
func (c *console) stepClientsOf(r *http.Request, a twofold.App) (*appClients, error) {
	if c.d.StepClients == nil {
		return nil, nil
	}
	list, err := c.d.StepClients.List(r.Context(), a.ID)
	if err != nil {
		return nil, err
	}
	out := &appClients{Form: formOf(twofold.StepClient{})}
	for _, cl := range list {
		row := clientRow{C: cl, Match: matchName(cl.UserMatch), URIs: cl.RedirectURIs}
		if len(row.URIs) > listedURIs {
			row.URIs, row.More = row.URIs[:listedURIs], len(row.URIs)-listedURIs
		}
		for _, f := range cl.Factors {
			row.Factors = append(row.Factors, factorNames[f])
		}
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}
