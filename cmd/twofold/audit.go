package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// auditServices makes the server's services record to the audit trail, and counts the events
// it fails to record. (The applications service records from open, for the CLI too.)
func (in *instance) auditServices(m *metrics.Metrics, us *users.Service, vs *verify.Service, ds *devices.Service, ot *onetouch.Service,
	pw *passwordless.Service) {
	in.audit.OnWriteFailure(m.AuditFailures.Inc)
	us.SetAuditor(in.audit)
	vs.SetAuditor(in.audit)
	ds.SetAuditor(in.audit)
	ot.SetAuditor(in.audit)
	pw.SetAuditor(in.audit)
}

const auditHelp = `The audit trail records security-relevant events, oldest first, each with who caused it
(api:app/ID, device:ID, cli, operator:EMAIL or system):

  app.created, app.key_rotated, app.updated   (which settings changed, never their values)
  user.created, user.deleted, device.added, device.removed
  user.exported (what: phone_number, totp_secret; a migration export, never the value)
  users.imported (imported, present, failed, seeds: the counts of one batch of twofold import)
  verification.succeeded (method: sms, call, email, totp, device, sandbox, unconfirmed, recovery_code)
  verification.failed (why: invalid, reused)
  approval.approved, approval.denied (reason, when the device gave one)
  approval.closed (the application closed its pending request: the user logged in another way)
  passwordless.started (uuid, outcome: sent, or why nothing was: unknown, no_device, blocked, ...)
  limit.hit (a limit's first refusal within its window's length: failures, sends, number_sends, ...)
  step_client.created, step_client.updated, step_client.deleted (client_id; which settings changed)
  twilio_credential.created, twilio_credential.rotated, twilio_credential.revoked (sid, kind)
  verify_service.created, verify_service.updated, verify_service.deleted (service; which settings changed)
  verification.canceled (a Verify API verification canceled by the application)
  verify_factor.created, verify_factor.verified, verify_factor.deleted (service, factor, factor_type)
  verify_challenge.approved, verify_challenge.denied (service, challenge)
  recovery_codes.generated, recovery_codes.revoked (count), recovery_code.used (remaining)

Entries are append-only and chained: each carries an HMAC-SHA256, under a key derived from the
master key, of the previous entry's hash and its own fields, so 'twofold audit verify' finds an
entry changed, deleted or reordered, even by someone who can write the database file. Details
never hold codes, keys, phone numbers or email addresses.`

func auditCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, verify and export the audit trail (works while the server runs)",
		Long:  auditHelp,
	}
	cmd.AddCommand(auditListCmd(env), auditVerifyCmd(env), auditExportCmd(env))
	return cmd
}

// auditFilterFlags adds the flags that narrow a listing and returns how to read them.
func auditFilterFlags(cmd *cobra.Command) func() (twofold.AuditFilter, error) {
	var f twofold.AuditFilter
	var since string
	cmd.Flags().Int64Var(&f.AppID, "app", 0, "only this application's entries")
	cmd.Flags().Int64Var(&f.UserID, "user", 0, "only entries about this user (Authy id)")
	cmd.Flags().StringVar(&f.Action, "action", "", "only this action, e.g. verification.failed")
	cmd.Flags().StringVar(&since, "since", "", "only entries of this last while (24h, 7d) or since a time (2026-01-02, RFC 3339)")
	argument(cmd.Flags(), argFilter)
	return func() (twofold.AuditFilter, error) {
		if f.Action != "" && !slices.Contains(twofold.AuditActions, f.Action) {
			return f, fmt.Errorf("--action %q is not one of: %s", f.Action, strings.Join(twofold.AuditActions, ", "))
		}
		if since != "" {
			t, err := parseSince(since, time.Now())
			if err != nil {
				return f, err
			}
			f.Since = t
		}
		return f, nil
	}
}

// parseSince reads a while ago ("24h", "90m", "7d") or a point in time ("2026-01-02",
// "2026-01-02T15:04:05Z").
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a while (24h, 7d) nor a time (2026-01-02, 2026-01-02T15:04:05Z)", s)
}

