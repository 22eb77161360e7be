package password

import (
	"errors"
	"strings"
	"testing"
)

var cheap = Params{Time: 1, Memory: 64, Threads: 1}

func TestHashAndCheck(t *testing.T) {
	h, err := Hash("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if err := Check("correct horse battery staple", h); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "correct horse battery staple "} {
		if err := Check(wrong, h); !errors.Is(err, ErrMismatch) {
			t.Errorf("Check(%q) = %v, want ErrMismatch", wrong, err)
		}
	}
	if h2, _ := Hash("correct horse battery staple", cheap); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestCheckRefusesMalformedHashes(t *testing.T) {
	good, _ := Hash("pw", cheap)
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"other version":  strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":    strings.Replace(good, "m=64", "m=99999999", 1),
		"zero time":      strings.Replace(good, "t=1", "t=0", 1),
		"bad salt":       strings.Join(append(parts[:4:4], "!!", parts[5]), "$"),
		"truncated key":  strings.Join(append(parts[:5:5], "AAAA"), "$"),
		"too many parts": good + "$x",
	} {
		if err := Check("pw", h); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("%s: Check = %v, want a malformed-hash error", name, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	good, _ := Hash("pw", cheap)
	f.Add("pw", good)
	f.Add("", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, pw, hash string) {
		_ = Check(pw, hash) // must not panic or take unbounded memory
	})
}
