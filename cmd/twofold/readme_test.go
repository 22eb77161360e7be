package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/testbin"
)

// readmeBlocks returns the sh code blocks of the README section that starts with heading.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	section := text[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The README's quick start and "Try it" work as written, in a fresh directory: the server
// started with the quick start's command, then every command of "Try it" pasted into bash, in
// order. The only change is the port: the test's server listens where the system lets it, so
// http://127.0.0.1:8080 is replaced by its address. `go run ./cmd/twofold` runs a binary built
// once, through a `go` on the PATH that accepts nothing else.
func TestReadmeTryIt(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's commands need %s: %v", tool, err)
		}
	}
	start := readmeBlocks(t, "## Quick start")
	if len(start) == 0 || strings.TrimSpace(start[0]) != "go run ./cmd/twofold serve" {
		t.Fatalf("the quick start's first command is not the server's: %q", start)
	}
	try := readmeBlocks(t, "## Try it")
	if len(try) < 4 {
		t.Fatalf("Try it has %d sh blocks, want the setup and three journeys", len(try))
	}

	bin := testbin.Twofold(t)
	dir := t.TempDir()
	shims := t.TempDir()
	goShim := "#!/bin/sh\nif [ \"$1\" = run ] && [ \"$2\" = ./cmd/twofold ]; then shift 2; exec '" + bin + "' \"$@\"; fi\n" +
		"echo \"the README ran an unexpected go command: $*\" >&2; exit 2\n"
	if err := os.WriteFile(filepath.Join(shims, "go"), []byte(goShim), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+shims+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir,
		"TWOFOLD_ADDR=127.0.0.1:0")
	for _, k := range []string{"TWOFOLD_DATA_DIR", "TWOFOLD_DATABASE_URL", "TWOFOLD_VAULT", "TWOFOLD_VAULT_PASSPHRASE"} {
		env = append(env, k+"=") // the README's defaults, not the caller's
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, "bash", "-c", start[0])
	serve.Dir, serve.Env = dir, env
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = serve.Wait() })
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`msg="twofold listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	url, ok := <-addr
	if !ok {
		t.Fatal("the server stopped before it listened")
	}

	script := "set -euo pipefail\n" + strings.ReplaceAll(strings.Join(try, "\n"), "http://127.0.0.1:8080", url)
	sh := exec.CommandContext(ctx, "bash", "-c", script)
	sh.Dir, sh.Env = dir, env
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("Try it failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	for _, want := range []string{
		`"message":"User created successfully."`,
		`"message":"SMS token was sent"`,
		"Added the TOTP account",
		`"status":"approved"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Try it did not print %s:\n%s", want, out)
		}
	}
	if n := strings.Count(string(out), `"message":"Token is valid."`); n != 2 {
		t.Errorf("Try it verified %d codes, want 2 (SMS and TOTP):\n%s", n, out)
	}
}
