// Package egress makes outbound HTTP connections to destinations that someone other than the
// operator chose (devices' push endpoints, customers' callback URLs) without letting them reach
// the server's own network: loopback, private, link-local (cloud metadata), multicast and the
// other special-purpose addresses are refused on the address actually connected to, after
// name resolution, so a name that resolves (or is re-bound) to such an address is refused too.
// An operator may name hosts that are allowed anyway (a self-hosted ntfy on the LAN).
package egress

import (
	"net/netip"
)

// special lists the ranges refused, with the name given in errors. IPv6 outside 2000::/3
// (global unicast) is refused whatever its range; its entries here only name it better.
// IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged
// by the IPv4 address they carry.
var special = []struct {
	prefix netip.Prefix
	name   string
}{
	{mustPrefix("0.0.0.0/8"), "unspecified (\"this network\") address"},
	{mustPrefix("10.0.0.0/8"), "private address"},
	{mustPrefix("100.64.0.0/10"), "shared (carrier-grade NAT) address"},
	{mustPrefix("127.0.0.0/8"), "loopback address"},
	{mustPrefix("169.254.0.0/16"), "link-local address"}, // cloud metadata: 169.254.169.254
	{mustPrefix("172.16.0.0/12"), "private address"},
	{mustPrefix("192.0.0.0/24"), "IETF protocol assignment address"},
	{mustPrefix("192.0.2.0/24"), "documentation address"},
	{mustPrefix("192.88.99.0/24"), "6to4 relay anycast address"},
	{mustPrefix("192.168.0.0/16"), "private address"},
	{mustPrefix("198.18.0.0/15"), "benchmarking address"},
	{mustPrefix("198.51.100.0/24"), "documentation address"},
	{mustPrefix("203.0.113.0/24"), "documentation address"},
	{mustPrefix("224.0.0.0/4"), "multicast address"},
	{mustPrefix("240.0.0.0/4"), "reserved or broadcast address"},

	{mustPrefix("::/128"), "unspecified address"},
	{mustPrefix("::1/128"), "loopback address"},
	{mustPrefix("::/96"), "deprecated IPv4-compatible address"},
	{mustPrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{mustPrefix("100::/64"), "discard-only address"},
	{mustPrefix("2001::/23"), "IETF protocol assignment address"}, // Teredo, benchmarking, ORCHID
	{mustPrefix("2001:db8::/32"), "documentation address"},
	{mustPrefix("3fff::/20"), "documentation address"},
	{mustPrefix("5f00::/16"), "SRv6 segment identifier"},
	{mustPrefix("fc00::/7"), "private (unique local) address"}, // AWS metadata: fd00:ec2::254
	{mustPrefix("fe80::/10"), "link-local address"},
	{mustPrefix("fec0::/10"), "site-local address (deprecated)"},
	{mustPrefix("ff00::/8"), "multicast address"},
}

var (
	globalUnicast6 = mustPrefix("2000::/3")
	nat64          = mustPrefix("64:ff9b::/96")
	sixToFour      = mustPrefix("2002::/16")
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Forbidden says why a connection to a is refused, or returns "" when a is a public unicast
// address. An address with a zone is refused: zones belong to link-scoped addresses.
func Forbidden(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid address"
	}
	if a.Zone() != "" {
		return "scoped address"
	}
	a = a.Unmap()
	if a.Is6() {
		if v4, how, ok := embedded(a); ok {
			if why := Forbidden(v4); why != "" {
				return how + " of " + v4.String() + " (" + why + ")"
			}
			return ""
		}
	}
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.name
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return "IPv6 address outside global unicast (2000::/3)"
	}
	return ""
}

// embedded returns the IPv4 address an IPv6 address stands for on the way to it: NAT64
// translates it there, 6to4 tunnels to it.
func embedded(a netip.Addr) (v4 netip.Addr, how string, ok bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64 address", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4 address", true
	}
	return netip.Addr{}, "", false
}
