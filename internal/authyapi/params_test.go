package authyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

const (
	ctForm = "application/x-www-form-urlencoded"
	ctJSON = "application/json"
)

type obj = map[string]any
type arr = []any
type num = json.Number

func newReq(method, target, ct, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// queryReq puts raw text (possibly with spaces or '#') verbatim into RawQuery.
func queryReq(query string) *http.Request {
	r := httptest.NewRequest("GET", "/x", nil)
	r.URL.RawQuery = query
	return r
}

func mustParse(t *testing.T, r *http.Request) Params {
	t.Helper()
	p, err := ParseParams(r, 1<<20)
	if err != nil {
		t.Fatalf("ParseParams: %v", err)
	}
	return p
}

func checkRoot(t *testing.T, p Params, want obj) {
	t.Helper()
	if !reflect.DeepEqual(p.root, want) {
		t.Errorf("params = %s\nwant     %s", dump(p.root), dump(want))
	}
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// Every line of spec section 10.4, plus the authy-php and authy-python encodings of 1.3.
func TestParseParamsWireCaptures(t *testing.T) {
	approvalJSON := `{"details":{"Account Number":"123"},"hidden_details":{"ip":"1.2.3.4"},"logos":[{"res":"default","url":"https://example.com/a.png"}],"message":"Login requested","seconds_to_expire":120}`
	tests := []struct {
		name, method, target, ct, body string
		want                           obj
	}{
		// authy-client 1.1.4: JSON bodies (also on GET), everything else in the query.
		{"client users/new", "POST", "/protected/json/users/new", ctJSON,
			`{"user":{"cellphone":"7754615609","country_code":1,"email":"foo@bar.com"}}`,
			obj{"user": obj{"cellphone": "7754615609", "country_code": num("1"), "email": "foo@bar.com"}}},
		{"client status GET with {}", "GET", "/protected/json/users/1635/status", ctJSON, `{}`, obj{}},
		{"client status GET with user_ip", "GET", "/protected/json/users/1635/status", ctJSON,
			`{"user_ip":"1.2.3.4"}`, obj{"user_ip": "1.2.3.4"}},
		{"client remove", "POST", "/protected/json/users/1635/remove", ctJSON, `{"user_ip":"1.2.3.4"}`,
			obj{"user_ip": "1.2.3.4"}},
		{"client register_activity", "POST", "/protected/json/users/1635/register_activity", ctJSON,
			`{"data":{"reason":"x y"},"type":"password_reset","user_ip":"1.2.3.4"}`,
			obj{"data": obj{"reason": "x y"}, "type": "password_reset", "user_ip": "1.2.3.4"}},
		{"client sms", "GET", "/protected/json/sms/1635?action=login&action_message=Login%20code&force=true", "", "",
			obj{"action": "login", "action_message": "Login code", "force": "true"}},
		{"client call", "GET", "/protected/json/call/1635?force=true", "", "", obj{"force": "true"}},
		{"client verify", "GET", "/protected/json/verify/1234567/1635?force=true", "", "", obj{"force": "true"}},
		{"client app/stats", "GET", "/protected/json/app/stats?user_ip=1.2.3.4", "", "", obj{"user_ip": "1.2.3.4"}},
		{"client phones/info", "GET", "/protected/json/phones/info?country_code=1&phone_number=7754615609&user_ip=1.2.3.4", "", "",
			obj{"country_code": "1", "phone_number": "7754615609", "user_ip": "1.2.3.4"}},
		{"client verification/start", "POST", "/protected/json/phones/verification/start", ctJSON,
			`{"country_code":1,"locale":"es","phone_number":"7754615609","via":"sms"}`,
			obj{"country_code": num("1"), "locale": "es", "phone_number": "7754615609", "via": "sms"}},
		{"client verification/check", "GET", "/protected/json/phones/verification/check?country_code=1&phone_number=7754615609&verification_code=1234", "", "",
			obj{"country_code": "1", "phone_number": "7754615609", "verification_code": "1234"}},
		{"client approval_requests", "POST", "/onetouch/json/users/1635/approval_requests", ctJSON, approvalJSON,
			obj{"details": obj{"Account Number": "123"}, "hidden_details": obj{"ip": "1.2.3.4"},
				"logos": arr{obj{"res": "default", "url": "https://example.com/a.png"}}, "message": "Login requested",
				"seconds_to_expire": num("120")}},
		{"client get approval", "GET", "/onetouch/json/approval_requests/550e8400-e29b-41d4-a716-446655440000", "", "", obj{}},

		// npm authy 1.4.0: form content type on every request, api_key in the query, form bodies on GET.
		{"npm users/new", "POST", "/protected/json/users/new?send_install_link_via_sms=false&api_key=KEY456", ctForm,
			"user%5Bemail%5D=foo%40bar.com&user%5Bcellphone%5D=775-461-5609&user%5Bcountry_code%5D=1",
			obj{"send_install_link_via_sms": "false", "api_key": "KEY456",
				"user": obj{"email": "foo@bar.com", "cellphone": "775-461-5609", "country_code": "1"}}},
		{"npm delete", "POST", "/protected/json/users/delete/1635?api_key=KEY456", ctForm, "", obj{"api_key": "KEY456"}},
		{"npm verify", "GET", "/protected/json/verify/1234567/1635?force=true&api_key=KEY456", ctForm, "",
			obj{"force": "true", "api_key": "KEY456"}},
		{"npm verification/start", "POST", "/protected/json/phones/verification/start?api_key=KEY456", ctForm,
			"phone_number=775-461-5609&country_code=1&via=sms&locale=en&code_length=6",
			obj{"api_key": "KEY456", "phone_number": "775-461-5609", "country_code": "1", "via": "sms", "locale": "en", "code_length": "6"}},
		{"npm verification/check GET form body", "GET", "/protected/json/phones/verification/check?api_key=KEY456", ctForm,
			"phone_number=775-461-5609&country_code=1&verification_code=1234",
			obj{"api_key": "KEY456", "phone_number": "775-461-5609", "country_code": "1", "verification_code": "1234"}},
		{"npm approval_requests indexed logos", "POST", "/onetouch/json/users/1635/approval_requests?api_key=KEY456", ctForm,
			"message=Login%20requested&details%5BAccount%20Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B0%5D%5Bres%5D=default&logos%5B0%5D%5Burl%5D=https%3A%2F%2Fexample.com%2Fa.png&logos%5B1%5D%5Bres%5D=low&logos%5B1%5D%5Burl%5D=https%3A%2F%2Fexample.com%2Fb.png&seconds_to_expire=120",
			obj{"api_key": "KEY456", "message": "Login requested", "details": obj{"Account Number": "123"},
				"hidden_details": obj{"ip": "1.2.3.4"}, "seconds_to_expire": "120",
				"logos": obj{"0": obj{"res": "default", "url": "https://example.com/a.png"},
					"1": obj{"res": "low", "url": "https://example.com/b.png"}}}},

		// go-authy v1.0.1: sorted form bodies with '+' for space, api_key in body (POST) or query (GET).
		{"go users/new", "POST", "/protected/json/users/new", ctForm,
			"api_key=GOKEY&send_install_link_via_sms=false&user%5Bcellphone%5D=775-461-5609&user%5Bcountry_code%5D=1&user%5Bemail%5D=foo%40bar.com",
			obj{"api_key": "GOKEY", "send_install_link_via_sms": "false",
				"user": obj{"cellphone": "775-461-5609", "country_code": "1", "email": "foo@bar.com"}}},
		{"go verify", "GET", "/protected/json/verify/1234567/1635?api_key=GOKEY&force=true", "", "",
			obj{"api_key": "GOKEY", "force": "true"}},
		{"go approval_requests", "POST", "/onetouch/json/users/1635/approval_requests", ctForm,
			"api_key=GOKEY&details%5BAccount+Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B%5D%5Bres%5D=default&logos%5B%5D%5Burl%5D=https%3A%2F%2Fexample.com%2Fa.png&message=Login+requested&seconds_to_expire=120",
			obj{"api_key": "GOKEY", "details": obj{"Account Number": "123"}, "hidden_details": obj{"ip": "1.2.3.4"},
				"logos": arr{obj{"res": "default", "url": "https://example.com/a.png"}}, "message": "Login requested",
				"seconds_to_expire": "120"}},
		{"go verification/check", "GET", "/protected/json/phones/verification/check?api_key=GOKEY&country_code=1&phone_number=775-461-5609&verification_code=1234", "", "",
			obj{"api_key": "GOKEY", "country_code": "1", "phone_number": "775-461-5609", "verification_code": "1234"}},

		// authy-php: no body, everything in the query (http_build_query: indexed arrays, booleans 1/0).
		{"php users/new", "POST", "/protected/json/users/new?user%5Bemail%5D=foo%40bar.com&user%5Bcellphone%5D=775-461-5609&user%5Bcountry_code%5D=1&send_install_link_via_sms=1", "", "",
			obj{"user": obj{"email": "foo@bar.com", "cellphone": "775-461-5609", "country_code": "1"}, "send_install_link_via_sms": "1"}},
		{"php approval_requests", "POST", "/onetouch/json/users/1635/approval_requests?message=Login+requested&details%5BAccount+Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B0%5D%5Bres%5D=default&logos%5B0%5D%5Burl%5D=https%3A%2F%2Fexample.com%2Fa.png&seconds_to_expire=120", "", "",
			obj{"message": "Login requested", "details": obj{"Account Number": "123"}, "hidden_details": obj{"ip": "1.2.3.4"},
				"logos": obj{"0": obj{"res": "default", "url": "https://example.com/a.png"}}, "seconds_to_expire": "120"}},
		{"php verification/start force=0", "POST", "/protected/json/phones/verification/start?via=sms&phone_number=775-461-5609&country_code=1&force=0", "", "",
			obj{"via": "sms", "phone_number": "775-461-5609", "country_code": "1", "force": "0"}},

		// authy-python: JSON with nulls and empty containers; also sends {} on delete.
		{"python approval_requests", "POST", "/onetouch/json/users/1635/approval_requests", ctJSON,
			`{"message": "Login requested", "details": {}, "hidden_details": {}, "logos": [], "seconds_to_expire": null}`,
			obj{"message": "Login requested", "details": obj{}, "hidden_details": obj{}, "logos": arr{}, "seconds_to_expire": nil}},
		{"python delete", "POST", "/protected/json/users/1635/delete", ctJSON, `{}`, obj{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRoot(t, mustParse(t, newReq(tc.method, tc.target, tc.ct, tc.body)), tc.want)
		})
	}
}

// All approval-request encodings must read back identically through the accessors.
func TestApprovalRequestEncodingsAgree(t *testing.T) {
	reqs := map[string]*http.Request{
		"json": newReq("POST", "/x", ctJSON, `{"details":{"Account Number":"123"},"hidden_details":{"ip":"1.2.3.4"},"logos":[{"res":"default","url":"u1"},{"res":"low","url":"u2"}],"message":"Login requested","seconds_to_expire":120}`),
		"indexed": newReq("POST", "/x?api_key=K", ctForm,
			"message=Login%20requested&details%5BAccount%20Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B1%5D%5Bres%5D=low&logos%5B1%5D%5Burl%5D=u2&logos%5B0%5D%5Bres%5D=default&logos%5B0%5D%5Burl%5D=u1&seconds_to_expire=120"),
		"rails": newReq("POST", "/x", ctForm,
			"details%5BAccount+Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B%5D%5Bres%5D=default&logos%5B%5D%5Burl%5D=u1&logos%5B%5D%5Bres%5D=low&logos%5B%5D%5Burl%5D=u2&message=Login+requested&seconds_to_expire=+120+"),
		"query": newReq("POST", "/x?message=Login+requested&details[Account+Number]=123&hidden_details[ip]=1.2.3.4&logos[0][res]=default&logos[0][url]=u1&logos[1][res]=low&logos[1][url]=u2&seconds_to_expire=120", "", ""),
	}
	wantLogos := arr{obj{"res": "default", "url": "u1"}, obj{"res": "low", "url": "u2"}}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, r)
			if s, ok := p.String("message"); !ok || s != "Login requested" {
				t.Errorf("message = %q, %v", s, ok)
			}
			for key, want := range map[string]map[string]string{
				"details": {"Account Number": "123"}, "hidden_details": {"ip": "1.2.3.4"},
			} {
				if got, err := p.StringMap(key); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("StringMap(%s) = %v, %v", key, got, err)
				}
			}
			if got, err := p.List("logos"); err != nil || !reflect.DeepEqual(got, wantLogos) {
				t.Errorf("List(logos) = %s, %v", dump(got), err)
			}
			if s, ok := p.String("logos", "1", "res"); !ok || s != "low" {
				t.Errorf("String(logos,1,res) = %q, %v", s, ok)
			}
			if n, present, err := p.Int("seconds_to_expire"); n != 120 || !present || err != nil {
				t.Errorf("Int = %d, %v, %v", n, present, err)
			}
		})
	}
}

