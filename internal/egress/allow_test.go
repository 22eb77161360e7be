package egress

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAllowlist(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" with err
		err      bool
	}{
		{"", "", false},
		{"ntfy.lan", "ntfy.lan", false},
		{"NTFY.Lan., ntfy.lan", "ntfy.lan", false},
		{"ntfy.lan:8080 192.168.1.10,[fd00::5]:443", "ntfy.lan:8080,192.168.1.10,[fd00::5]:443", false},
		{"fd00::5", "fd00::5", false},
		{"[fd00::5]", "fd00::5", false},
		{"::ffff:127.0.0.1:80", "", true}, // ambiguous without brackets
		{"[::ffff:127.0.0.1]:080", "127.0.0.1:80", false},
		{"app_1.internal:3000", "app_1.internal:3000", false},
		{"https://ntfy.lan", "", true},
		{"10.0.0.0/8", "", true},
		{"ntfy.lan:0", "", true},
		{"ntfy.lan:65536", "", true},
		{"ntfy.lan:-1", "", true},
		{"ntfy.lan:", "", true},
		{"ntfy..lan", "", true},
		{"*.lan", "", true},
		{"bücher.lan", "", true},
		{"2130706433", "", true},
		{"host.0x7f", "", true},
		{"[fe80::1%eth0]:80", "", true},
		{strings.Repeat("a", 64) + ".lan", "", true},
	} {
		l, err := ParseAllowlist(tc.in)
		if (err != nil) != tc.err || l.String() != tc.want {
			t.Errorf("ParseAllowlist(%q) = %q, %v; want %q, error %v", tc.in, l.String(), err, tc.want, tc.err)
		}
	}
}

func TestAllows(t *testing.T) {
	l, err := ParseAllowlist("ntfy.lan, 192.168.1.10:8080, [fd00::5]:443, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, port string
		want       bool
	}{
		{"ntfy.lan", "443", true},
		{"NTFY.LAN.", "80", true},
		{"ntfy.lan", "", true},
		{"x.ntfy.lan", "443", false},
		{"lan", "443", false},
		{"192.168.1.10", "8080", true},
		{"192.168.1.10", "08080", true},
		{"192.168.1.10", "80", false},
		{"192.168.1.10", "", false},
		{"[fd00::5]", "443", true},
		{"fd00:0::5", "443", true},
		{"fd00::5", "80", false},
		{"127.0.0.1", "9", true},
		{"::ffff:127.0.0.1", "9", true}, // the same address
		{"127.0.0.2", "9", false},
		{"::1", "9", false},
		{"localhost", "9", false},
	} {
		if got := l.Allows(tc.host, tc.port); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v; want %v", tc.host, tc.port, got, tc.want)
		}
	}
	if (Allowlist{}).Allows("ntfy.lan", "443") || !(Allowlist{}).Empty() || l.Empty() {
		t.Error("the zero Allowlist allows")
	}
}

// TestCheck: what can be refused without resolving is refused, unless allowed.
func TestCheck(t *testing.T) {
	l, _ := ParseAllowlist("localhost:8080, 10.0.0.7")
	for _, tc := range []struct {
		host, port, why string // why "" when accepted
	}{
		{"push.example", "443", ""},
		{"8.8.8.8", "443", ""},
		{"2606:4700::1", "443", ""},
		{"127.0.0.1", "443", "loopback address"},
		{"::ffff:127.0.0.1", "443", "loopback address"},
		{"::1", "443", "loopback address"},
		{"169.254.169.254", "80", "link-local"},
		{"fe80::1%eth0", "80", "scoped"},
		{"0.0.0.0", "80", "unspecified"},
		{"localhost", "443", "loopback name"},
		{"LOCALHOST.", "443", "loopback name"},
		{"app.localhost", "443", "loopback name"},
		{"localhost", "8080", ""}, // allowed
		{"10.0.0.7", "80", ""},    // allowed
		{"10.0.0.8", "80", "private address"},
		{"2130706433", "80", "reads as an IPv4 address"},
		{"0x7f000001", "80", "reads as an IPv4 address"},
		{"127.1", "80", "reads as an IPv4 address"},
		{"0177.0.0.1", "80", "reads as an IPv4 address"},
		{"host.0x", "80", "reads as an IPv4 address"},
		{"host.", "80", ""},
		{"", "80", "empty name"},
	} {
		err := l.Check(tc.host, tc.port)
		var re *RefusedError
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("Check(%q, %q) = %v; want nil", tc.host, tc.port, err)
		case tc.why != "" && (!errors.As(err, &re) || !strings.Contains(re.Reason+err.Error(), tc.why)):
			t.Errorf("Check(%q, %q) = %v; want refused: %s", tc.host, tc.port, err, tc.why)
		}
	}
}

// FuzzParseAllowlist: what parses prints back to itself, and allows each of its entries.
func FuzzParseAllowlist(f *testing.F) {
	for _, s := range []string{"ntfy.lan", "a:1, [::1]:2 3.4.5.6", "[fd00::5]", "x..y", "a:b:c", "[::ffff:1.2.3.4]:08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseAllowlist(s)
		if err != nil {
			return
		}
		again, err := ParseAllowlist(l.String())
		if err != nil || again.String() != l.String() {
			t.Fatalf("%q: parsed %q, which parses as %q, %v", s, l.String(), again.String(), err)
		}
		for _, e := range l.entries {
			host, port := e, ""
			if i := strings.LastIndexByte(e, ':'); i >= 0 && (e[0] == '[' || strings.Count(e, ":") == 1) {
				host, port = e[:i], e[i+1:]
			}
			if !l.Allows(host, port) || l.Check(host, port) != nil {
				t.Fatalf("%q: entry %q does not allow %q port %q", s, e, host, port)
			}
		}
	})
}
