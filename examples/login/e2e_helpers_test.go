package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/otp"
)

// The end-to-end test runs the real parts: the twofold binary (built here) as a subprocess, this
// sample's handler in process, Debian's chromium driven by chromedp as the user's browser, and
// `twofold device` as the user's authenticator app.

// lockedBuffer collects a log that goroutines write to; the test prints it when it fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// twofoldServer is `twofold serve` running as a subprocess on a fresh data directory.
type twofoldServer struct {
	t       *testing.T
	bin     string
	dataDir string
	url     string
	key     string
	log     *lockedBuffer
}

// startTwofold starts `twofold serve` with the settings the sample needs, and extra ones.
func startTwofold(t *testing.T, bin string, extra ...string) *twofoldServer {
	t.Helper()
	s := &twofoldServer{t: t, bin: bin, dataDir: t.TempDir(), log: &lockedBuffer{}}
	// The sample listens on loopback: its callbacks must be allowed there, as an operator would.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--callback-allow-hosts", "127.0.0.1"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`twofold listening.* addr=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("twofold did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("twofold's log:\n%s", s.log.String())
		}
	})
	select {
	case s.url = <-addr:
	case err := <-exited:
		t.Fatalf("twofold serve exited: %v\n%s", err, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("twofold serve did not say where it listens:\n%s", s.log.String())
	}
	var app struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&app, "app", "show", "1", "--show-key", "--json", "--data-dir", s.dataDir)
	if app.APIKey == "" {
		t.Fatal("twofold app show printed no API key")
	}
	s.key = app.APIKey
	return s
}

// cli runs the twofold binary with args (and stdin, when not empty), and returns its stdout.
func (s *twofoldServer) cli(stdin string, env []string, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("twofold %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// cliFails runs the twofold binary with args, which must fail saying want (on stderr or stdout).
func (s *twofoldServer) cliFails(env []string, want string, args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		s.t.Fatalf("twofold %s: %v, want a failure saying %q:\n%s", strings.Join(args, " "), err, want, out)
	}
}

func (s *twofoldServer) cliJSON(v any, args ...string) {
	s.t.Helper()
	out := s.cli("", nil, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("twofold %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// authenticator is `twofold device` with its own vault: the user's phone.
type authenticator struct {
	tf    *twofoldServer
	vault string
}

func (a *authenticator) run(stdin string, args ...string) string {
	a.tf.t.Helper()
	args = append([]string{"device"}, args...)
	return a.tf.cli(stdin, a.env(), args...)
}

// fails runs `twofold device args`, which must fail saying want.
func (a *authenticator) fails(want string, args ...string) {
	a.tf.t.Helper()
	a.tf.cliFails(a.env(), want, append([]string{"device"}, args...)...)
}

func (a *authenticator) env() []string {
	return []string{"TWOFOLD_VAULT_PASSPHRASE=correct horse battery staple", "TWOFOLD_VAULT=" + a.vault}
}

// tab is the browser tab, with helpers that fail the test.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab starts chromium (browsertest.Start) and emulates a phone.
func newTab(t *testing.T) *tab {
	t.Helper()
	ctx := browsertest.Start(t)
	p := &tab{t: t, ctx: ctx}
	p.watchConsole()
	p.do(browsertest.Phone.Emulate())
	return p
}

// check runs the checks every page of the sample passes (browsertest.Check: axe-core's serious
// and critical rules, and nothing wider than the screen) on the page open in the tab, at the
// desktop's and the phone's sizes, and leaves the tab at the phone's.
func (p *tab) check(name string) {
	p.t.Helper()
	for _, vp := range []browsertest.Viewport{browsertest.Desktop, browsertest.Phone} {
		p.do(vp.Emulate())
		browsertest.Check(p.t, p.ctx, "the "+name+" page at the "+vp.Name+"'s size")
	}
}

// watchConsole fails the test on an uncaught exception or a Content-Security-Policy violation.
func (p *tab) watchConsole() {
	t := p.t
	var mu sync.Mutex
	var bad []string
	ctx, stop := context.WithCancel(p.ctx)
	done := make(chan struct{})
	messages := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if text := m.String(); m.IsException() || strings.Contains(text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s (%s:%d)", text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bad {
			t.Errorf("page console: %s", b)
		}
	})
}

// do runs actions, each wait bounded so that a broken step fails rather than hangs.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		// What the page shows, if it still answers.
		diag, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(diag, chromedp.Location())
		body, _ := chromedp.Run(diag, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		p.t.Fatalf("browser at %s: %v\npage text:\n%s", loc, err, body)
	}
}

func (p *tab) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	return v
}

