package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// Standard input is kept in a temporary file, which goes when the run ends.
func TestOpenInputSpoolsStdin(t *testing.T) {
	f, done, err := openInput("-", strings.NewReader("1,a@example.com,1,2015550123\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "1,a@example.com,1,2015550123\n" {
		t.Fatalf("%q %v", b, err)
	}
	done()
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("the spooled input %s is still there: %v", f.Name(), err)
	}
	if _, _, err := openInput(t.TempDir(), nil); err == nil {
		t.Error("a directory was opened as the input")
	}
}
