package step

import (
	"html/template"
	"net/http"
	"net/url"
)

// Responses the wire dialects send to the browser outside the page: a form that posts a
// result to the relying party (OAuth 2.0 Form Post Response Mode, Auth0's /continue), and an
// error page for a request that cannot go back to its relying party.

var postPage = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing you in…</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body onload="document.forms[0].submit()"><main>
<form method="post" action="{{.Action}}">{{range $k, $v := .Values}}{{range $v}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><p>JavaScript is off: press the button to continue.</p></noscript>
<button type="submit">Continue</button></form></main></body></html>`))

// onloadHash is the CSP hash of the form-post page's onload handler,
// "document.forms[0].submit()" (TestFormPostHash recomputes it).
const onloadHash = "ePniVEkSivX/c7XWBGafqh8tSpiRrKiqYeqbG7N1TOE="

// FormPost answers with a page that posts values to action at once (with a button when
// JavaScript is off). Its policy allows only that handler, form posts only to action's origin,
// and no framing.
func FormPost(w http.ResponseWriter, action string, values url.Values) {
	origin := "'none'"
	if u, err := url.Parse(action); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-hashes' 'sha256-"+onloadHash+"'; form-action "+origin+"; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	_ = postPage.Execute(w, struct {
		Action string
		Values url.Values
	}{action, values})
}

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in stopped</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Sign-in stopped</h1><p>{{.}}</p><p>Go back to the application and start again.</p></main></body></html>`))

// ErrorPage answers a sign-in request that cannot go back to its relying party.
func ErrorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = errorTemplate.Execute(w, msg)
}
