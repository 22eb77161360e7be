package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
)

const masterKeyHelp = `Rotate the master key without downtime. The current master key (TWOFOLD_MASTER_KEY, else
master.key in the data directory) seals every new secret and makes every new keyed hash. Other
accepted keys (TWOFOLD_MASTER_KEY_OTHERS, comma-separated, else master.key.others in the data
directory, 0600, one key per line) still open what they sealed and recognise what they hashed.

The procedure, for any number of instances on one database:

  1. twofold master-key generate                 a new key
  2. add it to every instance's other keys, restart them one by one
  3. make it every instance's current key and the old one an other key, restart them one by one
  4. twofold master-key rekey                    re-seal everything under the new key
  5. twofold master-key status                   until nothing but unseen devices needs the old key
  6. remove the old key everywhere, restart them one by one

Devices re-MAC their access tokens under the new key when they next connect; one that has not
connected by step 6 must register again. See docs/operations.md, "Master key rotation".`

func masterKeyCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "master-key",
		Short: "Rotate the master key: generate a key, re-key the database, see what still needs an old key",
		Long:  masterKeyHelp,
	}
	cmd.AddCommand(masterKeyGenerateCmd(env), masterKeyStatusCmd(env), masterKeyRekeyCmd(env))
	return cmd
}

func masterKeyGenerateCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random master key (base64) and its id",
		Long: `Print a new random 32-byte master key, base64, on standard output, and nothing else (its id
goes to standard error). It is not stored anywhere: put it in every instance's
master.key.others (or TWOFOLD_MASTER_KEY_OTHERS) first, and keep a copy somewhere safe, as for
the master key itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, seal.KeySize)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("generate master key: %w", err)
			}
			ring, err := seal.New(key)
			if err != nil {
				return err
			}
			encoded := base64.StdEncoding.EncodeToString(key)
			if asJSON {
				return printJSON(env.Stdout, struct {
					Key string `json:"key"`
					ID  string `json:"id"`
				}{encoded, ring.ID().String()})
			}
			fmt.Fprintln(env.Stdout, encoded)
			fmt.Fprintf(env.Stderr, "key id %s\n", ring.ID())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {key, id}")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func masterKeyStatusCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the configured master keys and what in the database still needs a non-current one",
		Long: `Show the configured master keys by id (the current one and the others), which key the database's
key check matches, and, per table, how many rows are still sealed or MAC'd under a key other
than the current one. Reads only; safe while servers run.

Devices whose access token is MAC'd under an old key are counted apart: only their next
connection can re-MAC them. One-time codes, phone verifications, registration tokens and QR
links cannot be re-MAC'd either (their secrets are not stored); they are recognised under every
configured key and lapse on their own, so only how many are live, and until when, is shown.
"done" means nothing else needs an old key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				rep, err := masterkey.Rekey(cmd.Context(), in.store, in.keys, masterkey.Options{DryRun: true, Now: in.now})
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(env.Stdout, toMasterKeyJSON(rep))
				}
				printMasterKeyStatus(env.Stdout, rep)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	return cmd
}

