package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/userimport/authyexport"
	"github.com/twofold-auth/twofold/internal/userimport/records"
)

func importAuthyCmd(env Env) *cobra.Command {
	var o importOpts
	var authyURL, key string
	var concurrency int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "from-authy FILE|- --app ID [--authy-url URL]",
		Short: "Import users from the Authy API (or another Twofold), by their authy_ids",
		Long: `Import users from the Authy API with your application's Authy API key: for each authy_id of the
list (a file, or - for standard input; one a line, optionally followed by ,email; a first line
"authy_id[,email]" is a header), it asks the source for the user's phone number
(GET /protected/json/users/{id}/phone_number) and authenticator seed
(GET /protected/json/users/{id}/secret/export), and imports the user with its authy_id.

A user whose seed cannot be exported (they used the Authy app, whose seeds stay in it) is
imported without one: they still get SMS and voice codes, and users/{id}/status shows no
authenticator, so your application can offer to enrol one. A user the source does not know is
reported as failed. If the source says its migration tools are disabled (60154), the run stops:
ask Twilio support to enable them for your application.

--concurrency requests are in flight at most; when the source limits the rate (429), the
import waits as it asks (Retry-After, else a growing pause) and sends fewer requests at once
for a while. Network errors and 5xx answers are tried again a few times; a source that keeps
failing stops the run (it resumes where it stopped), or with --continue-on-error fails just
those users.

--authy-url is the source: Authy's API by default, or another Twofold server (its exports
answer the same way). The key is sent to that address only (redirects are not followed) and
never written to the report, the logs or the checkpoint; prefer TWOFOLD_AUTHY_API_KEY to
--authy-key, which other users of the machine can see in the process list.`,
		Example: `  TWOFOLD_AUTHY_API_KEY=... twofold import from-authy authy_ids.txt --app 2
  psql -Atc "select authy_id || ',' || email from users" | TWOFOLD_AUTHY_API_KEY=... twofold import from-authy - --app 2 --checkpoint users.checkpoint
  twofold import from-authy ids.csv --app 2 --authy-url https://old-twofold.example.com --dry-run --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if concurrency < 1 || concurrency > 256 {
				return fmt.Errorf("--concurrency %d: want 1 to 256", concurrency)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: want a positive duration", timeout)
			}
			src, err := authyexport.New(authyexport.Config{URL: authyURL, Key: key, Concurrency: concurrency, Timeout: timeout,
				Tolerant: o.continueOnError})
			if err != nil {
				return err
			}
			defer src.Close()
			ctx := cmd.Context()
			r, done, err := startImport(ctx, cmd, env, &o, "from-authy", args[0], redactDSN(src.URL()), records.NewIDReader, nil)
			if err != nil {
				return err
			}
			defer done()
			err = r.importAuthy(ctx, src, concurrency)
			if err != nil {
				return errors.New(src.Scrub(err.Error()))
			}
			return nil
		},
	}
	o.flags(cmd.Flags())
	cmd.Flags().StringVar(&authyURL, "authy-url", "https://api.authy.com", "the source: Authy's API, or a Twofold server")
	cmd.Flags().StringVar(&key, "authy-key", "", "the application's Authy API key; prefer the variable, which the process list does not show")
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "requests in flight at most")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "the longest one request may take")
	setting(cmd.Flags(), "authy-url")
	settingAs(cmd.Flags(), "authy-key", "TWOFOLD_AUTHY_API_KEY")
	argument(cmd.Flags(), "how this one import runs", "concurrency", "timeout")
	return cmd
}

// importAuthy reads the checked list again, fetches its users and imports them in its order.
func (r *importRun) importAuthy(ctx context.Context, src *authyexport.Source, concurrency int) error {
	prog := newProgress(r.env, r.scan.ahead, r.verb())
	src.OnLimit(func(limit, max int, pause time.Time) {
		switch {
		case time.Now().Before(pause):
			prog.note(fmt.Sprintf("rate limited: waiting until %s, then %d of %d requests at once", pause.Format(time.TimeOnly), limit, max))
		case limit < max:
			prog.note(fmt.Sprintf("rate limited: %d of %d requests at once", limit, max))
		default:
			prog.note("")
		}
	})
	b := r.batcher(userImport.service(r.in), prog)
	ids := func(yield func(authyexport.Item, error) bool) {
		rr := records.NewIDReader(r.file)
		skipAt := 0
		for {
			rec, err := rr.Next()
			if err == io.EOF {
				return
			}
			var lerr *records.LineError
			switch {
			case errors.As(err, &lerr):
				if lerr.Line < r.resume || r.scan.skip(lerr.Line, &skipAt) {
					continue
				}
				yield(authyexport.Item{}, fmt.Errorf("line %d changed while it was being imported", lerr.Line))
				return
			case err != nil:
				yield(authyexport.Item{}, err)
				return
			case rec.Line < r.resume || r.scan.skip(rec.Line, &skipAt):
				continue
			}
			if !yield(authyexport.Item{Line: rec.Line, ID: rec.ID, Email: rec.Email}, nil) {
				return
			}
		}
	}
	users, stop := authyexport.FetchInOrder(ctx, ids, concurrency, 4*concurrency, r.opts.batchSize, src.Fetch)
	defer stop()
	for f := range users {
		if ctx.Err() != nil {
			return r.finish(ctx, b, prog, false, nil)
		}
		switch {
		case f.Err != nil:
			return r.finish(ctx, b, prog, false, f.Err)
		case f.Fail != "":
			b.fail(failure{Line: f.Record.Line, ID: f.Record.ID, Reason: f.Fail})
		default:
			if err := b.add(ctx, f.Record); err != nil {
				return r.finish(ctx, b, prog, false, err)
			}
		}
	}
	if ctx.Err() != nil {
		return r.finish(ctx, b, prog, false, nil)
	}
	return r.finish(ctx, b, prog, true, nil)
}
