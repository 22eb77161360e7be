package step

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web"
)

//go:embed templates static texts
var files embed.FS

var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page.html").ParseFS(files, "templates/page.html"))
})

// pageState is what a handler decides to show.
type pageState struct {
	State  string         // choose, push, code, send, sent, passed, denied, none; username, signin, signin_failed; expired, error, refused
	Via    twofold.Factor // the factor of a push, code, send or sent page
	Number string         // the number to pick on the device
	Error  string         // a key of the texts
	Typed  string         // the name typed, shown again on the username form after an error
}

// headings are each state's heading, also the page's title.
var headings = map[string]string{
	"choose": "choose_h", "push": "push_h", "code": "totp_h", "recovery": "recovery_h", "passed": "passed_h", "denied": "denied_h", "none": "none_h",
	"expired": "expired_h", "error": "error_h", "refused": "refused_h",
	statePasskey: "passkey_h", stateUsername: "pl_h", stateSignin: "pl_wait_h", stateSigninFailed: "pl_failed_h",
}

// pageData is what the template gets.
type pageData struct {
	pageState
	Lang    string
	Heading string // a key of the texts
	App     string // the application's name
	Initial string // its first letter, for the badge
	Logo    string // its logo's https URL, shown instead of the badge; "" for none
	Base    string // the page's path; "" without a session
	CSRF    string
	Options []option
	Other   bool   // another way than Via is offered
	Phone   string // masked: what the user recognises, not what a shoulder-surfer learns
	Email   string
	Name    string // what the username form asks for: email or username
	Footer  string // a key of the texts: a second factor, or a passwordless sign-in
}

// option is one way to pass the step, on the choose page.
type option struct {
	Factor twofold.Factor
	Label  string // a key of the texts
	Send   bool   // choosing it sends a code (a form), rather than opening its page (a link)
}

// T is the text key in the page's language, with the names it mentions filled in.
func (d pageData) T(key string) string {
	return strings.NewReplacer("{app}", d.App, "{phone}", d.Phone, "{email}", d.Email).Replace(tr(d.Lang, key))
}

// render writes the page of an open session (x) or, with x nil, of a request without one.
func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, x *visit, st pageState) {
	d := pageData{pageState: st, Lang: locale(r, nil), Heading: headings[st.State], Footer: "secured_by"}
	formAction, images := "'none'", ""
	if x != nil {
		v := x.v
		d.Lang, d.App, d.Base, d.CSRF = x.lang, v.App.Name, x.base(), p.csrf(x)
		if c, _ := utf8.DecodeRuneInString(v.App.Name); c != utf8.RuneError {
			d.Initial = string(unicode.ToUpper(c))
		}
		if o := logoOrigin(v.App.LogoURL); o != "" {
			d.Logo, images = v.App.LogoURL, " "+o
		}
		d.Phone, d.Email = maskPhone(v.User), maskEmail(v.User.Email)
		for _, f := range v.Offer {
			d.Options = append(d.Options, option{Factor: f, Label: "opt_" + string(f), Send: channels[f] != ""})
			if f != st.Via {
				d.Other = true
			}
		}
		if v.RecoveryCodes > 0 {
			d.Options = append(d.Options, option{Factor: twofold.FactorRecoveryCode, Label: "opt_recovery_code"})
			if st.Via != twofold.FactorRecoveryCode {
				d.Other = true
			}
		}
		if st.Via == "" {
			d.Other = len(d.Options) > 0
		}
		formAction = formActions(v.Client)
		if v.Session.Passwordless {
			d.Name, d.Footer = nameKind(v), "pl_by"
		}
	}
	switch st.State {
	case "send", "sent":
		d.Heading = string(st.Via) + "_h"
		if st.State == "sent" {
			d.Heading = string(st.Via) + "_sent_h"
		}
	}
	var buf bytes.Buffer
	if err := pageTemplate().Execute(&buf, d); err != nil {
		p.log.Error("step: rendering the page", "state", st.State, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	pageHeaders(w.Header(), formAction)
	if images != "" { // the application's logo comes from its own site
		w.Header().Set("Content-Security-Policy", strings.Replace(w.Header().Get("Content-Security-Policy"),
			"img-src 'self' data:;", "img-src 'self' data:"+images+";", 1))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", d.Lang)
	w.Header().Add("Vary", "Accept-Language")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// logoOrigin is the origin of an application's logo URL for the page's CSP, or "" when the URL
// is not one the page shows (the applications service takes only https URLs).
func logoOrigin(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(u.Host, " ;'\"") {
		return ""
	}
	return "https://" + u.Host
}

// message writes a page that only says something: expired, error, refused.
func (p *Page) message(w http.ResponseWriter, r *http.Request, status int, state string, x *visit) {
	p.render(w, r, status, x, pageState{State: state})
}

// contentSecurityPolicy is the page's policy: only its own script and style files run (no
// inline script), it talks only to itself, and it cannot be framed. Forms post to the page;
// formActions adds where its Finisher may send the browser on (form-action covers the
// redirects that follow a form), which is the client's registered redirect URIs.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; object-src 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'; form-action "

// pageHeaders are the security headers of every answer of the page.
func pageHeaders(h http.Header, formAction string) {
	h.Set("Content-Security-Policy", contentSecurityPolicy+formAction)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// formActions is the form-action source list for a client: this page, and the origins of the
// client's registered redirect URIs and of its Auth0 tenant.
func formActions(c twofold.StepClient) string {
	list := []string{"'self'"}
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !cspHost(u.Host) {
			return
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(list, o) {
			list = append(list, o)
		}
	}
	for _, u := range c.RedirectURIs {
		add(u)
	}
	if c.Auth0Domain != "" {
		add("https://" + c.Auth0Domain)
	}
	return strings.Join(list, " ")
}

// cspHost reports whether a URL's host (and port) can stand in a policy as it is: nothing that
// would end a source or the directive.
func cspHost(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	pageHeaders(w.Header(), "'none'")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maskPhone shows a phone number by its country code and last two digits.
func maskPhone(u twofold.User) string {
	if len(u.Phone) < 4 {
		return ""
	}
	return "+" + strconv.Itoa(u.CountryCode) + " " + strings.Repeat("•", len(u.Phone)-2) + u.Phone[len(u.Phone)-2:]
}

// maskEmail shows an address by the first letter of its mailbox and its domain.
func maskEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" {
		return ""
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "•••@" + domain
}

// browserLabel names the browser a push was asked from, for the device to show ("Firefox on
// Android"), from a fixed list: the User-Agent itself is never shown.
func browserLabel(ua string) string {
	browser := ""
	for _, b := range [][2]string{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}} {
		if strings.Contains(ua, b[0]) {
			browser = b[1]
			break
		}
	}
	system := ""
	for _, s := range [][2]string{{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, s[0]) {
			system = s[1]
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	}
	return system
}

var assets = sync.OnceValue(func() map[string]web.Asset { return web.Assets(files, "static") })

func assetNames() []string {
	var names []string
	for n := range assets() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// serveAsset serves the page's CSS and JS, revalidated by ETag.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header(), "'none'")
	assets()[path.Base(r.URL.Path)].Serve(w, r)
}
