package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Allowlist is the hosts an operator lets connections reach whatever they resolve to: each
// "host" (any port) or "host:port", a name or an IP literal, matched against the host of a URL
// as written. The zero Allowlist allows none.
type Allowlist struct {
	entries []string // normalized "host" or "host:port"; IPv6 literals bracketed when with a port
}

// ParseAllowlist reads entries separated by commas or spaces, such as
// "ntfy.lan, 192.168.1.10:8080, [fd00::5]:443". Names are ASCII (punycode for others).
func ParseAllowlist(s string) (Allowlist, error) {
	var l Allowlist
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		host, port, err := splitEntry(e)
		if err != nil {
			return Allowlist{}, fmt.Errorf("%q: %w", e, err)
		}
		key := host
		if port != "" {
			key = net.JoinHostPort(host, port)
		}
		if !slices.Contains(l.entries, key) {
			l.entries = append(l.entries, key)
		}
	}
	return l, nil
}

func splitEntry(e string) (host, port string, err error) {
	if strings.Contains(e, "/") {
		return "", "", errors.New("give a host or host:port, not a URL or a network")
	}
	host = e
	if strings.HasPrefix(e, "[") || strings.Count(e, ":") == 1 {
		if h, p, err := net.SplitHostPort(e); err == nil {
			host, port = h, normalizePort(p)
			if port == "" {
				return "", "", errors.New("the port must be 1 to 65535")
			}
		} else if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			host = e[1 : len(e)-1]
		} else {
			return "", "", errors.New("give a host or host:port")
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", "", errors.New("an address with a zone cannot be allowed")
		}
		return a.Unmap().String(), port, nil
	}
	name := normalizeName(host)
	if !validName(name) {
		return "", "", errors.New("not a host name or an IP address")
	}
	return name, port, nil
}

// Allows reports whether host (from a URL, as written) on port ("" for any) is on the list.
func (l Allowlist) Allows(host, port string) bool {
	if len(l.entries) == 0 {
		return false
	}
	host, port = normalizeHost(host), normalizePort(port)
	return slices.Contains(l.entries, host) || (port != "" && slices.Contains(l.entries, net.JoinHostPort(host, port)))
}

// Empty reports whether the list allows nothing.
func (l Allowlist) Empty() bool { return len(l.entries) == 0 }

// String lists the entries, comma-separated, as ParseAllowlist reads them.
func (l Allowlist) String() string { return strings.Join(l.entries, ",") }

// Check refuses, before any connection, a host that is not allowed and is an IP literal of a
// forbidden address or of this host, or a name that stands for one without resolving it: localhost names
// (RFC 6761) and names that end in a number, which some resolvers read as an IPv4 address
// ("2130706433", "0x7f.1"). It is for a clear early error; DialContext checks every connection
// on the address it resolves to.
func (l Allowlist) Check(host, port string) error {
	if l.Allows(host, port) {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := refusal(a); why != "" {
			return &RefusedError{Host: host, Addr: a, Reason: why}
		}
		return nil
	}
	return checkName(host)
}

func checkName(host string) error {
	name := normalizeName(host)
	switch last := name[strings.LastIndexByte(name, '.')+1:]; {
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		return &RefusedError{Host: host, Reason: "loopback name"}
	case name == "" || last == "":
		return &RefusedError{Host: host, Reason: "empty name"}
	case isNumeric(last):
		return &RefusedError{Host: host, Reason: "name that reads as an IPv4 address"}
	}
	return nil
}

// normalizeHost is how hosts are compared: IP literals in canonical form (unmapped), names in
// lower case without a final dot.
func normalizeHost(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return normalizeName(host)
}

func normalizeName(host string) string { return strings.TrimSuffix(strings.ToLower(host), ".") }

// validName accepts DNS names of letters, digits, hyphens and underscores, whose last label is
// not a number.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return !isNumeric(labels[len(labels)-1])
}

// isNumeric reports whether a label is a decimal, octal or 0x-hexadecimal number, as the
// last part of an IPv4 address in inet_aton's many forms.
func isNumeric(label string) bool {
	digits := label
	if len(label) > 1 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		digits = label[2:]
		if digits == "" {
			return true // "0x" alone is zero to inet_aton
		}
		_, err := strconv.ParseUint(digits, 16, 64)
		return err == nil || errors.Is(err, strconv.ErrRange)
	}
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// normalizePort returns a port 1-65535 in decimal without leading zeros, or "".
func normalizePort(p string) string {
	if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
		return ""
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return ""
	}
	return strconv.Itoa(n)
}
