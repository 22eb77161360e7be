package deliver

import (
	"regexp"
	"testing"
)

func TestRedactAndMask(t *testing.T) {
	for in, want := range map[string]string{
		"Your code is 1234567. Valid 10 minutes.": "Your code is •••. Valid 10 minutes.",
		"code is: 1, 2, 3, 4, 5, 6, 7.":           "code is: •••.",
		"code 12-34-56":                           "code •••",
		"no code here 123":                        "no code here 123",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"+12015550123":      "+1********23",
		"alice@example.com": "a***@example.com",
		"+12":               "+12",
	} {
		if got := maskRecipient(in); got != want {
			t.Errorf("maskRecipient(%q) = %q, want %q", in, got, want)
		}
	}
}

// Redact's scanner hides what the pattern it stands for matches, on every message the renderer
// makes and on odd inputs.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"Your code is 1234567. Valid 10 minutes.", "code is: 1, 2, 3, 4, 5, 6, 7.", "code 12-34-56",
		"123 4567", "1,,2345", "1, \t\n2,3,4", "12345-", "-1-2-3-4-", "١٢٣٤٥", "1\u00a02\u00a03\u00a04", "abc", "", "9 9 9"} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(`\d(?:(?:,\s*|[\s-])?\d){3,}`)
	f.Fuzz(func(t *testing.T, s string) {
		want := pattern.ReplaceAllString(s, "•••")
		if got := Redact(s); got != want {
			t.Errorf("Redact(%q) = %q, the pattern gives %q", s, got, want)
		}
	})
}
