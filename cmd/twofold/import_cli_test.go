package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/testbin"
	"github.com/twofold-auth/twofold/internal/userimport"
)

// importCLI runs a twofold import command on dataDir with ctx, an environment and stdin.
func importCLI(ctx context.Context, dataDir string, vars map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return vars[k] }}
	err = run(ctx, append(args, "--data-dir", dataDir), env)
	return out.String(), errOut.String(), err
}

// importJSON runs an import with --json and reads its report; the command's error is returned
// as it is (an import with failures exits non-zero and still prints its report).
func importJSON(t *testing.T, ctx context.Context, dataDir string, vars map[string]string, stdin string, args ...string) (importReport, string, error) {
	t.Helper()
	out, errOut, err := importCLI(ctx, dataDir, vars, stdin, append(args, "--json")...)
	var rep importReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("twofold %v: %v (report %v):\n%s\n%s", args, err, jerr, out, errOut)
	}
	return rep, errOut, err
}

// userFile writes a CSV file of n users, ids from first, every third with a seed and every
// fifth without a phone.
func userFile(t *testing.T, dir string, first, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("authy_id,email,country_code,phone,totp_secret\n")
	for i := first; i < first+n; i++ {
		cc, phone, seed := "1", fmt.Sprintf("201555%04d", i%10000), ""
		if i%5 == 0 {
			cc, phone = "", ""
		}
		if i%3 == 0 {
			seed = "JBSWY3DPEHPK3PXP"
		}
		fmt.Fprintf(&b, "%d,user%d@example.com,%s,%s,%s\n", 1000+i, i, cc, phone, seed)
	}
	path := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// totalUsers is the application's user count, as its API reports it.
func totalUsers(t *testing.T, s *server, key string) int {
	t.Helper()
	r := s.do("GET", "/protected/json/app/stats", key, nil)
	if r.status != 200 {
		t.Fatalf("app/stats: %s", r.raw)
	}
	return int(r.body["total_users"].(float64))
}

// checkPhone checks, through users/{id}/status, that user id has a US phone number ending in
// last4 (status shows only those).
func checkPhone(t *testing.T, s *server, key string, id int64, last4 string) {
	t.Helper()
	r := s.do("GET", fmt.Sprintf("/protected/json/users/%d/status", id), key, nil)
	st, _ := r.body["status"].(map[string]any)
	if r.status != 200 || st["country_code"] != float64(1) || !strings.HasSuffix(fmt.Sprint(st["phone_number"]), last4) {
		t.Fatalf("user %d's status: %s", id, r.raw)
	}
}

func TestImportFromFile(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	path := userFile(t, dir, 1, 30)

	// A dry run checks everything and writes nothing, not even a checkpoint.
	rep, _, err := importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1", "--dry-run")
	if err != nil || !rep.DryRun || rep.Imported != 30 || rep.Failed != 0 {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 0 {
		t.Fatalf("a dry run wrote %d users", n)
	}
	if _, err := os.Stat(path + ".checkpoint"); !os.IsNotExist(err) {
		t.Fatalf("a dry run left a checkpoint: %v", err)
	}

	rep, _, err = importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1", "--batch-size", "7")
	if err != nil || rep.Imported != 30 || rep.WithSeed != 10 || rep.WithoutPhone != 6 || rep.Present != 0 || rep.Records != 30 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 30 {
		t.Fatalf("%d users after importing 30", n)
	}
	checkPhone(t, s, s.key, 1007, "0007")
	if _, err := os.Stat(path + ".checkpoint"); !os.IsNotExist(err) {
		t.Fatalf("a finished import left its checkpoint: %v", err)
	}

	// Again: everyone is present, no one twice.
	rep, _, err = importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1")
	if err != nil || rep.Imported != 0 || rep.Present != 30 {
		t.Fatalf("again: %v %+v", err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 30 {
		t.Fatalf("%d users after importing 30 twice", n)
	}

	// JSON Lines on standard input, the text report.
	out, errOut, err := importCLI(context.Background(), s.dataDir, nil,
		`{"authy_id": 5001, "email": "a@example.com", "country_code": "1", "phone": "(201) 555-9001"}`+"\n",
		"import", "from-file", "-", "--app", "1", "--checkpoint", filepath.Join(dir, "stdin.checkpoint"))
	if err != nil || !strings.Contains(out, "imported         1") || !strings.Contains(errOut, "checking standard input") {
		t.Fatalf("from standard input: %v\n%s\n%s", err, out, errOut)
	}
}

// Invalid records, each named by its line: nothing is written unless --continue-on-error.
func TestImportFromFileInvalid(t *testing.T) {
	s := startServer(t, "")
	path := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(path, []byte("authy_id,email,country_code,phone\n"+
		"1,a@example.com,1,2015550123\n"+
		"2,b@example.com,1,12\n"+ // not a phone number
		"3,c@example.com,1,2015550123\n"+ // line 2's phone
		"four,d@example.com,1,2015550125\n"+
		"5,e@example.com,1,2015550126,extra\n"+
		"6,f@example.com,1,2015550127\n"+
		"6,g@example.com,1,2015550128\n"+
		"7,not an email,1,2015550129\n"+
		"8,h@example.com,1,2015550130\n"), 0o600)
	rep, _, err := importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1")
	if err == nil || !strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("invalid records: %v", err)
	}
	lines := map[int]bool{}
	for _, f := range rep.Failures {
		lines[f.Line] = true
	}
	for _, line := range []int{3, 4, 5, 6, 7, 8, 9} {
		if !lines[line] {
			t.Errorf("line %d is not reported: %+v", line, rep.Failures)
		}
	}
	if len(lines) != 8 || lines[10] || rep.Failed != 8 || rep.Imported != 0 {
		t.Errorf("report: %+v", rep)
	}
	if n := totalUsers(t, s, s.key); n != 0 {
		t.Fatalf("%d users written from a file with invalid records", n)
	}

	rep, _, err = importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1", "--continue-on-error")
	if err == nil || !strings.Contains(err.Error(), "8 of 9 users failed") || rep.Imported != 1 || rep.Failed != 8 {
		t.Fatalf("--continue-on-error: %v %+v", err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 1 {
		t.Fatalf("%d users, want the one valid", n)
	}
}

// interruptAfter cancels ctx when the import has written n batches: a Ctrl-C while the nth is
// in flight. It wraps the real service, which then finishes that batch.
func interruptAfter(t *testing.T, n int32, cancel context.CancelFunc) {
	real := userImport.service
	t.Cleanup(func() { userImport.service = real })
	var calls atomic.Int32
	userImport.service = func(in *instance) importer {
		return importerFunc(func(ctx context.Context, appID int64, recs []userimport.Record, dryRun bool) ([]userimport.Result, error) {
			if calls.Add(1) == n {
				cancel()
			}
			return real(in).Import(ctx, appID, recs, dryRun)
		})
	}
}

type importerFunc func(context.Context, int64, []userimport.Record, bool) ([]userimport.Result, error)

func (f importerFunc) Import(ctx context.Context, appID int64, recs []userimport.Record, dryRun bool) ([]userimport.Result, error) {
	return f(ctx, appID, recs, dryRun)
}

// Ctrl-C stops after the batch in flight and leaves a checkpoint; the same command resumes
// there, and every user is written exactly once: on SQLite, and on PostgreSQL where configured.
func TestImportFromFileResume(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testImportResume(t, startServer(t, "")) })
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.Schema(t)
		dir := t.TempDir()
		if _, err := runCLI(dir, "migrate", "--database", dsn); err != nil {
			t.Fatal(err)
		}
		testImportResume(t, startServer(t, dir, "--database", dsn))
	})
}

func testImportResume(t *testing.T, s *server) {
	importJSON := func(t *testing.T, ctx context.Context, dataDir string, vars map[string]string, stdin string, args ...string) (importReport, string, error) {
		t.Helper()
		return importJSON(t, ctx, dataDir, vars, stdin, append(args, s.cliArgs...)...)
	}
	importCLI := func(ctx context.Context, dataDir string, vars map[string]string, stdin string, args ...string) (string, string, error) {
		return importCLI(ctx, dataDir, vars, stdin, append(args, s.cliArgs...)...)
	}
	path := userFile(t, t.TempDir(), 1, 95)
	ctx, cancel := context.WithCancel(context.Background())
	interruptAfter(t, 3, cancel)
	rep, _, err := importJSON(t, ctx, s.dataDir, nil, "", "import", "from-file", path, "--app", "1", "--batch-size", "10")
	if err == nil || !strings.Contains(err.Error(), "interrupted after 30 users") || !strings.Contains(err.Error(), "resume after line 31") {
		t.Fatalf("interrupted: %v", err)
	}
	if !rep.Interrupted || rep.Imported != 30 || rep.Checkpoint != path+".checkpoint" {
		t.Fatalf("report: %+v", rep)
	}
	cp, found, err := readCheckpoint(path + ".checkpoint")
	if err != nil || !found || cp.NextLine != 32 || cp.AppID != 1 || cp.Command != "from-file" {
		t.Fatalf("checkpoint: %+v %v %v", cp, found, err)
	}
	if n := totalUsers(t, s, s.key); n != 30 {
		t.Fatalf("%d users after three batches of 10", n)
	}

	rep, errOut, err := importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1", "--batch-size", "10")
	if err != nil || rep.Skipped != 30 || rep.Imported != 65 || rep.Present != 0 || !strings.Contains(errOut, "resuming at line 32") {
		t.Fatalf("resumed: %v %+v\n%s", err, rep, errOut)
	}
	if n := totalUsers(t, s, s.key); n != 95 {
		t.Fatalf("%d users after the resumed import of 95", n)
	}

	// A checkpoint about another file is not followed: the run starts over, and Import's
	// "present" keeps anyone from being written twice.
	os.WriteFile(path+".checkpoint", []byte(`{"version":1,"command":"from-file","app_id":1,"input_sha256":"00","next_line":50}`), 0o600)
	rep, errOut, err = importJSON(t, context.Background(), s.dataDir, nil, "", "import", "from-file", path, "--app", "1")
	if err != nil || rep.Skipped != 0 || rep.Present != 95 || !strings.Contains(errOut, "starting from the beginning") {
		t.Fatalf("another input's checkpoint: %v %+v\n%s", err, rep, errOut)
	}

	// The checkpoint must be writable before anything is imported.
	more := userFile(t, t.TempDir(), 200, 5)
	_, _, err = importCLI(context.Background(), s.dataDir, nil, "", "import", "from-file", more, "--app", "1", "--checkpoint", filepath.Join(t.TempDir(), "no", "such", "dir"))
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("an unwritable checkpoint: %v", err)
	}
	if n := totalUsers(t, s, s.key); n != 95 {
		t.Fatalf("%d users after an import that could not keep a checkpoint", n)
	}
}

