package main

import (
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// parseLimit reads "N/DURATION" ("10/15m", "200/1s"); "0" or "off" disables the limit.
func parseLimit(s string) (verify.Limit, error) { return twofold.ParseLimit(s) }
