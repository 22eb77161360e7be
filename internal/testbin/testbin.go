// Package testbin builds the twofold binary for tests that must run it as a process of its
// own (to kill it, or to use it as users do).
package testbin

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Twofold builds cmd/twofold of this module into the test's temporary directory and returns
// its path. Go's build cache makes every build after the first a link.
func Twofold(t testing.TB) string {
	t.Helper()
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(mod)) == "" {
		t.Fatalf("go env GOMOD: %v %s", err, mod)
	}
	bin := filepath.Join(t.TempDir(), "twofold")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/twofold")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building twofold: %v\n%s", err, out)
	}
	return bin
}
