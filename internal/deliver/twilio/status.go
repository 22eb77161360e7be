package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

// SignatureHeader is the header Twilio signs its webhook requests with.
const SignatureHeader = "X-Twilio-Signature"

const maxCallbackBody = 64 << 10 // a status callback is well under 2 KiB

// Signature computes Twilio's webhook signature: base64(HMAC-SHA1(authToken, callbackURL
// followed by each POST parameter's name and value, sorted by name)). callbackURL is the URL
// exactly as Twilio was given it, query included; values are used decoded, not URL-encoded.
// Repeated names contribute each value, in sorted order, as Twilio's own libraries do.
func Signature(authToken, callbackURL string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	io.WriteString(mac, callbackURL)
	for _, name := range slices.Sorted(maps.Keys(params)) {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			io.WriteString(mac, name)
			io.WriteString(mac, v)
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// StatusHandler receives Twilio's status callbacks for messages and calls sent with
// StatusCallbackURL and passes each verified update on: the provider id (MessageSid or
// CallSid), its status (MessageStatus or CallStatus) and Twilio's ErrorCode, if any.
//
// It answers 403 to a request without a valid signature (also when no StatusCallbackURL is
// configured: nothing can be verified), 400 to a malformed one, 500 when update fails, so
// Twilio tries again, and 204 otherwise.
func (c *Client) StatusHandler(update func(ctx context.Context, providerID, status, errorCode string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		signature := r.Header.Get(SignatureHeader)
		if signature == "" || len(c.callbackURLs) == 0 {
			http.Error(w, "missing signature", http.StatusForbidden)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
			http.Error(w, "expected a form", http.StatusBadRequest)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCallbackBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !c.validSignature(signature, r.PostForm) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		for _, vs := range r.PostForm {
			for _, v := range vs {
				if !wiretext.Valid(v) {
					http.Error(w, "a value is not UTF-8 text without NUL bytes", http.StatusBadRequest)
					return
				}
			}
		}

		f := r.PostForm
		sid, status := f.Get("MessageSid"), f.Get("MessageStatus")
		if sid == "" {
			sid, status = f.Get("CallSid"), f.Get("CallStatus")
		}
		if sid == "" || status == "" {
			http.Error(w, "not a status callback", http.StatusBadRequest)
			return
		}
		if err := update(r.Context(), sid, status, f.Get("ErrorCode")); err != nil {
			http.Error(w, "status not recorded", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// validSignature checks signature against every accepted form of the callback URL, in
// constant time for each.
func (c *Client) validSignature(signature string, params url.Values) bool {
	valid := false
	for _, u := range c.callbackURLs {
		if hmac.Equal([]byte(Signature(c.cfg.AuthToken, u, params)), []byte(signature)) {
			valid = true
		}
	}
	return valid
}

// callbackVariants returns raw and, when its port is the scheme's default, the same URL
// with the port written out or left off. Twilio's own validators accept both because
// Twilio's signing is not consistent about default ports.
func callbackVariants(raw string) []string {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	defaultPort := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	twin := *u
	switch u.Port() {
	case "":
		twin.Host = net.JoinHostPort(u.Hostname(), defaultPort)
	case defaultPort:
		twin.Host = strings.TrimSuffix(u.Host, ":"+defaultPort)
	default:
		return []string{raw}
	}
	return []string{raw, twin.String()}
}