func masterKeyRekeyCmd(env Env) *cobra.Command {
	var asJSON bool
	var batch int
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Re-seal every sealed value and re-MAC every API key under the current master key (online)",
		Long: `Re-seal every sealed value (API keys, TOTP seeds, devices' seeds, message bodies, QR links, the
Web Push key, the audit trail's key) and re-MAC every API key under the current master key,
while servers run: rows are read and written back --batch at a time, each page one short
transaction, each row a compare-and-set, so a row a server changes meanwhile keeps the server's
version. Progress goes to standard error, counts to standard output at the end.

Run it once every instance has the new key as its current key (step 3 of 'twofold master-key
--help'): an instance still sealing under the old key undoes the work as it goes. Devices whose
access token is MAC'd under an old key are marked and re-MAC'd when they next connect; rekey
reports how many wait. When every value opened, the database's key check moves to the current
key last: from then on a server given only the old key is refused.

It is idempotent and safe to interrupt: run it again to finish. It exits non-zero if a value
opens under none of the configured keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 || batch > 10000 {
				return fmt.Errorf("--batch %d: want 1 to 10000 rows", batch)
			}
			return withApps(cmd, env, func(in *instance) error {
				rep, err := masterkey.Rekey(cmd.Context(), in.store, in.keys, masterkey.Options{
					PageSize: batch, Progress: rekeyProgress(env.Stderr, batch), Now: in.now})
				if err != nil && len(rep.Tables) < len(store.SealedTables) {
					return err // stopped part-way: nothing worth printing
				}
				if asJSON {
					if perr := printJSON(env.Stdout, toMasterKeyJSON(rep)); perr != nil {
						return perr
					}
				} else {
					printRekey(env.Stdout, rep)
				}
				return err
			})
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 100, "rows per transaction")
	argument(cmd.Flags(), "how this one re-keying runs", "batch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	return cmd
}

// rekeyProgress reports each table's rows on w: at most every ten pages, and when it is done.
func rekeyProgress(w io.Writer, batch int) func(store.SealedTable, int64, int64) {
	return func(t store.SealedTable, done, total int64) {
		if done == total || done%int64(10*batch) == 0 {
			fmt.Fprintf(w, "rekey: %s %d/%d rows\n", t, done, total)
		}
	}
}

type masterKeyJSON struct {
	Current        string            `json:"current"`
	Others         []string          `json:"others"`
	CheckKey       string            `json:"check_key"`
	CheckMoved     bool              `json:"check_moved"`
	Tables         []masterkey.Table `json:"tables"`
	DevicesWaiting int64             `json:"devices_waiting"`
	ShortLived     []liveJSON        `json:"short_lived"`
	Left           int64             `json:"left"`
	Done           bool              `json:"done"`
}

type liveJSON struct {
	Table   string     `json:"table"`
	Live    int64      `json:"live"`
	LapseBy *time.Time `json:"lapse_by,omitempty"`
}

func toMasterKeyJSON(rep masterkey.Report) masterKeyJSON {
	out := masterKeyJSON{Current: rep.Current.String(), Others: []string{}, CheckKey: rep.CheckKey.String(),
		CheckMoved: rep.CheckMoved, Tables: rep.Tables, DevicesWaiting: rep.DevicesWaiting(),
		ShortLived: []liveJSON{}, Left: rep.Left(), Done: rep.Done()}
	for _, id := range rep.Others {
		out.Others = append(out.Others, id.String())
	}
	for _, l := range rep.Live {
		j := liveJSON{Table: l.Table, Live: l.Live}
		if !l.LapseBy.IsZero() {
			t := l.LapseBy
			j.LapseBy = &t
		}
		out.ShortLived = append(out.ShortLived, j)
	}
	return out
}

func printKeys(w io.Writer, rep masterkey.Report) {
	fmt.Fprintln(w, "Master keys:")
	fmt.Fprintf(w, "  current  %s\n", rep.Current)
	for _, id := range rep.Others {
		fmt.Fprintf(w, "  other    %s\n", id)
	}
	if rep.CheckKey == rep.Current {
		fmt.Fprintf(w, "Database key check: the current key (%s).\n", rep.CheckKey)
	} else {
		fmt.Fprintf(w, "Database key check: the other key %s (rekey moves it to the current key).\n", rep.CheckKey)
	}
}

func printMasterKeyStatus(w io.Writer, rep masterkey.Report) {
	printKeys(w, rep)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tOLD KEY SEALED\tOLD KEY MAC\tUNREADABLE\t")
	for _, t := range rep.Tables {
		mac := "-"
		if t.Table == store.SealedApps || t.Table == store.SealedDevices || t.Table == store.SealedTwilioCredentials {
			mac = fmt.Sprint(t.OldMAC)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t\n", t.Table, t.Rows, t.OldSealed, mac, t.Unreadable)
	}
	tw.Flush()
	printWaiting(w, rep)
	switch {
	case rep.Done():
		fmt.Fprintln(w, "\nDone: nothing else needs a key other than the current one.")
	case rep.Left() == 0:
		fmt.Fprintln(w, "\nNot done: the database's key check is still the old key's; run: twofold master-key rekey")
	default:
		fmt.Fprintf(w, "\nNot done: %d values still need another key than the current one; run: twofold master-key rekey\n", rep.Left())
	}
}

func printRekey(w io.Writer, rep masterkey.Report) {
	printKeys(w, rep)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tRE-SEALED\tCHANGED MEANWHILE\tUNREADABLE\t")
	for _, t := range rep.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", t.Table, t.Rows, t.Resealed, t.Changed, t.Unreadable)
	}
	tw.Flush()
	if rep.CheckMoved {
		fmt.Fprintf(w, "\nThe database's key check moved to the current key %s: a server given only an old key is now refused.\n", rep.Current)
	}
	printWaiting(w, rep)
	if left := rep.Left(); left > 0 {
		fmt.Fprintf(w, "\n%d values still need another key (changed by a server meanwhile, or unreadable): run rekey again.\n", left)
	}
}

// printWaiting tells what re-keying cannot move: devices not seen since, and short-lived rows.
func printWaiting(w io.Writer, rep masterkey.Report) {
	if n := rep.DevicesWaiting(); n > 0 {
		fmt.Fprintf(w, "\n%d devices have an access token MAC'd under an old key: each is re-MAC'd when it next connects;\n"+
			"one that has not by the time its key is dropped must register again.\n", n)
	}
	var live []string
	for _, l := range rep.Live {
		if l.Live > 0 {
			live = append(live, fmt.Sprintf("%s %d (until %s)", l.Table, l.Live, l.LapseBy.UTC().Format(time.RFC3339)))
		}
	}
	if len(live) > 0 {
		fmt.Fprintf(w, "\nLive, MAC'd under whichever key was current when made, recognised under every configured key\n"+
			"until they lapse: %s.\n", strings.Join(live, ", "))
	}
}
