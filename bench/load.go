package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newTransport is a keep-alive pool of at most conns connections to one host: each load worker
// keeps one busy, as a closed-loop client would.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// Sample outcome counters of one run.
type result struct {
	Name     string        `json:"name"`
	Conns    int           `json:"conns"`
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	Ratio    float64       `json:"ratio_to_floor,omitempty"` // RPS / floor RPS
	Note     string        `json:"note,omitempty"`
	FirstErr string        `json:"first_error,omitempty"`
	// ServerCPU is the CPU time (user+system) the server process used while the scenario was
	// measured, and ServerCPUPerReq that divided by the requests: what a request costs the server.
	ServerCPU       time.Duration `json:"server_cpu_ns,omitempty"`
	ServerCPUPerReq time.Duration `json:"server_cpu_per_request_ns,omitempty"`
	latencies       []time.Duration
}

// summarize computes throughput and percentiles from every latency sample (all are kept: a few
// million int64 at most).
func summarize(name string, conns int, lat []time.Duration, errs int, elapsed time.Duration, firstErr string) result {
	slices.Sort(lat)
	r := result{Name: name, Conns: conns, Requests: len(lat), Errors: errs, Elapsed: elapsed, FirstErr: firstErr, latencies: lat}
	if elapsed > 0 {
		r.RPS = float64(len(lat)) / elapsed.Seconds()
	}
	r.P50, r.P99, r.P999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	return r
}

// quantile of sorted samples, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// op is one request of a scenario, made by worker w as its i-th request (i counts across all
// workers). It returns errDone when a finite work list is exhausted.
type op func(ctx context.Context, c *http.Client, w, i int) error

var errDone = errors.New("work list exhausted")

// run drives op closed-loop from conns workers, each with its own keep-alive connection, for
// duration (after a warm-up that is not recorded), or until op says errDone.
func run(name string, conns int, duration, warmup time.Duration, o op) result {
	tr := newTransport(conns)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var counter atomic.Int64
	var errCount atomic.Int64
	var firstErr atomic.Value
	var recording atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lats := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var start time.Time
	var startOnce sync.Once
	stop := make(chan struct{})
	var stopOnce sync.Once
	for w := range conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			defer func() { lats[w] = local }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(counter.Add(1) - 1)
				t0 := time.Now()
				err := o(ctx, client, w, i)
				d := time.Since(t0)
				if errors.Is(err, errDone) {
					stopOnce.Do(func() { close(stop) })
					return
				}
				if !recording.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if errCount.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					continue
				}
				local = append(local, d)
			}
		})
	}
	var cpu0 time.Duration
	startRecording := func() {
		startOnce.Do(func() { start = time.Now(); cpu0 = processCPU(serverPID); recording.Store(true) })
	}
	if warmup > 0 {
		select {
		case <-time.After(warmup):
		case <-stop:
		}
	}
	startRecording()
	select {
	case <-time.After(duration):
	case <-stop:
	}
	stopOnce.Do(func() { close(stop) })
	elapsed := time.Since(start)
	cpu := processCPU(serverPID) - cpu0
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	fe, _ := firstErr.Load().(string)
	r := summarize(name, conns, all, int(errCount.Load()), elapsed, fe)
	if serverPID > 0 && len(all) > 0 {
		r.ServerCPU, r.ServerCPUPerReq = cpu, cpu/time.Duration(len(all))
	}
	return r
}

// serverPID is the process whose CPU time run measures (the server, or the floor server).
var serverPID int

// processCPU reads a process's user+system CPU time from /proc (Linux; 0 elsewhere). The
// kernel counts in clock ticks, 100 per second on Linux.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// do sends req and reads the whole answer; a status other than want is an error.
func do(c *http.Client, req *http.Request, want int) ([]byte, error) {
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return body, fmt.Errorf("%s %s: status %d, want %d: %.200s", req.Method, req.URL.Path, res.StatusCode, want, body)
	}
	return body, nil
}
