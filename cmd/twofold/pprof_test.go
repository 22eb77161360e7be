package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var pprofLine = regexp.MustCompile(`pprof listening"? addr=(http://[^\s"]+)/debug/pprof/`)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// Profiles are off unless asked for, and never on the API's own address.
func TestPprofOffByDefault(t *testing.T) {
	s := startServer(t, "")
	if m := pprofLine.FindStringSubmatch(s.logs.String()); m != nil {
		t.Fatalf("a profiling listener without --pprof-addr: %s", m[0])
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/vars"} {
		if code, _ := get(t, s.url+path); code != http.StatusNotFound {
			t.Errorf("%s on the API address: %d", path, code)
		}
	}
}

// --pprof-addr (or TWOFOLD_PPROF_ADDR) serves net/http/pprof and runtime.MemStats on a listener
// of its own.
func TestPprofServes(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", nil, []string{"--pprof-addr", "127.0.0.1:0"}},
		{"env", map[string]string{"TWOFOLD_PPROF_ADDR": "localhost:0"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServerEnv(t, "", func(e *Env) { e.Getenv = func(k string) string { return tc.env[k] } }, tc.args...)
			m := pprofLine.FindStringSubmatch(s.logs.String())
			if m == nil {
				t.Fatalf("no pprof listener logged:\n%s", s.logs.String())
			}
			base := m[1]
			if base == s.url {
				t.Fatal("profiles on the API's address")
			}
			if code, body := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
				t.Fatalf("/debug/pprof/: %d %.200s", code, body)
			}
			if code, body := get(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.HasPrefix(body, "goroutine profile: total ") {
				t.Fatalf("goroutine profile: %d %.200s", code, body)
			}
			if code, body := get(t, base+"/debug/pprof/heap"); code != 200 || len(body) == 0 {
				t.Fatalf("heap profile: %d, %d bytes", code, len(body))
			}
			code, body := get(t, base+"/debug/vars")
			var vars struct {
				MemStats struct{ HeapInuse, StackInuse uint64 } `json:"memstats"`
			}
			if err := json.Unmarshal([]byte(body), &vars); code != 200 || err != nil || vars.MemStats.HeapInuse == 0 || vars.MemStats.StackInuse == 0 {
				t.Fatalf("/debug/vars: %d %v %.200s", code, err, body)
			}
			if code, _ := get(t, s.url+"/debug/pprof/"); code != http.StatusNotFound {
				t.Fatalf("/debug/pprof/ on the API address too: %d", code)
			}
		})
	}
}

// An address beyond this machine is refused unless --pprof-allow-remote says so.
func TestPprofRefusesRemote(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:6060", "example.com:6060", "nonsense"} {
		_, err := runCLI(t.TempDir(), "serve", "--addr", "127.0.0.1:0", "--pprof-addr", addr)
		if err == nil || !strings.Contains(err.Error(), "--pprof") {
			t.Errorf("--pprof-addr %s: %v, want a refusal", addr, err)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:6060": true, "127.1.2.3:0": true, "[::1]:6060": true, "localhost:6060": true,
		":6060": false, "0.0.0.0:6060": false, "[::]:6060": false, "10.0.0.1:6060": false,
		"example.com:6060": false, "localhost.example.com:1": false, "127.0.0.1": false, "": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestPprofHelp(t *testing.T) {
	var out bytes.Buffer
	env := Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	if err := run(context.Background(), []string{"serve", "--help"}, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--pprof-addr", "TWOFOLD_PPROF_ADDR", "--pprof-allow-remote", "TWOFOLD_PPROF_ALLOW_REMOTE", "off by default"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}
