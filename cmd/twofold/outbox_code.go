package main

import (
	"regexp"
	"strconv"
	"strings"
)

// anyCode matches a code of any length Twofold sends (an application's token length is 6 to 10;
// 4 covers gateways' own templates).
var anyCode = regexp.MustCompile(`\b\d{4,10}\b`)

// messageCode returns the code a message's body carries: its first run of exactly length digits
// (of 4 to 10 when length is 0), with a call's digits read one by one ("8, 2, 2") joined first.
// It returns "" when there is none.
func messageCode(body string, length int) string {
	re := anyCode
	if length > 0 {
		re = regexp.MustCompile(`\b\d{` + strconv.Itoa(length) + `}\b`)
	}
	return re.FindString(joinSpokenDigits(body))
}

// joinSpokenDigits removes the ", " between single digits, as a voice message reads a code.
func joinSpokenDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && i > 0 && isDigit(s[i-1]) && i+2 < len(s) && s[i+1] == ' ' && isDigit(s[i+2]) {
			i++ // skip ", "
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
