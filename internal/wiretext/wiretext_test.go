package wiretext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"ada@example.com", true},
		{"né à 東京 🙂", true},
		{"tab\tand\nnewline", true},
		{"a\x00b", false},
		{"\x00", false},
		{"\xff", false},
		{"ok\xc3", false},       // a truncated two-byte sequence
		{"\xed\xa0\x80", false}, // a UTF-16 surrogate encoded in UTF-8
		{"\xc0\xaf", false},     // an overlong '/'
		{"\uFFFD", true},        // the replacement character itself is text
		{"\u200b\u202e", true},  // format characters are text; Clip hides them
		{strings.Repeat("x", 1<<16), true},
	}
	for _, tt := range tests {
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got := ValidBytes([]byte(tt.in)); got != tt.want {
			t.Errorf("ValidBytes(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("a", 30<<10)
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abc", "abc"},
		{strings.Repeat("é", MaxEcho), strings.Repeat("é", MaxEcho)},
		{strings.Repeat("é", MaxEcho+1), strings.Repeat("é", MaxEcho) + "…"},
		{long, strings.Repeat("a", MaxEcho) + "…"},
		{"a\x00b", "a\uFFFDb"},
		{"\xff\xfe", "\uFFFD\uFFFD"},
		{"line\r\nbreak", "line\uFFFD\uFFFDbreak"},
		{"rtl\u202eoverride", "rtl\uFFFDoverride"},
		{"<script>", "<script>"}, // HTML escaping is the renderer's job; JSON encodes it safely
	}
	for _, tt := range tests {
		if got := Clip(tt.in); got != tt.want {
			t.Errorf("Clip(%.60q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// plain reports whether s is valid text without control or format characters.
func plain(s string) bool {
	return Valid(s) && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
}

func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00b", "\xff", strings.Repeat("é", 50), "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clip(s)
		if !Valid(c) {
			t.Fatalf("Clip(%q) = %q is not valid text", s, c)
		}
		if n := utf8.RuneCountInString(c); n > MaxEcho+1 {
			t.Fatalf("Clip(%q) has %d characters", s, n)
		}
		if plain(s) && utf8.RuneCountInString(s) <= MaxEcho && c != s {
			t.Fatalf("Clip(%q) = %q changed short plain text", s, c)
		}
	})
}

func TestClipN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"a\x1b[2Jb\u0085c\n", 10, "a\uFFFD[2Jb\uFFFDc\uFFFD"}, // a terminal escape, C1 and newline
		{"abcdef", 3, "abc…"},
		{"abc", 3, "abc"},
	} {
		if got := ClipN(tc.in, tc.max); got != tc.want {
			t.Errorf("ClipN(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
