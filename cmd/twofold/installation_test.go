package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// cleanEnv is this process's environment without TWOFOLD_* variables (the test runner's
// TWOFOLD_TEST_POSTGRES and the like), plus vars.
func cleanEnv(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TWOFOLD_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

// runBin runs the binary to its end in dir and returns its stdout, stderr and exit code.
func runBin(t *testing.T, bin, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errOut.String(), 0
}

// entries lists what is in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	return names
}

// The commands that read or manage an installation, run where there is none, make nothing
// there: they say where they looked (an absolute path) and how to point elsewhere or make one,
// and exit non-zero. twofold init (or serve) makes one; then they work.
func TestNoInstallationIsMadeByOtherCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Twofold(t)
	cwd := t.TempDir()
	input := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(input, []byte("authy_id,email\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"app", "show", "1"}, {"app", "show", "1", "--show-key"}, {"app", "list"}, {"app", "create", "--name", "Shop"},
		{"app", "update", "1", "--name", "Shop"}, {"app", "rotate-key", "1"}, {"app", "delete", "1", "--yes"},
		{"outbox"}, {"outbox", "--summary"}, {"audit", "list"}, {"audit", "verify"}, {"audit", "export"},
		{"admin", "list"}, {"admin", "remove", "ana@example.com"}, {"master-key", "status"}, {"master-key", "rekey"},
		{"approval", "answer", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "approved"},
		{"import", "from-file", input, "--app", "1"}, {"migrate"},
	}
	wantAll := func(t *testing.T, args []string, stderr string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not say %q:\n%s", args, w, stderr)
			}
		}
	}
	where := filepath.Join(cwd, "twofold-data")
	for _, args := range commands {
		_, stderr, code := runBin(t, bin, cwd, cleanEnv(), args...)
		if code == 0 {
			t.Errorf("%v outside a data directory exited 0", args)
		}
		wantAll(t, args, stderr, "no Twofold installation in "+where+" (from the default, --data-dir ./twofold-data)",
			"--data-dir DIR or TWOFOLD_DATA_DIR", "--database URL or TWOFOLD_DATABASE_URL", bin+" init")
	}
	if got := entries(t, cwd); len(got) != 0 {
		t.Fatalf("the commands left %v in the directory they ran in", got)
	}
	// The variable that pointed elsewhere is named.
	elsewhere := filepath.Join(cwd, "elsewhere")
	_, stderr, _ := runBin(t, bin, cwd, cleanEnv("TWOFOLD_DATA_DIR="+elsewhere), "outbox")
	wantAll(t, []string{"outbox"}, stderr, "no Twofold installation in "+elsewhere+" (from TWOFOLD_DATA_DIR)")
	_, stderr, _ = runBin(t, bin, cwd, cleanEnv(), "outbox", "--data-dir", "elsewhere")
	wantAll(t, []string{"outbox", "--data-dir"}, stderr, "in "+elsewhere+" (from --data-dir)", bin+" init --data-dir elsewhere")
	if got := entries(t, cwd); len(got) != 0 {
		t.Fatalf("the commands left %v", got)
	}

	// init makes one (no application: serve makes the first when there is none), once.
	out, stderr, code := runBin(t, bin, cwd, cleanEnv(), "init")
	if code != 0 || !strings.Contains(out, "Created a Twofold installation in "+where) || !strings.Contains(out, filepath.Join(where, seal.MasterKeyFile)) {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	for path, mode := range map[string]os.FileMode{where: 0o700, filepath.Join(where, seal.MasterKeyFile): 0o600} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", path, err, mode)
		}
	}
	key, _ := os.ReadFile(filepath.Join(where, seal.MasterKeyFile))
	if out, _, code := runBin(t, bin, cwd, cleanEnv(), "init"); code != 0 || !strings.Contains(out, "already holds a Twofold installation: nothing changed") {
		t.Fatalf("init again: exit %d\n%s", code, out)
	}
	if again, _ := os.ReadFile(filepath.Join(where, seal.MasterKeyFile)); !bytes.Equal(again, key) {
		t.Fatal("init again changed the master key")
	}
	if _, stderr, code := runBin(t, bin, cwd, cleanEnv(), "app", "show", "1"); code == 0 || !strings.Contains(stderr, "no application with id 1") {
		t.Fatalf("app show 1 after init: exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{{"app", "list"}, {"outbox"}, {"audit", "verify"}, {"migrate"}, {"app", "create", "--name", "Shop"}} {
		if _, stderr, code := runBin(t, bin, cwd, cleanEnv(), args...); code != 0 {
			t.Errorf("%v after init: exit %d\n%s", args, code, stderr)
		}
	}
}

