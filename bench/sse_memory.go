package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The sse-memory scenario's view inside the server, when the server runs with a profiling
// listener (TWOFOLD_PPROF_ADDR=127.0.0.1:0 in the bench's environment reaches `twofold serve`):
// the Go runtime's own figures beside the RSS that /proc reports.

var pprofListening = regexp.MustCompile(`pprof listening"? addr=(http://[^\s"]+)/debug/pprof/`)

// pprofBase is the server's profiling address from its log, or "" when it has none.
func pprofBase(log string) string {
	if m := pprofListening.FindStringSubmatch(log); m != nil {
		return m[1]
	}
	return ""
}

// runtimeMem is what the Go runtime of the server says of its memory, after a forced GC.
type runtimeMem struct {
	HeapInuse, StackInuse, Sys, HeapIdle, HeapReleased uint64
	Goroutines                                         int
}

// serverRuntimeMem forces a GC in the server (heap?gc=1), then reads runtime.MemStats from
// /debug/vars and the goroutine count from the goroutine profile.
func serverRuntimeMem(base string) (runtimeMem, error) {
	c := &http.Client{Timeout: time.Minute}
	var m runtimeMem
	if err := getTo(c, base+"/debug/pprof/heap?gc=1", io.Discard); err != nil {
		return m, err
	}
	var vars struct {
		MemStats struct {
			HeapInuse, StackInuse, Sys, HeapIdle, HeapReleased uint64
		} `json:"memstats"`
	}
	res, err := c.Get(base + "/debug/vars")
	if err != nil {
		return m, err
	}
	err = json.NewDecoder(res.Body).Decode(&vars)
	res.Body.Close()
	if err != nil {
		return m, fmt.Errorf("/debug/vars: %w", err)
	}
	ms := vars.MemStats
	m.HeapInuse, m.StackInuse, m.Sys, m.HeapIdle, m.HeapReleased = ms.HeapInuse, ms.StackInuse, ms.Sys, ms.HeapIdle, ms.HeapReleased
	res, err = c.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return m, err
	}
	defer res.Body.Close()
	first, _ := bufio.NewReader(res.Body).ReadString('\n') // "goroutine profile: total N"
	_, err = fmt.Sscanf(strings.TrimSpace(first), "goroutine profile: total %d", &m.Goroutines)
	return m, err
}

func (m runtimeMem) String() string {
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("Go heap in use %.1f MB, stacks %.1f MB, runtime Sys %.1f MB (heap idle %.1f MB, of it released %.1f MB), %d goroutines",
		mb(m.HeapInuse), mb(m.StackInuse), mb(m.Sys), mb(m.HeapIdle), mb(m.HeapReleased), m.Goroutines)
}

// saveProfiles writes the server's heap profile (pprof format, for `go tool pprof`) and its
// goroutines (text, grouped by stack) into dir.
func saveProfiles(base, dir string) error {
	c := &http.Client{Timeout: time.Minute}
	for name, path := range map[string]string{"heap.pb.gz": "/debug/pprof/heap", "goroutine.txt": "/debug/pprof/goroutine?debug=1"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = getTo(c, base+path, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func getTo(c *http.Client, url string, w io.Writer) error {
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	_, err = io.Copy(w, res.Body)
	return err
}

// sseStreamsOpen reads how many event streams the server holds (twofold_device_streams), so
// a stream that ended before the measurement is not counted as held.
func (b *bench) sseStreamsOpen(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.api.base+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "twofold_device_streams "); ok {
			var n float64
			_, err := fmt.Sscanf(v, "%g", &n)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("/metrics: no twofold_device_streams")
}

// profile starts the server's CPU profile for the scenario about to run (-cpuprofile), as long
// as its warm-up and measurement, and returns a function that waits for it to be written to
// name in the profile directory. Without -cpuprofile or a profiling listener it does nothing.
func (b *bench) profile(name string) (wait func()) {
	base := pprofBase(b.srv.logText())
	if b.cfg.cpuProfiles == "" || base == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := os.MkdirAll(b.cfg.cpuProfiles, 0o755); err != nil {
			logf("cpu profile: %v", err)
			return
		}
		f, err := os.Create(filepath.Join(b.cfg.cpuProfiles, name))
		if err != nil {
			logf("cpu profile: %v", err)
			return
		}
		defer f.Close()
		secs := int((b.cfg.warmup + b.cfg.duration).Round(time.Second) / time.Second)
		c := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
		if err := getTo(c, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, max(secs, 1)), f); err != nil {
			logf("cpu profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}
