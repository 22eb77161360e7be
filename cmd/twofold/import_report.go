package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/twofold-auth/twofold/internal/userimport"
)

// maxListed bounds the failures a report lists; --failures FILE has every one.
const maxListed = 1000

// importReport is what an import did, printed at its end (as JSON with --json).
type importReport struct {
	AppID           int64     `json:"app_id"`
	Source          string    `json:"source"`
	DryRun          bool      `json:"dry_run"`
	Records         int       `json:"records"`         // in the input
	Skipped         int       `json:"skipped"`         // done by an earlier run, per the checkpoint
	Imported        int       `json:"imported"`        // written now (in a dry run: would be)
	WithoutPhone    int       `json:"without_phone"`   // of those imported: no phone number, so no SMS or call
	WithSeed        int       `json:"with_seed"`       // of those imported: with their authenticator's seed
	Present         int       `json:"already_present"` // the application had them already
	Failed          int       `json:"failed"`
	Seconds         float64   `json:"seconds"`
	UsersPerSecond  float64   `json:"users_per_second"` // records done (any outcome) per second of this run
	Interrupted     bool      `json:"interrupted"`
	Error           string    `json:"error,omitempty"` // what stopped the run early
	Checkpoint      string    `json:"checkpoint,omitempty"`
	Failures        []failure `json:"failures"`
	FailuresOmitted int       `json:"failures_omitted"` // beyond the first 1000 listed
	FailuresFile    string    `json:"failures_file,omitempty"`

	started  time.Time
	refused  bool      // the input had invalid records, so nothing was imported
	failSink io.Writer // --failures: every failure as a JSON line
	sinkErr  error
}

func (r *importReport) tally(res userimport.Result) {
	switch res.Outcome {
	case userimport.Imported:
		r.Imported++
		if res.NoPhone {
			r.WithoutPhone++
		}
		if res.Seed {
			r.WithSeed++
		}
	case userimport.Present:
		r.Present++
	default:
		reason := checkReason(errors.New(res.Reason))
		if reason == "" {
			reason = "refused (" + string(res.Outcome) + ")"
		}
		r.fail(failure{Line: res.Line, ID: res.ID, Reason: reason})
	}
}

func (r *importReport) fail(f failure) {
	r.Failed++
	if len(r.Failures) < maxListed {
		r.Failures = append(r.Failures, f)
	} else {
		r.FailuresOmitted++
	}
	if r.failSink != nil && r.sinkErr == nil {
		b, _ := json.Marshal(f)
		_, r.sinkErr = r.failSink.Write(append(b, '\n'))
	}
}

// done stamps the time the run took.
func (r *importReport) done() {
	elapsed := time.Since(r.started)
	r.Seconds = elapsed.Round(time.Millisecond).Seconds()
	if elapsed > 0 && !r.refused {
		r.UsersPerSecond = float64(r.Imported+r.Present+r.Failed) / elapsed.Seconds()
		r.UsersPerSecond = float64(int64(r.UsersPerSecond*10)) / 10
	}
	slices.SortStableFunc(r.Failures, func(a, b failure) int { return a.Line - b.Line })
}

// print writes the report for people.
func (r *importReport) print(w io.Writer) {
	if r.refused {
		fmt.Fprintf(w, "Checked %d records of %s for application %d: %d are invalid, so nothing was imported.\n",
			r.Records, r.Source, r.AppID, r.Failed)
		r.printFailures(w)
		return
	}
	verb := "imported"
	if r.DryRun {
		fmt.Fprintf(w, "Dry run: nothing was written to application %d. From %s:\n", r.AppID, r.Source)
		verb = "would import"
	} else {
		fmt.Fprintf(w, "Import into application %d from %s:\n", r.AppID, r.Source)
	}
	var notes []string
	if r.WithoutPhone > 0 {
		notes = append(notes, fmt.Sprintf("%d without a phone number", r.WithoutPhone))
	}
	if r.WithSeed > 0 {
		notes = append(notes, fmt.Sprintf("%d with an authenticator seed", r.WithSeed))
	}
	note := ""
	if len(notes) > 0 {
		note = " (" + strings.Join(notes, ", ") + ")"
	}
	fmt.Fprintf(w, "  %-16s %d%s\n", verb, r.Imported, note)
	fmt.Fprintf(w, "  %-16s %d\n", "already present", r.Present)
	fmt.Fprintf(w, "  %-16s %d\n", "failed", r.Failed)
	if r.Skipped > 0 {
		fmt.Fprintf(w, "  %-16s %d (done by an earlier run, per the checkpoint)\n", "skipped", r.Skipped)
	}
	fmt.Fprintf(w, "  %d users in %s: %.1f users/s\n", r.Imported+r.Present+r.Failed,
		(time.Duration(r.Seconds*1000) * time.Millisecond).String(), r.UsersPerSecond)
	r.printFailures(w)
}