func TestPythonNullsAndEmpties(t *testing.T) {
	p := mustParse(t, newReq("POST", "/x", ctJSON, `{"message":"m","details":{},"hidden_details":{},"logos":[],"seconds_to_expire":null}`))
	if n, present, err := p.Int("seconds_to_expire"); n != 0 || present || err != nil {
		t.Errorf("Int(null) = %d, %v, %v", n, present, err)
	}
	if !p.Has("seconds_to_expire") {
		t.Error("null should still be Has")
	}
	if m, err := p.StringMap("details"); m != nil || err != nil {
		t.Errorf("StringMap({}) = %v, %v", m, err)
	}
	if l, err := p.List("logos"); len(l) != 0 || err != nil {
		t.Errorf("List([]) = %v, %v", l, err)
	}
}

func TestBracketDecoding(t *testing.T) {
	tests := []struct {
		query string
		want  obj
	}{
		{"a=1", obj{"a": "1"}},
		{"user[email]=x", obj{"user": obj{"email": "x"}}},
		{"details[Account Number]=123", obj{"details": obj{"Account Number": "123"}}},
		{"details[Account+Number]=1+2", obj{"details": obj{"Account Number": "1 2"}}},
		{"a[]=1&a[]=2", obj{"a": arr{"1", "2"}}},
		{"logos[][res]=default&logos[][url]=u1&logos[][res]=low&logos[][url]=u2",
			obj{"logos": arr{obj{"res": "default", "url": "u1"}, obj{"res": "low", "url": "u2"}}}},
		{"logos[0][res]=default&logos[0][url]=u&logos[1][res]=low",
			obj{"logos": obj{"0": obj{"res": "default", "url": "u"}, "1": obj{"res": "low"}}}},
		{"a=1&a=2", obj{"a": "2"}},
		{"a[b]=1&a[b]=2", obj{"a": obj{"b": "2"}}},
		{"a[b][c]=1&a[b][d]=2", obj{"a": obj{"b": obj{"c": "1", "d": "2"}}}},
		{"a[][b][c]=1&a[][b][d]=2&a[][b][c]=3", obj{"a": arr{obj{"b": obj{"c": "1", "d": "2"}}, obj{"b": obj{"c": "3"}}}}},
		{"a[][b][]=1&a[][b][]=2", obj{"a": arr{obj{"b": arr{"1", "2"}}}}},
		{"a[][]=1&a[][]=2", obj{"a": arr{arr{"1"}, arr{"2"}}}},
		{"a", obj{"a": ""}},
		{"a=", obj{"a": ""}},
		{"a==b", obj{"a": "=b"}},
		{"a=1&&b=2&", obj{"a": "1", "b": "2"}},
		{"%61%5Bb%5D=%7E", obj{"a": obj{"b": "~"}}},
		{"a=x;b=y", obj{"a": "x;b=y"}},
		// Type conflicts: the later parameter wins.
		{"a=1&a[b]=2", obj{"a": obj{"b": "2"}}},
		{"a[b]=2&a=1", obj{"a": "1"}},
		{"a[]=1&a[b]=2", obj{"a": obj{"b": "2"}}},
		{"a[b]=1&a[]=2", obj{"a": arr{"2"}}},
		{"a[]=1&a[][b]=2", obj{"a": arr{"1", obj{"b": "2"}}}},
		{"a[][b]=1&a[][b][c]=2", obj{"a": arr{obj{"b": obj{"c": "2"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			checkRoot(t, mustParse(t, queryReq(tc.query)), tc.want)
			// The same text as a form body decodes identically.
			checkRoot(t, mustParse(t, newReq("POST", "/x", ctForm, tc.query)), tc.want)
		})
	}
}

// Malformed keys never fail; see ParseParams for the documented treatment.
func TestMalformedBrackets(t *testing.T) {
	tests := []struct {
		query string
		want  obj
	}{
		{"a[b=1", obj{"a[b": "1"}},
		{"a[=1", obj{"a[": "1"}},
		{"a]=1", obj{"a]": "1"}},
		{"a]b[c]=1", obj{"a]b": obj{"c": "1"}}},
		{"[x]=1", obj{"[x]": "1"}},
		{"[]=1", obj{"[]": "1"}},
		{"[=1", obj{"[": "1"}},
		{"]=1", obj{"]": "1"}},
		{"a[b]c=1", obj{"a": obj{"b": "1"}}},
		{"a[b][c=1", obj{"a": obj{"b": "1"}}},
		{"a[b]]=1", obj{"a": obj{"b": "1"}}},
		{"a[[b]]=1", obj{"a": obj{"[b": "1"}}},
		{"a[]x=1", obj{"a": arr{"1"}}},
		{"a[][]=1", obj{"a": arr{arr{"1"}}}},
		{"a[][][x]=1", obj{"a": arr{arr{obj{"x": "1"}}}}},
		{"a[][x][]=1", obj{"a": arr{obj{"x": arr{"1"}}}}},
		{"a[b][]=1&a[b][x]=2", obj{"a": obj{"b": obj{"x": "2"}}}},
		{"=1", obj{}},
		{"=", obj{}},
		{"&", obj{}},
		{"&&=&", obj{}},
		{"+=1", obj{" ": "1"}},
		{"a[ ]=1", obj{"a": obj{" ": "1"}}},
		{"a[]=", obj{"a": arr{""}}},
		{"%5B%5D%5B%5D=1", obj{"[]": arr{"1"}}}, // name "[]" (leading '[' is part of the name), then []
		{"[x][y]=1", obj{"[x]": obj{"y": "1"}}},
		{"a%5Bb=1&a=2", obj{"a[b": "1", "a": "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			checkRoot(t, mustParse(t, queryReq(tc.query)), tc.want)
		})
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name, target, ct, body string
		want                   obj
	}{
		{"form deep merge", "/x?user[email]=q&user[cellphone]=1&a=q", ctForm, "user[cellphone]=2&b=body",
			obj{"user": obj{"email": "q", "cellphone": "2"}, "a": "q", "b": "body"}},
		{"json deep merge", "/x?user[email]=q&user[cellphone]=1&api_key=K", ctJSON, `{"user":{"cellphone":"2","country_code":1}}`,
			obj{"user": obj{"email": "q", "cellphone": "2", "country_code": num("1")}, "api_key": "K"}},
		{"body array replaces query array", "/x?a[]=1&a[]=2", ctForm, "a[]=3", obj{"a": arr{"3"}}},
		{"body scalar replaces query map", "/x?a[b]=1", ctJSON, `{"a":"s"}`, obj{"a": "s"}},
		{"body map replaces query scalar", "/x?a=1", ctForm, "a[b]=2", obj{"a": obj{"b": "2"}}},
		{"json null overrides", "/x?a=1", ctJSON, `{"a":null}`, obj{"a": nil}},
		{"json keys are literal", "/x", ctJSON, `{"user[email]":"x"}`, obj{"user[email]": "x"}},
		{"empty json body keeps query", "/x?a=1", ctJSON, "", obj{"a": "1"}},
		{"whitespace json body", "/x?a=1", ctJSON, " \r\n\t ", obj{"a": "1"}},
		{"charset ignored form", "/x", "Application/X-WWW-Form-URLEncoded; charset=UTF-8", "a=1", obj{"a": "1"}},
		{"charset ignored json", "/x", "application/json;charset=utf-8", `{"a":1}`, obj{"a": num("1")}},
		{"+json", "/x", "application/vnd.api+json", `{"a":true}`, obj{"a": true}},
		{"sniffed json without content type", "/x?q=1", "", "\n {\"a\":\"b\"}", obj{"q": "1", "a": "b"}},
		{"no content type, form-looking body ignored", "/x?q=1", "", "a=b", obj{"q": "1"}},
		{"text/plain ignored", "/x", "text/plain", "{\"a\":1}", obj{}},
		{"multipart ignored", "/x", "multipart/form-data; boundary=x", "garbage%zz", obj{}},
		{"form body with json type check", "/x", ctForm, `{"a":1}`, obj{`{"a":1}`: ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST", "DELETE", "PUT"} {
				checkRoot(t, mustParse(t, newReq(method, tc.target, tc.ct, tc.body)), tc.want)
			}
		})
	}
}

func TestParseParamsNilBodyAndURL(t *testing.T) {
	r := &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: "a=1"}, Header: http.Header{"Content-Type": {ctJSON}}}
	checkRoot(t, mustParse(t, r), obj{"a": "1"})
	r = &http.Request{Method: "GET", Header: http.Header{}}
	checkRoot(t, mustParse(t, r), obj{})
	var zero Params
	if zero.Has("a") {
		t.Error("zero Params has a")
	}
	if _, ok := zero.Get(); ok {
		t.Error("zero Params Get() ok")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestBodyTooLarge(t *testing.T) {
	body := `{"a":"` + strings.Repeat("x", 100) + `"}` // 108 bytes
	tests := []struct {
		name    string
		max     int64
		ct      string
		unknown bool // hide ContentLength
		wantErr bool
	}{
		{"json exact", 108, ctJSON, false, false},
		{"json exact unknown length", 108, ctJSON, true, false},
		{"json one over", 107, ctJSON, false, true},
		{"json one over unknown length", 107, ctJSON, true, true},
		{"form over", 10, ctForm, true, true},
		{"sniffed over", 10, "", true, true},
		{"zero limit", 0, ctJSON, true, true},
		{"negative limit", -5, ctJSON, false, true},
		{"ignored content type is not read", 1, "text/plain", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq("POST", "/x", tc.ct, body)
			if tc.unknown {
				r.ContentLength = -1
			}
			_, err := ParseParams(r, tc.max)
			if tc.wantErr != errors.Is(err, ErrBodyTooLarge) || (!tc.wantErr && err != nil) {
				t.Errorf("err = %v, want too large: %v", err, tc.wantErr)
			}
		})
	}
	t.Run("MaxBytesReader wrapper", func(t *testing.T) {
		r := newReq("POST", "/x", ctJSON, body)
		r.ContentLength = -1
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 50)
		if _, err := ParseParams(r, 1000); !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("empty body with zero limit", func(t *testing.T) {
		if _, err := ParseParams(newReq("POST", "/x", ctJSON, ""), 0); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		r := newReq("POST", "/x", ctJSON, "")
		r.Body = io.NopCloser(errReader{})
		_, err := ParseParams(r, 100)
		var pe *ParseError
		if err == nil || errors.Is(err, ErrBodyTooLarge) || errors.As(err, &pe) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestParseErrors(t *testing.T) {
	deepKey := "a" + strings.Repeat("[x]", maxParamDepth-1)
	okDeepJSON := strings.Repeat(`{"a":`, maxParamDepth) + "1" + strings.Repeat("}", maxParamDepth)
	many := strings.TrimSuffix(strings.Repeat("a[]=1&", maxParamCount), "&")
	manyJSON := `{"a":[` + strings.TrimSuffix(strings.Repeat("1,", maxParamCount), ",") + `]}`
	tests := []struct {
		name, target, ct, body string
		reason                 string // substring of Reason; "" means success expected
	}{
		{"malformed json", "/x", ctJSON, `{"a":`, "malformed JSON"},
		{"malformed json token", "/x", ctJSON, `{"a":x}`, "malformed JSON"},
		{"unquoted key", "/x", ctJSON, `{a:1}`, "malformed JSON"},
		{"trailing whitespace ok", "/x", ctJSON, "{\"a\":1} \r\n\t", ""},
		{"trailing garbage", "/x", ctJSON, `{"a":1}x`, "malformed JSON"},
		{"two objects", "/x", ctJSON, `{"a":1} {"b":2}`, "malformed JSON"},
		{"sniffed malformed", "/x", "", `{"a"`, "malformed JSON"},
		{"json array", "/x", ctJSON, `[1]`, "must be an object"},
		{"json string", "/x", ctJSON, `"x"`, "must be an object"},
		{"json null", "/x", ctJSON, `null`, "must be an object"},
		{"json number", "/x", ctJSON, ` 12 `, "must be an object"},
		{"bad escape in query", "/x?a=%zz", "", "", "query string"},
		{"bad escape in query key", "/x?a%2=1", "", "", "query string"},
		{"truncated escape in body", "/x", ctForm, "a=%4", "form body"},
		{"form depth ok", "/x?" + deepKey + "=1", "", "", ""},
		{"form too deep", "/x?" + deepKey + "[y]=1", "", "", "deeper"},
		{"form too deep in body", "/x", ctForm, deepKey + "[]=1", "deeper"},
		{"json depth ok", "/x", ctJSON, okDeepJSON, ""},
		{"json too deep", "/x", ctJSON, `{"a":` + okDeepJSON + `}`, "deeper"},
		{"json too deep in array", "/x", ctJSON, `{"a":[[[[[[[[1]]]]]]]]}`, "deeper"},
		{"json empty container at max depth ok", "/x", ctJSON, `{"a":[[[[[[[[]]]]]]]]}`, ""},
		{"count ok", "/x?" + many, "", "", ""},
		{"count over in query", "/x?" + many + "&b=1", "", "", "more than"},
		{"count over across query and body", "/x?b=1", ctForm, many, "more than"},
		{"count over across query and json", "/x?b=1", ctJSON, manyJSON, "more than"},
		{"json count ok", "/x", ctJSON, manyJSON, ""},
		{"empty pairs are not counted", "/x?" + many + strings.Repeat("&", 2000), "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseParams(newReq("POST", tc.target, tc.ct, tc.body), 1<<20)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if !strings.Contains(pe.Reason, tc.reason) || !strings.Contains(err.Error(), pe.Reason) {
				t.Errorf("reason %q does not contain %q", pe.Reason, tc.reason)
			}
		})
	}
}

// Text no store keeps alike is refused wherever it appears, naming the parameter.
func TestParseRefusesNonText(t *testing.T) {
	tests := []struct {
		name, target, ct, body string
		param                  string // the parameter named; "" for a *ParseError
	}{
		{"NUL in a query value", "/x?action=a%00b", "", "", "action"},
		{"invalid UTF-8 in a query value", "/x?user%5Bemail%5D=%FF", "", "", "user[email]"},
		{"NUL in a query key", "/x?a%00=1", "", "", "a\x00"},
		{"invalid UTF-8 in a form value", "/x", ctForm, "message=%C3", "message"},
		{"a surrogate in a form value", "/x", ctForm, "data%5Bip%5D=%ED%A0%80", "data[ip]"},
		{"NUL escaped in a JSON string", "/x", ctJSON, `{"details":{"k":"a\u0000"}}`, "details[k]"},
		{"NUL escaped in a JSON key", "/x", ctJSON, `{"details":{"\u0000":"v"}}`, "details[\x00]"},
		{"NUL in a JSON list", "/x", ctJSON, `{"logos":[{"url":"\u0000"}]}`, "logos[][url]"},
		{"invalid UTF-8 in a JSON body", "/x", ctJSON, "{\"message\":\"\xff\"}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseParams(newReq("POST", tc.target, tc.ct, tc.body), 1<<20)
			if tc.param == "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "not UTF-8") {
					t.Fatalf("err = %v, want a *ParseError saying not UTF-8", err)
				}
				return
			}
			var te *TextError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *TextError", err)
			}
			if te.Param != tc.param {
				t.Errorf("names %q, want %q", te.Param, tc.param)
			}
		})
	}
	// Valid text, however odd, passes.
	if _, err := ParseParams(newReq("POST", "/x?a=%E2%80%AE%0D%0A", ctJSON, `{"b":"\ud83d\ude00 \t"}`), 1<<20); err != nil {
		t.Fatalf("odd but valid text refused: %v", err)
	}
}

