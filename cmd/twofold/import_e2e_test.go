package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// movedUser is a user of the source ("Authy") as the test made it.
type movedUser struct {
	id    int64
	phone string // national number
	seed  *otp.TOTP
}

// importReportJSON is what `twofold import ... --json` prints.
type importReportJSON struct {
	Records     int  `json:"records"`
	Skipped     int  `json:"skipped"`
	Imported    int  `json:"imported"`
	WithSeed    int  `json:"with_seed"`
	Present     int  `json:"already_present"`
	Failed      int  `json:"failed"`
	Interrupted bool `json:"interrupted"`
}

// TestImportFromAuthyEndToEnd moves an application's users from one Twofold playing Authy (its
// migration exports on) into an application of another with `twofold import from-authy`, the
// real binary, killed with SIGKILL halfway and resumed; then checks through npm authy-client,
// against the second server with only the host changed, that every user kept its id, its
// status and its phone, and that a code of its original seed verifies once. The same ids go
// into a second application of the same server, isolated from the first.
func TestImportFromAuthyEndToEnd(t *testing.T) {
	const n = 40
	src := startServer(t, "", "--rate-limit", "off")
	if _, err := src.cli("app", "update", "1", "--migration-tools"); err != nil {
		t.Fatal(err)
	}
	var users []movedUser
	for i := range n {
		phone := fmt.Sprintf("20155501%02d", i)
		u := movedUser{id: src.register(src.key, fmt.Sprintf("u%d@example.com", i), phone), phone: phone}
		if i%3 == 0 { // a third enrolled a generic authenticator, whose seed Authy exports
			r := src.post(fmt.Sprintf("/protected/json/users/%d/secret", u.id), url.Values{})
			uri, _ := r.body["uri"].(string)
			key, err := otp.ParseURI(uri)
			if r.status != 200 || err != nil {
				t.Fatalf("enrol user %d: %d %s %v", u.id, r.status, r.raw, err)
			}
			u.seed = &key.TOTP
		}
		users = append(users, u)
	}
	withSeed := (n + 2) / 3

	// The destination already has users of its own in application 1, with the ids the source
	// gave: the moved users go to applications 2 and 3, and keep theirs.
	dst := startServer(t, "", "--rate-limit", "off")
	for i := range 3 {
		dst.register(dst.key, fmt.Sprintf("native%d@example.com", i), fmt.Sprintf("20155502%02d", i))
	}
	moveTo := map[string]appJSON{}
	for _, name := range []string{"Moved", "Moved again"} {
		var a appJSON
		dst.cliJSON(&a, "app", "create", "--name", name)
		moveTo[name] = a
	}

	dir := t.TempDir()
	ids := filepath.Join(dir, "authy_ids.txt")
	var lines []string
	for _, u := range users {
		lines = append(lines, strconv.FormatInt(u.id, 10))
	}
	if err := os.WriteFile(ids, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// "Authy" behind a proxy that, once half the users' phone numbers were asked for, holds
	// every further request: the importer is then killed mid-run.
	target, _ := url.Parse(src.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var asked atomic.Int64
	var hold atomic.Bool
	halfway := make(chan struct{})
	var once sync.Once
	held := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && strings.HasSuffix(r.URL.Path, "/phone_number") && asked.Add(1) > n/2 {
			once.Do(func() { close(halfway) })
			select {
			case <-held:
			case <-r.Context().Done():
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(held); front.Close() })

	bin := testbin.Twofold(t)
	importCmd := func(ctx context.Context, app appJSON, extra ...string) *exec.Cmd {
		args := append([]string{"import", "from-authy", ids, "--app", strconv.FormatInt(app.AppID, 10),
			"--authy-url", front.URL, "--data-dir", dst.dataDir, "--batch-size", "4", "--json"}, extra...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "TWOFOLD_AUTHY_API_KEY="+src.key)
		return cmd
	}
	run := func(app appJSON, extra ...string) importReportJSON {
		t.Helper()
		out, err := importCmd(context.Background(), app, extra...).Output()
		var rep importReportJSON
		if jerr := json.Unmarshal(out, &rep); err != nil || jerr != nil {
			t.Fatalf("twofold import: %v %v\n%s", err, jerr, out)
		}
		return rep
	}

	// The first run is killed once half the users were asked for.
	moved := moveTo["Moved"]
	hold.Store(true)
	first := importCmd(context.Background(), moved)
	var firstOut strings.Builder
	first.Stdout, first.Stderr = io.Discard, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	select {
	case <-halfway:
	case err := <-exited:
		t.Fatalf("the import ended before it got halfway: %v\n%s", err, firstOut.String())
	case <-time.After(2 * time.Minute):
		first.Process.Kill()
		t.Fatal("the import never got halfway")
	}
	// The users fetched before the hold are written batch by batch; kill once the first is in
	// (the held requests keep the rest from being fetched).
	written := func() bool {
		r := dst.do("GET", fmt.Sprintf("/protected/json/users/%d/status", users[0].id), moved.APIKey, nil)
		return r.status == 200
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.After(2 * time.Minute); !written(); {
		select {
		case <-tick.C:
		case err := <-exited:
			t.Fatalf("the import ended while held: %v\n%s", err, firstOut.String())
		case <-deadline:
			first.Process.Kill()
			t.Fatal("the import wrote nobody of the users it had fetched")
		}
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL: no chance to tidy up
		t.Fatal(err)
	}
	<-exited
	hold.Store(false)

	// The resume picks up from the checkpoint: nobody twice, nobody missing.
	second := run(moved)
	if second.Records != n || second.Skipped+second.Present+second.Imported != n || second.Failed != 0 {
		t.Fatalf("resumed run: %+v; want all %d users skipped, present or imported", second, n)
	}
	if second.Skipped+second.Present == 0 || second.Imported == 0 {
		t.Fatalf("resumed run: %+v; the first run should have written some users and left some", second)
	}
	// A run from scratch (another checkpoint) finds every user there, and writes none again.
	third := run(moved, "--checkpoint", filepath.Join(dir, "fresh.checkpoint"))
	if third.Present != n || third.Imported != 0 || third.Failed != 0 {
		t.Fatalf("a run from scratch after the import: %+v; want all %d present", third, n)
	}

	// The same ids into a second application of the same server.
	again := moveTo["Moved again"]
	if rep := run(again); rep.Imported != n || rep.WithSeed != withSeed {
		t.Fatalf("import into a second application: %+v", rep)
	}

	// Through authy-client, against the destination with only the host changed.
	type check struct {
		AuthyID     int64  `json:"authy_id"`
		Last4       string `json:"last4"`
		CountryCode int    `json:"country_code"`
		TOTP        string `json:"totp"`
		Registered  bool   `json:"registered"`
	}
	checksFor := func(at time.Time) []check {
		var out []check
		for _, u := range users {
			c := check{AuthyID: u.id, Last4: u.phone[len(u.phone)-4:], CountryCode: 1, Registered: u.seed != nil}
			if u.seed != nil {
				// The step of the move was spent by the import (a code seen at the old service
				// must not be replayed here): the user's next code is the first that works.
				c.TOTP = u.seed.Code(at.Add(time.Duration(u.seed.Period) * time.Second))
			}
			out = append(out, c)
		}
		return out
	}
	runAuthyClient(t, dst, moved.APIKey, checksFor(time.Now()))
	for _, u := range users {
		if got := dst.lastCode(u.phone); got == "" {
			t.Errorf("no SMS to user %d's phone", u.id)
		}
	}

	// Isolation: the ids of application 2 are not application 1's, and removing a user from
	// application 3 leaves application 2's.
	if r := dst.do("GET", "/protected/json/users/1/status", dst.key, nil); r.status != 200 ||
		!strings.Contains(r.raw, "0200") {
		t.Errorf("application 1's own user 1: %d %s", r.status, r.raw)
	}
	gone := users[0].id
	if r := dst.do("POST", fmt.Sprintf("/protected/json/users/%d/remove", gone), again.APIKey, url.Values{}); r.status != 200 {
		t.Fatalf("remove user %d from the second application: %d %s", gone, r.status, r.raw)
	}
	if r := dst.do("GET", fmt.Sprintf("/protected/json/users/%d/status", gone), again.APIKey, nil); r.status != 404 {
		t.Errorf("removed user in the second application: %d %s", r.status, r.raw)
	}
	if r := dst.do("GET", fmt.Sprintf("/protected/json/users/%d/status", gone), moved.APIKey, nil); r.status != 200 ||
		!strings.Contains(r.raw, users[0].phone[len(users[0].phone)-4:]) {
		t.Errorf("the first application's user %d after removing the second's: %d %s", gone, r.status, r.raw)
	}
	// A user made after the import takes an id past every imported one.
	if id := dst.register(moved.APIKey, "new@example.com", "2015550300"); id <= users[n-1].id {
		t.Errorf("a user registered after the import got id %d, not past the imported %d", id, users[n-1].id)
	}
}

// runAuthyClient runs testdata/compat/migrated.js (npm authy-client) with checks.
func runAuthyClient(t *testing.T, s *server, key string, checks any) {
	t.Helper()
	node := compatNode(t, "authy-client")
	js, _ := json.Marshal(checks)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "migrated.js")
	cmd.Dir = compatDir
	cmd.Env = append(os.Environ(), "TWOFOLD_URL="+s.url, "TWOFOLD_API_KEY="+key, "TWOFOLD_USERS="+string(js), "NODE_OPTIONS=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ALL CHECKS PASSED") {
		t.Fatalf("authy-client against the moved users: %v\n%s", err, out)
	}
}
