package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// server is a real `twofold serve` subprocess on a fresh data directory.
type server struct {
	bin      string // the twofold binary
	dataDir  string
	database string // --database: a PostgreSQL URL, or "" for the SQLite file in dataDir
	url      string // http://127.0.0.1:PORT
	key      string // the API key of the bench's application
	appID    int64
	cmd      *exec.Cmd
	logMu    sync.Mutex
	log      bytes.Buffer // the server's stderr, kept for a failure report
}

// buildTwofold compiles cmd/twofold into dir, as `make build` does (CGO off, no race detector).
func buildTwofold(dir string) (string, error) {
	bin := filepath.Join(dir, "twofold")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/twofold")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/twofold (run the bench from the repository root): %w", err)
	}
	return bin, nil
}

// cli runs a twofold subcommand on the data directory and returns its standard output.
func (s *server) cli(args ...string) ([]byte, error) {
	args = append(args, "--data-dir", s.dataDir)
	if s.database != "" {
		args = append(args, "--database", s.database)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "TWOFOLD_LOG_LEVEL=warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("twofold %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

var listening = regexp.MustCompile(`twofold listening"? addr=(http://[^\s"]+)`)

// newServer makes the installation (twofold init: the schema and the master key) and the
// bench's application with the CLI, before the server runs, so that the server's first start
// finds it and makes no other, and points its callbacks at callbackURL. database is passed as
// --database ("" for SQLite in dataDir). The server is not started: seed the store first, then
// call start.
func newServer(bin, dataDir, database, callbackURL string) (*server, error) {
	s := &server{bin: bin, dataDir: dataDir, database: database}
	if _, err := s.cli("init"); err != nil {
		return nil, err
	}
	out, err := s.cli("app", "create", "--name", "Bench", "--json")
	if err != nil {
		return nil, err
	}
	var app struct {
		AppID  int64  `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &app); err != nil || app.APIKey == "" {
		return nil, fmt.Errorf("app create --json: cannot read the key from %q: %v", out, err)
	}
	s.key, s.appID = app.APIKey, app.AppID
	if _, err := s.cli("app", "update", strconv.FormatInt(app.AppID, 10), "--callback-url", callbackURL); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs `twofold serve` with every limit off and waits for its "listening" log line.
func (s *server) start(extra []string) error {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir,
		"--rate-limit", "off", "--limit-failures", "off", "--limit-sends", "off", "--limit-number-sends", "off",
		"--limit-country-sends", "off", "--limit-app-sends", "off",
		"--device-rate-limit", "off", "--device-user-rate-limit", "off", "--address-rate-limit", "off",
		// The callback receiver listens on loopback, which callbacks may reach only when allowed.
		"--callback-allow-hosts", "127.0.0.1",
		// approval-create piles requests on a few users; the per-user cap would refuse them.
		"--max-pending-approvals", "1000000",
		// info, not warn: the "listening" line that gives the port is an info line. The access
		// log (a line per request at info) is on, as in production; TWOFOLD_ACCESS_LOG=false in
		// the bench's environment measures without it.
		"--log-level", "info"}
	if s.database != "" {
		args = append(args, "--database", s.database)
	}
	args = append(args, extra...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Env = os.Environ()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		return err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sent := false
		// The access log writes a line per request: once the address is known, lines are only
		// kept (up to 1 MiB, for a failure report), with as little work as the bench can do, so
		// that reading them takes little of the CPU the load shares with the server.
		for sc.Scan() {
			s.logMu.Lock()
			if s.log.Len() < 1<<20 {
				s.log.Write(sc.Bytes())
				s.log.WriteByte('\n')
			}
			s.logMu.Unlock()
			if !sent {
				if m := listening.FindSubmatch(sc.Bytes()); m != nil {
					addr <- string(m[1])
					sent = true
				}
			}
		}
	}()
	select {
	case s.url = <-addr:
		return nil
	case <-time.After(30 * time.Second):
		s.stop()
		return fmt.Errorf("twofold serve did not say it was listening within 30s:\n%s", s.logText())
	}
}

func (s *server) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// stop ends the server gracefully (SIGINT) and waits for it.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// rssKB reads a process's resident set size from /proc (Linux only; 0 elsewhere).
func rssKB(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
