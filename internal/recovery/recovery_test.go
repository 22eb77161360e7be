package recovery

import (
	"math"
	"strings"
	"testing"
)

// A code's spellings are one code; anything else is not a code at all.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		typed, want string
		ok          bool
	}{
		{"k7m2-9xqp-4tfh", "k7m29xqp4tfh", true},
		{"K7M2-9XQP-4TFH", "k7m29xqp4tfh", true},
		{"k7m29xqp4tfh", "k7m29xqp4tfh", true},
		{" k7m2 9xqp 4tfh ", "k7m29xqp4tfh", true},
		{"k7m2\t9xqp-4TfH", "k7m29xqp4tfh", true},
		{"k7m2-9xqp-4tf", "", false},   // too short
		{"k7m2-9xqp-4tfhh", "", false}, // too long
		{"k7m0-9xqp-4tfh", "", false},  // 0 is not in the alphabet
		{"k7m1-9xqp-4tfh", "", false},  // nor 1
		{"k7ml-9xqp-4tfh", "", false},  // nor l
		{"k7mo-9xqp-4tfh", "", false},  // nor o
		{"k7mi-9xqp-4tfh", "", false},  // nor i
		{"k7m2_9xqp_4tfh", "", false},  // _ is no separator
		{"1234567", "", false},         // a token
		{"k7m2-9xqp-4tfé", "", false},  // not ASCII
		{strings.Repeat("-", 100), "", false},
	} {
		got, ok := Normalize(tc.typed)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tc.typed, got, ok, tc.want, tc.ok)
		}
	}
}

// Codes are readable (groups of the alphabet), distinct, carry at least 50 bits, and are never
// of a numeric token's shape (6 to 10 digits).
func TestNewCode(t *testing.T) {
	if bits := float64(Length) * math.Log2(float64(len(Alphabet))); bits < 50 {
		t.Fatalf("%.1f bits per code", bits)
	}
	seen := map[string]bool{}
	for range 2000 {
		c, err := newCode()
		if err != nil {
			t.Fatal(err)
		}
		shown := format(c)
		if len(shown) != 14 || shown[4] != '-' || shown[9] != '-' || seen[c] {
			t.Fatalf("code %q", shown)
		}
		seen[c] = true
		if n, ok := Normalize(shown); !ok || n != c {
			t.Fatalf("%q normalises to %q, %v", shown, n, ok)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"k7m2-9xqp-4tfh", "K7M2 9XQP 4TFH", "123456", "", "----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		n, ok := Normalize(typed)
		if !ok {
			return
		}
		if len(n) != Length || strings.Trim(n, Alphabet) != "" {
			t.Fatalf("Normalize(%q) = %q", typed, n)
		}
		// Idempotent, and the shown form is the same code.
		if again, ok := Normalize(format(n)); !ok || again != n {
			t.Fatalf("Normalize(format(%q)) = %q, %v", n, again, ok)
		}
	})
}
