package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// target is a loopback server that counts the TCP connections made to it, requests or not.
type target struct {
	*httptest.Server
	conns atomic.Int64
}

func newTarget(t *testing.T, h http.HandlerFunc, tlsH2 bool) *target {
	t.Helper()
	tg := &target{}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto) }
	}
	tg.Server = httptest.NewUnstartedServer(h)
	tg.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tg.conns.Add(1)
		}
	}
	if tlsH2 {
		tg.EnableHTTP2 = true
		tg.StartTLS()
	} else {
		tg.Start()
	}
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) port() string {
	_, p, _ := net.SplitHostPort(tg.Listener.Addr().String())
	return p
}

// resolver answers names from a table; a name with several answers gives them in turn, one
// per lookup, then repeats the last.
type resolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups map[string]int
}

func newResolver(answers map[string][]string) *resolver {
	r := &resolver{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
	for name, list := range answers {
		for _, a := range list {
			var set []netip.Addr
			for _, s := range strings.Split(a, " ") {
				set = append(set, netip.MustParseAddr(s))
			}
			r.answers[name] = append(r.answers[name], set)
		}
	}
	return r
}

func (r *resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".") // as DNS compares names
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	n := r.lookups[host]
	r.lookups[host]++
	return seq[min(n, len(seq)-1)], nil
}

func get(c *http.Client, url string) (string, error) {
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, b), err
}

// TestRefused: no request to a forbidden address leaves, however the address is written or
// whatever name leads to it, and the error says why.
func TestRefused(t *testing.T) {
	tg := newTarget(t, nil, false)
	p := tg.port()
	r := newResolver(map[string][]string{
		"loopback.attacker.example": {"127.0.0.1"},
		"mapped.attacker.example":   {"::ffff:127.0.0.1"},
		"six.attacker.example":      {"::1"},
		"meta.attacker.example":     {"169.254.169.254"},
		"many.attacker.example":     {"10.0.0.1 127.0.0.1 fd00::1"},
		"nat64.attacker.example":    {"64:ff9b::7f00:1"},
	})
	c := New(Allowlist{}, r).Client(5 * time.Second)
	for _, tc := range []struct{ url, why string }{
		{"http://127.0.0.1:" + p + "/", "loopback address"},
		{"http://[::ffff:127.0.0.1]:" + p + "/", "loopback address"},
		{"http://[::1]:" + p + "/", "loopback address"},
		{"http://localhost:" + p + "/", "loopback name"},
		{"http://LocalHost.:" + p + "/", "loopback name"},
		{"http://2130706433:" + p + "/", "reads as an IPv4 address"},
		{"http://loopback.attacker.example:" + p + "/", "loopback.attacker.example at 127.0.0.1: loopback address"},
		{"http://mapped.attacker.example:" + p + "/", "loopback address"},
		{"http://six.attacker.example:" + p + "/", "loopback address"},
		{"http://meta.attacker.example/latest/meta-data/", "link-local address"},
		{"http://169.254.169.254/latest/meta-data/", "link-local address"},
		{"http://many.attacker.example:" + p + "/", "10.0.0.1: private address"},
		{"http://nat64.attacker.example:" + p + "/", "NAT64 address of 127.0.0.1"},
		{"http://[64:ff9b::127.0.0.1]:" + p + "/", "NAT64"},
		{"http://0.0.0.0:" + p + "/", "unspecified"},
		{"http://[::]:" + p + "/", "unspecified"},
		{"https://[fe80::1%25lo]:" + p + "/", "scoped address"},
	} {
		got, err := get(c, tc.url)
		if !IsRefused(err) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("GET %s = %q, %v; want refused: %s", tc.url, got, err, tc.why)
		}
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the target got %d connections", n)
	}
}

// TestDNSRebinding: a name that resolved to a public address when it was looked at, and
// resolves to loopback when the connection is made, is refused on the second answer.
func TestDNSRebinding(t *testing.T) {
	tg := newTarget(t, nil, false)
	r := newResolver(map[string][]string{"rebind.attacker.example": {"93.184.215.14", "127.0.0.1"}})
	g := New(Allowlist{}, r)
	// What a check before the connection would see.
	first, _ := r.LookupNetIP(t.Context(), "ip", "rebind.attacker.example")
	if len(first) != 1 || Forbidden(first[0]) != "" {
		t.Fatalf("first answer %v", first)
	}
	_, err := get(g.Client(5*time.Second), "http://rebind.attacker.example:"+tg.port()+"/")
	var re *RefusedError
	if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("GET after rebinding: %v; want refused at 127.0.0.1", err)
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the target got %d connections", n)
	}
}

// TestControl: the socket-level check refuses what the dialer is about to connect to, so a
// forbidden address is refused even by a path that skipped the resolver's check.
func TestControl(t *testing.T) {
	for addr, refused := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "[::ffff:127.0.0.1]:80": true, "169.254.169.254:80": true,
		"[fe80::1%2]:80": true, "10.0.0.1:443": true, "8.8.8.8:443": false, "[2606:4700::1111]:443": false,
		"not an address": true,
	} {
		if err := control("tcp", addr, nil); (err != nil) != refused {
			t.Errorf("control(%s) = %v; want refused %v", addr, err, refused)
		}
	}
	tg := newTarget(t, nil, false)
	g := New(Allowlist{}, nil)
	if _, err := g.checked.Dial("tcp", tg.Listener.Addr().String()); !IsRefused(err) {
		t.Errorf("the checked dialer connected to %s: %v", tg.Listener.Addr(), err)
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the target got %d connections", n)
	}
}

