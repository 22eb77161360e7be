package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The hostile-input suite's requests: the values it sends, and how a route's valid request is
// made hostile one part at a time (hostile_test.go drives them, hostile_routes_test.go lists
// the routes).

// hostileValues are the parameter values sent; some are valid text on purpose (a request that
// succeeds with them must succeed on both engines).
var hostileValues = []struct{ name, v string }{
	{"nul", "a\x00b"},
	{"bad-utf8", "\xff\xfe"},
	{"surrogate", "\xed\xa0\x80"},
	{"huge", strings.Repeat("A", 30<<10)},
	{"controls", "\r\n\x1b[2J\x7f"},
	{"bidi", "\u202eevil"},
	{"sql", "' OR '1'='1' --"},
	{"number", "-99999999999999999999999"},
}

// hostilePathValues replace one path segment, already escaped.
var hostilePathValues = []struct{ name, v string }{
	{"nul", "a%00b"},
	{"bad-utf8", "%FF%FE"},
	{"huge", strings.Repeat("9", 30<<10)},
	{"dotdot", "..%2F..%2Fetc%2Fpasswd"},
	{"controls", "%0D%0A%1B"},
	{"bidi", "%E2%80%AEevil"},
	{"negative", "-1"},
	{"overflow", "99999999999999999999999"},
}

// hostileJSON are JSON values of the wrong type.
var hostileJSON = []struct{ name, v string }{
	{"number", "5"}, {"float", "1e999"}, {"bool", "true"}, {"null", "null"}, {"array", `["x"]`}, {"object", `{"a":"b"}`},
	{"deep", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)}, {"nul-escape", `"a\u0000b"`},
}

type hostileCase struct {
	name   string // the same on both engines
	route  *hostileRoute
	path   string // escaped
	query  string // raw
	ctype  string
	body   []byte
	signed url.Values // the form a Twilio signature covers
}

type hostileAnswer struct {
	status int
	ctype  string
	body   []byte
}

// hostileCases makes the cases of route r: the valid request, then one hostile part at a time.
func hostileCases(r *hostileRoute) []hostileCase {
	key := routeKey(r)
	var cases []hostileCase
	add := func(name string, c hostileCase) {
		c.name, c.route = key+" "+name, r
		if c.path == "" {
			c.path = fill(r.path, r.wild, "", "")
		}
		cases = append(cases, c)
	}
	add("valid", paramCase(r, r.params))
	for _, w := range mapKeys(r.wild) {
		for _, v := range hostilePathValues {
			c := paramCase(r, r.params)
			c.path = fill(r.path, r.wild, w, v.v)
			add("path "+w+"="+v.name, c)
		}
	}
	vary := r.vary
	if vary == nil {
		vary = (mapKeys(r.params))
	}
	for _, p := range vary {
		for _, v := range hostileValues {
			params := with1(r.params, p, v.v)
			if r.method == "GET" || r.method == "DELETE" || !r.form {
				add(p+"="+v.name+" in query", queryCase(params))
			}
			if r.form {
				add(p+"="+v.name+" in form", formCase(params))
			}
			if r.json {
				add(p+"="+v.name+" in JSON", jsonCase(params, nil))
			}
		}
		if r.json {
			for _, v := range hostileJSON {
				add(p+" as JSON "+v.name, jsonCase(r.params, map[string]string{p: v.v}))
			}
		}
	}
	// Once per route: the shapes of a whole request.
	deep := "x" + strings.Repeat("[a]", 100) + "=1"
	add("deep brackets", hostileCase{query: deep})
	add("many params in query", hostileCase{query: strings.Repeat("a&", 5000)})
	if r.method != "GET" {
		add("100k params in body", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte(strings.Repeat("a&", 100000))})
		add("huge body", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte("x=" + strings.Repeat("a", 300<<10))})
		add("broken JSON", hostileCase{ctype: "application/json", body: []byte(`{"user":`)})
		add("JSON not UTF-8", hostileCase{ctype: "application/json", body: []byte("{\"message\":\"\xff\xfe\"}")})
		add("form not UTF-8 key", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte("%FF%00=1")})
	}
	return cases
}

// routeKey names a route in case names: its method and path template.
func routeKey(r *hostileRoute) string { return r.method + " " + r.path }

// paramCase sends params the way the route reads them.
func paramCase(r *hostileRoute, params map[string]string) hostileCase {
	if r.form && r.method != "GET" && r.method != "DELETE" {
		return formCase(params)
	}
	return queryCase(params)
}

func encodeParams(params map[string]string) string {
	var b strings.Builder
	for _, k := range mapKeys(params) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(params[k]))
	}
	return b.String()
}

func queryCase(params map[string]string) hostileCase {
	return hostileCase{query: encodeParams(params)}
}

func formCase(params map[string]string) hostileCase {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	return hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte(encodeParams(params)), signed: form}
}

// jsonCase sends params as one JSON object (bracket names nest, "[]" makes a list of one);
// raw gives some parameters as JSON text instead. Strings are written byte for byte, so invalid
// UTF-8 reaches the server as sent.
func jsonCase(params, raw map[string]string) hostileCase {
	root := map[string]any{}
	for name, v := range params {
		var value any = jsonString(v)
		if r, ok := raw[name]; ok {
			value = json.RawMessage(r)
		}
		path := bracketPath(name)
		m := root
		for j, k := range path[:len(path)-1] {
			if k == "" {
				continue
			}
			if path[j+1] == "" { // k[] : a list holding one object
				list, _ := m[k].([]any)
				if len(list) == 0 {
					list = []any{map[string]any{}}
				}
				m[k] = list
				m = list[0].(map[string]any)
				continue
			}
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = value
	}
	return hostileCase{ctype: "application/json", body: writeJSONRaw(root)}
}

// jsonString is a string to be written into JSON byte for byte.
type jsonString string

func writeJSONRaw(v any) []byte {
	var b bytes.Buffer
	var write func(v any)
	write = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			b.WriteByte('{')
			for i, k := range mapKeys(t) {
				if i > 0 {
					b.WriteByte(',')
				}
				write(jsonString(k))
				b.WriteByte(':')
				write(t[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range t {
				if i > 0 {
					b.WriteByte(',')
				}
				write(e)
			}
			b.WriteByte(']')
		case json.RawMessage:
			b.Write(t)
		case jsonString:
			b.WriteByte('"')
			for i := 0; i < len(t); i++ {
				switch c := t[i]; {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c < 0x20:
					fmt.Fprintf(&b, `\u%04x`, c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('"')
		}
	}
	write(v)
	return b.Bytes()
}

// bracketPath splits "a[b][]" into a, b, "".
func bracketPath(name string) []string {
	head, rest, ok := strings.Cut(name, "[")
	if !ok {
		return []string{name}
	}
	return append([]string{head}, strings.Split(strings.TrimSuffix(rest, "]"), "][")...)
}
