package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/egress"
)

// target is a server on loopback that an attacker would like Twofold to reach: it counts every
// TCP connection made to it, whether or not a request follows.
type target struct {
	*httptest.Server
	conns atomic.Int64
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tg.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tg.conns.Add(1)
		}
	}
	tg.Start()
	t.Cleanup(tg.Close)
	return tg
}

// attackerDNS answers the attacker's names: loopback and metadata names at once, and a
// re-bound name with a public address first and loopback after.
type attackerDNS struct {
	mu     sync.Mutex
	asked  map[string]int
	fixed  map[string]string
	rebind string
}

func (d *attackerDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked[host]++
	if host == d.rebind {
		if d.asked[host] == 1 {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	if a, ok := d.fixed[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestPushEndpointsCannotReachPrivateAddresses: a device cannot make the server connect to
// loopback, link-local (cloud metadata) or private addresses through push subscriptions. An
// address written in the endpoint is refused when subscribing, with the error envelope; a name
// that resolves to one, or is re-bound to one after it resolved to a public address, is
// refused when the push connects. The server on loopback gets no connection at all.
func TestPushEndpointsCannotReachPrivateAddresses(t *testing.T) {
	tg := newTarget(t)
	p := strconv.Itoa(tg.Listener.Addr().(*net.TCPAddr).Port)
	dns := &attackerDNS{asked: map[string]int{}, rebind: "rebind.attacker.example",
		fixed: map[string]string{"loopback.attacker.example": "127.0.0.1", "mapped.attacker.example": "::ffff:127.0.0.1",
			"meta.attacker.example": "169.254.169.254", "ula.attacker.example": "fd00:ec2::254"}}
	outcomes := make(chan string, 16)
	s := startServerEnv(t, "", func(e *Env) {
		e.Resolver = dns
		e.OnPush = func(kind, outcome string) { outcomes <- kind + " " + outcome }
	}, "--rate-limit", "off")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	for _, endpoint := range []string{
		"http://127.0.0.1:" + p + "/topic",
		"https://127.0.0.1:" + p + "/topic",
		"http://[::ffff:127.0.0.1]:" + p + "/topic",
		"https://[::ffff:7f00:1]:" + p + "/topic",
		"https://[64:ff9b::7f00:1]:" + p + "/topic",
		"http://[::1]:" + p + "/topic",
		"http://localhost:" + p + "/topic",
		"https://localhost:" + p + "/topic",
		"https://app.localhost:" + p + "/topic",
		"https://169.254.169.254/latest/meta-data/",
		"https://[fe80::1%25eth0]/x",
		"https://[fd00:ec2::254]/latest/meta-data/",
		"https://10.0.0.1/x",
		"https://192.168.1.1/x",
		"https://100.64.0.1/x",
		"https://0.0.0.0:" + p + "/x",
		"https://[::]:" + p + "/x",
		"https://2130706433:" + p + "/x",
		"https://0x7f.1:" + p + "/x",
		"http://loopback.attacker.example:" + p + "/topic", // http only to hosts the operator allows
	} {
		r := phone.call(s, "POST", "/device/v1/push", map[string]any{"kind": "ntfy", "endpoint": endpoint})
		expectError(t, r, 400, "60004")
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, "endpoint - ") {
			t.Errorf("%s: message %q does not name the endpoint", endpoint, msg)
		}
	}
	// Names are checked where they lead when the push connects.
	names := []string{"loopback.attacker.example", "mapped.attacker.example", "meta.attacker.example", "ula.attacker.example", "rebind.attacker.example"}
	for _, name := range names {
		endpoint := "https://" + name + ":" + p + "/topic"
		if r := phone.call(s, "POST", "/device/v1/push", map[string]any{"kind": "ntfy", "endpoint": endpoint}); r.status != 200 {
			t.Fatalf("subscribe %s: %d %s", endpoint, r.status, r.raw)
		}
	}
	// What a check of the re-bound name when subscribing would have seen.
	if a, _ := dns.LookupNetIP(t.Context(), "ip", dns.rebind); egress.Forbidden(a[0]) != "" {
		t.Fatalf("the re-bound name first resolves to %v", a)
	}

	s.createRequest(s.key, alice, url.Values{"message": {"Log in?"}})
	for range names {
		select {
		case o := <-outcomes:
			if o != "ntfy failed" {
				t.Errorf("push outcome %q; want failed", o)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("not every push was tried\n%s", s.logs.String())
		}
	}
	if n := tg.conns.Load(); n != 0 {
		t.Errorf("the server on loopback got %d connections", n)
	}
	if logs := s.logs.String(); strings.Count(logs, "egress: refused to connect") != len(names) {
		t.Errorf("the push failures do not say they were refused:\n%s", logs)
	}
}

// TestPushAllowHosts: an operator lets devices use a self-hosted ntfy on the LAN by naming it,
// over http too; the name still cannot lead elsewhere on the same server.
func TestPushAllowHosts(t *testing.T) {
	tg := newTarget(t)
	p := strconv.Itoa(tg.Listener.Addr().(*net.TCPAddr).Port)
	dns := &attackerDNS{asked: map[string]int{}, fixed: map[string]string{"ntfy.lan": "127.0.0.1", "other.lan": "127.0.0.1"}}
	outcomes := make(chan string, 16)
	s := startServerEnv(t, "", func(e *Env) {
		e.Resolver = dns
		e.OnPush = func(kind, outcome string) { outcomes <- kind + " " + outcome }
		e.Getenv = func(k string) string { return map[string]string{"HTTPS_PROXY": "http://proxy.lan:3128"}[k] }
	}, "--rate-limit", "off", "--push-allow-hosts", "ntfy.lan:"+p)
	for _, line := range []string{"push endpoints may reach private addresses on these hosts", "not through the proxy in the environment"} {
		if !strings.Contains(s.logs.String(), line) {
			t.Errorf("not logged: %s\n%s", line, s.logs.String())
		}
	}
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	for endpoint, status := range map[string]int{
		"http://ntfy.lan:" + p + "/alice":   200,
		"http://other.lan:" + p + "/alice":  400, // not allowed: http refused
		"https://other.lan:" + p + "/alice": 200, // accepted, refused when connecting
		"http://ntfy.lan:1/alice":           400, // another port
		"http://127.0.0.1:" + p + "/alice":  400, // the address is not the name
	} {
		if r := phone.call(s, "POST", "/device/v1/push", map[string]any{"kind": "ntfy", "endpoint": endpoint}); r.status != status {
			t.Errorf("subscribe %s: %d %s; want %d", endpoint, r.status, r.raw, status)
		}
	}
	s.createRequest(s.key, alice, url.Values{"message": {"Log in?"}})
	var got []string
	for range 2 {
		select {
		case o := <-outcomes:
			got = append(got, o)
		case <-time.After(20 * time.Second):
			t.Fatalf("not every push was tried (%v)\n%s", got, s.logs.String())
		}
	}
	// The stand-in answers 200 with an empty body; ntfy's answer is not checked.
	if strings.Join(got, ",") != "ntfy sent,ntfy failed" && strings.Join(got, ",") != "ntfy failed,ntfy sent" {
		t.Errorf("outcomes %v; want one sent (ntfy.lan), one failed (other.lan)", got)
	}
	if n := tg.conns.Load(); n != 1 {
		t.Errorf("the ntfy server got %d connections; want 1", n)
	}
}

// TestCallbacksToPrivateAddressesNeedOptIn: a callback URL on loopback is not delivered unless
// the operator allows its host with --callback-allow-hosts; the server warns at start.
func TestCallbacksToPrivateAddressesNeedOptIn(t *testing.T) {
	rc := newReceiver(t)
	attempts := make(chan callback.Attempt, 16)
	hook := func(e *Env) { e.OnCallback = func(a callback.Attempt) { attempts <- a } }
	dir := t.TempDir()
	s := startServerEnv(t, dir, hook, "--rate-limit", "off")
	rc.key.Store(s.key)
	if _, err := s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback"); err != nil {
		t.Fatal(err)
	}
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Log in?"}})
	if r := phone.answer(s, uuid, "approved", "", ""); r.status != 200 {
		t.Fatalf("approve: %s", r.raw)
	}
	select {
	case a := <-attempts:
		if a.OK || !egress.IsRefused(a.Err) {
			t.Fatalf("attempt %+v; want refused", a)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no callback attempt")
	}
	select {
	case b := <-rc.got:
		t.Fatalf("the receiver on loopback got a callback: %v", b)
	default:
	}
	s.stop()

	// At start, the server warns about a callback URL it will refuse...
	const warning = "callbacks will not be delivered"
	s = startServerEnv(t, dir, hook, "--rate-limit", "off")
	if !strings.Contains(s.logs.String(), warning) {
		t.Errorf("no warning about the callback URL:\n%s", s.logs.String())
	}
	s.stop()
	// ...and delivers it once the operator allows the host (the retry is due 5 s after the
	// first failure).
	s = startServerEnv(t, dir, hook, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	if b := rc.next(t); b["uuid"] != uuid || b["status"] != "approved" {
		t.Errorf("callback %v", b)
	}
	if strings.Contains(s.logs.String(), warning) {
		t.Errorf("warned about an allowed callback URL:\n%s", s.logs.String())
	}
}

// TestAllowHostsMustParse: a mistyped allow-list stops the server at start, from the flag or
// the environment, rather than allowing something else.
func TestAllowHostsMustParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--push-allow-hosts", "https://ntfy.lan"}, nil, "--push-allow-hosts"},
		{[]string{"--callback-allow-hosts", "10.0.0.0/8"}, nil, "--callback-allow-hosts"},
		{nil, map[string]string{"TWOFOLD_PUSH_ALLOW_HOSTS": "ntfy.lan:0"}, "TWOFOLD_PUSH_ALLOW_HOSTS"}, // the name it was given by
		{nil, map[string]string{"TWOFOLD_CALLBACK_ALLOW_HOSTS": "*.lan"}, "TWOFOLD_CALLBACK_ALLOW_HOSTS"},
	} {
		var out strings.Builder
		env := Env{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return tc.env[k] },
			Ready: func(string) { t.Errorf("%v %v: server started", tc.args, tc.env) }}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...), env)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v; want an error about %s", tc.args, tc.env, err, tc.want)
		}
	}
}