func (r *importReport) printFailures(w io.Writer) {
	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "Failures:")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f.describe())
		}
		if r.FailuresOmitted > 0 {
			where := "give --failures FILE to have every one"
			if r.FailuresFile != "" {
				where = "every one is in " + r.FailuresFile
			}
			fmt.Fprintf(w, "  … and %d more (%s)\n", r.FailuresOmitted, where)
		}
	}
}

func (f failure) describe() string {
	var where []string
	if f.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", f.Line))
	}
	if f.ID > 0 {
		where = append(where, fmt.Sprintf("authy_id %d", f.ID))
	}
	if len(where) == 0 {
		return f.Reason
	}
	return strings.Join(where, ", ") + ": " + f.Reason
}

// progress shows how an import goes: a bar with rate and ETA on a terminal, a plain line every
// so often otherwise (a log file, a CI job).
type progress interface {
	add(n int)
	note(s string) // a state worth showing (being rate limited), "" when it is over
	finish()
}

// newProgress shows the progress of total users on env's standard error.
func newProgress(env Env, total int, what string) progress {
	return progressOf(env, int64(total), what, false)
}

// newByteProgress shows the progress through total bytes (the check of an input).
func newByteProgress(env Env, total int64, what string) progress {
	return progressOf(env, total, what, true)
}

func progressOf(env Env, total int64, what string, inBytes bool) progress {
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		options := []progressbar.Option{
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(what),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200 * time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
		}
		if inBytes {
			options = append(options, progressbar.OptionShowBytes(true))
		} else {
			options = append(options, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("users"))
		}
		return &barProgress{bar: progressbar.NewOptions64(total, options...), what: what}
	}
	unit := "users"
	if inBytes {
		unit = "bytes"
	}
	return &lineProgress{w: env.Stderr, total: int(total), unit: unit, what: what, every: 10 * time.Second, now: time.Now,
		start: time.Now(), last: time.Now()}
}

// progressReader counts what is read through it as progress.
type progressReader struct {
	r    io.Reader
	prog progress
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.prog.add(n)
	return n, err
}

type barProgress struct {
	bar  *progressbar.ProgressBar
	what string
}

func (p *barProgress) add(n int) { p.bar.Add(n) }

func (p *barProgress) note(s string) {
	if s != "" {
		s = " (" + s + ")"
	}
	p.bar.Describe(p.what + s)
}

func (p *barProgress) finish() {
	if !p.bar.IsFinished() {
		p.bar.Exit()
		fmt.Fprintln(p.bar)
	}
}

// lineProgress writes "importing: 1200/5000 users (24%), 310 users/s, about 12s left" every
// so often.
type lineProgress struct {
	w           io.Writer
	total, done int
	unit        string // users, or bytes
	what        string
	every       time.Duration
	now         func() time.Time
	start, last time.Time

	mu    sync.Mutex // note is called by the fetchers
	state string
}

func (p *lineProgress) add(n int) {
	p.done += n
	if now := p.now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.print(now)
	}
}

func (p *lineProgress) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = s
}

func (p *lineProgress) print(now time.Time) {
	elapsed := now.Sub(p.start)
	line := fmt.Sprintf("%s: %d/%d %s", p.what, p.done, p.total, p.unit)
	if p.total > 0 {
		line += fmt.Sprintf(" (%d%%)", p.done*100/p.total)
	}
	if elapsed > 0 && p.done > 0 {
		rate := float64(p.done) / elapsed.Seconds()
		if p.unit == "users" {
			line += fmt.Sprintf(", %.0f users/s", rate)
		}
		if left := p.total - p.done; left > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			line += ", about " + eta.Round(time.Second).String() + " left"
		}
	}
	p.mu.Lock()
	if p.state != "" {
		line += "; " + p.state
	}
	p.mu.Unlock()
	fmt.Fprintln(p.w, line)
}

func (p *lineProgress) finish() {}
