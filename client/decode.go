package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
)

// object is a JSON object, or a Rack parameter hash, that keeps the order of
// its members as received: Rails keeps it when it canonicalizes the members of
// an object inside an array (logos[][res], logos[][url]).
type object struct {
	keys  []string
	vals  []any
	index map[string]int
}

func newObject() *object { return &object{index: map[string]int{}} }

func (o *object) len() int { return len(o.keys) }

func (o *object) get(k string) (any, bool) {
	i, ok := o.index[k]
	if !ok {
		return nil, false
	}
	return o.vals[i], true
}

// set adds a member, or replaces the value of an existing one in its place
// (a repeated key keeps its first position, as in a Ruby Hash).
func (o *object) set(k string, v any) {
	if i, ok := o.index[k]; ok {
		o.vals[i] = v
		return
	}
	o.index[k] = len(o.keys)
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *object) all() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for i, k := range o.keys {
			if !yield(k, o.vals[i]) {
				return
			}
		}
	}
}

// decodeJSONObject decodes a callback body, which must be one JSON object,
// into objects, arrays ([]any), strings, json.Number, bools and nils.
func decodeJSONObject(body []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	o, err := func() (*object, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if tok != json.Delim('{') {
			return nil, errors.New("not a JSON object")
		}
		o, err := decodeObject(dec, 1)
		if err != nil {
			return nil, err
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("data after the JSON object")
		}
		return o, nil
	}()
	if err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformedCallback, err)
	}
	return o, nil
}

// decodeObject decodes the members of an object whose '{' has been read.
func decodeObject(dec *json.Decoder, depth int) (*object, error) {
	if depth > maxDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	o := newObject()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		v, err := decodeValue(dec, depth)
		if err != nil {
			return nil, err
		}
		o.set(key, v)
	}
	_, err := dec.Token() // '}'
	return o, err
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		return decodeObject(dec, depth+1)
	case json.Delim('['):
		if depth+1 > maxDepth {
			return nil, errors.New("JSON nested too deeply")
		}
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return tok, nil // string, json.Number, bool or nil
}

// decodeQuery decodes a query string into nested parameters as Rack does:
// a[b]=1 makes a hash, a[]=1 an array, and a[][b]=1&a[][c]=2 one hash in an
// array, until a key repeats and starts the next element. A key that is not of
// the form name[sub]...[sub] stays a plain name.
func decodeQuery(raw string) (*object, error) {
	root := newObject()
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err == nil {
			v, err = url.QueryUnescape(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: query: %v", ErrMalformedCallback, err)
		}
		segs := splitKey(key)
		if len(segs) > maxDepth {
			return nil, fmt.Errorf("%w: query: parameter %.40q nested too deeply", ErrMalformedCallback, key)
		}
		if err := insertParam(root, segs, v); err != nil {
			return nil, fmt.Errorf("%w: query: parameter %.40q: %v", ErrMalformedCallback, key, err)
		}
	}
	return root, nil
}

// splitKey splits "a[b][][c]" into "a", "b", "", "c".
func splitKey(key string) []string {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return []string{key}
	}
	segs := []string{key[:i]}
	for rest := key[i:]; rest != ""; {
		j := strings.IndexByte(rest, ']')
		if rest[0] != '[' || j < 0 || strings.IndexByte(rest[1:j], '[') >= 0 {
			return []string{key}
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return segs
}

// insertParam stores v at the path segs under o, as Rack's normalize_params.
func insertParam(o *object, segs []string, v string) error {
	name, rest := segs[0], segs[1:]
	if len(rest) == 0 {
		o.set(name, v)
		return nil
	}
	cur, exists := o.get(name)
	if rest[0] != "" { // name[sub]...
		child, ok := cur.(*object)
		if !exists {
			child, ok = newObject(), true
			o.set(name, child)
		}
		if !ok {
			return fmt.Errorf("%q is both a value and a hash", name)
		}
		return insertParam(child, rest, v)
	}
	arr, ok := cur.([]any) // name[]...
	if exists && !ok {
		return fmt.Errorf("%q is both a value and an array", name)
	}
	if len(rest) == 1 {
		o.set(name, append(arr, v))
		return nil
	}
	if n := len(arr); n > 0 {
		if last, ok := arr[n-1].(*object); ok && !hasPath(last, rest[1:]) {
			return insertParam(last, rest[1:], v)
		}
	}
	elem := newObject()
	if err := insertParam(elem, rest[1:], v); err != nil {
		return err
	}
	o.set(name, append(arr, elem))
	return nil
}

// hasPath reports whether the nested hashes under o already hold segs, in which
// case name[][segs...] starts a new array element; as in Rack, a path through
// another array never counts as present.
func hasPath(o *object, segs []string) bool {
	var cur any = o
	for _, s := range segs {
		h, ok := cur.(*object)
		if s == "" || !ok {
			return false
		}
		if cur, ok = h.get(s); !ok {
			return false
		}
	}
	return true
}
