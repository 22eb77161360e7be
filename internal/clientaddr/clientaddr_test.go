package clientaddr

import (
	"net/http/httptest"
	"testing"
)

func TestAddrAndKey(t *testing.T) {
	trusted, err := ParseProxies("10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote, xff, want, key string
	}{
		{"192.0.2.1:1234", "", "192.0.2.1", "192.0.2.1/32"},
		{"192.0.2.1:1234", "198.51.100.1", "192.0.2.1", "192.0.2.1/32"}, // not a trusted peer: the header is ignored
		{"10.0.0.1:1234", "198.51.100.1", "198.51.100.1", "198.51.100.1/32"},
		{"10.0.0.1:1234", "203.0.113.5, 198.51.100.1, 10.9.9.9", "198.51.100.1", "198.51.100.1/32"},
		{"10.0.0.1:1234", "10.2.2.2, 10.3.3.3", "10.2.2.2", "10.2.2.2/32"}, // all proxies: the farthest
		{"10.0.0.1:1234", "", "10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.1:1234", "garbage, 10.3.3.3", "10.3.3.3", "10.3.3.3/32"},
		{"[::1]:80", "[2001:db8::7]:5555", "2001:db8::7", "2001:db8::/64"},
		{"[::ffff:10.0.0.1]:80", "::ffff:198.51.100.9", "198.51.100.9", "198.51.100.9/32"}, // the same client as over IPv4
		{"[2001:db8:a:b:c::1]:443", "", "2001:db8:a:b:c::1", "2001:db8:a:b::/64"},
		{"[2001:db8:a:b:ffff::1]:443", "", "2001:db8:a:b:ffff::1", "2001:db8:a:b::/64"}, // the same /64
		{"[fe80::1%eth0]:80", "", "fe80::1", "fe80::/64"},
		{"192.0.2.7", "", "192.0.2.7", "192.0.2.7/32"}, // no port
		{"pipe", "198.51.100.1", "invalid IP", "invalid Prefix"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := trusted.Addr(r).String(); got != tc.want {
			t.Errorf("%s with %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
		if got := trusted.Key(r).String(); got != tc.key {
			t.Errorf("%s with %q: key %s, want %s", tc.remote, tc.xff, got, tc.key)
		}
	}
	// Trusting none, the header never counts.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "10.0.0.1:1", []string{"198.51.100.1"}
	if got := Proxies(nil).Addr(r).String(); got != "10.0.0.1" {
		t.Errorf("no trusted proxies: client %s, want the peer", got)
	}
}

func TestParseProxies(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the prefixes, or "error"
	}{
		{"", "[]"},
		{"127.0.0.1", "[127.0.0.1/32]"},
		{" 10.0.0.0/8 , ::1 ", "[10.0.0.0/8 ::1/128]"},
		{"10.1.2.3/8", "[10.0.0.0/8]"},
		{"::ffff:10.0.0.0/104", "[10.0.0.0/8]"},
		{"10.0.0.0/8,nonsense", "error"},
		{"10.0.0.0/33", "error"},
	} {
		p, err := ParseProxies(tc.in)
		got := "error"
		if err == nil {
			got = toString(p)
		}
		if got != tc.want {
			t.Errorf("ParseProxies(%q) = %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
}

func toString(p Proxies) string {
	s := "["
	for i, pre := range p {
		if i > 0 {
			s += " "
		}
		s += pre.String()
	}
	return s + "]"
}
