package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
)

// The import benchmark (go run ./bench -import 1000000): `twofold import from-file` of a
// generated CSV of n users (a third with an authenticator seed) into a fresh store, per engine
// and run, timed with its peak memory; the floor is a --dry-run of the same file in the same
// run (reading, parsing and checking every record, writing nothing). Then `twofold import
// from-authy` of -import-authy users from a local Twofold (its migration exports on, its users
// seeded), which measures what the fetching costs on top.

// importRun is one timed import.
type importRun struct {
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"users_per_second"`
	MaxRSS  int64   `json:"max_rss_mb"`
}

type importRow struct {
	Engine string      `json:"engine"`
	What   string      `json:"what"`
	Users  int         `json:"users"`
	Runs   []importRun `json:"runs"`
}

func runImportBench(cfg config) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "twofold-import-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logf("building cmd/twofold")
	bin, err := buildTwofold(tmp)
	if err != nil {
		return err
	}
	csv := filepath.Join(tmp, "users.csv")
	if err := writeImportCSV(csv, cfg.importUsers); err != nil {
		return err
	}
	var rows []importRow
	for _, engine := range cfg.engines {
		floor := importRow{Engine: engine, What: "from-file --dry-run (floor)", Users: cfg.importUsers}
		file := importRow{Engine: engine, What: "from-file", Users: cfg.importUsers}
		authy := importRow{Engine: engine, What: "from-authy (a local Twofold)", Users: cfg.authyUsers}
		for run := 1; run <= cfg.runs; run++ {
			for _, dry := range []bool{true, false} {
				r, err := importOnce(ctx, cfg, bin, tmp, engine, func(s *server) []string {
					args := []string{"import", "from-file", csv, "--app", strconv.FormatInt(s.appID, 10), "--json"}
					if dry {
						args = append(args, "--dry-run")
					}
					return args
				}, nil)
				if err != nil {
					return fmt.Errorf("%s, from-file: %w", engineName(engine), err)
				}
				if dry {
					floor.Runs = append(floor.Runs, r)
				} else {
					file.Runs = append(file.Runs, r)
				}
				logf("%s run %d: from-file%s of %s users: %.1f s, %.0f users/s, %d MB", engineName(engine), run,
					map[bool]string{true: " --dry-run", false: ""}[dry], commas(int64(cfg.importUsers)), r.Seconds, r.PerSec, r.MaxRSS)
			}
			if cfg.authyUsers > 0 {
				r, err := importFromAuthy(ctx, cfg, bin, tmp, engine)
				if err != nil {
					return fmt.Errorf("%s, from-authy: %w", engineName(engine), err)
				}
				authy.Runs = append(authy.Runs, r)
				logf("%s run %d: from-authy of %s users: %.1f s, %.0f users/s", engineName(engine), run, commas(int64(cfg.authyUsers)), r.Seconds, r.PerSec)
			}
		}
		rows = append(rows, floor, file)
		if cfg.authyUsers > 0 {
			rows = append(rows, authy)
		}
	}
	if cfg.json {
		return json.NewEncoder(os.Stdout).Encode(rows)
	}
	fmt.Printf("| engine | import | users | median s | median users/s | max RSS MB | runs (s) |\n|---|---|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		secs := make([]float64, len(r.Runs))
		var rss int64
		for i, x := range r.Runs {
			secs[i], rss = x.Seconds, max(rss, x.MaxRSS)
		}
		sorted := slices.Clone(secs)
		slices.Sort(sorted)
		med := sorted[len(sorted)/2]
		fmt.Printf("| %s | %s | %s | %.1f | %s | %d | %v |\n", engineName(r.Engine), r.What, commas(int64(r.Users)), med,
			commas(int64(float64(r.Users)/med)), rss, secs)
	}
	return nil
}

// importOnce makes a fresh store on engine, runs the import command args gives for it, and
// times it. prepare may set up more (the source of from-authy) and the command's environment.
func importOnce(ctx context.Context, cfg config, bin, tmp, engine string, args func(*server) []string, env []string) (importRun, error) {
	dir, err := os.MkdirTemp(tmp, engine+"-")
	if err != nil {
		return importRun{}, err
	}
	defer os.RemoveAll(dir)
	database := ""
	if engine == "postgres" {
		schema, err := newPGSchema(ctx, cfg.postgres)
		if err != nil {
			return importRun{}, err
		}
		defer schema.drop(ctx)
		database = schema.dsn
	}
	dst, err := newServer(bin, filepath.Join(dir, "data"), database, "http://127.0.0.1:9/")
	if err != nil {
		return importRun{}, err
	}
	all := append(args(dst), "--data-dir", dst.dataDir)
	if database != "" {
		all = append(all, "--database", database)
	}
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = nil
	t0 := time.Now()
	out, err := cmd.Output()
	elapsed := time.Since(t0)
	if err != nil {
		return importRun{}, fmt.Errorf("twofold %v: %w\n%s", all[:3], err, tail(string(out), 2000))
	}
	var rep struct {
		Records  int `json:"records"`
		Imported int `json:"imported"`
		Failed   int `json:"failed"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.Failed != 0 || rep.Imported != rep.Records {
		return importRun{}, fmt.Errorf("import report: %v %s", err, tail(string(out), 2000))
	}
	r := importRun{Seconds: elapsed.Seconds(), PerSec: float64(rep.Records) / elapsed.Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSS = ru.Maxrss / 1024
	}
	return r, nil
}

