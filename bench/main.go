// Command bench is Twofold's benchmark harness. It builds cmd/twofold and, for every store it is
// asked for (an engine, SQLite and PostgreSQL when configured, times a number of users), makes a
// fresh one: creates the application with the CLI, seeds the users straight into the database
// (half with an authenticator app whose seed is sealed with the server's master key), starts
// `twofold serve` on it as users run it (its own process, limits off), proves the seeding right
// by verifying seeded users' codes through the API, then loads it over loopback from
// closed-loop workers, each with its own keep-alive connection. Every scenario is measured -runs
// times, the scenarios interleaved (run 1 of each, then run 2 …); the report gives per store the
// median requests per second with its min–max spread, the median p50/p99/p99.9 latency, the
// server's CPU per request and the ratio to the floor (a bare net/http server answering the
// same bytes, loaded by the same generator in the same runs), then the stores side by side.
//
//	go run ./bench                                    # SQLite with 1,000 and 1,000,000 users
//	go run ./bench -users 2000 -duration 1s           # a quick look
//	go run ./bench -postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable' -runs 3
//	go run ./bench -scenarios floor,verify-totp -duration 10s -conns 128 -json
//
// On PostgreSQL each store gets a schema of its own (bench_<random>, dropped at the end unless
// -keep). See BENCHMARKS.md for what each scenario measures and the results on the reference
// machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

var allScenarios = []string{"floor", "verify-totp", "verify-totp-wrong", "verify-totp-limited", "verify-totp-locked",
	"verify-sms", "verify-sms-wrong",
	"user-status", "sms", "users-new", "approval-create", "approval-status", "onetouch-e2e", "sse-memory"}

