package push_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/push/pushtest"
)

// rebinder answers a name with a public address the first time and loopback after, as an
// attacker's DNS server re-binding the name would.
type rebinder struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *rebinder) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[host] {
		r.seen[host] = true
		return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestPushRefusedAtConnect: an endpoint whose name passed every check when the device
// subscribed (it then resolved to a public address) and resolves to loopback when the push is
// sent is refused at the connection: the server on loopback gets nothing, and the failure is
// recorded without the endpoint.
func TestPushRefusedAtConnect(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	r := &rebinder{seen: map[string]bool{}}
	f := newFixture(t)
	now := time.Now()
	n, o := f.notifier(t, push.Config{Egress: egress.New(egress.Allowlist{}, r)}, now)
	b := pushtest.NewBrowser()
	for _, s := range []push.Subscription{
		{Kind: push.KindNtfy, Endpoint: "https://ntfy.attacker.example:" + port + "/topic"},
		{Kind: push.KindWebPush, Endpoint: "https://push.attacker.example:" + port + "/x", P256dh: b.P256dh(), Auth: b.Auth()},
	} {
		// What a check of the name when subscribing would see.
		if addrs, _ := r.LookupNetIP(t.Context(), "ip", strings.Split(strings.TrimPrefix(s.Endpoint, "https://"), ":")[0]); egress.Forbidden(addrs[0]) != "" {
			t.Fatalf("first answer %v", addrs)
		}
		if err := n.Subscribe(t.Context(), f.dev, s); err != nil {
			t.Fatalf("subscribe %s: %v", s.Endpoint, err)
		}
	}
	if err := n.Notify(t.Context(), f.request(now, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.list(), ","); got != "ntfy failed,webpush failed" && got != "webpush failed,ntfy failed" {
		t.Errorf("outcomes %s; want both failed", got)
	}
	for _, s := range list(t, f) {
		t.Logf("%s: %s", s.Kind, s.LastError)
		if s.Failures != 1 || !strings.Contains(s.LastError, "refused") || !strings.Contains(s.LastError, "loopback") ||
			strings.Contains(s.LastError, s.Endpoint) {
			t.Errorf("%s: failures %d, last error %q", s.Kind, s.Failures, s.LastError)
		}
	}
	if c := conns.Load(); c != 0 {
		t.Errorf("the server on loopback got %d connections", c)
	}
}
