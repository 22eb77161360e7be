package client

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// toQuery is Rails Hash#to_query: members under namespace ns, sorted per level
// unless ns holds "[]" and the members have an order of their own (ordered).
func toQuery(ns string, members iter.Seq2[string, any], ordered bool) string {
	var parts []string
	for k, v := range members {
		if isEmptyContainer(v) {
			continue
		}
		if ns != "" {
			k = ns + "[" + k + "]"
		}
		parts = append(parts, toParam(v, k))
	}
	if !ordered || !strings.Contains(ns, "[]") {
		slices.Sort(parts)
	}
	return strings.Join(parts, "&")
}

// toParam is Rails Object#to_query(key) for the value v.
func toParam(v any, key string) string {
	var s string
	switch x := v.(type) {
	case nil:
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case json.Number:
		s = formatNumber(string(x))
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		s = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case *object:
		return toQuery(key, x.all(), true)
	case map[string]any:
		return toQuery(key, maps.All(x), false)
	case []any:
		return arrayToQuery(key, len(x), func(i int) any { return x[i] })
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String:
			return toQuery(key, func(yield func(string, any) bool) {
				it := rv.MapRange()
				for it.Next() && yield(it.Key().String(), it.Value().Interface()) {
				}
			}, false)
		case rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array:
			return arrayToQuery(key, rv.Len(), func(i int) any { return rv.Index(i).Interface() })
		case (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) && !rv.IsNil():
			return toParam(rv.Elem().Interface(), key)
		case rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface: // nil
		default:
			s = fmt.Sprint(v) // other integer types, named strings, Stringers
		}
	}
	return cgiEscape(key) + "=" + cgiEscape(s)
}

// arrayToQuery is Rails Array#to_query: elements under key[], in order.
func arrayToQuery(key string, n int, elem func(int) any) string {
	if n == 0 {
		return cgiEscape(key+"[]") + "=" // only for an empty array inside an array
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = toParam(elem(i), key+"[]")
	}
	return strings.Join(parts, "&")
}

// isEmptyContainer reports whether v is an empty map or array (or slice).
func isEmptyContainer(v any) bool {
	switch x := v.(type) {
	case nil, string, bool, json.Number, float64, int:
		return false
	case *object:
		return x.len() == 0
	}
	rv := reflect.ValueOf(v)
	for (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) && !rv.IsNil() {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() == 0
	}
	return false
}

// formatNumber writes a JSON number in decimal: integers as sent, others without exponent.
func formatNumber(s string) string {
	if d := strings.TrimPrefix(s, "-"); d != "" && strings.Trim(d, "0123456789") == "" {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// cgiEscape is Ruby's CGI.escape.
func cgiEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '.', c == '~', c == '-':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.Write([]byte{'%', hex[c>>4], hex[c&15]})
		}
	}
	return b.String()
}
