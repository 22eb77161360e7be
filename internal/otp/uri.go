package otp

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Errors returned by ParseURI and DecodeSecret wrap one of these, so callers
// can test with errors.Is while users still see the specific reason.
var (
	ErrInvalidURI    = errors.New("otp: invalid URI")
	ErrInvalidSecret = errors.New("otp: invalid secret")
)

// Limits accepted by ParseURI for the period parameter, in seconds.
const (
	MinPeriod = 1
	MaxPeriod = 3600
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeSecret returns b in standard base32 without padding, the form
// authenticator apps expect in otpauth:// URIs.
func EncodeSecret(b []byte) string { return b32.EncodeToString(b) }

// DecodeSecret decodes a base32 secret as users and apps write it: any case,
// with or without '=' padding, with spaces (e.g. "JBSW Y3DP ...") ignored.
// An empty secret is an error.
func DecodeSecret(s string) ([]byte, error) {
	// ASCII-only folding: strings.ToUpper would map e.g. 'ı' to 'I' and so
	// accept non-base32 input.
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
	clean = strings.TrimRight(clean, "=")
	if clean == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	// 1, 3 or 6 trailing characters cannot end a base32 string, but the
	// unpadded decoder silently drops them ("A" would decode to no bytes).
	if n := len(clean) % 8; n == 1 || n == 3 || n == 6 {
		return nil, fmt.Errorf("%w: length %d is not valid base32", ErrInvalidSecret, len(clean))
	}
	b, err := b32.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSecret, err)
	}
	return b, nil
}

// Key is a provisioned TOTP credential together with its display labels.
type Key struct {
	Issuer, Account string
	TOTP            // embedded: Secret, Digits, Period, Algorithm
}

// URI renders the key as
//
//	otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
//
// Issuer and account are path-escaped with ':' also escaped, so only the
// separator is a literal colon; the query uses %20 rather than '+' for spaces
// because several apps show a '+' literally. Without an issuer the label is
// just the account and the issuer parameter is omitted. Zero Digits, Period
// and Algorithm are written as their defaults.
func (k Key) URI() string {
	label := escapeLabel(k.Account)
	// An issuer-less account containing ':' keeps an empty issuer prefix, or
	// ParseURI would take the part before its (escaped) colon as the issuer.
	if k.Issuer != "" || strings.Contains(k.Account, ":") {
		label = escapeLabel(k.Issuer) + ":" + label
	}
	alg := k.Algorithm
	if alg == "" {
		alg = SHA1
	}
	var q strings.Builder
	q.WriteString("secret=")
	q.WriteString(EncodeSecret(k.Secret))
	if k.Issuer != "" {
		q.WriteString("&issuer=")
		q.WriteString(escapeQuery(k.Issuer))
	}
	q.WriteString("&algorithm=")
	q.WriteString(escapeQuery(string(alg)))
	q.WriteString("&digits=")
	q.WriteString(strconv.Itoa(k.digits()))
	q.WriteString("&period=")
	q.WriteString(strconv.FormatInt(k.period(), 10))
	return "otpauth://totp/" + label + "?" + q.String()
}

// escapeLabel path-escapes s; url.PathEscape leaves ':' alone, which would
// make an issuer containing ':' ambiguous with the separator.
func escapeLabel(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

// escapeQuery is url.QueryEscape with %20 for spaces (a literal '+' is
// already escaped as %2B, so the replacement cannot clash).
func escapeQuery(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// ParseURI parses an otpauth://totp/ URI as written by Google Authenticator,
// Authy, 1Password, Aegis and others.
//
// The label may be "Issuer:Account", "Issuer%3AAccount" or "Account"; a
// non-empty issuer parameter takes precedence over the label's issuer, and
// surrounding spaces are trimmed. The secret is decoded as by DecodeSecret.
// digits must be 6..10, period 1..3600 and algorithm SHA1, SHA256 or SHA512
// (any case); absent ones default to 6, 30 and SHA1, and the returned Key
// always has them set explicitly. HOTP URIs are rejected.
//
// Errors wrap ErrInvalidSecret for secret problems and ErrInvalidURI for all
// others. ParseURI never panics.
func ParseURI(s string) (Key, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrInvalidURI, err)
	}
	if u.Scheme != "otpauth" { // url.Parse lower-cases the scheme
		return Key{}, fmt.Errorf("%w: scheme %q is not otpauth", ErrInvalidURI, u.Scheme)
	}
	if u.Opaque != "" || u.User != nil || !strings.EqualFold(u.Host, "totp") {
		typ := u.Host
		if u.Opaque != "" {
			typ = u.Opaque
		}
		return Key{}, fmt.Errorf("%w: unsupported type %q (only totp)", ErrInvalidURI, typ)
	}

	var k Key
	if k.Issuer, k.Account, err = parseLabel(u.EscapedPath()); err != nil {
		return Key{}, err
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Key{}, fmt.Errorf("%w: query: %v", ErrInvalidURI, err)
	}
	if iss := strings.TrimSpace(q.Get("issuer")); iss != "" {
		k.Issuer = iss
	}
	if !q.Has("secret") {
		return Key{}, fmt.Errorf("%w: missing", ErrInvalidSecret)
	}
	if k.Secret, err = DecodeSecret(q.Get("secret")); err != nil {
		return Key{}, err
	}

	k.Algorithm = SHA1
	if q.Has("algorithm") {
		k.Algorithm = Algorithm(strings.ToUpper(q.Get("algorithm")))
		if k.Algorithm == "" || !k.Algorithm.Valid() {
			return Key{}, fmt.Errorf("%w: unsupported algorithm %q", ErrInvalidURI, q.Get("algorithm"))
		}
	}
	if k.Digits, err = intParam(q, "digits", DefaultDigits, MinDigits, MaxDigits); err != nil {
		return Key{}, err
	}
	if k.Period, err = intParam(q, "period", DefaultPeriod, MinPeriod, MaxPeriod); err != nil {
		return Key{}, err
	}
	return k, nil
}

// parseLabel splits the escaped path "/Issuer:Account" into its parts. A
// literal ':' is the separator, so an issuer escaped as "Foo%3ABar" survives;
// failing that, the first ':' after unescaping is (apps that write
// "Issuer%3AAccount").
func parseLabel(escaped string) (issuer, account string, err error) {
	escaped = strings.TrimPrefix(escaped, "/")
	if i := strings.IndexByte(escaped, ':'); i >= 0 {
		if issuer, err = url.PathUnescape(escaped[:i]); err == nil {
			account, err = url.PathUnescape(escaped[i+1:])
		}
	} else if account, err = url.PathUnescape(escaped); err == nil {
		if i := strings.IndexByte(account, ':'); i >= 0 {
			issuer, account = account[:i], account[i+1:]
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: label: %v", ErrInvalidURI, err)
	}
	return strings.TrimSpace(issuer), strings.TrimSpace(account), nil
}

// intParam parses an optional decimal query parameter within [lo, hi]. A
// parameter that is present must be valid, even if empty.
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	if !q.Has(name) {
		return def, nil
	}
	v := q.Get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s must be %d..%d, got %q", ErrInvalidURI, name, lo, hi, v)
	}
	return n, nil
}
