// Package step serves the hosted second-factor step's page (/step/{handle}): the page a relying
// party's wire adapter (internal/oidc, the Auth0 redirect) sends a user to once it has begun a
// session (hostedstep.Steps.Begin), and which hands the result back through the adapter's
// Finisher once the user passed a factor or gave up.
package step

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/twofold-auth/twofold/internal/hostedstep"
)

// Path is where the page is served: Path + handle.
const Path = "/step/"

// cookiePrefix names the cookie that binds a session to the browser that began it. Each session
// has its own (the prefix and the start of its handle), so two sign-ins in two tabs do not undo
// each other.
const cookiePrefix = "tf_step_"

// CookieName is the name of the cookie of the session with handle.
func CookieName(handle string) string {
	if len(handle) > 12 {
		handle = handle[:12]
	}
	return cookiePrefix + handle
}

// Enter sends the browser to the page of the session b just begun, with its browser secret in a
// cookie only the page's path receives (HttpOnly, SameSite=Lax so it comes along on the
// redirect from the relying party, Secure when the server is reached over https). ttl is the
// session's life.
func Enter(w http.ResponseWriter, r *http.Request, b hostedstep.Begun, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: CookieName(b.Handle), Value: b.Browser, Path: Path + b.Handle,
		Expires: b.Session.ExpiresAt, MaxAge: int(time.Until(b.Session.ExpiresAt).Seconds()) + 1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, Path+url.PathEscape(b.Handle), http.StatusSeeOther)
}

// Browser returns the browser secret the request carries for the session with handle.
func Browser(r *http.Request, handle string) string {
	c, err := r.Cookie(CookieName(handle))
	if err != nil {
		return ""
	}
	return c.Value
}

// Finisher hands a step's outcome back to the relying party that began it, through the
// browser: each wire adapter (a dialect) has one. Both write the whole response.
type Finisher interface {
	// Finish is called once the session has passed: it issues the result (an authorization
	// code, an id token, a signed token) and sends the browser back with it.
	Finish(w http.ResponseWriter, r *http.Request, v hostedstep.View) error
	// Refuse sends the browser back with a refusal: the user gave up, or the step failed.
	Refuse(w http.ResponseWriter, r *http.Request, v hostedstep.View, reason string) error
}

// Dialect reads which wire adapter began a session: the "dialect" member of the request it
// stored.
func Dialect(v hostedstep.View) string {
	var d struct {
		Dialect string `json:"dialect"`
	}
	_ = json.Unmarshal(v.Session.Request, &d)
	return d.Dialect
}
