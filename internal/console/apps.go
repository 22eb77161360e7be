package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// app wraps the handlers of one application's pages. The console's own application (whose
// users are the operators) is not managed here: its settings guard the console's sign-in.
func (c *console) app(next func(http.ResponseWriter, *http.Request, *request, twofold.App)) http.HandlerFunc {
	return c.full(func(w http.ResponseWriter, r *http.Request, q *request) {
		id, err := strconv.ParseInt(r.PathValue("app"), 10, 64)
		if err != nil || id <= 0 {
			c.notFound(w, r, q)
			return
		}
		a, err := c.d.Apps.Get(r.Context(), id)
		if errors.Is(err, twofold.ErrNotFound) || (err == nil && a.Console) {
			c.notFound(w, r, q)
			return
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		next(w, r, q, a)
	})
}

// health names the state of an application's callbacks, for badges.
func health(a twofold.App) string {
	switch {
	case a.CallbackURL == "":
		return "none"
	case a.CallbackDisabled():
		return "disabled"
	case a.CallbackFailures > 0:
		return "failing"
	}
	return "healthy"
}

type appRow struct {
	App    twofold.App
	Users  int64
	Health string
}

// customerApps lists the applications operators manage (not the console's own).
func (c *console) customerApps(r *http.Request) ([]twofold.App, error) {
	list, err := c.d.Apps.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := list[:0:0]
	for _, a := range list {
		if !a.Console {
			out = append(out, a)
		}
	}
	return out, nil
}

func (c *console) appList(w http.ResponseWriter, r *http.Request, q *request) {
	list, err := c.customerApps(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rows := make([]appRow, 0, len(list))
	for _, a := range list {
		n, err := c.d.Queries.CountUsers(r.Context(), a.ID)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		rows = append(rows, appRow{App: a, Users: n, Health: health(a)})
	}
	c.page(w, r, q, http.StatusOK, "apps", "Applications", "apps", rows)
}

type newAppData struct {
	Name    string
	Sandbox bool
	Error   string
}

func (c *console) appNew(w http.ResponseWriter, r *http.Request, q *request) {
	c.page(w, r, q, http.StatusOK, "app_new", "New application", "apps", newAppData{})
}

type keyData struct {
	App     twofold.App
	Key     string
	Rotated bool
	Start   startData
}

// startData is how a customer's backend starts using an application: the API's base URL and
// a first call. Key is the API key when the page shows it anyway; otherwise the commands
// fetch it on the server.
type startData struct {
	Base  string
	AppID int64
	Key   string
}

// apiBase is the URL the API is reached at: the public URL, else this request's own origin.
func (c *console) apiBase(r *http.Request) string {
	if c.cfg.PublicURL != "" {
		return strings.TrimRight(c.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *console) appCreate(w http.ResponseWriter, r *http.Request, q *request) {
	d := newAppData{Name: strings.TrimSpace(r.PostFormValue("name")), Sandbox: r.PostFormValue("sandbox") != ""}
	a, key, err := c.d.Apps.Create(r.Context(), apps.CreateParams{Name: d.Name, Sandbox: d.Sandbox})
	if errors.Is(err, apps.ErrInvalid) {
		d.Error = invalidText(err)
		c.page(w, r, q, http.StatusUnprocessableEntity, "app_new", "New application", "apps", d)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusCreated, "app_key", "API key of "+a.Name, "apps", keyData{App: a, Key: key,
		Start: startData{Base: c.apiBase(r), AppID: a.ID, Key: key}})
}

// invalidText is a validation error as a sentence.
func invalidText(err error) string {
	msg := strings.TrimPrefix(err.Error(), apps.ErrInvalid.Error()+": ")
	if msg == "" {
		return "That is not valid."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

type appData struct {
	App       twofold.App
	Users     int64
	Health    string
	Callbacks []callbackRow
	Charts    []chart
	Start     startData
	CanTest   bool         // test callbacks can be sent
	Test      *testOutcome // the test callback just sent, if any
	Clients   *appClients  // its step clients; nil without them
	Twilio    *appTwilio   // its Verify API credentials and services; nil when not shown
}

func (c *console) appShow(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	n, err := c.d.Queries.CountUsers(r.Context(), a.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cbs, err := c.d.Queries.ListCallbacks(r.Context(), twofold.CallbackFilter{AppID: a.ID, Limit: 10})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	charts, err := c.charts(r, a.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	clients, err := c.stepClientsOf(r, a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tw, err := c.twilioOf(r, q, a)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "app", a.Name, "apps", appData{App: a, Users: n, Health: health(a),
		Callbacks: c.describeCallbacks(cbs, map[int64]twofold.App{a.ID: a}), Charts: charts,
		Start: startData{Base: c.apiBase(r), AppID: a.ID}, CanTest: c.d.Callbacks != nil, Test: c.sessions.takeTest(q.sid, a.ID),
		Clients: clients, Twilio: tw})
}

func (c *console) appEnableCallbacks(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	if _, err := c.d.Apps.Update(r.Context(), a.ID, apps.Update{EnableCallback: true}); err != nil {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Callbacks re-enabled: the callbacks kept while they were paused are being delivered.")
	http.Redirect(w, r, appURL(a), http.StatusSeeOther)
}

func appURL(a twofold.App) string { return "/console/apps/" + strconv.FormatInt(a.ID, 10) }

// confirmData is the data of a page that asks before doing something that cannot be undone.
type confirmData struct {
	App          twofold.App
	Heading      string
	Text         string
	Action       string // where the form posts
	Button       string
	Danger       bool
	TypeName     string // when set, the operator must type this to confirm
	Error        string
	Cancel       string
	Consequences []string
}

func (c *console) appRotateConfirm(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	c.page(w, r, q, http.StatusOK, "confirm", "Rotate the API key of "+a.Name, "apps", confirmData{
		App: a, Heading: "Rotate the API key of " + a.Name + "?",
		Text:   "A new key is made and shown once. The current key stops working at once: every backend that uses it fails until it has the new one, and callbacks are signed with the new key.",
		Action: appURL(a) + "/rotate", Button: "Rotate the key", Danger: true, Cancel: appURL(a)})
}

func (c *console) appRotate(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	a, key, err := c.d.Apps.RotateKey(r.Context(), a.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "app_key", "New API key of "+a.Name, "apps", keyData{App: a, Key: key, Rotated: true,
		Start: startData{Base: c.apiBase(r), AppID: a.ID, Key: key}})
}

func (c *console) deleteAppData(a twofold.App, errText string) confirmData {
	return confirmData{
		App: a, Heading: "Delete " + a.Name + "?",
		Text: "This deletes the application and everything it holds. It cannot be undone; the audit trail keeps a record that it happened.",
		Consequences: []string{"its API key stops working at once", "its users, their authenticators and registered devices",
			"its approval requests and callbacks not yet delivered", "its outbox messages and statistics"},
		Action: appURL(a) + "/delete", Button: "Delete the application", Danger: true, TypeName: a.Name, Error: errText, Cancel: appURL(a)}
}

func (c *console) appDeleteConfirm(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	c.page(w, r, q, http.StatusOK, "confirm", "Delete "+a.Name, "apps", c.deleteAppData(a, ""))
}

func (c *console) appDelete(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	if r.PostFormValue("confirm_name") != a.Name {
		c.page(w, r, q, http.StatusUnprocessableEntity, "confirm", "Delete "+a.Name, "apps",
			c.deleteAppData(a, "Type the application's name exactly as shown to delete it."))
		return
	}
	if err := c.d.Apps.Delete(r.Context(), a.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Application "+a.Name+" deleted.")
	http.Redirect(w, r, "/console/apps", http.StatusSeeOther)
}

// since reads a time filter: 1h, 24h, 7d, 30d, or all (the zero time).
func since(now time.Time, v string) (time.Time, string) {
	switch v {
	case "1h":
		return now.Add(-time.Hour), v
	case "7d":
		return now.AddDate(0, 0, -7), v
	case "30d":
		return now.AddDate(0, 0, -30), v
	case "all":
		return time.Time{}, v
	}
	return now.Add(-24 * time.Hour), "24h"
}
