package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// The browser sign-in through the real thing: `twofold serve` as a process, its OpenID
// provider and step page, a step client made by `twofold oidc-client create`. It waits for
// the server to serve the provider (issue 18): until then it is skipped, saying so.
func TestBrowserSignInServed(t *testing.T) {
	browserSignIn(t, newServedTwofold(t))
}

// servedTwofold is `twofold serve` on a fresh data directory.
type servedTwofold struct {
	bin, dataDir, url, apiKey string
	log                       *syncBuffer
	phones                    int
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newServedTwofold(t *testing.T) *servedTwofold {
	t.Helper()
	// The issuer is the public URL, so the port is chosen before the server starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &servedTwofold{bin: testbin.Twofold(t), dataDir: t.TempDir(), url: "http://" + addr, log: &syncBuffer{}}
	cmd := exec.Command(s.bin, "serve", "--addr", addr, "--public-url", s.url, "--data-dir", s.dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening, exited := make(chan struct{}), make(chan error, 1)
	go func() {
		once := sync.Once{}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(s.log, sc.Text())
			if regexp.MustCompile(`twofold listening`).MatchString(sc.Text()) {
				once.Do(func() { close(listening) })
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("twofold's log:\n%s", s.log.String())
		}
	})
	select {
	case <-listening:
	case err := <-exited:
		t.Fatalf("twofold serve exited: %v\n%s", err, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("twofold serve did not start:\n%s", s.log.String())
	}
	resp, err := http.Get(s.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Skip("twofold serve does not serve the OpenID provider yet (issue 18)")
	}
	var app struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(t, &app, "app", "show", "1", "--show-key", "--json")
	s.apiKey = app.APIKey
	return s
}

func (s *servedTwofold) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bin, append(args, "--data-dir", s.dataDir)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("twofold %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("twofold %s: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
}

func (s *servedTwofold) Issuer() string { return s.url }

func (s *servedTwofold) StepClient(t *testing.T, redirectURI string) (string, string) {
	t.Helper()
	var made struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	s.cliJSON(t, &made, "oidc-client", "create", "--app", "1", "--name", "OIDC login sample", "--redirect-uri", redirectURI,
		"--user-match", "email", "--json")
	if made.ClientID == "" || made.ClientSecret == "" {
		t.Fatalf("twofold oidc-client create printed no client id or secret: %+v", made)
	}
	return made.ClientID, made.ClientSecret
}

// EnrolledUser registers the user through the Authy API (users/new) and gives them an
// authenticator app (users/{id}/secret), as an application does.
func (s *servedTwofold) EnrolledUser(t *testing.T, email string) (string, otp.Key) {
	t.Helper()
	api, err := client.New(s.url, s.apiKey)
	if err != nil {
		t.Fatal(err)
	}
	s.phones++
	id, err := api.RegisterUser(t.Context(), client.NewUser{Email: email, Phone: fmt.Sprintf("201555%04d", 1000+s.phones), CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", fmt.Sprintf("%s/protected/json/users/%d/secret", s.url, id), strings.NewReader(url.Values{}.Encode()))
	req.Header.Set("X-Authy-API-Key", s.apiKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var enr struct {
		URI string `json:"uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&enr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("users/%d/secret: %d %v", id, resp.StatusCode, err)
	}
	key, err := otp.ParseURI(enr.URI)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(id), key
}

func (s *servedTwofold) PassStep(t *testing.T, ctx context.Context, key otp.Key) {
	passStep(t, ctx, key)
}

// passStep types the authenticator's code into the step page's one-time-code field and submits
// its form: the page offers a user with an authenticator app and no device the code first.
func passStep(t *testing.T, ctx context.Context, key otp.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	const field = `input[autocomplete="one-time-code"]`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(field)), chromedp.SendKeys(chromedp.CSS(field), key.Code(time.Now())),
		chromedp.Submit(chromedp.CSS(field))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("the step page at %s: %v", loc, err)
	}
}