// TestOwnAddresses: the addresses of this host's interfaces are refused, public or not (a
// server's public address reaches what listens on all its interfaces).
func TestOwnAddresses(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		a, ok := netip.AddrFromSlice(ia.(*net.IPNet).IP)
		if own, err := ownAddress(a); !ok || !own || err != nil {
			t.Errorf("%s: own %v, %v", ia, own, err)
		}
		if why := refusal(a.Unmap()); why == "" {
			t.Errorf("%s is not refused", a)
		}
	}
	for _, s := range []string{"8.8.8.8", "2606:4700:4700::1111"} {
		if own, err := ownAddress(netip.MustParseAddr(s)); own || err != nil {
			t.Errorf("%s: own %v, %v", s, own, err)
		}
		if why := refusal(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s refused: %s", s, why)
		}
	}
}

// TestAllowed: a host on the list reaches the private address it resolves to, by name, by
// literal and with its port; other ports of a host listed with a port do not.
func TestAllowed(t *testing.T) {
	tg := newTarget(t, nil, false)
	p := tg.port()
	r := newResolver(map[string][]string{"ntfy.lan": {"127.0.0.1"}, "other.lan": {"127.0.0.1"}, "pinned.lan": {"127.0.0.1"}})
	allow, err := ParseAllowlist("ntfy.lan, 127.0.0.1:" + p + ", pinned.lan:1")
	if err != nil {
		t.Fatal(err)
	}
	c := New(allow, r).Client(5 * time.Second)
	for _, u := range []string{"http://ntfy.lan:" + p + "/", "http://NTFY.LAN.:" + p + "/", "http://127.0.0.1:" + p + "/", "http://[::ffff:127.0.0.1]:" + p + "/"} {
		if got, err := get(c, u); err != nil || got != "200 HTTP/1.1" {
			t.Errorf("GET %s = %q, %v", u, got, err)
		}
	}
	for _, u := range []string{"http://other.lan:" + p + "/", "http://pinned.lan:" + p + "/", "http://127.0.0.2:" + p + "/"} {
		if got, err := get(c, u); !IsRefused(err) {
			t.Errorf("GET %s = %q, %v; want refused", u, got, err)
		}
	}
}

// TestHTTP2: HTTPS and HTTP/2 connections are made by the guard too.
func TestHTTP2(t *testing.T) {
	tg := newTarget(t, nil, true)
	r := newResolver(map[string][]string{"push.lan": {"127.0.0.1"}, "example.com": {"127.0.0.1"}})
	allow, _ := ParseAllowlist("push.lan")
	pool := x509.NewCertPool()
	pool.AddCert(tg.Certificate())
	client := func(g *Guard) *http.Client {
		c := g.Client(5 * time.Second)
		// httptest's certificate names example.com and 127.0.0.1.
		c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "example.com"}
		return c
	}
	u := "https://push.lan:" + tg.port() + "/"
	for range 2 { // the second request reuses the connection
		if got, err := get(client(New(allow, r)), u); err != nil || got != "200 HTTP/2.0" {
			t.Fatalf("GET %s = %q, %v", u, got, err)
		}
	}
	before := tg.conns.Load()
	if got, err := get(client(New(Allowlist{}, r)), "https://example.com:"+tg.port()+"/"); !IsRefused(err) {
		t.Errorf("GET https://example.com (127.0.0.1) = %q, %v; want refused", got, err)
	}
	if n := tg.conns.Load() - before; n != 0 {
		t.Errorf("the target got %d connections", n)
	}
}

// TestNoRedirect: a redirect is answered as it is, never followed to where it points.
func TestNoRedirect(t *testing.T) {
	tg := newTarget(t, nil, false)
	redirector := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, tg.URL+"/", http.StatusFound)
	}, false)
	allow, _ := ParseAllowlist("127.0.0.1:" + redirector.port())
	got, err := get(New(allow, nil).Client(5*time.Second), redirector.URL+"/")
	if err != nil || !strings.HasPrefix(got, "302 ") {
		t.Errorf("GET = %q, %v; want the 302", got, err)
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the redirect's target got %d connections", n)
	}
}

// TestNoProxy: HTTP_PROXY does not route guarded connections around the check: they connect
// directly, where a default transport would hand them to the proxy.
func TestNoProxy(t *testing.T) {
	tg := newTarget(t, nil, false)
	proxy := newTarget(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "proxied") }, false)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	r := newResolver(map[string][]string{"ntfy.lan": {"127.0.0.1"}})
	allow, _ := ParseAllowlist("ntfy.lan")
	u := "http://ntfy.lan:" + tg.port() + "/"

	// The environment is in effect: a default transport goes through the proxy.
	def := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	if got, err := get(def, u); err != nil || got != "200 proxied" {
		t.Fatalf("default transport: %q, %v; want it proxied", got, err)
	}
	before := proxy.conns.Load()
	if got, err := get(New(allow, r).Client(5*time.Second), u); err != nil || got != "200 HTTP/1.1" {
		t.Errorf("guarded: %q, %v; want a direct answer", got, err)
	}
	if n := proxy.conns.Load() - before; n != 0 {
		t.Errorf("the proxy got %d connections", n)
	}
}
