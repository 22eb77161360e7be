package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// RefusedError is a connection the guard would not make.
type RefusedError struct {
	Host   string     // as asked for
	Addr   netip.Addr // the address refused; invalid when the name alone was refused
	Reason string     // what the address or name is, e.g. "loopback address"
}

func (e *RefusedError) Error() string {
	switch {
	case !e.Addr.IsValid():
		return fmt.Sprintf("egress: refused to connect to %s: %s", e.Host, e.Reason)
	case e.Host == "" || normalizeHost(e.Host) == e.Addr.Unmap().String():
		return fmt.Sprintf("egress: refused to connect to %s: %s", e.Addr, e.Reason)
	}
	return fmt.Sprintf("egress: refused to connect to %s at %s: %s", e.Host, e.Addr, e.Reason)
}

// Guard dials for destinations others chose. Its zero value is not usable: call New.
type Guard struct {
	allow    Allowlist
	resolve  Resolver
	checked  net.Dialer // for hosts not on the list: Control refuses forbidden addresses
	trusting net.Dialer // for hosts on the list
}

// New returns a guard that lets hosts on allow reach any address, and others public addresses
// only. resolve nil means the system's resolver (net.DefaultResolver).
func New(allow Allowlist, resolve Resolver) *Guard {
	if resolve == nil {
		resolve = net.DefaultResolver
	}
	g := &Guard{allow: allow, resolve: resolve}
	g.trusting = net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	g.checked = g.trusting
	g.checked.Control = control
	return g
}

// Allowlist returns the hosts the guard lets reach any address.
func (g *Guard) Allowlist() Allowlist { return g.allow }

// DialContext connects to address ("host:port"): it resolves host, drops the addresses that
// are forbidden or this host's own unless host is on the allow-list, and connects to the others
// in turn. The
// checked dialer's Control looks again at the very address being connected to, so nothing
// reaches a forbidden one through a path that skipped the first check.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	portNum, err := strconv.ParseUint(port, 10, 16)
	if err != nil || portNum == 0 {
		return nil, fmt.Errorf("egress: invalid port %q", port)
	}
	trusted := g.allow.Allows(host, port)
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if !trusted {
			if err := checkName(host); err != nil {
				return nil, err
			}
		}
		if addrs, err = g.resolve.LookupNetIP(ctx, ipNetwork(network), host); err != nil {
			return nil, fmt.Errorf("egress: %w", err)
		}
	}
	var ok []netip.Addr
	var refused error
	for _, a := range addrs {
		a = a.Unmap()
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		if why := refusal(a); why != "" && !trusted {
			if refused == nil {
				refused = &RefusedError{Host: host, Addr: a, Reason: why}
			}
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) == 0 {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("egress: no %s address for %s", network, host)
	}
	d := &g.checked
	if trusted {
		d = &g.trusting
	}
	return dialEach(ctx, d, network, ok, uint16(portNum))
}

// dialEach tries the addresses in turn, giving each an equal share of the time left (at least
// 2 s), as net.Dialer does with a name's addresses.
func dialEach(ctx context.Context, d *net.Dialer, network string, addrs []netip.Addr, port uint16) (net.Conn, error) {
	var first error
	for i, a := range addrs {
		actx := ctx
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			share := time.Until(deadline) / time.Duration(len(addrs)-i)
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, max(share, 2*time.Second))
			defer cancel()
		}
		c, err := d.DialContext(actx, network, netip.AddrPortFrom(a, port).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// control refuses a socket about to connect to a forbidden address.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot check address %q: %w", address, err)
	}
	if why := refusal(ap.Addr()); why != "" {
		return &RefusedError{Addr: ap.Addr(), Reason: why}
	}
	return nil
}

// refusal says why the guard refuses to connect to a: a forbidden address, or one of this
// host's own, since a public address of the host reaches services listening on all its
// interfaces from inside any firewall in front of it.
func refusal(a netip.Addr) string {
	if why := Forbidden(a); why != "" {
		return why
	}
	own, err := ownAddress(a)
	switch {
	case err != nil:
		return "address that could not be compared with this host's own (" + err.Error() + ")"
	case own:
		return "address of this host"
	}
	return ""
}

// ownAddress reports whether a is assigned to one of this host's interfaces.
func ownAddress(a netip.Addr) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	a = a.Unmap()
	for _, ia := range addrs {
		var ip net.IP
		switch v := ia.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4":
		return "ip4"
	case "tcp6":
		return "ip6"
	}
	return "ip"
}

// Transport returns an HTTP transport whose every connection (HTTP/1 and HTTP/2, new or
// reused: a pooled connection was dialed for the same host) is made by DialContext. It uses
// no proxy, whatever HTTP_PROXY and HTTPS_PROXY say: a proxy would connect on its behalf to
// an address this guard never sees.
func (g *Guard) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = g.DialContext
	t.DialTLSContext = nil
	return t
}

// Client returns an HTTP client over Transport that gives up after timeout and follows no
// redirects: a redirect is answered as it is, not followed to where it points.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     g.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// IsRefused reports whether err is, or wraps, a connection the guard refused.
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}
