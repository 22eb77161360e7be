package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/web"
)

//go:embed templates static
var files embed.FS

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the section of the navigation to highlight
	Op    *twofold.Operator
	CSRF  string
	Flash string
	Data  any
}

// message is the data of the plain message page.
type message struct {
	Heading, Text  string
	Code           string // a command to show
	Link, LinkText string
}

var funcs = template.FuncMap{
	// when shows a time in UTC, in a <time> element (made of digits only).
	"when": func(t time.Time) template.HTML {
		if t.IsZero() {
			return "—"
		}
		t = t.UTC()
		// The date and the time may go on two lines of a narrow column, each kept whole.
		return template.HTML(`<time datetime="` + t.Format(time.RFC3339) + `"><span>` + t.Format("2006-01-02") +
			`</span> <span>` + t.Format("15:04:05") + ` UTC</span></time>`)
	},
	"phone": func(u twofold.User) string {
		if u.Phone == "" {
			return ""
		}
		return "+" + strconv.Itoa(u.CountryCode) + " " + u.Phone
	},
	"join": strings.Join,
	// label is how people know a user: email, else the customer's id, else the phone.
	"label": users.Label,
	"seconds": func(d time.Duration) string {
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%d s", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
		}
		return d.Round(time.Minute).String()
	},
	"list": func(v ...string) []string { return v },
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	"cfield": cfield,
	"secretRow": func(id, label, value string) struct{ ID, Label, Value string } {
		return struct{ ID, Label, Value string }{id, label, value}
	},
	// field bundles what a settings input shows.
	"field": func(name, label string, d settingsData, hint, help string) formField {
		return formField{Name: name, Label: label, Value: d.V[name], Error: d.Errors[name], Hint: hint, Help: help,
			Default: d.Defaults[name]}
	},
}

// cfield bundles what a step client's input shows.
func cfield(name, label string, d clientForm, hint, help string) formField {
	return formField{Name: name, Label: label, Value: d.V[name], Error: d.Errors[name], Hint: hint, Help: help, Default: clientPlaceholders[name]}
}

type formField struct {
	Name, Label, Value, Error, Hint, Help string
	Default                               string // what an empty field means, shown as its placeholder
}

// pages are the templates, each parsed with the layout.
var pages = sync.OnceValue(func() map[string]*template.Template {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		out[strings.TrimSuffix(base, ".html")] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(files, "templates/layout.html", "templates/parts/*.html", name))
	}
	return out
})

// render writes page name with v. A session's flash message is shown once.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := pages()[name]
	if !ok {
		panic("console: no template " + name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		c.cfg.Log.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// page renders a page of a signed-in operator.
func (c *console) page(w http.ResponseWriter, r *http.Request, q *request, status int, name, title, nav string, data any) {
	op := q.sess.op
	c.render(w, r, status, name, &view{Title: title, Nav: nav, Op: &op, CSRF: q.sess.csrf,
		Flash: c.sessions.takeFlash(q.sid), Data: data})
}

// flash leaves a message for the operator's next page.
func (c *console) flash(q *request, msg string) {
	c.sessions.update(q.sid, func(s *session) { s.flash = msg })
}

func (c *console) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	c.render(w, r, http.StatusForbidden, "message", &view{Title: "Refused", Data: message{
		Heading: "Refused", Text: why, Link: "/console/", LinkText: "Back to the console"}})
}

func (c *console) notFound(w http.ResponseWriter, r *http.Request, q *request) {
	c.page(w, r, q, http.StatusNotFound, "message", "Not found", "", message{
		Heading: "Not found", Text: "There is nothing at this address.", Link: "/console/", LinkText: "Back to the console"})
}

// fail answers an unexpected error: logged, and a page that says so without details.
func (c *console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if accesslog.ClientGone(c.cfg.Log, r, err, "surface", "console") {
		return
	}
	c.cfg.Log.Error("console: request failed", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "message", &view{Title: "Error", Data: message{
		Heading: "Something went wrong", Text: "The server could not do that. The error is in its log.",
		Link: "/console/", LinkText: "Back to the console"}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var assets = sync.OnceValue(func() map[string]web.Asset { return web.Assets(files, "static") })

// static serves the console's CSS and JS, revalidated by ETag.
func (c *console) static(w http.ResponseWriter, r *http.Request) {
	a, ok := assets()[r.PathValue("file")]
	if !ok {
		c.render(w, r, http.StatusNotFound, "message", &view{Title: "Not found", Data: message{
			Heading: "Not found", Text: "There is nothing at this address.", Link: "/console/", LinkText: "Back to the console"}})
		return
	}
	a.Serve(w, r)
}
