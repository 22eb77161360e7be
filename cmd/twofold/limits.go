package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/verify"
)

// parseLimit reads "N/DURATION" ("10/15m", "200/1s"); "0" or "off" disables the limit.
func parseLimit(s string) (verify.Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return verify.Limit{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return verify.Limit{}, fmt.Errorf("limit %q: want N/DURATION such as 10/15m, or off", s)
	}
	if d != "" && (d[0] < '0' || d[0] > '9') {
		d = "1" + d // "10/m" means per minute
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return verify.Limit{}, fmt.Errorf("limit %q: bad duration %q", s, d)
	}
	return verify.Limit{N: count, Window: window}, nil
}
