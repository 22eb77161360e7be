package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/userimport/records"
)

// userImport is how the import commands reach the userimport service: its record check and
// the service over an opened data directory.
var userImport = struct {
	check   func(r userimport.Record, sandbox bool) error
	service func(in *instance) importer
}{
	check: userimport.Check,
	service: func(in *instance) importer {
		svc := userimport.New(in.store, in.keys, in.now)
		svc.SetAuditor(in.audit)
		return svc
	},
}

func importCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Bring an application's existing users into Twofold, keeping their authy_ids",
		Long: `Bring an application's existing users into Twofold with the ids your database holds for them
(their authy_ids), their phone numbers and, where one can be exported, their authenticator's
seed: from the Authy API itself (from-authy), or from a file (from-file).

Both check the whole input before writing anything, import in batches (each written whole or
not at all), keep a checkpoint so a run stopped by Ctrl-C or a crash resumes where it stopped,
and never import anyone twice: a user the application has already is reported as already
present. Run them while the server runs or not. See docs/import.md.`,
	}
	cmd.AddCommand(importFileCmd(env), importAuthyCmd(env))
	return cmd
}

// maxBatch is the most users one Import call writes in one transaction (userimport.Batch): a
// larger batch would be written in several, and a crash could leave it half written.
const maxBatch = userimport.Batch

// importOpts are the flags both import commands have.
type importOpts struct {
	app             int64
	dryRun          bool
	asJSON          bool
	continueOnError bool
	batchSize       int
	checkpoint      string
	failures        string
}

func (o *importOpts) flags(f *pflag.FlagSet) {
	f.Int64Var(&o.app, "app", 0, "the application to import into (required; see: twofold app list)")
	f.BoolVar(&o.dryRun, "dry-run", false, "check everything and write nothing (no users, no checkpoint)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON on standard output")
	f.BoolVar(&o.continueOnError, "continue-on-error", false,
		"import the users that can be and report the others (default: a single invalid record stops the run before anything is written)")
	f.IntVar(&o.batchSize, "batch-size", maxBatch, "users written per transaction, 1 to 1000")
	f.StringVar(&o.checkpoint, "checkpoint", "", "the checkpoint file (default: the input's name + .checkpoint; for standard input, twofold-import-app<ID>.checkpoint here)")
	f.StringVar(&o.failures, "failures", "", "also write every failure to this file, one JSON object a line (the report lists the first 1000)")
	argument(f, argOutput, "json")
	argument(f, "how this one import runs, and what it reads and writes")
}

func (o *importOpts) validate() error {
	switch {
	case o.app <= 0:
		return errors.New("--app is required: the id of the application to import into (see: twofold app list)")
	case o.batchSize < 1 || o.batchSize > maxBatch:
		return fmt.Errorf("--batch-size %d: want 1 to %d", o.batchSize, maxBatch)
	}
	return nil
}

// importRun is one run of an import command: what both commands share around their own
// reading (a file's records, or users fetched from a source).
type importRun struct {
	env     Env
	opts    *importOpts
	command string // from-file or from-authy
	input   string // the input's path, "-" for standard input
	file    *os.File
	in      *instance
	app     twofold.App
	rep     *importReport
	scan    scanned
	cpPath  string // "" in a dry run
	cp      checkpoint
	resume  int // the first line to import; 1 unless resuming
}