// On PostgreSQL the database itself is looked in: one without an installation gets no schema
// from a command that only reads, and init sets it up with a master key from the environment,
// writing no key file.
func TestNoInstallationOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dsn := storetest.Schema(t)
	bin := testbin.Twofold(t)
	cwd := t.TempDir()
	tables := func() int {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, args := range [][]string{{"app", "list"}, {"outbox"}, {"audit", "verify"}, {"master-key", "status"}} {
		_, stderr, code := runBin(t, bin, cwd, cleanEnv("TWOFOLD_DATABASE_URL="+dsn), args...)
		if code == 0 || !strings.Contains(stderr, "no Twofold installation in the PostgreSQL database") ||
			!strings.Contains(stderr, "(from TWOFOLD_DATABASE_URL)") {
			t.Errorf("%v on an empty database: exit %d\n%s", args, code, stderr)
		}
	}
	_, stderr, _ := runBin(t, bin, cwd, cleanEnv(), "app", "list", "--database", dsn)
	if !strings.Contains(stderr, "(from --database)") {
		t.Errorf("app list --database: %s", stderr)
	}
	if n := tables(); n != 0 {
		t.Fatalf("the commands made %d tables", n)
	}
	if got := entries(t, cwd); len(got) != 0 {
		t.Fatalf("the commands left %v", got)
	}
	// migrate makes the schema only: still no installation.
	if _, stderr, code := runBin(t, bin, cwd, cleanEnv(), "migrate", "--database", dsn); code != 0 || tables() == 0 {
		t.Fatalf("migrate: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := runBin(t, bin, cwd, cleanEnv(), "app", "list", "--database", dsn); code == 0 || !strings.Contains(stderr, "never set up") {
		t.Fatalf("app list after migrate only: exit %d\n%s", code, stderr)
	}
	masterKey, _ := generateKey(t)
	env := cleanEnv("TWOFOLD_DATABASE_URL="+dsn, "TWOFOLD_MASTER_KEY="+masterKey)
	if out, stderr, code := runBin(t, bin, cwd, env, "init"); code != 0 || !strings.Contains(out, "Created a Twofold installation in postgres://") {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	if got := entries(t, cwd); len(got) != 0 {
		t.Errorf("init with TWOFOLD_MASTER_KEY on PostgreSQL wrote files: %v", got)
	}
	if _, stderr, code := runBin(t, bin, cwd, env, "app", "list"); code != 0 {
		t.Fatalf("app list after init: exit %d\n%s", code, stderr)
	}
	// Another master key is refused by the installation init made.
	other, _ := generateKey(t)
	if _, stderr, code := runBin(t, bin, cwd, cleanEnv("TWOFOLD_DATABASE_URL="+dsn, "TWOFOLD_MASTER_KEY="+other), "app", "list"); code == 0 ||
		!strings.Contains(stderr, "not the one the database") {
		t.Fatalf("app list with another key: exit %d\n%s", code, stderr)
	}
}

// proc is a twofold process started by startBin, its stderr collected line by line.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	logs   *syncBuffer
	lines  chan string // every stderr line, closed at EOF
	done   chan error  // Wait's answer
}

// startBin starts the binary with args and returns at once.
func startBin(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	stdout := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout = env, stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdout: stdout, logs: &syncBuffer{}, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(p.logs, sc.Text())
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for lines any more: they are in logs
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitFor waits until a stderr line matches re and returns the match, or fails the test when
// the process ends first or takes a minute.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("the process ended before %s:\n%s", re, p.logs.String())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s in a minute:\n%s", re, p.logs.String())
		}
	}
}

// exit waits for the process to end and returns its exit code.
func (p *proc) exit(t *testing.T) int {
	t.Helper()
	go func() {
		for range p.lines {
		}
	}()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(time.Minute):
		t.Fatalf("the process did not end in a minute:\n%s", p.logs.String())
	}
	return -1
}

var listening = regexp.MustCompile(`twofold listening.*addr=http://(127\.0\.0\.1:\d+)`)

// A second serve on a SQLite data directory is refused while the first runs, naming the
// directory and the first's process; once the first is killed (-9: no chance to clean up) the
// OS has dropped its lock and a new server starts.
func TestSecondServeOnOneDataDirectoryRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Twofold(t)
	dir := t.TempDir()
	serve := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}
	first := startBin(t, bin, cleanEnv(), serve...)
	first.waitFor(t, listening)

	second := startBin(t, bin, cleanEnv(), serve...)
	if code := second.exit(t); code == 0 {
		t.Fatalf("the second server exited 0:\n%s", second.logs.String())
	}
	want := fmt.Sprintf("another twofold serve (process %d) is already running on the data directory %s", first.cmd.Process.Pid, dir)
	if got := second.logs.String(); !strings.Contains(got, want) || !strings.Contains(got, "PostgreSQL") {
		t.Fatalf("the second server's message:\n%s\nwant %q", got, want)
	}
	// Through the environment too, with the same message.
	third := startBin(t, bin, cleanEnv("TWOFOLD_DATA_DIR="+dir, "TWOFOLD_ADDR=127.0.0.1:0"), "serve")
	if code := third.exit(t); code == 0 || !strings.Contains(third.logs.String(), "already running") {
		t.Fatalf("a second server by TWOFOLD_DATA_DIR: exit %d\n%s", code, third.logs.String())
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := first.exit(t); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("the first server exited %d, not by SIGKILL", code)
	}
	after := startBin(t, bin, cleanEnv(), serve...)
	after.waitFor(t, listening)
	if err := after.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := after.exit(t); code != 0 {
		t.Fatalf("the server after the kill exited %d:\n%s", code, after.logs.String())
	}
	// The CLI is not a server: it runs beside one.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	again := startBin(t, bin, cleanEnv(), serve...)
	again.waitFor(t, listening)
	cli := exec.CommandContext(ctx, bin, "app", "list", "--data-dir", dir)
	cli.Env = cleanEnv()
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("app list beside a server: %v\n%s", err, out)
	}
}