// at waits for the page whose heading is marked data-page=name, and for the page to have
// loaded (app.js is deferred: its handlers and functions come after the heading shows), and
// returns the heading.
func (p *tab) at(name string) string {
	p.t.Helper()
	return p.poll(fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return e && e.offsetParent !== null && document.readyState === 'complete' ? e.textContent : null })()`,
		fmt.Sprintf(`h1[data-page=%q]`, name)), "page "+name)
}

// text waits for the element sel and returns its text, in one evaluation in the page, so a
// navigation between finding the element and reading it cannot make it vanish.
func (p *tab) text(sel string) string {
	p.t.Helper()
	return p.poll(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.offsetParent !== null ? e.textContent : null })()`, sel), sel)
}

// poll evaluates js in the page until it returns a string, polling again in the new page when a
// navigation ends the one it ran in.
func (p *tab) poll(js, what string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	for {
		got, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingTimeout(40*time.Second)))
		if err == nil {
			return got
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "navigated") && !strings.Contains(err.Error(), "context") {
			p.t.Fatalf("browser: waiting for %s: %v", what, err)
		}
	}
}

func (p *tab) fill(fields ...string) {
	p.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		p.eval(fmt.Sprintf(`document.querySelector(%q).value = ''`, fields[i]))
		p.do(chromedp.SendKeys(chromedp.CSS(fields[i]), fields[i+1]))
	}
}

func (p *tab) click(sel string) { p.t.Helper(); p.do(chromedp.Click(chromedp.CSS(sel))) }

// screenshot saves the viewport as docs/screenshots/login-name.png, only with
// TWOFOLD_SCREENSHOTS=1, so that ordinary runs leave the tree alone.
func (p *tab) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("TWOFOLD_SCREENSHOTS") != "1" {
		return
	}
	// Wait for the images and the style sheet.
	p.do(chromedp.Poll[chromedp.Void](`document.readyState === 'complete' && [...document.images].every(i => i.complete)`))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "login-"+name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// importedUsers registers users through the Authy API (users/new), as importing them from Authy
// leaves them: a phone, an authy_id, and no authenticator; with totp, the user also gets a TOTP
// authenticator (users/{id}/secret), as one whose seed Authy exported does. It returns the sample's
// seed file (--seed-users) with their authy_ids, as the application's user table holds them after
// the move, and each user's TOTP key when they have one.
func importedUsers(t *testing.T, tf *twofoldServer, password string, users []importedUser) (string, map[string]otp.Key) {
	t.Helper()
	api, err := client.New(tf.url, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]otp.Key{}
	seed := "email,password_hash,country_code,phone,authy_id\n"
	for _, u := range users {
		id, err := api.RegisterUser(context.Background(), client.NewUser{Email: u.email, Phone: u.phone, CountryCode: "1"})
		if err != nil {
			t.Fatalf("users/new %s: %v", u.email, err)
		}
		if u.totp {
			keys[u.email] = enrolTOTP(t, tf, id)
		}
		seed += fmt.Sprintf("%s,%q,1,%s,%d\n", u.email, hash, u.phone, id)
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, keys
}

type importedUser struct {
	email, phone string
	totp         bool // has a TOTP authenticator
}

// enrolTOTP gives the user a TOTP authenticator with POST users/{id}/secret.
func enrolTOTP(t *testing.T, tf *twofoldServer, authyID int64) otp.Key {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/protected/json/users/%d/secret", tf.url, authyID), strings.NewReader(url.Values{"label": {"Login sample"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Authy-API-Key", tf.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		URI string `json:"uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("users/%d/secret: %d %v", authyID, res.StatusCode, err)
	}
	key, err := otp.ParseURI(body.URI)
	if err != nil {
		t.Fatalf("users/%d/secret: %v", authyID, err)
	}
	return key
}