type config struct {
	duration, warmup time.Duration
	conns            int
	sizes            []int // -users: users seeded in each store
	postgres         string
	engines          []string
	runs             int
	devices          int
	e2eConns         []int
	sseDevices       int
	scenarios        []string
	json             bool
	keep             bool
	cpuProfiles      string // -cpuprofile: a directory for the server's CPU profile of each scenario
	importUsers      int    // -import: run the import benchmark (imports.go) with this many users instead
	authyUsers       int    // -import-authy: users fetched by the from-authy part of it
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

const postgresEnv = "TWOFOLD_BENCH_POSTGRES"

func main() {
	if f := os.Getenv(floorEnv); f != "" {
		if err := serveFloor(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	var scen, e2e, sizes, engines string
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per scenario and run")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load before each scenario's measurement")
	flag.IntVar(&cfg.conns, "conns", 64, "concurrent keep-alive connections (closed-loop workers)")
	flag.StringVar(&sizes, "users", "1000,1000000", "comma-separated store sizes: for each, a fresh store seeded with that many users "+
		"(half with an authenticator app for the TOTP scenarios, half without for the SMS ones) runs the scenarios")
	flag.StringVar(&cfg.postgres, "postgres", "", "PostgreSQL `DSN` (a postgres:// URL): also run every store on PostgreSQL (twofold serve --database), each in a schema of its own, bench_<random> (default: env "+postgresEnv+")")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "engines to run, of sqlite and postgres; postgres only runs when -postgres is set")
	flag.IntVar(&cfg.runs, "runs", 1, "measure each scenario this many times, interleaved; the report gives medians and the req/s spread")
	flag.IntVar(&cfg.devices, "devices", 1000, "users with a device for approval-create")
	flag.StringVar(&e2e, "e2e-conns", "1,16", "OneTouch rounds in flight at once, comma-separated (one device and user each)")
	flag.IntVar(&cfg.sseDevices, "sse-devices", 1000, "event streams held open by sse-memory (which runs once per engine, on the first store, after the runs)")
	flag.StringVar(&scen, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios, run in the order given (approval-status polls what approval-create made); known: "+strings.Join(allScenarios, ", "))
	flag.BoolVar(&cfg.json, "json", false, "print the results as JSON instead of tables")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary data directories and PostgreSQL schemas")
	flag.StringVar(&cfg.cpuProfiles, "cpuprofile", "", "write the server's CPU profile of each scenario's warm-up and measurement into this `directory` "+
		"(engine-users-scenario-runN.pb.gz, for go tool pprof); needs TWOFOLD_PPROF_ADDR=127.0.0.1:0 in the environment")
	flag.IntVar(&cfg.importUsers, "import", 0, "instead of the load scenarios, time `twofold import from-file` of this many users into a fresh store per engine and run, with a --dry-run of the same file as the floor (imports.go)")
	flag.IntVar(&cfg.authyUsers, "import-authy", 20000, "with -import: users `twofold import from-authy` fetches from a local Twofold")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, `Usage: go run ./bench [flags]

Runs the real twofold server on SQLite (and on PostgreSQL with -postgres), on a fresh store per
size in -users with the users seeded straight into the database, and loads it over loopback.
Every scenario runs at every size (sse-memory once per engine); the report puts the sizes and
engines side by side. Scenarios: floor (bare net/http, same bytes), verify-totp and
verify-sms (valid codes, each once; a drained pool is refilled with the clock stopped),
verify-totp-wrong and verify-sms-wrong, verify-totp-limited (valid codes with the failure
limit on at its default, as in production), verify-totp-locked (wrong codes for users the
failure limit has locked out: a guessing attack), user-status (users/{id}/status over every user), sms
(sms/{id} to the outbox), users-new, approval-create, approval-status, onetouch-e2e (create →
SSE → signed answer → signed callback), sse-memory (server RSS with -sse-devices streams open).

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.postgres == "" {
		cfg.postgres = os.Getenv(postgresEnv)
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(2)
	}
	for s := range strings.SplitSeq(scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fail("unknown scenario %q; known: %s", s, strings.Join(allScenarios, ", "))
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	var err error
	if cfg.e2eConns, err = positiveList(e2e); err != nil {
		fail("-e2e-conns: %v", err)
	}
	if cfg.sizes, err = positiveList(sizes); err != nil {
		fail("-users: %v", err)
	}
	for _, n := range cfg.sizes {
		if n < 10 || n > maxSeedUsers {
			fail("-users: %d: each size must be 10 to %d", n, maxSeedUsers)
		}
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "engines" })
	for e := range strings.SplitSeq(engines, ",") {
		switch e = strings.TrimSpace(e); {
		case e == "sqlite":
		case e == "postgres" && cfg.postgres == "":
			if explicit {
				fail("-engines postgres needs -postgres DSN (or %s)", postgresEnv)
			}
			continue
		case e == "postgres":
		default:
			fail("-engines: unknown engine %q (sqlite, postgres)", e)
		}
		cfg.engines = append(cfg.engines, e)
	}
	if len(cfg.engines) == 0 {
		fail("-engines: none to run")
	}
	if cfg.conns < 1 || cfg.devices < 1 || cfg.runs < 1 {
		fail("-conns, -devices and -runs must be positive")
	}
	if cfg.importUsers > 0 {
		if err := runImportBench(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := runBench(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// positiveList parses "1,16" or "1000,1_000_000".
func positiveList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// storeReport is one store's results.
type storeReport struct {
	Engine     string        `json:"engine"`
	Users      int           `json:"users"`        // seeded
	UsersAtEnd int64         `json:"users_at_end"` // in the store when its scenarios were done
	Seeding    time.Duration `json:"seeding_ns"`
	Rows       []row         `json:"-"`
}

func runBench(cfg config) error {
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
	var stores []storeReport
	for _, engine := range cfg.engines {
		for i, size := range cfg.sizes {
			st, err := runStore(cfg, bin, tmp, recv, engine, size, i == 0)
			if err != nil {
				return fmt.Errorf("%s, %d users: %w", engineName(engine), size, err)
			}
			stores = append(stores, st)
		}
	}
	if n := recv.badCount(); n > 0 {
		logf("%d callbacks had a bad signature", n)
	}
	if cfg.json {
		return reportJSON(os.Stdout, cfg, stores)
	}
	return report(os.Stdout, cfg, stores)
}

func engineName(e string) string {
	if e == "postgres" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// runStore makes a fresh store of size users on engine, runs the scenarios on it and removes it.
func runStore(cfg config, bin, tmp string, recv *callbackReceiver, engine string, size int, first bool) (storeReport, error) {
	ctx := context.Background()
	st := storeReport{Engine: engine, Users: size}
	dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", engine, size))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, err
	}
	if !cfg.keep {
		defer os.RemoveAll(dir)
	}
	database := ""
	if engine == "postgres" {
		schema, err := newPGSchema(ctx, cfg.postgres)
		if err != nil {
			return st, err
		}
		if cfg.keep {
			logf("PostgreSQL schema %s kept", schema.name)
		} else {
			defer schema.drop(ctx)
		}
		database = schema.dsn
	}
	srv, err := newServer(bin, filepath.Join(dir, "data"), database, recv.url)
	if err != nil {
		return st, err
	}
	recv.setKey(srv.key)
	db, err := openStoreDB(ctx, srv)
	if err != nil {
		return st, err
	}
	defer db.close()
	logf("%s: seeding %s users", engineName(engine), commas(int64(size)))
	seed, err := db.seedUsers(ctx, size)
	if err != nil {
		return st, fmt.Errorf("seeding: %w", err)
	}
	st.Seeding = seed.duration
	logf("%s: %s users seeded (%s with an authenticator) in %s", engineName(engine), commas(int64(size)), commas(int64(seed.totpN)), seed.duration.Round(100*time.Millisecond))
	if err := srv.start(nil); err != nil {
		return st, err
	}
	defer srv.stop()
	serverPID = srv.cmd.Process.Pid
	b := &bench{cfg: cfg, engine: engine, size: size, srv: srv, db: db, api: &apiClient{base: srv.url, key: srv.key},
		recv: recv, tmp: dir, seed: seed, totp: newTOTPPool(seed, db.totpDigits, db.totpPeriod), sms: newSMSPool(seed)}
	logf("server %s (pid %d), data %s", srv.url, srv.cmd.Process.Pid, srv.dataDir)
	withLog := func(err error) error {
		return fmt.Errorf("%w\nserver log (tail):\n%s", err, tail(srv.logText(), 4000))
	}
	if err := b.checkSeeded(ctx); err != nil {
		return st, withLog(err)
	}

	byName := map[string][]result{}
	var order []string
	add := func(rs []result) {
		for _, r := range rs {
			if r.Errors > 0 {
				logf("%s: %d errors, first: %s", r.Name, r.Errors, r.FirstErr)
			}
			if _, ok := byName[r.key()]; !ok {
				order = append(order, r.key())
			}
			byName[r.key()] = append(byName[r.key()], r)
		}
	}
	for run := 1; run <= cfg.runs; run++ {
		for _, s := range cfg.scenarios {
			if s == "sse-memory" {
				continue
			}
			logf("%s, %d users, run %d of %d: %s", engineName(engine), size, run, cfg.runs, s)
			profiled := b.profile(fmt.Sprintf("%s-%d-%s-run%d.pb.gz", engineName(engine), size, s, run))
			rs, err := b.scenario(ctx, s)
			profiled()
			if err != nil {
				return st, withLog(fmt.Errorf("%s: %w", s, err))
			}
			add(rs)
		}
	}
	if first && slices.Contains(cfg.scenarios, "sse-memory") {
		logf("%s, %d users: sse-memory", engineName(engine), size)
		r, err := b.scenarioSSEMemory(ctx, cfg.sseDevices)
		if err != nil {
			return st, withLog(fmt.Errorf("sse-memory: %w", err))
		}
		add([]result{r})
	}
	if st.UsersAtEnd, err = db.countUsers(ctx); err != nil {
		return st, err
	}
	for _, name := range order {
		st.Rows = append(st.Rows, aggregate(byName[name]))
	}
	var floor float64
	for _, r := range st.Rows {
		if r.Name == "floor" {
			floor = r.RPS
		}
	}
	for i := range st.Rows {
		if floor > 0 && st.Rows[i].Elapsed > 0 && st.Rows[i].RPS > 0 && !st.Rows[i].Rounds {
			st.Rows[i].Ratio = st.Rows[i].RPS / floor
		}
	}
	return st, nil
}

// scenario runs one scenario once.
func (b *bench) scenario(ctx context.Context, s string) ([]result, error) {
	one := func(r result, err error) ([]result, error) { return []result{r}, err }
	switch s {
	case "floor":
		return one(b.scenarioFloor())
	case "users-new":
		return one(b.scenarioUsersNew(ctx))
	case "verify-totp":
		return one(b.scenarioVerifyTOTP(ctx, "verify TOTP (valid)"))
	case "verify-totp-limited":
		return one(b.scenarioVerifyTOTPLimited(ctx))
	case "verify-totp-locked":
		return one(b.scenarioVerifyTOTPLocked(ctx))
	case "verify-totp-wrong":
		return one(b.scenarioVerifyTOTPWrong())
	case "sms":
		return one(b.scenarioSMS())
	case "verify-sms":
		return one(b.scenarioVerifySMS(ctx))
	case "verify-sms-wrong":
		return one(b.scenarioVerifySMSWrong(ctx))
	case "user-status":
		return one(b.scenarioUserStatus())
	case "approval-create":
		return one(b.scenarioApprovalCreate(ctx))
	case "approval-status":
		return one(b.scenarioApprovalStatus(ctx))
	case "onetouch-e2e":
		var rs []result
		for _, n := range b.cfg.e2eConns {
			r, err := b.scenarioOneTouch(ctx, n)
			rs = append(rs, r...)
			if err != nil {
				return rs, err
			}
		}
		return rs, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", s)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// row is a scenario's result over the runs: medians of throughput, percentiles and CPU per
// request, the slowest request of all, the errors of all.
type row struct {
	result
	Runs   int      `json:"runs"`
	RPSMin float64  `json:"rps_min,omitempty"`
	RPSMax float64  `json:"rps_max,omitempty"`
	PerRun []result `json:"per_run,omitempty"` // with -runs > 1
}

func aggregate(rs []result) row {
	r := row{result: rs[0], Runs: len(rs)}
	if len(rs) == 1 {
		r.RPSMin, r.RPSMax = r.RPS, r.RPS
		return r
	}
	pick := func(f func(result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, x := range rs {
			xs[i] = f(x)
		}
		slices.Sort(xs)
		if n := len(xs); n%2 == 1 {
			return xs[n/2]
		} else {
			return (xs[n/2-1] + xs[n/2]) / 2
		}
	}
	dur := func(f func(result) time.Duration) time.Duration {
		return time.Duration(pick(func(x result) float64 { return float64(f(x)) }))
	}
	r.RPS = pick(func(x result) float64 { return x.RPS })
	r.Requests = int(pick(func(x result) float64 { return float64(x.Requests) }))
	r.Elapsed = dur(func(x result) time.Duration { return x.Elapsed })
	r.P50 = dur(func(x result) time.Duration { return x.P50 })
	r.P99 = dur(func(x result) time.Duration { return x.P99 })
	r.P999 = dur(func(x result) time.Duration { return x.P999 })
	r.ServerCPU = dur(func(x result) time.Duration { return x.ServerCPU })
	r.ServerCPUPerReq = dur(func(x result) time.Duration { return x.ServerCPUPerReq })
	r.Phases = int(pick(func(x result) float64 { return float64(x.Phases) }))
	r.RPSMin, r.RPSMax, r.Errors = rs[0].RPS, rs[0].RPS, 0
	for _, x := range rs {
		r.Max = max(r.Max, x.Max)
		r.RPSMin, r.RPSMax = min(r.RPSMin, x.RPS), max(r.RPSMax, x.RPS)
		r.Errors += x.Errors
		if r.FirstErr == "" {
			r.FirstErr = x.FirstErr
		}
	}
	r.PerRun = rs
	return r
}

func (r row) hasLatency() bool { return r.P50 > 0 || r.P99 > 0 }

func reportJSON(w io.Writer, cfg config, stores []storeReport) error {
	host, _ := os.Hostname()
	type jsonRow struct {
		Engine string `json:"engine"`
		Users  int    `json:"users"`
		row
	}
	var rows []jsonRow
	for _, st := range stores {
		for _, r := range st.Rows {
			rows = append(rows, jsonRow{st.Engine, st.Users, r})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"host": host, "cpus": runtime.NumCPU(), "go": runtime.Version(),
		"conns": cfg.conns, "duration_ns": cfg.duration, "warmup_ns": cfg.warmup, "runs": cfg.runs,
		"store_sizes": cfg.sizes, "engines": cfg.engines, "stores": stores, "results": rows})
}

// commas writes n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func ms(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func report(w io.Writer, cfg config, stores []storeReport) error {
	host, _ := os.Hostname()
	what := "one run"
	if cfg.runs > 1 {
		what = fmt.Sprintf("medians of %d runs, req/s range min–max", cfg.runs)
	}
	fmt.Fprintf(w, "twofold bench: %s, %d CPUs, %s, %d connections, %s per scenario (%s warm-up), %s\n",
		host, runtime.NumCPU(), runtime.Version(), cfg.conns, cfg.duration, cfg.warmup, what)
	for _, st := range stores {
		fmt.Fprintf(w, "\n%s, %s users seeded in %s (%s in the store at the end)\n\n", engineName(st.Engine), commas(int64(st.Users)),
			st.Seeding.Round(100*time.Millisecond), commas(st.UsersAtEnd))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		head := "scenario\tconns\trequests\terrors\treq/s\t"
		if cfg.runs > 1 {
			head += "range\t"
		}
		fmt.Fprintln(tw, head+"p50\tp99\tp99.9\tmax\tvs floor\tserver CPU/req\t")
		for _, r := range st.Rows {
			rps, spread, ratio := "", "", ""
			if r.RPS > 0 {
				rps = commas(int64(r.RPS + 0.5))
				spread = commas(int64(r.RPSMin+0.5)) + "–" + commas(int64(r.RPSMax+0.5))
			}
			if r.Ratio > 0 {
				ratio = fmt.Sprintf("%.1f%%", 100*r.Ratio)
			}
			p50, p99, p999, mx := "", "", "", ""
			if r.hasLatency() {
				p50, p99, p999, mx = ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max)
			}
			cpu := ""
			if r.ServerCPUPerReq > 0 {
				cpu = fmt.Sprintf("%.0f µs", float64(r.ServerCPUPerReq)/1e3)
			}
			line := fmt.Sprintf("%s\t%d\t%s\t%d\t%s\t", r.Name, r.Conns, commas(int64(r.Requests)), r.Errors, rps)
			if cfg.runs > 1 {
				line += spread + "\t"
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t\n", line, p50, p99, p999, mx, ratio, cpu)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		for _, r := range st.Rows {
			if r.Note != "" {
				fmt.Fprintf(w, "%s: %s\n", strings.TrimSpace(r.Name), r.Note)
			}
		}
	}
	if len(stores) > 1 {
		return sideBySide(w, stores)
	}
	return nil
}

// sideBySide prints one line per scenario and one column per store: req/s and p99, so that
// growth with the number of users (or a difference between engines) shows at a glance.
func sideBySide(w io.Writer, stores []storeReport) error {
	fmt.Fprintf(w, "\nSide by side: req/s (vs floor), p99\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "scenario\t"
	for _, st := range stores {
		head += fmt.Sprintf("%s, %s users\t", engineName(st.Engine), commas(int64(st.Users)))
	}
	fmt.Fprintln(tw, head)
	var keys []string
	names := map[string]string{}
	for _, st := range stores {
		for _, r := range st.Rows {
			if r.hasLatency() && !slices.Contains(keys, r.key()) {
				keys = append(keys, r.key())
				names[r.key()] = r.Name
			}
		}
	}
	for _, k := range keys {
		line := names[k] + "\t"
		for _, st := range stores {
			cell := ""
			for _, r := range st.Rows {
				if r.key() != k {
					continue
				}
				if r.RPS > 0 {
					cell = commas(int64(r.RPS+0.5)) + "/s"
					if r.Ratio > 0 && r.Name != "floor" {
						cell += fmt.Sprintf(" (%.1f%%)", 100*r.Ratio)
					}
					cell += ", "
				}
				cell += ms(r.P99)
			}
			line += cell + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
