// Command bench is Twofold's benchmark harness. It builds cmd/twofold, runs `twofold serve` on a
// fresh SQLite data directory as users run it (its own process, limits off), loads it over
// loopback from closed-loop workers, each with its own keep-alive connection, and prints, for
// every scenario, requests per second, p50/p99/p99.9 latency and the ratio to the floor: a bare
// net/http server answering the same bytes, loaded by the same generator in the same run.
//
//	go run ./bench                      # every scenario, 64 connections, 5 s each
//	go run ./bench -scenarios floor,verify-totp -duration 10s -conns 128 -json
//
// See BENCHMARKS.md for what each scenario measures and the results on the reference machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

var allScenarios = []string{"floor", "users-new", "verify-totp", "verify-totp-wrong", "sms", "verify-sms",
	"verify-sms-wrong", "approval-create", "approval-status", "onetouch-e2e", "sse-memory"}

type config struct {
	duration, warmup time.Duration
	conns            int
	users            int
	devices          int
	e2eConns         []int
	sseDevices       int
	scenarios        []string
	json             bool
	keep             bool
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func main() {
	if f := os.Getenv(floorEnv); f != "" {
		if err := serveFloor(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	var scen, e2e string
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per scenario")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load before each open-ended scenario")
	flag.IntVar(&cfg.conns, "conns", 64, "concurrent keep-alive connections (closed-loop workers)")
	flag.IntVar(&cfg.users, "users", 5000, "users registered before the scenarios (the store's size); half get an authenticator (verify-totp), half receive SMS codes")
	flag.IntVar(&cfg.devices, "devices", 64, "users with a device for approval-create")
	flag.StringVar(&e2e, "e2e-conns", "1,16", "OneTouch rounds in flight at once, comma-separated (one device and user each)")
	flag.IntVar(&cfg.sseDevices, "sse-devices", 1000, "event streams held open by sse-memory")
	flag.StringVar(&scen, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios, run in the order given (verify-sms reads the codes sms sent; approval-status polls what approval-create made); known: "+strings.Join(allScenarios, ", "))
	flag.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of a table")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary data directory")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./bench [flags]\n\nRuns the real twofold server on SQLite and loads it over loopback.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	for s := range strings.SplitSeq(scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "unknown scenario %q; known: %s\n", s, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	for s := range strings.SplitSeq(e2e, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-e2e-conns: %q is not a positive number\n", s)
			os.Exit(2)
		}
		cfg.e2eConns = append(cfg.e2eConns, n)
	}
	if cfg.conns < 1 || cfg.users < 4 || cfg.devices < 1 {
		fmt.Fprintln(os.Stderr, "-conns and -devices must be positive, -users at least 4")
		os.Exit(2)
	}
	if err := runBench(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runBench(cfg config) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "twofold-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		logf("data in %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	logf("building cmd/twofold")
	bin, err := buildTwofold(tmp)
	if err != nil {
		return err
	}
	recv, err := startCallbackReceiver()
	if err != nil {
		return err
	}
	srv, err := startServer(bin, tmp+"/data", recv.url, nil)
	if err != nil {
		return err
	}
	defer srv.stop()
	recv.key = srv.key
	serverPID = srv.cmd.Process.Pid
	b := &bench{cfg: cfg, srv: srv, api: &apiClient{base: srv.url, key: srv.key}, recv: recv, tmp: tmp}
	logf("server %s (pid %d), data %s", srv.url, srv.cmd.Process.Pid, srv.dataDir)

	want := func(s ...string) bool {
		for _, x := range s {
			if slices.Contains(cfg.scenarios, x) {
				return true
			}
		}
		return false
	}
	if err := b.setupUsers(ctx, want("floor", "verify-totp", "verify-totp-wrong")); err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, srv.logText())
	}
	for _, s := range cfg.scenarios {
		logf("scenario %s", s)
		var rs []result
		var err error
		one := func(r result, e error) { rs, err = []result{r}, e }
		switch s {
		case "floor":
			one(b.scenarioFloor())
		case "users-new":
			one(b.scenarioUsersNew())
		case "verify-totp":
			one(b.scenarioVerifyTOTP())
		case "verify-totp-wrong":
			one(b.scenarioVerifyTOTPWrong())
		case "sms":
			one(b.scenarioSMS())
		case "verify-sms":
			one(b.scenarioVerifySMS(ctx))
		case "verify-sms-wrong":
			one(b.scenarioVerifySMSWrong())
		case "approval-create":
			one(b.scenarioApprovalCreate(ctx))
		case "approval-status":
			one(b.scenarioApprovalStatus(ctx))
		case "onetouch-e2e":
			for _, n := range cfg.e2eConns {
				var r []result
				r, err = b.scenarioOneTouch(ctx, n)
				rs = append(rs, r...)
				if err != nil {
					break
				}
			}
		case "sse-memory":
			one(b.scenarioSSEMemory(ctx, cfg.sseDevices))
		}
		if err != nil {
			return fmt.Errorf("%s: %w\nserver log (tail):\n%s", s, err, tail(srv.logText(), 4000))
		}
		for _, r := range rs {
			if r.Errors > 0 {
				logf("%s: %d errors, first: %s", r.Name, r.Errors, r.FirstErr)
			}
		}
		b.results = append(b.results, rs...)
	}
	if n := recv.badCount(); n > 0 {
		logf("%d callbacks had a bad signature", n)
	}
	for i := range b.results {
		if b.floorRPS > 0 && b.results[i].Elapsed > 0 && b.results[i].RPS > 0 {
			b.results[i].Ratio = b.results[i].RPS / b.floorRPS
		}
	}
	return report(os.Stdout, cfg, b.results)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func report(w *os.File, cfg config, results []result) error {
	host, _ := os.Hostname()
	if cfg.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"host": host, "cpus": runtime.NumCPU(), "go": runtime.Version(),
			"conns": cfg.conns, "duration_ns": cfg.duration, "users": cfg.users, "results": results})
	}
	fmt.Fprintf(w, "twofold bench: %s, %d CPUs, %s, SQLite, %d users in the store, %s per scenario\n\n",
		host, runtime.NumCPU(), runtime.Version(), cfg.users, cfg.duration)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconns\trequests\terrors\treq/s\tp50\tp99\tp99.9\tmax\tvs floor\tserver CPU/req\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	for _, r := range results {
		rps, ratio := "", ""
		if r.RPS > 0 {
			rps = fmt.Sprintf("%.0f", r.RPS)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.1f%%", 100*r.Ratio)
		}
		p50, p99, p999, mx := "", "", "", ""
		if len(r.latencies) > 0 {
			p50, p99, p999, mx = ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max)
		}
		cpu := ""
		if r.ServerCPUPerReq > 0 {
			cpu = fmt.Sprintf("%.0f µs", float64(r.ServerCPUPerReq)/1e3)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Conns, r.Requests, r.Errors, rps, p50, p99, p999, mx, ratio, cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", strings.TrimSpace(r.Name), r.Note)
		}
	}
	return nil
}
