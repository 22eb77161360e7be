package deliver

import "testing"

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
