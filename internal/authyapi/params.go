package authyapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Abuse limits. Depth is the length of the key path to a value: "a" is 1, "a[b]" and
// {"a":{"b":..}} are 2, "logos[][res]" is 3. The count is form pairs plus JSON leaves (scalars
// and empty containers), summed over query string and body.
const (
	maxParamDepth = 8
	maxParamCount = 1000
)

// ErrBodyTooLarge is returned by ParseParams when the body exceeds maxBody.
var ErrBodyTooLarge = errors.New("request body too large")

// ParseError is returned (as *ParseError) for undecodable input: malformed JSON, bad
// percent-encoding, a JSON body that is not an object, nesting too deep, too many parameters.
// Reason is human-readable and never echoes long client input.
type ParseError struct{ Reason string }

func (e *ParseError) Error() string { return "invalid request parameters: " + e.Reason }

// TextError is returned (as *TextError) for a parameter whose name or value holds a NUL byte or
// invalid UTF-8: text no store keeps alike (see package wiretext). Param names it in bracket
// form, as sent; it may itself be the offending text.
type TextError struct{ Param string }

func (e *TextError) Error() string {
	return "parameter " + wiretext.Clip(e.Param) + " is not UTF-8 text without NUL bytes"
}

var (
	errTooDeep = &ParseError{Reason: fmt.Sprintf("parameters nested deeper than %d levels", maxParamDepth)}
	errTooMany = &ParseError{Reason: fmt.Sprintf("more than %d parameters", maxParamCount)}
)

// Params is the merged parameter bag of one request: query string, then form body, then JSON body
// (later sources override earlier ones key by key at top level, deep-merging maps).
//
// Values held: string, bool, json.Number, nil (JSON null), map[string]any and []any. Form
// sources only produce strings, maps and lists. The zero Params is empty.
type Params struct{ root map[string]any }

// ParseParams reads at most maxBody bytes of r.Body (more => ErrBodyTooLarge; a negative maxBody
// counts as 0) and merges, in order:
//  1. r.URL.RawQuery decoded as Rails bracket keys;
//  2. the body, on any method, when Content-Type is application/x-www-form-urlencoded;
//  3. the body when Content-Type is application/json or */*+json, or when there is no
//     Content-Type and the body starts with '{' after whitespace. It must be one JSON object;
//     an empty or whitespace-only body gives no parameters.
//
// Other content types: the body is ignored and not read. Content-Type parameters (charset) are
// ignored. Arrays are never concatenated across sources: the body's array replaces the query's.
//
// Bracket keys follow Rack: "a[b][c]", "a[]" appends, "a[][x]" starts a new array element
// when x already exists in the last element, "a[0][x]" stays a map keyed "0" (see List). '+'
// and %XX are decoded in keys and values before brackets are split; pairs split on '&' only
// (';' is literal); a pair without '=' gets the value "". Repeated keys and type conflicts ("a=1&a[b]=2"): the later pair wins and
// silently replaces the earlier value. Malformed keys never fail:
//   - empty keys ("=x", "&&") are skipped;
//   - the name runs up to the first '[' after its first character, so "[x]", "[]" and "a]"
//     are plain names; a key whose first bracket is unterminated ("a[b", "a[") is kept
//     verbatim as a plain name;
//   - text after the last complete [..] group is ignored ("a[b]c" and "a[b][c" set a[b]),
//     as PHP does.
func ParseParams(r *http.Request, maxBody int64) (Params, error) {
	d := decoder{}
	if r.URL != nil && r.URL.RawQuery != "" {
		m, err := d.form(r.URL.RawQuery, "query string")
		if err != nil {
			return Params{}, err
		}
		d.root = m
	}
	kind := bodyKind(r.Header.Get("Content-Type"))
	if kind != "" && r.Body != nil && r.Body != http.NoBody {
		body, err := readBody(r, maxBody)
		if err != nil {
			return Params{}, err
		}
		var m map[string]any
		switch {
		case kind == "form":
			m, err = d.form(string(body), "form body")
		case kind == "json" || bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")):
			m, err = d.json(body)
		}
		if err != nil {
			return Params{}, err
		}
		if d.root == nil {
			d.root = m
		} else {
			merge(d.root, m)
		}
	}
	if d.root == nil {
		d.root = map[string]any{}
	}
	return Params{root: d.root}, nil
}

// bodyKind classifies a Content-Type: "form", "json", "sniff" (none given: JSON if it looks
// like an object) or "" (ignored).
func bodyKind(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	switch mt = strings.TrimSpace(mt); {
	case mt == "":
		return "sniff"
	case strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		return "form"
	case strings.EqualFold(mt, "application/json"),
		len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json"):
		return "json"
	}
	return ""
}

