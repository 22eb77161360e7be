// Package wiretext checks the text that arrives on the wire before anything stores it, and
// clips what an error message may repeat of it.
//
// PostgreSQL refuses NUL bytes and invalid UTF-8 in text columns, while SQLite stores them
// quietly; so every adapter refuses such input up front, and both engines see the same text.
package wiretext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Valid reports whether s is UTF-8 without NUL bytes: text every store keeps as it is.
func Valid(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// ValidBytes is Valid for a byte slice.
func ValidBytes(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return utf8.Valid(b)
}

// MaxEcho is how many characters of a client's value an error message repeats.
const MaxEcho = 40

// Clip returns what an error message may repeat of a client's value: at most MaxEcho
// characters, with invalid UTF-8 and control or format characters each replaced by U+FFFD,
// and "…" when there was more.
func Clip(s string) string { return ClipN(s, MaxEcho) }

// ClipN is Clip for at most max characters: for messages about text that is not a client's
// request (an input file's field, a source's answer) shown to an operator.
func ClipN(s string, max int) string {
	var b strings.Builder
	n := 0
	for i, r := range s {
		if n == max {
			if i < len(s) {
				b.WriteString("…")
			}
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
