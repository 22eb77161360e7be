package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// homeStyle is the home page's only style, allowed by its hash in homeCSP: the page needs no
// file of its own.
const homeStyle = `
:root { color-scheme: light dark; --fg: #1d2327; --muted: #4b5563; --bg: #ffffff; --link: #0b57d0; --line: #d0d7de; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #b1bac4; --bg: #0d1117; --link: #79b8ff; --line: #30363d; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 40rem; margin: 0 auto; padding: 3rem 1.25rem; }
h1 { font-size: 1.75rem; margin: 0 0 .5rem; }
p { margin: 0 0 1rem; color: var(--muted); }
ul { list-style: none; padding: 0; margin: 1.5rem 0; }
li { border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; margin: 0 0 .75rem; }
li a { font-size: 1.125rem; font-weight: 600; color: var(--link); }
li p { margin: .25rem 0 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
`

const homePage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Twofold</title>
<style>` + homeStyle + `</style>
</head>
<body>
<main>
<h1>Twofold</h1>
<p>This server provides two-factor authentication for applications that use the Authy API.</p>
<ul>
<li><a href="/console/">Console</a>
<p>For operators: applications and their API keys, users, approvals, deliveries and the audit trail.</p></li>
<li><a href="/authenticator/">Web authenticator</a>
<p>For people signing in: approve or deny requests and read codes, in this browser.</p></li>
</ul>
<p>Applications call the API under <code>/protected/json/</code> and <code>/onetouch/json/</code>.</p>
</main>
</body>
</html>
`

// homeJSON answers clients that do not ask for HTML (curl, scripts): where things are.
const homeJSON = `{"name":"Twofold","console":"/console/","authenticator":"/authenticator/","api":"/protected/json/","health":"/healthz"}` + "\n"

// homeCSP allows nothing but the page's own style.
var homeCSP = func() string {
	sum := sha256.Sum256([]byte(homeStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// Home serves GET / (mount it at "GET /{$}"): a page that points a browser to the console and
// the web authenticator, or, for a client that does not accept HTML, the same as JSON. No Authy
// client asks for /: the API's paths all start with /protected or /onetouch.
func Home() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Vary", "Accept")
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.Contains(r.Header.Get("Accept"), "text/html") {
			h.Set("Content-Type", "application/json; charset=utf-8")
			w.Write([]byte(homeJSON))
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", homeCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		w.Write([]byte(homePage))
	})
}