func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	maxBody = min(max(maxBody, 0), math.MaxInt64-1)
	if r.ContentLength > maxBody {
		return nil, ErrBodyTooLarge
	}
	// One extra byte tells "exactly maxBody" from "more".
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return nil, ErrBodyTooLarge // the caller already wrapped r.Body in http.MaxBytesReader
	}
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if int64(len(b)) > maxBody {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// decoder carries the parameter count across all sources of one request.
type decoder struct {
	root  map[string]any
	count int
}

func (d *decoder) form(s, where string) (map[string]any, error) {
	m := make(map[string]any)
	var buf [maxParamDepth - 1]string // bracket groups; the name is the first path element
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		if d.count++; d.count > maxParamCount {
			return nil, errTooMany
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err == nil {
			rawVal, err = url.QueryUnescape(rawVal)
		}
		if err != nil {
			return nil, &ParseError{Reason: where + ": " + err.Error()} // e.g. invalid URL escape "%zz"
		}
		if key == "" {
			continue
		}
		if !wiretext.Valid(key) || !wiretext.Valid(rawVal) {
			return nil, &TextError{Param: key}
		}
		name, segs, ok := splitKey(key, buf[:0])
		if !ok {
			return nil, errTooDeep
		}
		m[name] = set(m[name], segs, rawVal)
	}
	return m, nil
}

// splitKey splits "name[a][b]" into "name" and ["a","b"] (see ParseParams for malformed keys)
// ok is false when there are more groups than cap(segs).
func splitKey(key string, segs []string) (name string, _ []string, ok bool) {
	open := strings.IndexByte(key[1:], '[') + 1 // key is not empty
	if open == 0 {
		return key, nil, true
	}
	rest := key[open:]
	for len(rest) > 0 && rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		if len(segs) == cap(segs) {
			return "", nil, false
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
	}
	if len(segs) == 0 {
		return key, nil, true
	}
	return key[:open], segs, true
}

// set stores v at segs below cur and returns the new value for cur's slot. A cur of the wrong
// type is replaced: the later parameter wins.
func set(cur any, segs []string, v any) any {
	if len(segs) == 0 {
		return v
	}
	if segs[0] == "" {
		arr, _ := cur.([]any)
		if len(segs) == 1 {
			return append(arr, v)
		}
		// Rack's rule for "a[][x]": fill the last element until x repeats in it.
		if n := len(arr); n > 0 && segs[1] != "" {
			if last, ok := arr[n-1].(map[string]any); ok && !hasPath(last, segs[1:]) {
				arr[n-1] = set(last, segs[1:], v)
				return arr
			}
		}
		return append(arr, set(nil, segs[1:], v))
	}
	m, _ := cur.(map[string]any)
	if m == nil {
		m = make(map[string]any)
	}
	m[segs[0]] = set(m[segs[0]], segs[1:], v)
	return m
}

// hasPath reports whether path resolves in v; a "" (append) step never resolves, as in Rack.
func hasPath(v any, path []string) bool {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok || k == "" {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

func (d *decoder) json(body []byte) (map[string]any, error) {
	// JSON is UTF-8 (RFC 8259); encoding/json would quietly replace what is not.
	if !utf8.Valid(body) {
		return nil, &ParseError{Reason: "malformed JSON body: not UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == io.EOF {
		return nil, nil // empty or whitespace-only body
	} else if err != nil {
		return nil, &ParseError{Reason: "malformed JSON body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ParseError{Reason: "malformed JSON body: data after the top-level object"}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &ParseError{Reason: "JSON body must be an object"}
	}
	var path [maxParamDepth + 1]string
	if err := d.walk(m, path[:0]); err != nil {
		return nil, err
	}
	return m, nil
}

// walk enforces depth and count limits on a decoded JSON value found at path, and refuses NUL
// bytes in its keys and strings (the body is valid UTF-8 already).
func (d *decoder) walk(v any, path []string) error {
	depth := len(path)
	if depth > maxParamDepth {
		return errTooDeep
	}
	n := 0 // children; scalars and empty containers count as one parameter
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if strings.IndexByte(k, 0) >= 0 {
				return &TextError{Param: bracketName(append(path, k))}
			}
			if err := d.walk(c, append(path, k)); err != nil {
				return err
			}
		}
		n = len(t)
	case []any:
		for _, c := range t {
			if err := d.walk(c, append(path, "")); err != nil {
				return err
			}
		}
		n = len(t)
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			return &TextError{Param: bracketName(path)}
		}
	}
	if n > 0 || depth == 0 {
		return nil
	}
	if d.count++; d.count > maxParamCount {
		return errTooMany
	}
	return nil
}

// merge deep-merges src into dst: maps merge recursively, anything else in src replaces.
func merge(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = sv
	}
}

// Get returns the value at path. Path steps index maps by key and lists by decimal position,
// so p.Get("logos", "0", "res") works for both list and indexed-map encodings. With no path
// it returns the root map.
func (p Params) Get(path ...string) (any, bool) {
	var v any = p.root
	for _, k := range path {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return nil, false
			}
		case []any:
			i, ok := index(k)
			if !ok || i >= uint64(len(c)) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, p.root != nil
}

// Has reports whether path is present (a JSON null counts as present).
func (p Params) Has(path ...string) bool {
	_, ok := p.Get(path...)
	return ok
}

// String returns a scalar as text: strings as is, json.Number as its text, bools as
// "true"/"false", JSON null as "" (ok=true). Absent, maps and lists give ok=false.
func (p Params) String(path ...string) (string, bool) {
	v, ok := p.Get(path...)
	if !ok {
		return "", false
	}
	return scalarString(v)
}

func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return string(t), true
	case bool:
		return strconv.FormatBool(t), true
	case nil:
		return "", true
	}
	return "", false
}