func TestAccessors(t *testing.T) {
	p := mustParse(t, newReq("POST",
		"/x?qt=TRUE&qf=False&q1=1&q0=0&qe=&qs=%20true%20&qbad=yes&qi=%20-42%20&qplus=%2B7&qfloat=1.5&qbig=9223372036854775808&qmax=9223372036854775807&qx=12abc&m[a]=1&m[b][]=x",
		ctJSON,
		`{"jt":true,"jf":false,"jn1":1,"jn0":0,"jn2":2,"jnf":1.0,"jexp":1e3,"jneg":-3,"jnull":null,"jstr":"s","jmap":{"k":"v","n":1,"b":true,"z":null,"deep":{"x":[1,"<&>"]}},"jlist":["a",{"b":1}],"jempty":{}}`))

	bools := []struct {
		key              string
		val, present, ok bool
	}{
		{"qt", true, true, true}, {"qf", false, true, true}, {"q1", true, true, true}, {"q0", false, true, true},
		{"qe", false, true, true}, {"qs", true, true, true}, {"qbad", false, true, false}, {"qi", false, true, false},
		{"jt", true, true, true}, {"jf", false, true, true}, {"jn1", true, true, true}, {"jn0", false, true, true},
		{"jn2", false, true, false}, {"jnf", false, true, false}, {"jnull", false, false, true}, {"missing", false, false, true},
		{"jmap", false, true, false}, {"jlist", false, true, false}, {"m", false, true, false},
	}
	for _, tc := range bools {
		val, present, err := p.Bool(tc.key)
		if val != tc.val || present != tc.present || (err == nil) != tc.ok {
			t.Errorf("Bool(%s) = %v, %v, %v; want %v, %v, ok=%v", tc.key, val, present, err, tc.val, tc.present, tc.ok)
		}
	}

	ints := []struct {
		key         string
		val         int64
		present, ok bool
	}{
		{"q1", 1, true, true}, {"qi", -42, true, true}, {"qplus", 7, true, true}, {"qmax", 9223372036854775807, true, true},
		{"qe", 0, false, true}, {"qfloat", 0, true, false}, {"qbig", 0, true, false}, {"qx", 0, true, false},
		{"qt", 0, true, false}, {"jn2", 2, true, true}, {"jneg", -3, true, true}, {"jnf", 0, true, false},
		{"jexp", 0, true, false}, {"jt", 0, true, false}, {"jnull", 0, false, true}, {"missing", 0, false, true},
		{"jmap", 0, true, false}, {"jlist", 0, true, false},
	}
	for _, tc := range ints {
		val, present, err := p.Int(tc.key)
		if val != tc.val || present != tc.present || (err == nil) != tc.ok {
			t.Errorf("Int(%s) = %v, %v, %v; want %v, %v, ok=%v", tc.key, val, present, err, tc.val, tc.present, tc.ok)
		}
	}
	if _, _, err := p.Int("jmap", "k"); err == nil || !strings.Contains(err.Error(), "jmap[k]") {
		t.Errorf("error should name jmap[k]: %v", err)
	}

	strs := []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"qs"}, " true ", true}, {[]string{"jn1"}, "1", true}, {[]string{"jnf"}, "1.0", true},
		{[]string{"jt"}, "true", true}, {[]string{"jf"}, "false", true}, {[]string{"jnull"}, "", true},
		{[]string{"qe"}, "", true}, {[]string{"missing"}, "", false}, {[]string{"jmap"}, "", false},
		{[]string{"jlist"}, "", false}, {[]string{"jmap", "k"}, "v", true}, {[]string{"jlist", "0"}, "a", true},
		{[]string{"jlist", "1", "b"}, "1", true}, {[]string{"jlist", "2"}, "", false}, {[]string{"jlist", "-1"}, "", false},
		{[]string{"jlist", "x"}, "", false}, {[]string{"jstr", "x"}, "", false}, {[]string{"m", "b", "0"}, "x", true},
	}
	for _, tc := range strs {
		got, ok := p.String(tc.path...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("String(%v) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
		if p.Has(tc.path...) != (tc.ok || tc.path[0] == "jmap" && len(tc.path) == 1 || tc.path[0] == "jlist" && len(tc.path) == 1) {
			t.Errorf("Has(%v) inconsistent", tc.path)
		}
	}

	if root, ok := p.Get(); !ok || len(root.(map[string]any)) == 0 {
		t.Error("Get() should return the root map")
	}

	sm, err := p.StringMap("jmap")
	wantSM := map[string]string{"k": "v", "n": "1", "b": "true", "z": "", "deep": `{"x":[1,"<&>"]}`}
	if err != nil || !reflect.DeepEqual(sm, wantSM) {
		t.Errorf("StringMap(jmap) = %v, %v", sm, err)
	}
	if sm, err := p.StringMap("m"); err != nil || !reflect.DeepEqual(sm, map[string]string{"a": "1", "b": `["x"]`}) {
		t.Errorf("StringMap(m) = %v, %v", sm, err)
	}
	for _, key := range []string{"missing", "jnull", "jempty"} {
		if sm, err := p.StringMap(key); sm != nil || err != nil {
			t.Errorf("StringMap(%s) = %v, %v", key, sm, err)
		}
	}
	for _, key := range []string{"jstr", "qe", "jlist", "jt", "jn1"} {
		if _, err := p.StringMap(key); err == nil {
			t.Errorf("StringMap(%s) should fail", key)
		}
	}
}

func TestList(t *testing.T) {
	p := mustParse(t, newReq("GET",
		"/x?ix[10]=c&ix[2]=b&ix[0]=a&mixed[0]=a&mixed[x]=b&s=str&e[]=&sparse[5]=x&sparse[1]=y&dup[1]=a&dup[01]=b&huge[99999999999999999999]=x",
		"", ""))
	tests := []struct {
		key  string
		want arr
		ok   bool
	}{
		{"ix", arr{"a", "b", "c"}, true},
		{"sparse", arr{"y", "x"}, true},
		{"dup", arr{"b", "a"}, true},
		{"e", arr{""}, true},
		{"missing", nil, true},
		{"mixed", nil, false},
		{"s", nil, false},
		{"huge", nil, false},
	}
	for _, tc := range tests {
		got, err := p.List(tc.key)
		if !reflect.DeepEqual(got, tc.want) || (err == nil) != tc.ok {
			t.Errorf("List(%s) = %v, %v; want %v ok=%v", tc.key, got, err, tc.want, tc.ok)
		}
	}
	j := mustParse(t, newReq("POST", "/x", ctJSON, `{"n":null,"l":[1,{"a":"b"}],"m":{},"num":3}`))
	if l, err := j.List("n"); l != nil || err != nil {
		t.Errorf("List(null) = %v, %v", l, err)
	}
	if l, err := j.List("l"); err != nil || !reflect.DeepEqual(l, arr{num("1"), obj{"a": "b"}}) {
		t.Errorf("List(l) = %v, %v", l, err)
	}
	if l, err := j.List("m"); len(l) != 0 || err != nil {
		t.Errorf("List({}) = %v, %v", l, err)
	}
	if _, err := j.List("num"); err == nil {
		t.Error("List(number) should fail")
	}
}

// walkPaths calls visit for every path in v (depth-first, maps in unspecified order).
func walkPaths(v any, path []string, visit func([]string, any)) {
	visit(path, v)
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			walkPaths(c, append(path[:len(path):len(path)], k), visit)
		}
	case []any:
		for i, c := range t {
			walkPaths(c, append(path[:len(path):len(path)], fmt.Sprint(i)), visit)
		}
	}
}

