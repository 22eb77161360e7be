package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the headers that carry the signature of a OneTouch callback.
const (
	// SignatureHeader carries the base64 (standard, padded) HMAC-SHA256 signature.
	SignatureHeader = "X-Authy-Signature"
	// NonceHeader carries the nonce that was signed: the Unix time in seconds
	// at which the callback was sent, as a decimal string.
	NonceHeader = "X-Authy-Signature-Nonce"
)

// Errors returned by [VerifyCallback], wrapped with context; test for them with errors.Is.
var (
	// ErrMissingSignature means the request lacks the signature or the nonce header.
	ErrMissingSignature = errors.New("client: OneTouch callback is not signed")
	// ErrBadSignature means the signature does not match the request: wrong API key,
	// wrong public URL, or a forged or altered request.
	ErrBadSignature = errors.New("client: OneTouch callback signature does not match")
	// ErrMalformedCallback means the request cannot be a OneTouch callback: a method other
	// than GET or POST, a body that is not a JSON object, an undecodable query string.
	ErrMalformedCallback = errors.New("client: malformed OneTouch callback")
	// ErrStaleNonce means the signature matches but the nonce is not a Unix time within
	// the age allowed by [WithMaxAge].
	ErrStaleNonce = errors.New("client: OneTouch callback nonce is too old")
)

const (
	maxBodyBytes = 1 << 20 // a callback body is a few KiB
	maxDepth     = 100     // nesting limit, as Ruby's JSON.parse and Rack have
)

// Canonical returns the Rails Hash#to_query form of params, the string that a
// OneTouch callback signature covers.
//
// At each level the "key=value" strings are sorted bytewise, unless the
// namespace holds "[]" (inside an array); nested maps become key[sub], arrays
// become key[] with their order kept, and empty maps and arrays are left out.
// nil becomes "key=", booleans true and false, numbers their decimal form
// without exponent (json.Number, integer types, floats), and keys and strings
// are escaped like Ruby's CGI.escape: A-Za-z0-9 and "_.~-" kept, space as
// '+', every other byte as %XX in upper-case hex.
//
// Go maps have no member order, so the members of a map inside an array are
// sorted too; Rails would keep their insertion order. [VerifyCallback] decodes
// the request itself and keeps that order.
func Canonical(params map[string]any) string {
	return toQuery("", maps.All(params), false)
}

// Signature returns the OneTouch callback signature of params for apiKey: the
// base64 (standard, padded) HMAC-SHA256, keyed with apiKey, of
//
//	nonce + "|" + method + "|" + callbackURL without query + "|" + Canonical(params)
//
// method is GET or POST, as configured for the callback (it is upper-cased);
// callbackURL is the callback URL as configured, whose query string and
// fragment are ignored.
func Signature(apiKey, nonce, method, callbackURL string, params map[string]any) string {
	return sign(apiKey, nonce, method, callbackURL, Canonical(params))
}

func sign(apiKey, nonce, method, callbackURL, canonical string) string {
	if i := strings.IndexAny(callbackURL, "?#"); i >= 0 {
		callbackURL = callbackURL[:i]
	}
	mac := hmac.New(sha256.New, []byte(apiKey))
	for i, s := range [...]string{nonce, strings.ToUpper(method), callbackURL, canonical} {
		if i > 0 {
			mac.Write([]byte{'|'})
		}
		io.WriteString(mac, s)
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// A VerifyOption changes how [VerifyCallback] checks a request.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	maxAge time.Duration
	now    func() time.Time
}

// WithMaxAge makes [VerifyCallback] reject, with [ErrStaleNonce], a callback
// whose nonce (a Unix time in seconds, possibly with a fraction) is more than
// d away from now(), in the past or in the future. now may be nil for time.Now.
// This bounds the window in which a captured callback can be replayed.
func WithMaxAge(d time.Duration, now func() time.Time) VerifyOption {
	if now == nil {
		now = time.Now
	}
	return func(c *verifyConfig) { c.maxAge, c.now = d, now }
}

// VerifyCallback checks the signature of an incoming OneTouch callback request
// against the application's apiKey, comparing in constant time, and returns
// nil if it matches.
//
// publicURL is the callback URL as configured in Twofold or Authy; its query
// string is ignored. It is needed because behind a proxy the server cannot
// know the URL the caller used.
//
// A POST callback carries its fields as a JSON object in the body, which
// VerifyCallback reads (up to 1 MiB) and puts back in r.Body, so the handler
// can still decode it. A GET callback carries them in the query string in
// bracket form (approval_request[transaction][status]=approved), which is
// decoded as Rack does and canonicalized again, so the order of its
// parameters matters only inside arrays.
//
// Errors wrap [ErrMissingSignature], [ErrBadSignature], [ErrMalformedCallback]
// or [ErrStaleNonce], or are an error reading the body.
func VerifyCallback(r *http.Request, apiKey, publicURL string, opts ...VerifyOption) error {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	sig := strings.TrimSpace(r.Header.Get(SignatureHeader))
	nonce := strings.TrimSpace(r.Header.Get(NonceHeader))
	switch {
	case sig == "":
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, SignatureHeader)
	case nonce == "":
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, NonceHeader)
	case publicURL == "":
		return errors.New("client: VerifyCallback needs the public callback URL")
	}

	var params *object
	switch r.Method {
	case http.MethodGet:
		var err error
		if r.URL != nil {
			params, err = decodeQuery(r.URL.RawQuery)
		}
		if err != nil {
			return err
		}
	case http.MethodPost:
		body, err := readBody(r)
		if err != nil {
			return err
		}
		if params, err = decodeJSONObject(body); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: method %s, want GET or POST", ErrMalformedCallback, r.Method)
	}

	canonical := ""
	if params != nil {
		canonical = toQuery("", params.all(), false)
	}
	want := sign(apiKey, nonce, r.Method, publicURL, canonical)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: %s %s with nonce %s; check the API key and the public URL",
			ErrBadSignature, r.Method, publicURL, nonce)
	}
	if cfg.maxAge > 0 {
		sent, ok := nonceTime(nonce)
		if !ok {
			return fmt.Errorf("%w: nonce %q is not a Unix time", ErrStaleNonce, nonce)
		}
		if age := cfg.now().Sub(sent); age > cfg.maxAge || age < -cfg.maxAge {
			return fmt.Errorf("%w: sent at %s, %s from now, allowed %s",
				ErrStaleNonce, sent.UTC().Format(time.RFC3339), age.Round(time.Second), cfg.maxAge)
		}
	}
	return nil
}

// readBody reads the body and puts it back in r.Body, with whatever was not read.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	orig := r.Body
	body, err := io.ReadAll(io.LimitReader(orig, maxBodyBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), orig), orig}
	if err != nil {
		return nil, fmt.Errorf("client: reading the OneTouch callback body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrMalformedCallback, maxBodyBytes)
	}
	return body, nil
}

// nonceTime parses a nonce of decimal Unix seconds, with an optional fraction.
func nonceTime(s string) (time.Time, bool) {
	secs, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseUint(secs, 10, 63)
	if err != nil || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, false
	}
	frac = (frac + "000000000")[:9]
	ns, _ := strconv.Atoi(frac)
	return time.Unix(int64(n), int64(ns)), true
}