// importFromAuthy seeds a source Twofold (SQLite) with cfg.authyUsers users, turns its
// migration exports on, serves it, and times `twofold import from-authy` of all of them into a
// fresh store on engine.
func importFromAuthy(ctx context.Context, cfg config, bin, tmp, engine string) (importRun, error) {
	dir, err := os.MkdirTemp(tmp, "source-")
	if err != nil {
		return importRun{}, err
	}
	defer os.RemoveAll(dir)
	src, err := newServer(bin, filepath.Join(dir, "data"), "", "http://127.0.0.1:9/")
	if err != nil {
		return importRun{}, err
	}
	if _, err := src.cli("app", "update", strconv.FormatInt(src.appID, 10), "--migration-tools"); err != nil {
		return importRun{}, err
	}
	db, err := openStoreDB(ctx, src)
	if err != nil {
		return importRun{}, err
	}
	seeded, err := db.seedUsers(ctx, cfg.authyUsers)
	db.close()
	if err != nil {
		return importRun{}, err
	}
	if err := src.start(nil); err != nil {
		return importRun{}, err
	}
	defer src.stop()
	ids := filepath.Join(dir, "ids.txt")
	f, err := os.Create(ids)
	if err != nil {
		return importRun{}, err
	}
	w := bufio.NewWriter(f)
	for i := range cfg.authyUsers {
		fmt.Fprintln(w, seeded.id(i))
	}
	if err := w.Flush(); err != nil {
		return importRun{}, err
	}
	f.Close()
	return importOnce(ctx, cfg, bin, tmp, engine, func(s *server) []string {
		return []string{"import", "from-authy", ids, "--app", strconv.FormatInt(s.appID, 10), "--authy-url", src.url, "--json"}
	}, []string{"TWOFOLD_AUTHY_API_KEY=" + src.key})
}

// writeImportCSV writes n users in from-file's CSV: ids from 10,000,001, valid US numbers, a
// third with a 160-bit seed.
func writeImportCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "authy_id,email,country_code,phone,totp_secret,totp_digits,totp_period")
	seed := make([]byte, 20)
	for i := range n {
		secret, digits, period := "", "", ""
		if i%3 == 0 {
			rand.Read(seed)
			secret, digits, period = otp.EncodeSecret(seed), "6", "30"
		}
		fmt.Fprintf(w, "%d,u%d@import.example,1,%s,%s,%s,%s\n", 10_000_001+i, i, seedPhone(i), secret, digits, period)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