var fuzzContentTypes = []string{"", ctForm, ctJSON, "application/json; charset=utf-8", "application/x+json", "text/plain", "APPLICATION/X-WWW-FORM-URLENCODED;charset=utf-8"}

func FuzzParseParams(f *testing.F) {
	f.Add("api_key=K&force=true", uint8(0), []byte(""))
	f.Add("api_key=KEY456", uint8(1), []byte("message=Login%20requested&details%5BAccount%20Number%5D=123&logos%5B0%5D%5Bres%5D=default&logos%5B1%5D%5Bres%5D=low"))
	f.Add("", uint8(1), []byte("api_key=GOKEY&details%5BAccount+Number%5D=123&logos%5B%5D%5Bres%5D=default&logos%5B%5D%5Burl%5D=u&message=Login+requested"))
	f.Add("user[email]=x", uint8(2), []byte(`{"user":{"cellphone":"7754615609","country_code":1},"logos":[],"details":{},"seconds_to_expire":null}`))
	f.Add("a[b=1&a]=2&[x]=3&a[b]c=4&=5&a[][]=6&a=1&a[b]=2", uint8(1), []byte("a[][x]=1&a[][x]=2&a[][y][]=3"))
	f.Add("a[][][x]=1&a[][x][]=2&a[b][]=1&a[b][x]=2", uint8(0), []byte(" {\"a\":[[{}]]}"))
	f.Add("%zz", uint8(2), []byte(`[1]`))
	f.Add("x[0][1][2][3][4][5][6]=1", uint8(4), []byte(`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}}`))
	f.Add("a=%E2%82", uint8(5), []byte(`{"a":1}garbage`))
	f.Add("a%00=1", uint8(2), []byte("{\"a\":\"\\u0000\",\"b\":\"\xff\"}"))
	f.Add("", uint8(1), []byte("user%5Bemail%5D=%FF%FE"))
	f.Fuzz(func(t *testing.T, query string, ctChoice uint8, body []byte) {
		ct := fuzzContentTypes[int(ctChoice)%len(fuzzContentTypes)]
		mk := func(q string, ct string, body []byte) *http.Request {
			r := &http.Request{Method: "POST", URL: &url.URL{Path: "/", RawQuery: q}, Header: http.Header{},
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			return r
		}
		p, err := ParseParams(mk(query, ct, body), 1<<16)
		if err != nil {
			var pe *ParseError
			var te *TextError
			if !errors.As(err, &pe) && !errors.As(err, &te) && !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if p.root == nil {
			t.Fatal("nil root on success")
		}
		walkPaths(p.root, nil, func(path []string, v any) {
			if len(path) > maxParamDepth {
				t.Fatalf("path %q deeper than %d", path, maxParamDepth)
			}
			switch v.(type) {
			case string, bool, json.Number, nil, map[string]any, []any:
			default:
				t.Fatalf("unexpected value type %T at %q", v, path)
			}
			// Only text every store keeps alike gets through: no NUL, no invalid UTF-8.
			for _, k := range path {
				if !wiretext.Valid(k) {
					t.Fatalf("key %q of %q is not valid text", k, path)
				}
			}
			if s, ok := v.(string); ok && !wiretext.Valid(s) {
				t.Fatalf("value %q at %q is not valid text", s, path)
			}
			if got, ok := p.Get(path...); !ok || !reflect.DeepEqual(got, v) {
				t.Fatalf("Get(%q) mismatch", path)
			}
			p.Has(path...)
			p.String(path...)
			p.Bool(path...)
			p.Int(path...)
			p.StringMap(path...)
			p.List(path...)
		})
		// Form decoding is the same for query and body.
		if ct == "" && len(body) == 0 {
			pb, errb := ParseParams(mk("", ctForm, []byte(query)), 1<<30)
			if errb != nil || !reflect.DeepEqual(pb.root, p.root) {
				t.Fatalf("query vs form body differ: %v %s %s", errb, dump(pb.root), dump(p.root))
			}
		}
	})
}

func BenchmarkParseParams(b *testing.B) {
	goForm := "api_key=GOKEY&details%5BAccount+Number%5D=123&hidden_details%5Bip%5D=1.2.3.4&logos%5B%5D%5Bres%5D=default&logos%5B%5D%5Burl%5D=https%3A%2F%2Fexample.com%2Fa.png&message=Login+requested&seconds_to_expire=120"
	clientJSON := `{"details":{"Account Number":"123"},"hidden_details":{"ip":"1.2.3.4"},"logos":[{"res":"default","url":"https://example.com/a.png"}],"message":"Login requested","seconds_to_expire":120}`
	for _, bc := range []struct{ name, ct, body string }{
		{"go-authy-form", ctForm, goForm},
		{"authy-client-json", ctJSON, clientJSON},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			rd := strings.NewReader(bc.body)
			r := httptest.NewRequest("POST", "/onetouch/json/users/1635/approval_requests", rd)
			r.Header.Set("Content-Type", bc.ct)
			for b.Loop() {
				rd.Reset(bc.body)
				if _, err := ParseParams(r, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
