package callback

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/egress"
)

// names resolves names from a table, standing in for DNS.
type names map[string]string

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestRefusesPrivateTargets: a callback URL on loopback or at the cloud metadata address,
// however written or whatever name leads there, is not delivered unless the operator allowed
// its host; the refusal is recorded as the delivery's failure.
func TestRefusesPrivateTargets(t *testing.T) {
	dns := names{"app.customer.example": "127.0.0.1", "meta.customer.example": "169.254.169.254"}
	for _, tc := range []struct {
		name, url, allow string
		delivered        bool
	}{
		{"loopback", "http://127.0.0.1:PORT/cb", "", false},
		{"mapped loopback", "http://[::ffff:127.0.0.1]:PORT/cb", "", false},
		{"localhost", "http://localhost:PORT/cb", "", false},
		{"a name for loopback", "http://app.customer.example:PORT/cb", "", false},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "", false},
		{"a name for metadata", "http://meta.customer.example/latest/meta-data/", "", false},
		{"another host allowed", "http://app.customer.example:PORT/cb", "127.0.0.2, localhost", false},
		{"allowed by name", "http://app.customer.example:PORT/cb", "app.customer.example", true},
		{"allowed by address and port", "http://127.0.0.1:PORT/cb", "127.0.0.1:PORT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, port, _ := net.SplitHostPort(f.rc.srv.Listener.Addr().String())
			cbURL := strings.ReplaceAll(tc.url, "PORT", port)
			f.update(apps.Update{CallbackURL: &cbURL})
			f.rc.url.Store(cbURL)
			allow, err := egress.ParseAllowlist(strings.ReplaceAll(tc.allow, "PORT", port))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := f.dispatcher(f.st, Config{Workers: 1, Egress: egress.New(allow, dns)})
			run(t, d)
			uuid := f.queue()
			d.Notify()
			a := next(t, f.attempts, "attempt")
			if tc.delivered {
				if !a.OK || f.rc.count(uuid) != 1 {
					t.Fatalf("attempt %+v, received %d; want delivered", a, f.rc.count(uuid))
				}
				return
			}
			if a.OK || !egress.IsRefused(a.Err) {
				t.Fatalf("attempt %+v; want refused", a)
			}
			if c := f.callback(uuid); c.Status != "pending" || !strings.Contains(c.LastError, "refused") {
				t.Errorf("stored %+v; want pending, refused", c)
			}
			if n := f.rc.count(uuid); n != 0 {
				t.Errorf("received %d times, want never", n)
			}
		})
	}
}
