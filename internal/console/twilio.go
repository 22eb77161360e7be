package console

import (
	"context"
	"errors"
	"net/http"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// An application's Verify API credentials (docs/verify-v2.md), as `twofold app
// twilio-credentials` manages them: its account SID and auth token, its API keys, and its
// Verify services (read-only here). A token or secret is shown once: the post that makes it
// keeps it in the operator's session and redirects to the application's page, which takes it
// from there, as a step client's secrets are shown. Changes are audited by internal/apps.

// Twilio manages an application's Verify API credentials (*apps.Service).
type Twilio interface {
	TwilioCredentials(ctx context.Context, appID int64) ([]twofold.TwilioCredential, error)
	CreateTwilioAccount(ctx context.Context, appID int64) (twofold.TwilioCredential, string, error)
	RotateTwilioToken(ctx context.Context, appID int64) (twofold.TwilioCredential, string, error)
	CreateTwilioKey(ctx context.Context, appID int64, name string) (twofold.TwilioCredential, string, error)
	RevokeTwilioKey(ctx context.Context, appID int64, sid string) error
	VerifyServices(ctx context.Context, app twofold.App, after int64, offset, limit int) ([]twofold.VerifyService, error)
}

// shownTwilio is a token or secret just made, on its way to the application's page.
type shownTwilio struct {
	AppID  int64
	SID    string
	Secret string
	Token  bool // the account's auth token, else an API key's secret
}

// appTwilio is the application page's Verify API section.
type appTwilio struct {
	Account  *twofold.TwilioCredential
	Keys     []twofold.TwilioCredential
	Services []twofold.VerifyService
	More     bool // more services than listed
	Shown    *shownTwilio
	Error    string
}

// listedServices bounds the services the application's page lists.
const listedServices = 20

func (c *console) twilioRoutes(m routeNotes) {
	const base = "/console/apps/{app}/twilio/"
	m.HandleFunc("POST "+base+"create", c.post(c.app(c.twilioCreate)))
	m.HandleFunc("POST "+base+"rotate", c.post(c.app(c.twilioRotate)))
	m.HandleFunc("POST "+base+"keys", c.post(c.app(c.twilioCreateKey)))
	m.HandleFunc("POST "+base+"keys/{sid}/revoke", c.post(c.app(c.twilioRevoke)))
}

// twilioOf is the application's Verify API section; nil when the console manages none.
func (c *console) twilioOf(r *http.Request, q *request, a twofold.App) (*appTwilio, error) {
	if c.d.Twilio == nil || a.Console {
		return nil, nil
	}
	creds, err := c.d.Twilio.TwilioCredentials(r.Context(), a.ID)
	if err != nil {
		return nil, err
	}
	out := &appTwilio{Shown: c.sessions.takeTwilio(q.sid, a.ID)}
	for i := range creds {
		if creds[i].Kind == twofold.TwilioAccount {
			out.Account = &creds[i]
		} else {
			out.Keys = append(out.Keys, creds[i])
		}
	}
	if out.Services, err = c.d.Twilio.VerifyServices(r.Context(), a, 0, 0, listedServices+1); err != nil {
		return nil, err
	}
	if len(out.Services) > listedServices {
		out.Services, out.More = out.Services[:listedServices], true
	}
	return out, nil
}

// twilioDone keeps the secret just made for the application's page and goes there.
func (c *console) twilioDone(w http.ResponseWriter, r *http.Request, q *request, a twofold.App, cred twofold.TwilioCredential, secret string, err error, msg string) {
	if errors.Is(err, apps.ErrInvalid) || errors.Is(err, twofold.ErrNotFound) {
		c.flash(q, invalidText(err))
		http.Redirect(w, r, appURL(a)+"#verify-api", http.StatusSeeOther)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	s := &shownTwilio{AppID: a.ID, SID: cred.SID, Secret: secret, Token: cred.Kind == twofold.TwilioAccount}
	c.sessions.update(q.sid, func(x *session) { x.twilio = s })
	c.flash(q, msg)
	http.Redirect(w, r, appURL(a)+"#verify-api", http.StatusSeeOther)
}

func (c *console) twilioCreate(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	cred, token, err := c.d.Twilio.CreateTwilioAccount(r.Context(), a.ID)
	c.twilioDone(w, r, q, a, cred, token, err, "Verify API credentials made.")
}

func (c *console) twilioRotate(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	cred, token, err := c.d.Twilio.RotateTwilioToken(r.Context(), a.ID)
	c.twilioDone(w, r, q, a, cred, token, err, "Auth token rotated: the old one no longer works.")
}

func (c *console) twilioCreateKey(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	cred, secret, err := c.d.Twilio.CreateTwilioKey(r.Context(), a.ID, r.PostFormValue("name"))
	c.twilioDone(w, r, q, a, cred, secret, err, "API key made.")
}

func (c *console) twilioRevoke(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	err := c.d.Twilio.RevokeTwilioKey(r.Context(), a.ID, r.PathValue("sid"))
	if errors.Is(err, apps.ErrInvalid) || errors.Is(err, twofold.ErrNotFound) {
		c.notFound(w, r, q)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "API key revoked: it no longer works.")
	http.Redirect(w, r, appURL(a)+"#verify-api", http.StatusSeeOther)
}
