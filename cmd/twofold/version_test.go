package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(dir, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.Go != runtime.Version() || b.Version == "" {
		t.Fatalf("version --json: %q (%v); want the Go version %s and a version", out, err, runtime.Version())
	}
	var stdout bytes.Buffer
	err = run(context.Background(), []string{"--version"}, Env{Stdout: &stdout, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	if line := stdout.String(); err != nil || !strings.HasPrefix(line, "twofold "+b.Version) || !strings.Contains(line, runtime.Version()) {
		t.Fatalf("--version: %q, %v", line, err)
	}
}

func TestHealthcheck(t *testing.T) {
	s := startServer(t, "")
	addr := strings.TrimPrefix(s.url, "http://")
	if out, err := runCLI(s.dataDir, "healthcheck", "--addr", addr); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("healthcheck of a running server: %q, %v", out, err)
	}
	// A port nobody listens on: the check fails, saying where it asked.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := runCLI(s.dataDir, "healthcheck", "--addr", closed); err == nil || !strings.Contains(err.Error(), closed+"/healthz") {
		t.Fatalf("healthcheck of no server: %v", err)
	}
	if _, err := runCLI(s.dataDir, "healthcheck", "--addr", "no-port"); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("healthcheck --addr no-port: %v", err)
	}
}

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":   "http://127.0.0.1:8080/healthz",
		"0.0.0.0:8080":     "http://127.0.0.1:8080/healthz",
		":8080":            "http://127.0.0.1:8080/healthz",
		"[::]:8080":        "http://[::1]:8080/healthz",
		"twofold.lan:9000": "http://twofold.lan:9000/healthz",
	} {
		if got, err := healthURL(addr, "--addr"); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, bad := range []string{"", "8080", "host:"} {
		if _, err := healthURL(bad, "--addr"); err == nil {
			t.Errorf("healthURL(%q) took it", bad)
		}
	}
}

// TestUnknownVerbs: a typo under any command that groups others is an error with a suggestion,
// never its help with exit status 0; the group alone still prints its help.
func TestUnknownVerbs(t *testing.T) {
	env := func(out *bytes.Buffer) Env {
		return Env{Stdout: out, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	}
	groups := 0
	for _, c := range newRoot(env(&bytes.Buffer{})).Commands() {
		if !c.HasSubCommands() {
			continue
		}
		groups++
		verb := c.Commands()[0].Name()
		typo := verb[:len(verb)-1] // one letter short: a suggestion
		var out bytes.Buffer
		err := run(context.Background(), []string{c.Name(), typo}, env(&out))
		if err == nil || !strings.Contains(err.Error(), "unknown command") || !strings.Contains(err.Error(), verb) {
			t.Errorf("twofold %s %s: %v; want an unknown command error suggesting %s", c.Name(), typo, err, verb)
		}
		out.Reset()
		if err := run(context.Background(), []string{c.Name()}, env(&out)); err != nil || !strings.Contains(out.String(), "Available Commands") {
			t.Errorf("twofold %s: %v, %q; want its help", c.Name(), err, out.String())
		}
	}
	if groups < 4 {
		t.Fatalf("only %d commands with subcommands found", groups)
	}
}

// TestServeStartMessages: the first start's next step is printed once the port is bound, as a
// command that works for how the server was run; with JSON logs stderr holds only JSON; a busy
// port is refused naming --addr.
func TestServeStartMessages(t *testing.T) {
	var text syncBuffer
	s := startServerEnv(t, "", func(e *Env) { e.Stderr = &text })
	out := text.String()
	if !strings.Contains(out, "Twofold is ready on "+s.url) || !strings.Contains(out, "app show 1 --show-key --data-dir "+s.dataDir) {
		t.Fatalf("first start's message:\n%s", out)
	}
	if strings.Index(out, "Twofold is ready") < strings.Index(out, "twofold listening") {
		t.Errorf("ready printed before the port was bound:\n%s", out)
	}

	addr := strings.TrimPrefix(s.url, "http://")
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--addr", addr},
		Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "--addr") {
		t.Fatalf("serve on a busy port: %v", err)
	}

	var js syncBuffer
	startServerEnv(t, "", func(e *Env) { e.Stderr = &js }, "--log-format", "json")
	for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("with JSON logs, stderr has a line that is not JSON: %q", line)
		}
	}
}

func TestAppDelete(t *testing.T) {
	s := startServer(t, "")
	var a appJSON
	s.cliJSON(&a, "app", "create", "--name", "Doomed")
	id := itoa64(a.AppID)
	s.register(a.APIKey, "u@example.com", "2015550123")
	if _, err := s.cli("app", "delete", id); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("app delete without --yes: %v", err)
	}
	if r := s.do("GET", "/protected/json/app/details", a.APIKey, nil); r.status != 200 {
		t.Fatalf("the application went without --yes: %s", r.raw)
	}
	var gone struct {
		Deleted bool `json:"deleted"`
	}
	s.cliJSON(&gone, "app", "delete", id, "--yes")
	if !gone.Deleted {
		t.Fatal("app delete --yes --json did not say deleted")
	}
	if r := s.do("GET", "/protected/json/app/details", a.APIKey, nil); r.status == 200 {
		t.Fatalf("the deleted application's key still works: %s", r.raw)
	}
	if _, err := s.cli("app", "delete", id, "--yes"); err == nil || !strings.Contains(err.Error(), "no application") {
		t.Fatalf("deleting it again: %v", err)
	}
}