// Bool accepts JSON bools, the strings true/false (any case), 1/0 and "" (false) with
// surrounding spaces trimmed, and the JSON numbers 1/0. Absent or JSON null: present=false.
func (p Params) Bool(path ...string) (val, present bool, err error) {
	v, ok := p.Get(path...)
	if !ok || v == nil {
		return false, false, nil
	}
	var s string
	switch t := v.(type) {
	case bool:
		return t, true, nil
	case json.Number:
		s = string(t)
	case string:
		s = strings.TrimSpace(t)
	default:
		return false, true, badValue(path, "must be true or false")
	}
	switch {
	case s == "1" || strings.EqualFold(s, "true"):
		return true, true, nil
	case s == "0" || s == "" || strings.EqualFold(s, "false"):
		return false, true, nil
	}
	return false, true, badValue(path, "must be true or false")
}

// Int accepts JSON integers and decimal strings (spaces trimmed, optional sign) within int64.
// Absent, JSON null and an empty string give present=false, so "seconds_to_expire=" and
// {"seconds_to_expire":null} both mean "use the default".
func (p Params) Int(path ...string) (val int64, present bool, err error) {
	v, ok := p.Get(path...)
	if !ok || v == nil {
		return 0, false, nil
	}
	var s string
	switch t := v.(type) {
	case json.Number:
		s = string(t)
	case string:
		if s = strings.TrimSpace(t); s == "" {
			return 0, false, nil
		}
	default:
		return 0, true, badValue(path, "must be an integer")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, badValue(path, "must be an integer")
	}
	return n, true, nil
}

// StringMap returns a map of scalars rendered like String; nested maps and lists become compact
// JSON text. Absent, JSON null or empty ({} or []) => nil map, no error; any other non-map
// value is an error.
func (p Params) StringMap(path ...string) (map[string]string, error) {
	v, _ := p.Get(path...)
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []any:
		if len(t) == 0 {
			return nil, nil
		}
	case map[string]any:
		if len(t) == 0 {
			return nil, nil
		}
		out := make(map[string]string, len(t))
		for k, e := range t {
			s, ok := scalarString(e)
			if !ok {
				s = compactJSON(e)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, badValue(path, "must be a map of key/value pairs")
}

func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // cannot happen for decoded values
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// List returns the list at path. A map whose keys are all decimal ("0","1",..: the indexed
// form logos[0][res]) is converted to a list ordered by number; gaps are closed. Absent or
// JSON null => nil; any other value is an error.
func (p Params) List(path ...string) ([]any, error) {
	v, _ := p.Get(path...)
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return t, nil
	case map[string]any:
		keys := slices.Collect(maps.Keys(t))
		if slices.ContainsFunc(keys, func(k string) bool { _, ok := index(k); return !ok }) {
			break
		}
		slices.SortFunc(keys, func(a, b string) int { // "01" before "1": deterministic
			x, _ := index(a)
			y, _ := index(b)
			return cmp.Or(cmp.Compare(x, y), strings.Compare(a, b))
		})
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = t[k]
		}
		return out, nil
	}
	return nil, badValue(path, "must be a list")
}

// index parses a non-empty all-digit list position.
func index(k string) (uint64, bool) {
	if k == "" || strings.TrimLeft(k, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return n, err == nil
}

// badValue names the parameter in bracket form, e.g. `parameter user[country_code] must ...`.
func badValue(path []string, what string) error {
	return errors.New("parameter " + bracketName(path) + " " + what)
}

// bracketName writes a parameter's path in bracket form: user[country_code], logos[][res].
func bracketName(path []string) string {
	name := strings.Join(path, "")
	if len(path) > 1 {
		name = path[0] + "[" + strings.Join(path[1:], "][") + "]"
	}
	return name
}
