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
	// Phases is how many stretches of load the measurement took: more than 1 when the work list
	// (valid codes) ran out and was refilled with the clock stopped.
	Phases int `json:"phases,omitempty"`
	// Rounds: a request is a OneTouch round of several requests (no ratio to the floor).
	Rounds bool `json:"rounds,omitempty"`
	// StageOf names the result this one is a stage of (OneTouch's), whose rounds it times.
	StageOf string `json:"stage_of,omitempty"`
	// ServerCPU is the CPU time (user+system) the server process used while the scenario was
	// measured, and ServerCPUPerReq that divided by the requests: what a request costs the server.
	ServerCPU       time.Duration `json:"server_cpu_ns,omitempty"`
	ServerCPUPerReq time.Duration `json:"server_cpu_per_request_ns,omitempty"`
	latencies       []time.Duration
}

// key tells results apart: stages have the same names under each OneTouch result.
func (r result) key() string { return r.StageOf + "\x00" + r.Name }

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
	r, _ := runRefill(name, conns, duration, warmup, o, nil)
	return r
}

// refillFunc makes more work for an op that said errDone. It runs while no request is in
// flight and the clock is stopped; rate is the throughput measured so far (0 if none yet) and
// left the measured time still to run, for sizing what it makes.
type refillFunc func(rate float64, left time.Duration) error

// runRefill is run for a work list that can be refilled: when op says errDone, the workers stop,
// the time until the last answer arrives is counted, then refill runs with the clock stopped
// and the load resumes on the same connections, until duration of measured time (and the
// warm-up) has been spent. Each pause is a phase; the result's Phases counts them. Without
// refill it is run.
func runRefill(name string, conns int, duration, warmup time.Duration, o op, refill refillFunc) (result, error) {
	tr := newTransport(conns)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var counter atomic.Int64
	var all []time.Duration
	var errs int
	var firstErr string
	var measured, cpu time.Duration
	phases := 0
	for {
		phases++
		ph := runPhase(client, conns, &counter, warmup, duration-measured, o)
		warmup -= ph.warmed
		measured += ph.elapsed
		cpu += ph.cpu
		all = append(all, ph.lat...)
		errs += ph.errs
		if firstErr == "" {
			firstErr = ph.firstErr
		}
		if !ph.drained || refill == nil || measured >= duration {
			break
		}
		if ph.ops == 0 && phases > 1 {
			return result{}, fmt.Errorf("%s: no work even after a refill", name)
		}
		rate := 0.0
		if measured > 0 {
			rate = float64(len(all)) / measured.Seconds()
		}
		if err := refill(rate, duration-measured); err != nil {
			return result{}, err
		}
	}
	r := summarize(name, conns, all, errs, measured, firstErr)
	r.Phases = phases
	if serverPID > 0 && len(all) > 0 {
		r.ServerCPU, r.ServerCPUPerReq = cpu, cpu/time.Duration(len(all))
	}
	return r, nil
}

// phase is what one stretch of load, until the time is up or the work list drained, recorded.
type phase struct {
	lat      []time.Duration
	errs     int
	firstErr string
	warmed   time.Duration // warm-up spent
	elapsed  time.Duration // measured time
	cpu      time.Duration // server CPU over the measured time
	drained  bool          // op said errDone
	ops      int64         // requests made, warm-up included
}

func runPhase(client *http.Client, conns int, counter *atomic.Int64, warmup, duration time.Duration, o op) phase {
	var errCount atomic.Int64
	var firstErr atomic.Value
	var recording atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lats := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var stopOnce sync.Once
	var drained atomic.Bool
	var ops atomic.Int64
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
					drained.Store(true)
					stopOnce.Do(func() { close(stop) })
					return
				}
				ops.Add(1)
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
	var ph phase
	t0 := time.Now()
	if warmup > 0 {
		select {
		case <-time.After(warmup):
		case <-stop:
		}
	}
	ph.warmed = time.Since(t0)
	var start time.Time
	var cpu0 time.Duration
	if !drained.Load() {
		start, cpu0 = time.Now(), processCPU(serverPID)
		recording.Store(true)
		select {
		case <-time.After(duration):
		case <-stop:
		}
	}
	ranOut := drained.Load()
	stopOnce.Do(func() { close(stop) })
	end := time.Now()
	wg.Wait()
	if ranOut {
		// The list ran out: the answers still in flight are part of this stretch's work.
		end = time.Now()
	}
	if !start.IsZero() {
		ph.elapsed, ph.cpu = end.Sub(start), processCPU(serverPID)-cpu0
	}
	for _, l := range lats {
		ph.lat = append(ph.lat, l...)
	}
	ph.errs = int(errCount.Load())
	ph.firstErr, _ = firstErr.Load().(string)
	ph.drained = drained.Load()
	ph.ops = ops.Load()
	return ph
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
