// Package clientaddr says where a request comes from, for the limits kept per client address
// and for what the console shows: the connection's peer, or, when that peer is a reverse proxy
// the operator trusts, the address that proxy says it forwarded for.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For names the client. From any other peer
// the header is ignored: a client can write anything in it. The zero value trusts none.
type Proxies []netip.Prefix

// ParseProxies reads comma-separated addresses (each a prefix of its full length) and prefixes
// such as 10.0.0.0/8.
func ParseProxies(s string) (Proxies, error) {
	var out Proxies
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or prefix such as 10.0.0.0/8", f)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Addr is the client's address: the connection's peer, or, when that peer is a trusted proxy,
// the address nearest to it in X-Forwarded-For that is not a trusted proxy (what a client wrote
// into the header itself is further left, and ignored). Without an address in RemoteAddr (not
// over TCP), it is the zero Addr.
func (p Proxies) Addr(r *http.Request) netip.Addr {
	addr, ok := parse(r.RemoteAddr)
	if !ok || !p.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parse(strings.TrimSpace(hops[i]))
		if !ok {
			break // not written by a proxy of ours: keep the last address one vouched for
		}
		addr = hop
		if !p.trusted(hop) {
			break
		}
	}
	return addr
}

// Key is what a per-address limit counts a request under: its client's address, or for IPv6
// the /64 it is in, which one client usually has whole. Requests without an address (not over
// TCP) share the zero Prefix.
func (p Proxies) Key(r *http.Request) netip.Prefix {
	addr := p.Addr(r)
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	k, _ := addr.Prefix(bits)
	return k
}

// parse reads an address, with or without a port (and brackets), without its zone.
func parse(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.WithZone("").Unmap(), err == nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// FromProxy reports whether r's connection comes from one of the trusted proxies, whose
// headers about the request may be believed.
func (p Proxies) FromProxy(r *http.Request) bool {
	addr, ok := parse(r.RemoteAddr)
	return ok && p.trusted(addr)
}