// startImport opens what a run needs: the input (standard input is spooled; prepare, if any,
// looks at it first), the data directory, the application and the checkpoint. Then it checks
// the whole input, reading it with reader, and refuses it if anything is invalid (unless
// --continue-on-error). done releases it all.
func startImport(ctx context.Context, cmd *cobra.Command, env Env, o *importOpts, command, input, source string,
	reader func(io.Reader) *records.Reader, prepare func(*os.File) error) (r *importRun, done func(), err error) {
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	r = &importRun{env: env, opts: o, command: command, input: input, resume: 1}
	closers := []func(){forceOnSecondInterrupt(ctx)}
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	file, closeFile, err := openInput(input, env.Stdin)
	if err != nil {
		return nil, nil, err
	}
	r.file = file
	closers = append(closers, closeFile)
	if prepare != nil {
		if err := prepare(file); err != nil {
			return nil, nil, err
		}
	}

	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := open(ctx, cmd, env, log, false)
	if err != nil {
		return nil, nil, err
	}
	r.in = in
	closers = append(closers, func() { in.Close() })
	if r.app, err = r.in.apps.Get(ctx, o.app); err != nil {
		return nil, nil, cliError(err, o.app)
	}
	if r.app.Console {
		return nil, nil, fmt.Errorf("application %d is the console's own: its users are the operators (see twofold admin); import into another", o.app)
	}

	r.rep = &importReport{AppID: o.app, Source: source, DryRun: o.dryRun, Failures: []failure{}, started: time.Now()}
	if o.failures != "" {
		f, err := os.Create(o.failures)
		if err != nil {
			return nil, nil, fmt.Errorf("--failures: %w", err)
		}
		closers = append(closers, func() { f.Close() })
		r.rep.failSink, r.rep.FailuresFile = f, o.failures
	}

	var found checkpoint
	if !o.dryRun {
		r.cpPath = o.checkpoint
		if r.cpPath == "" {
			r.cpPath = input + ".checkpoint"
			if input == "-" {
				r.cpPath = fmt.Sprintf("twofold-import-app%d.checkpoint", o.app)
			}
		}
		var ok bool
		if found, ok, err = readCheckpoint(r.cpPath); err != nil {
			return nil, nil, err
		} else if ok {
			r.resume = max(1, found.NextLine)
		}
	}

	check := func(rec userimport.Record) error { return userImport.check(rec, r.app.Sandbox) }
	if _, err := r.file.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	var size int64
	if info, err := r.file.Stat(); err == nil {
		size = info.Size()
	}
	fmt.Fprintf(env.Stderr, "checking %s…\n", displayName(input))
	checking := newByteProgress(env, size, "checking")
	r.scan, err = scanInput(ctx, progressReader{r.file, checking}, reader, check, r.resume, r.rep.fail)
	checking.finish()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, errors.New("interrupted while checking the input: nothing was imported")
		}
		return nil, nil, fmt.Errorf("%s: %w", displayName(input), err)
	}
	r.rep.Records = r.scan.records

	if r.cpPath != "" {
		r.cp = checkpoint{Version: checkpointVersion, Command: command, AppID: o.app, Input: displayName(input),
			InputSHA256: r.scan.sha256, NextLine: r.resume}
		switch {
		case r.resume > 1 && !found.matches(r.cp):
			fmt.Fprintf(env.Stderr, "the checkpoint %s is about another input or application: starting from the beginning "+
				"(users imported already are reported as present, not imported twice)\n", r.cpPath)
			r.resume, r.cp.NextLine, r.scan.ahead = 1, 1, r.scan.valid
		case r.resume > 1:
			fmt.Fprintf(env.Stderr, "resuming at line %d, as the checkpoint %s says\n", r.resume, r.cpPath)
		}
		r.rep.Skipped = r.scan.valid - r.scan.ahead
		r.rep.Checkpoint = r.cpPath
	}
	if r.rep.Failed > 0 && !o.continueOnError {
		return nil, nil, r.refuse()
	}
	if r.cpPath != "" { // before any user is written: can the checkpoint be written at all?
		if err := writeCheckpoint(r.cpPath, r.cp); err != nil {
			return nil, nil, err
		}
	}
	if _, err := r.file.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	return r, release, nil
}

func displayName(input string) string {
	if input == "-" {
		return "standard input"
	}
	return input
}

// forceOnSecondInterrupt lets a second Ctrl-C end the process at once: the first stops the run
// after the batch in flight, which may take a moment. Nothing is lost either way, since a batch
// is one transaction and the checkpoint is replaced atomically. stop ends the watch.
func forceOnSecondInterrupt(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			signal.Reset(os.Interrupt, syscall.SIGTERM)
		case <-done:
		}
	}()
	return func() { close(done) }
}

// refuse ends a run whose input has invalid records, before anything is written.
func (r *importRun) refuse() error {
	r.rep.Checkpoint, r.rep.refused = "", true
	r.rep.Error = "invalid records: nothing was imported"
	r.rep.done()
	if err := r.printReport(); err != nil {
		return err
	}
	return fmt.Errorf("%d of %d records are invalid (listed above), so nothing was imported: correct them, "+
		"or give --continue-on-error to import the others", r.rep.Failed, r.rep.Records)
}

func (r *importRun) printReport() error {
	if r.opts.asJSON {
		return printJSON(r.env.Stdout, r.rep)
	}
	r.rep.print(r.env.Stdout)
	return nil
}

// batcher is the run's batcher, writing through imp.
func (r *importRun) batcher(imp importer, prog progress) *batcher {
	return &batcher{imp: imp, appID: r.opts.app, dryRun: r.opts.dryRun, size: r.opts.batchSize, rep: r.rep, prog: prog,
		cpPath: r.cpPath, cp: r.cp, next: r.resume}
}