// exportUsers makes n users for the export server: ids 100..100+n-1, every fourth without a
// seed, every seventh without a phone, and lists their ids (with an email on every other line).
func exportUsers(t *testing.T, dir string, n int) (map[int64]exportUser, string) {
	users := map[int64]exportUser{}
	var list strings.Builder
	for i := range n {
		id := int64(100 + i)
		u := exportUser{cc: "1", phone: fmt.Sprintf("201555%04d", i), secret: "JBSWY3DPEHPK3PXP", otp: "123456"}
		if i%4 == 0 {
			u.secret = ""
		}
		if i%7 == 0 {
			u.cc, u.phone = nil, ""
		}
		users[id] = u
		if i%2 == 0 {
			fmt.Fprintf(&list, "%d,user%d@example.com\n", id, i)
		} else {
			fmt.Fprintf(&list, "%d\n", id)
		}
	}
	path := filepath.Join(dir, "authy_ids.txt")
	if err := os.WriteFile(path, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return users, path
}

func TestImportFromAuthy(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	users, path := exportUsers(t, dir, 40)
	a := newAuthyExport(t, users)
	a.with(func() { a.limit["/protected/json/users/110/phone_number"] = 2; a.retryAfter = "1" })
	os.WriteFile(path, append(must(os.ReadFile(path)), "999\n"...), 0o600) // not at the source
	vars := map[string]string{"TWOFOLD_AUTHY_API_KEY": exportKey}

	rep, errOut, err := importJSON(t, context.Background(), s.dataDir, vars, "", "import", "from-authy", path, "--app", "1",
		"--authy-url", a.URL, "--batch-size", "8", "--concurrency", "4")
	if err == nil || !strings.Contains(err.Error(), "1 of 41 users failed") {
		t.Fatalf("from-authy: %v\n%s", err, errOut)
	}
	// 40 users: 6 without a phone (i%7 == 0), 30 with a seed (not i%4 == 0).
	if rep.Imported != 40 || rep.WithoutPhone != 6 || rep.WithSeed != 30 || rep.Failed != 1 || rep.Failures[0].ID != 999 ||
		rep.Failures[0].Line != 41 || !strings.Contains(rep.Failures[0].Reason, "not found at the source") {
		t.Fatalf("report: %+v", rep)
	}
	if n := totalUsers(t, s, s.key); n != 40 {
		t.Fatalf("%d users after importing 40", n)
	}
	checkPhone(t, s, s.key, 101, "0001")
	checkNoKey(t, errOut, fmt.Sprint(rep))

	// Run again: all present; only the 404 fails again.
	rep, _, err = importJSON(t, context.Background(), s.dataDir, vars, "", "import", "from-authy", path, "--app", "1", "--authy-url", a.URL)
	if err == nil || rep.Present != 40 || rep.Imported != 0 || rep.Failed != 1 {
		t.Fatalf("again: %v %+v", err, rep)
	}

	// The migration tools disabled: the run stops, saying what to ask for.
	a.with(func() { a.disabled = true })
	_, errOut, err = importCLI(context.Background(), s.dataDir, vars, "100\n", "import", "from-authy", "-", "--app", "1", "--authy-url", a.URL,
		"--checkpoint", filepath.Join(dir, "stdin.checkpoint"))
	if err == nil || !strings.Contains(err.Error(), "enable the Authy migration tools") {
		t.Fatalf("migration tools disabled: %v\n%s", err, errOut)
	}
	// No key: refused before anything is read.
	_, _, err = importCLI(context.Background(), s.dataDir, nil, "100\n", "import", "from-authy", "-", "--app", "1", "--authy-url", a.URL)
	if err == nil || !strings.Contains(err.Error(), "TWOFOLD_AUTHY_API_KEY") {
		t.Fatalf("no key: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// checkNoKey fails if the Authy key is in any of the texts.
func checkNoKey(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if strings.Contains(text, exportKey) {
			t.Fatalf("the Authy API key was printed:\n%s", text)
		}
	}
}

// Ctrl-C in the middle of fetching: the batch in flight is written, the checkpoint says
// where to resume, and the resumed run writes every user exactly once.
func TestImportFromAuthyInterrupted(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	users, path := exportUsers(t, dir, 60)
	a := newAuthyExport(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	a.with(func() {
		a.onRequest = func(p string) {
			if p == "/protected/json/users/135/phone_number" {
				once.Do(cancel)
			}
		}
	})
	vars := map[string]string{"TWOFOLD_AUTHY_API_KEY": exportKey}
	args := []string{"import", "from-authy", path, "--app", "1", "--authy-url", a.URL, "--batch-size", "10", "--concurrency", "3"}
	rep, errOut, err := importJSON(t, ctx, s.dataDir, vars, "", args...)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted: %v\n%s", err, errOut)
	}
	first := rep.Imported
	if first < 10 || first > 35 || !rep.Interrupted {
		t.Fatalf("first run: %+v", rep)
	}
	raw, err := os.ReadFile(path + ".checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	checkNoKey(t, string(raw), errOut)
	a.with(func() { a.onRequest = nil })

	rep, _, err = importJSON(t, context.Background(), s.dataDir, vars, "", args...)
	if err != nil || rep.Skipped+rep.Imported+rep.Present != 60 || rep.Imported != 60-first || rep.Skipped != first {
		t.Fatalf("resumed after %d: %v %+v", first, err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 60 {
		t.Fatalf("%d users after the resumed import of 60", n)
	}
	for id := range users {
		if n := a.served(fmt.Sprintf("/protected/json/users/%d/phone_number", id)); n > 2 {
			t.Errorf("user %d fetched %d times", id, n)
		}
	}
}

// The import process killed outright (SIGKILL, a crash) resumes from its checkpoint, and no
// one is written twice.
func TestImportFromAuthyKilled(t *testing.T) {
	s := startServer(t, "")
	dir := t.TempDir()
	users, path := exportUsers(t, dir, 80)
	a := newAuthyExport(t, users)
	bin := testbin.Twofold(t)
	cmd := exec.Command(bin, "import", "from-authy", path, "--app", "1", "--authy-url", a.URL, "--batch-size", "10",
		"--concurrency", "2", "--data-dir", s.dataDir)
	cmd.Env = append(os.Environ(), "TWOFOLD_AUTHY_API_KEY="+exportKey, "TWOFOLD_MASTER_KEY=")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killed := make(chan struct{})
	started := make(chan *os.Process, 1)
	var once sync.Once
	a.with(func() {
		a.onRequest = func(p string) {
			if p == "/protected/json/users/150/phone_number" { // halfway: some batches are written
				once.Do(func() {
					proc := <-started
					close(killed)
					proc.Kill()
				})
			}
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started <- cmd.Process
	err := cmd.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the import ended before it was killed: %v\n%s", err, out.String())
	}
	a.with(func() { a.onRequest = nil })
	cp, found, err := readCheckpoint(path + ".checkpoint")
	if err != nil || !found {
		t.Fatalf("no checkpoint after the kill: %v\n%s", err, out.String())
	}
	written := totalUsers(t, s, s.key)
	if written < cp.NextLine-1 {
		t.Fatalf("the checkpoint says %d lines are done, but %d users are written", cp.NextLine-1, written)
	}

	vars := map[string]string{"TWOFOLD_AUTHY_API_KEY": exportKey}
	rep, _, err := importJSON(t, context.Background(), s.dataDir, vars, "", "import", "from-authy", path, "--app", "1",
		"--authy-url", a.URL, "--batch-size", "10")
	if err != nil || rep.Skipped != cp.NextLine-1 || rep.Skipped+rep.Imported+rep.Present != 80 || rep.Present != written-rep.Skipped {
		t.Fatalf("after the kill (checkpoint at line %d, %d written): %v %+v", cp.NextLine, written, err, rep)
	}
	if n := totalUsers(t, s, s.key); n != 80 {
		t.Fatalf("%d users after the resumed import of 80", n)
	}
}

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{{"import", "--help"}, {"import", "from-file", "--help"}, {"import", "from-authy", "--help"}} {
		var out bytes.Buffer
		env := Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := run(context.Background(), args, env); err != nil || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
		if len(args) == 3 && !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%v has no examples", args)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "from-file", "x.csv"}, "--app is required"},
		{[]string{"import", "from-file", "x.csv", "--app", "1", "--batch-size", "0"}, "--batch-size"},
		{[]string{"import", "from-file", "x.csv", "--app", "1", "--format", "xml"}, "--format"},
		{[]string{"import", "from-authy", "x", "--app", "1", "--authy-key", "k", "--authy-url", "ftp://x"}, "--authy-url"},
		{[]string{"import", "from-authy", "x", "--app", "1", "--authy-key", "k", "--concurrency", "0"}, "--concurrency"},
	} {
		_, err := runCLI(t.TempDir(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

// The console's own application holds the operators: no one is imported into it.
func TestImportIntoConsoleRefused(t *testing.T) {
	dir := t.TempDir()
	createOperator(t, dir, "ana@example.com", "a long enough password")
	out, err := runCLI(dir, "app", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []appJSON
	json.Unmarshal([]byte(out), &list)
	console := int64(0)
	for _, a := range list {
		if a.Console {
			console = a.AppID
		}
	}
	if console == 0 {
		t.Fatalf("no console application: %s", out)
	}
	path := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(path, []byte("1,a@example.com,1,2015550123\n"), 0o600)
	_, err = runCLI(dir, "import", "from-file", path, "--app", itoa64(console))
	if err == nil || !strings.Contains(err.Error(), "the console's own") {
		t.Fatalf("import into the console's application: %v", err)
	}
	if _, err := runCLI(dir, "import", "from-file", path, "--app", "99"); err == nil || !strings.Contains(err.Error(), "no application with id 99") {
		t.Fatalf("import into no application: %v", err)
	}
}
