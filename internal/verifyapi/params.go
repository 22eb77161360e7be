package verifyapi

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

// The official helper libraries send Twilio's parameters as they are named in its API
// ("FriendlyName", "Totp.Issuer", "RateLimits"): in the query string of GETs and in a form body
// (application/x-www-form-urlencoded) of POSTs. A name given more than once is a list
// ("EventTypes=a&EventTypes=b"). Nothing else is read: a JSON body is ignored, as Twilio ignores
// it.

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// maxParams bounds the parameters of one request (query and body together).
const maxParams = 1000

// Params are one request's parameters, by name, in the order sent.
type Params struct{ v map[string][]string }

// readParams reads r's query string and, for a form, its body (at most MaxBody bytes).
func readParams(r *http.Request) (Params, error) {
	p := Params{v: map[string][]string{}}
	if !wiretext.Valid(r.URL.Path) {
		return p, InvalidParam("path", "must be UTF-8 text without NUL bytes")
	}
	n := 0
	if err := p.parse(r.URL.RawQuery, &n); err != nil {
		return p, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" || r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return p, Errorf(CodeInvalidParameter, http.StatusBadRequest, "Invalid request: the body could not be read")
	}
	if len(body) > MaxBody {
		return p, errBodyTooLarge
	}
	return p, p.parse(string(body), &n)
}

// parse adds the pairs of a form encoding ("a=1&b=2"), counting them in n.
func (p Params) parse(s string, n *int) error {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		if *n++; *n > maxParams {
			return Errorf(CodeInvalidParameter, http.StatusBadRequest, "Invalid request: more than %d parameters", maxParams)
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return Errorf(CodeInvalidParameter, http.StatusBadRequest, "Invalid request: malformed percent-encoding")
		}
		if !wiretext.Valid(key) || !wiretext.Valid(value) {
			return InvalidParam(key, "must be UTF-8 text without NUL bytes")
		}
		if key != "" {
			p.v[key] = append(p.v[key], value)
		}
	}
	return nil
}

// Has reports whether the parameter was sent.
func (p Params) Has(name string) bool { return len(p.v[name]) > 0 }

// String returns the parameter's last value ("" when not sent).
func (p Params) String(name string) string {
	vs := p.v[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// List returns every value of the parameter.
func (p Params) List(name string) []string { return p.v[name] }

// Required returns the parameter's value, or 60200 when it is missing or empty.
func (p Params) Required(name string) (string, error) {
	v := p.String(name)
	if strings.TrimSpace(v) == "" {
		return "", MissingParam(name)
	}
	return v, nil
}

// Bool sets *dst from the parameter when it was sent: "true" or "false" in any case.
func (p Params) Bool(name string, dst *bool) error {
	if !p.Has(name) {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(p.String(name))) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return InvalidParam(name, "must be true or false")
	}
	return nil
}

// Int sets *dst from the parameter when it was sent: a decimal integer.
func (p Params) Int(name string, dst *int) error {
	if !p.Has(name) {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.String(name)))
	if err != nil {
		return InvalidParam(name, "must be an integer")
	}
	*dst = n
	return nil
}

// Text sets *dst from the parameter when it was sent.
func (p Params) Text(name string, dst *string) {
	if p.Has(name) {
		*dst = p.String(name)
	}
}

// JSONObject checks that the parameter, when sent, is a JSON object ("RateLimits",
// "ChannelConfiguration": the libraries send maps as JSON text).
func (p Params) JSONObject(name string) error {
	if !p.Has(name) {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(p.String(name)), &m); err != nil || m == nil {
		return InvalidParam(name, "must be a JSON object")
	}
	return nil
}

// WithPrefix returns the first parameter sent whose name starts with prefix ("Passkeys."), or "".
func (p Params) WithPrefix(prefix string) string {
	for name := range p.v {
		if strings.HasPrefix(name, prefix) {
			return name
		}
	}
	return ""
}

// Refuse answers 60200 when any of the named parameters was sent: what Twofold does not serve
// must not be ignored silently where ignoring it would change what a caller relies on.
func (p Params) Refuse(why string, names ...string) error {
	for _, name := range names {
		if p.Has(name) {
			return InvalidParam(name, why)
		}
	}
	return nil
}