// finish ends a run: it writes what the batcher holds (unless writing is what failed), prints
// the report and says how the run ended. complete is a run that reached the end of its input.
func (r *importRun) finish(ctx context.Context, b *batcher, prog progress, complete bool, runErr error) error {
	if !b.broken {
		if err := b.flush(ctx); err != nil && runErr == nil {
			runErr, complete = err, false
		}
	}
	prog.finish()
	interrupted := ctx.Err() != nil && runErr == nil && !complete
	if complete && r.cpPath != "" {
		os.Remove(r.cpPath) // done: a run again is a check that everyone is present
		r.rep.Checkpoint = ""
	}
	r.rep.Interrupted = interrupted
	if runErr != nil {
		r.rep.Error = runErr.Error()
	}
	if r.rep.sinkErr != nil && runErr == nil {
		runErr = fmt.Errorf("--failures %s: %w", r.opts.failures, r.rep.sinkErr)
	}
	r.rep.done()
	if err := r.printReport(); err != nil {
		return err
	}
	resume := "run the same command again to resume"
	if r.cpPath != "" {
		resume = fmt.Sprintf("run the same command again to resume after line %d (checkpoint %s)", b.cp.NextLine-1, r.cpPath)
		if b.cp.NextLine <= 1 {
			resume = "run the same command again to start over"
		}
	}
	if r.opts.dryRun {
		resume = "a dry run keeps no checkpoint: run it again to check everything"
	}
	done := r.rep.Imported + r.rep.Present + r.rep.Failed
	switch {
	case interrupted:
		// Not wrapping ctx.Err(): run() would take a canceled context for a clean exit.
		return fmt.Errorf("interrupted after %d users; every batch started was written whole; %s", done, resume)
	case runErr != nil:
		return fmt.Errorf("stopped after %d users: %v; what was written stays written; %s", done, runErr, resume)
	case r.rep.Failed > 0:
		return fmt.Errorf("%d of %d users failed (see the report)", r.rep.Failed, r.rep.Records)
	}
	return nil
}

func importFileCmd(env Env) *cobra.Command {
	var o importOpts
	var format string
	cmd := &cobra.Command{
		Use:   "from-file FILE|- --app ID",
		Short: "Import users from a CSV or JSON Lines file",
		Long: `Import users from a file (or - for standard input) with, per user:

  authy_id,email,country_code,phone[,totp_secret,totp_digits,totp_period]

CSV: one user a line. A first line whose first field is not a number is a header naming the
columns (in any order; authy_id is required, the others may be left out); without a header the
fields are in the order above, four to seven of them. Fields may be "quoted"; none spans lines.
JSON Lines: one object a line with those keys; authy_id, country_code, totp_digits and
totp_period may be numbers or strings of digits, the others are strings (or null).
The format comes from --format, else the extension (.csv; .jsonl, .ndjson, .json), else the
first character ('{' is JSON Lines). Empty lines are skipped.

authy_id is the id your database holds (kept exactly); phone is the national number (spaces,
dashes, dots and parentheses are removed; +<country_code> in front is accepted); a user with
neither phone nor country_code is imported without a phone. totp_secret is a base32 seed of a
generic authenticator (digits 6 to 8, default 6; period in seconds, default 30).

The whole file is checked first, every line: its form, the values as the application accepts
them (numbering plans, unless it is a sandbox), and authy_ids or phone numbers given twice.
Any invalid record stops the run before anything is written, unless --continue-on-error.`,
		Example: `  twofold import from-file users.csv --app 2
  twofold import from-file users.jsonl --app 2 --dry-run
  psql -c "\copy (select authy_id, email, country_code, phone from users) to stdout csv" | twofold import from-file - --app 2
  twofold import from-file users.csv --app 2 --continue-on-error --json --failures failed.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch strings.ToLower(format) {
			case "", "auto", "csv", "jsonl", "ndjson", "json":
			default:
				return fmt.Errorf("--format %q: want csv or jsonl", format)
			}
			var f records.Format
			r, done, err := startImport(ctx, cmd, env, &o, "from-file", args[0], displayName(args[0]), func(rd io.Reader) *records.Reader {
				return records.NewUserReader(rd, f)
			}, func(file *os.File) (err error) {
				f, err = records.FormatOf(format, args[0], file)
				return err
			})
			if err != nil {
				return err
			}
			defer done()
			return r.importFile(ctx, f)
		},
	}
	o.flags(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "auto", "csv or jsonl (auto: by the file's extension, else its first character)")
	argument(cmd.Flags(), argTarget, "format")
	return cmd
}

// importFile reads the checked file again and imports it.
func (r *importRun) importFile(ctx context.Context, f records.Format) error {
	prog := newProgress(r.env, r.scan.ahead, r.verb())
	b := r.batcher(userImport.service(r.in), prog)
	rr := records.NewUserReader(r.file, f)
	skipAt := 0
	for {
		if ctx.Err() != nil {
			return r.finish(ctx, b, prog, false, nil)
		}
		rec, err := rr.Next()
		if err == io.EOF {
			return r.finish(ctx, b, prog, true, nil)
		}
		var lerr *records.LineError
		switch {
		case errors.As(err, &lerr):
			if lerr.Line < r.resume || r.scan.skip(lerr.Line, &skipAt) {
				continue
			}
			return r.finish(ctx, b, prog, false, fmt.Errorf("line %d changed while it was being imported", lerr.Line))
		case err != nil:
			return r.finish(ctx, b, prog, false, err)
		case rec.Line < r.resume || r.scan.skip(rec.Line, &skipAt):
			continue
		}
		if err := b.add(ctx, rec); err != nil {
			return r.finish(ctx, b, prog, false, err)
		}
	}
}

func (r *importRun) verb() string {
	if r.opts.dryRun {
		return "checking (dry run)"
	}
	return "importing"
}