func auditListCmd(env Env) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--app ID] [--user ID] [--action A] [--since 24h] [--limit 50]",
		Short: "List the newest entries of the audit trail, oldest first",
		Long:  "List the newest entries of the audit trail that match, oldest first.\n\n" + auditHelp,
		Args:  cobra.NoArgs,
	}
	filter := auditFilterFlags(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "show at most this many (the newest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argFilter)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := filter()
		if err != nil {
			return err
		}
		if limit <= 0 {
			return fmt.Errorf("--limit must be positive")
		}
		f.Limit, f.Newest = limit, true
		return withApps(cmd, env, func(in *instance) error {
			list, err := in.audit.List(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]audit.Entry, 0, len(list))
				for _, e := range list {
					out = append(out, audit.ToEntry(e))
				}
				return printJSON(env.Stdout, out)
			}
			if len(list) == 0 {
				fmt.Fprintln(env.Stdout, "No audit entries.")
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tAPP\tUSER\tDETAILS")
			for _, e := range list {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Local().Format(time.DateTime), e.Actor, e.Action,
					idOrDash(e.AppID), idOrDash(e.UserID), detailsText(e.Details))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

// detailsText is details as key=value pairs, sorted by key.
func detailsText(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := d[k]
		if v == "" || strings.ContainsAny(v, " \t\n\"") {
			v = strconv.Quote(v)
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// verifyJSON is the outcome of audit verify --json.
type verifyJSON struct {
	OK       bool   `json:"ok"`
	Checked  int64  `json:"checked"`
	FirstBad int64  `json:"first_bad"`
	Problem  string `json:"problem,omitempty"`
	LastID   int64  `json:"last_id"`
	LastHash string `json:"last_hash"`
}

func auditVerifyCmd(env Env) *cobra.Command {
	var asJSON bool
	var head string
	cmd := &cobra.Command{
		Use:   "verify [--head ID:HASH]",
		Short: "Check that no entry of the audit trail was changed, removed or reordered",
		Long: `Check the whole audit trail, oldest first: ids must run 1, 2, 3... without gaps, every entry must
link to the hash of the one before, and every hash must be the one the master key makes of the
entry. The first entry that fails is named and the command exits non-zero. Progress goes to
standard error every 10,000 entries.

A chain cannot show that entries were cut off its end. Keep the newest entry's id and hash that
verify prints somewhere else (a ticket, another machine), and pass them later as --head: verify
then also checks that this entry is still there, unchanged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var headID int64
			var headHash []byte
			if head != "" {
				var err error
				if headID, headHash, err = parseHead(head); err != nil {
					return err
				}
			}
			return withApps(cmd, env, func(in *instance) error {
				r, err := in.audit.Verify(cmd.Context(), verifyProgress(env.Stderr))
				if err != nil {
					return err
				}
				if r.OK() && headID != 0 {
					r = checkHead(cmd, in, r, headID, headHash)
				}
				if asJSON {
					if err := printJSON(env.Stdout, verifyJSON{OK: r.OK(), Checked: r.Checked, FirstBad: r.FirstBad, Problem: r.Problem,
						LastID: r.LastID, LastHash: hex.EncodeToString(r.LastHash)}); err != nil {
						return err
					}
				} else {
					printVerify(env.Stdout, r)
				}
				if !r.OK() {
					return fmt.Errorf("audit trail verification FAILED at entry %d: %s", r.FirstBad, r.Problem)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&head, "head", "", "also require entry ID with hash HASH, the newest of an earlier verify, to be there unchanged")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget, "head")
	return cmd
}

// verifyProgress tells w each time another 10,000 entries have been checked.
func verifyProgress(w io.Writer) func(checked int64) {
	var reported int64
	return func(checked int64) {
		if checked/10000 > reported/10000 {
			fmt.Fprintf(w, "checked %d entries...\n", checked/10000*10000)
		}
		reported = checked
	}
}

// parseHead reads ID:HASH, the newest entry as audit verify prints it.
func parseHead(s string) (int64, []byte, error) {
	id, h, _ := strings.Cut(s, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	hash, herr := hex.DecodeString(h)
	if err != nil || n <= 0 || herr != nil || len(hash) == 0 {
		return 0, nil, fmt.Errorf("--head %q is not ID:HASH (as audit verify prints it)", s)
	}
	return n, hash, nil
}

// checkHead requires entry id, the newest of an earlier verification, to be there with hash.
func checkHead(cmd *cobra.Command, in *instance, r audit.Report, id int64, hash []byte) audit.Report {
	if r.LastID < id {
		r.FirstBad = id
		r.Problem = fmt.Sprintf("the trail ends at entry %d: entries were cut off its end", r.LastID)
		return r
	}
	got, err := in.audit.List(cmd.Context(), twofold.AuditFilter{AfterID: id - 1, Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != id || !slices.Equal(got[0].Hash, hash) {
		r.FirstBad = id
		r.Problem = "it is not the entry --head names: the trail was rewritten from there on"
	}
	return r
}

func printVerify(w io.Writer, r audit.Report) {
	switch {
	case !r.OK():
		fmt.Fprintf(w, "Audit trail TAMPERED: entry %d: %s.\n", r.FirstBad, r.Problem)
		if r.Checked > 0 {
			fmt.Fprintf(w, "Entries 1 to %d are intact.\n", r.LastID)
		}
	case r.Checked == 0:
		fmt.Fprintln(w, "The audit trail is empty.")
	default:
		fmt.Fprintf(w, "Audit trail intact: %d entries.\nNewest: --head %d:%x\n", r.Checked, r.LastID, r.LastHash)
		fmt.Fprintln(w, "(Keep that line elsewhere; a later 'twofold audit verify --head ...' shows whether entries were cut off the end.)")
	}
}

func auditExportCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export [--since 24h] [--app ID] [--user ID] [--action A] > audit.jsonl",
		Short: "Write the audit trail as JSON lines, oldest first",
		Long: `Write the audit trail (or the entries that match) to standard output as JSON lines, oldest first:

  {"id":1,"at":"2026-01-02T03:04:05.123456789Z","actor":"cli","action":"app.created","app_id":1,
   "user_id":0,"details":{"name":"Shop"},"prev_hash":"","hash":"9f86d0..."}

Hashes are hex. With the master key every line can be checked on its own (the hash covers the
fields shown); an unfiltered export can be checked as a chain.`,
		Args: cobra.NoArgs,
	}
	filter := auditFilterFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := filter()
		if err != nil {
			return err
		}
		return withApps(cmd, env, func(in *instance) error {
			return in.audit.Export(cmd.Context(), env.Stdout, f)
		})
	}
	return cmd
}
