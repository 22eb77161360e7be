package egress

import (
	"net/netip"
	"strings"
	"testing"
)

// TestForbidden covers every refused range at its edges, and the public addresses beside them.
func TestForbidden(t *testing.T) {
	for _, tc := range []struct {
		addr string
		why  string // a part of the reason; "" for allowed
	}{
		// IPv4 special ranges, first and last address, and their public neighbours.
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "unspecified"},
		{"1.0.0.0", ""},
		{"9.255.255.255", ""},
		{"10.0.0.0", "private"},
		{"10.255.255.255", "private"},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.64.0.0", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.255", "loopback"},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.254.0.0", "link-local"},
		{"169.254.169.254", "link-local"},
		{"169.254.255.255", "link-local"},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.16.0.0", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.0", ""},
		{"191.255.255.255", ""},
		{"192.0.0.0", "IETF protocol"},
		{"192.0.0.255", "IETF protocol"},
		{"192.0.1.0", ""},
		{"192.0.2.0", "documentation"},
		{"192.0.2.255", "documentation"},
		{"192.0.3.0", ""},
		{"192.88.98.255", ""},
		{"192.88.99.0", "6to4 relay"},
		{"192.88.99.255", "6to4 relay"},
		{"192.88.100.0", ""},
		{"192.167.255.255", ""},
		{"192.168.0.0", "private"},
		{"192.168.255.255", "private"},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.18.0.0", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.20.0.0", ""},
		{"198.51.100.0", "documentation"},
		{"198.51.100.255", "documentation"},
		{"203.0.112.255", ""},
		{"203.0.113.0", "documentation"},
		{"203.0.113.255", "documentation"},
		{"203.0.114.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.0", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.0", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"8.8.8.8", ""},
		{"93.184.215.14", ""},

		// IPv4 in IPv6 clothing: judged by the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::8.8.8.8", "IPv4-compatible"},
		{"64:ff9b::127.0.0.1", "NAT64 address of 127.0.0.1 (loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254 (link-local"},
		{"64:ff9b::192.168.0.1", "private"},
		{"64:ff9b::8.8.8.8", ""},
		{"64:ff9b:1::8.8.8.8", "local-use NAT64"},
		{"2002:7f00:1::1", "6to4 address of 127.0.0.1 (loopback"},
		{"2002:a00:1::", "6to4 address of 10.0.0.1 (private"},
		{"2002:808:808::1", ""},
		{"::ffff:0:7f00:1", "outside global unicast"}, // SIIT IPv4-translated: not judged by what it carries

		// IPv6 special ranges.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::2", "IPv4-compatible"},
		{"100::", "discard-only"},
		{"100::ffff:ffff:ffff:ffff", "discard-only"},
		{"100:0:0:1::", "outside global unicast"},
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "outside global unicast"},
		{"2000::", ""},
		{"2001::1", "IETF protocol"}, // Teredo
		{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol"},
		{"2001:200::", ""},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:db8::", "documentation"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
		{"2001:db9::", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82a::200a", ""},
		{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"3fff::", "documentation"},
		{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
		{"3fff:1000::", ""},
		{"4000::", "outside global unicast"},
		{"5f00::1", "SRv6"},
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "outside global unicast"},
		{"fc00::", "unique local"},
		{"fd00:ec2::254", "unique local"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local"},
		{"fe80::", "link-local"},
		{"fe80::1%eth0", "scoped"},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
	} {
		got := Forbidden(netip.MustParseAddr(tc.addr))
		if (tc.why == "") != (got == "") || !strings.Contains(got, tc.why) {
			t.Errorf("Forbidden(%s) = %q; want %q", tc.addr, got, tc.why)
		}
	}
	if got := Forbidden(netip.Addr{}); got == "" {
		t.Error("the zero Addr is allowed")
	}
}

// FuzzForbidden: every address the standard library calls loopback, private, link-local,
// multicast or unspecified is refused, as it is in its IPv4-mapped form; an allowed address is
// global unicast.
func FuzzForbidden(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:c0a8:101::", "8.8.8.8", "2606:4700::1"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) != 4 && len(raw) != 16 {
			return
		}
		a, _ := netip.AddrFromSlice(raw)
		why := Forbidden(a)
		u := a.Unmap()
		if (u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsLinkLocalMulticast() || u.IsMulticast() ||
			u.IsInterfaceLocalMulticast() || u.IsUnspecified() || !u.IsGlobalUnicast()) && why == "" {
			t.Fatalf("%s is allowed", a)
		}
		if u.Is4() {
			if mapped := netip.AddrFrom16(u.As16()); Forbidden(mapped) != why {
				t.Fatalf("%s: %q, but its mapped form %s: %q", u, why, mapped, Forbidden(mapped))
			}
		}
	})
}
