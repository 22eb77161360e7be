package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
)

// migrateDataJSON is what migrate-data --json prints.
type migrateDataJSON struct {
	From          string           `json:"from"`
	To            string           `json:"to"`
	SchemaVersion int64            `json:"schema_version"`
	Tables        []tableCountJSON `json:"tables"`
	Match         bool             `json:"match"`
	MasterKey     string           `json:"master_key"`
}

type tableCountJSON struct {
	Table  string `json:"table"`
	Source int64  `json:"source"`
	Target int64  `json:"target"`
}

func migrateDataCmd(env Env) *cobra.Command {
	var from, to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate-data --from sqlite:PATH --to postgres://…",
		Short: "Copy an installation from SQLite into an empty PostgreSQL database",
		Long: `Copy every table of a SQLite database into an empty PostgreSQL database, ids, times, sealed
secrets and the audit trail's hashes exactly as they are, then count the rows of every table on
both sides and print them; the command exits non-zero if any count differs.

--from is sqlite:PATH or a bare PATH (a twofold.db file or the data directory holding it;
default: the twofold.db in --data-dir). --to is a postgres:// URL (default: --database, or
TWOFOLD_DATABASE_URL). Both are migrated to this twofold's schema first. The target must hold
no rows; the copy is one PostgreSQL transaction, so a failure leaves it empty. Identity
sequences are then set past the largest id SQLite handed out. Stop the server first: writes
made to SQLite during the copy are not copied (the counts then differ).

The master key is not in the database: run the server on PostgreSQL with the same master.key
(or TWOFOLD_MASTER_KEY) as before.`,
		Example: `  twofold migrate-data --from sqlite:/var/lib/twofold/twofold.db --to postgres://twofold@db/twofold
  twofold serve --data-dir /var/lib/twofold --database postgres://twofold@db/twofold`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir, _ := cmd.Flags().GetString("data-dir")
			path, err := sqliteSource(from, dir)
			if err != nil {
				return err
			}
			if to == "" {
				to, _ = cmd.Flags().GetString("database") // or env TWOFOLD_DATABASE_URL
			}
			if to == "" {
				return errors.New("--to is required: the postgres:// URL of the empty database to fill")
			}
			if !store.IsPostgresDSN(to) {
				return fmt.Errorf("--to %q: want a postgres:// URL", redactDSN(to))
			}
			src, err := store.OpenSQLite(ctx, path)
			if err != nil {
				return fmt.Errorf("open %s: %w", path, err)
			}
			defer src.Close()
			dst, err := store.OpenPostgres(ctx, to)
			if err != nil {
				return fmt.Errorf("open %s: %w", redactDSN(to), err)
			}
			defer dst.Close()
			version, err := src.SchemaVersion(ctx)
			if err != nil {
				return err
			}

			copied, err := src.CopyTo(ctx, dst, copyProgress(env))
			if errors.Is(err, store.ErrTargetNotEmpty) {
				return fmt.Errorf("%w; migrate-data only fills an empty database (a fresh database or schema)", err)
			}
			if err != nil {
				return fmt.Errorf("nothing was copied: %w", err)
			}

			// Count again on both sides, apart from the copy itself.
			tables := make([]string, len(copied))
			for i, c := range copied {
				tables[i] = c.Table
			}
			srcRows, err := src.CountRows(ctx, tables)
			if err != nil {
				return err
			}
			dstRows, err := dst.CountRows(ctx, tables)
			if err != nil {
				return err
			}
			out := migrateDataJSON{From: "sqlite:" + path, To: redactDSN(to), SchemaVersion: version, Match: true,
				MasterKey: masterKeyNote(env, dir)}
			var differ []string
			for i := range tables {
				out.Tables = append(out.Tables, tableCountJSON{tables[i], srcRows[i].Rows, dstRows[i].Rows})
				if srcRows[i].Rows != dstRows[i].Rows {
					out.Match = false
					differ = append(differ, tables[i])
				}
			}
			if asJSON {
				if err := printJSON(env.Stdout, out); err != nil {
					return err
				}
			} else {
				printMigrateData(env, out, dir)
			}
			if !out.Match {
				return fmt.Errorf("row counts differ in %s: was a server still writing to the SQLite database?", strings.Join(differ, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the SQLite database: sqlite:PATH or PATH (default: twofold.db in --data-dir)")
	cmd.Flags().StringVar(&to, "to", "", "the empty PostgreSQL database: postgres://user:pass@host/db (default: --database)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), "the two stores of this one copy (the defaults are --data-dir and --database)")
	return cmd
}

// sqliteSource reads --from: sqlite:PATH or PATH, a database file or a data directory; "" is
// the data directory's. The file must exist: opening a missing one would create an empty one.
func sqliteSource(from, dataDir string) (string, error) {
	switch {
	case store.IsPostgresDSN(from):
		return "", errors.New("--from: copying from PostgreSQL is not supported yet; only from SQLite (sqlite:PATH) to PostgreSQL")
	case from == "":
		from = dataDir
	}
	path := strings.TrimPrefix(from, "sqlite:")
	info, err := os.Stat(path)
	if err == nil && info.IsDir() {
		path = filepath.Join(path, store.DatabaseFile)
		info, err = os.Stat(path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("--from: there is no SQLite database at %s", path)
	case err != nil:
		return "", fmt.Errorf("--from: %w", err)
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("--from: %s is not a database file", path)
	}
	return path, nil
}

// copyProgress reports each table's rows to standard error as they are copied.
func copyProgress(env Env) store.CopyProgress {
	return func(table string, copied, total int64) {
		switch {
		case copied == total:
			fmt.Fprintf(env.Stderr, "copied %s: %d rows\n", table, total)
		default:
			fmt.Fprintf(env.Stderr, "copying %s: %d/%d rows\n", table, copied, total)
		}
	}
}

// masterKeyNote says which master key the new database needs.
func masterKeyNote(env Env, dataDir string) string {
	if env.Getenv("TWOFOLD_MASTER_KEY") != "" {
		return "The master key is not in the database: run the server on PostgreSQL with the same TWOFOLD_MASTER_KEY as before."
	}
	return fmt.Sprintf("The master key is not in the database: run the server on PostgreSQL with the same master key, "+
		"%s (or the TWOFOLD_MASTER_KEY you used instead).", filepath.Join(dataDir, seal.MasterKeyFile))
}

func printMigrateData(env Env, out migrateDataJSON, dataDir string) {
	w := env.Stdout
	fmt.Fprintf(w, "Copied %s into %s (schema version %d).\n\n", out.From, out.To, out.SchemaVersion)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSQLITE\tPOSTGRES\t")
	for _, t := range out.Tables {
		mark := ""
		if t.Source != t.Target {
			mark = "DIFFERENT"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.Table, t.Source, t.Target, mark)
	}
	tw.Flush()
	if !out.Match {
		fmt.Fprintln(w, "\nThe row counts DIFFER: do not switch to PostgreSQL yet.")
		return
	}
	fmt.Fprintf(w, "\nAll %d tables match.\n\n%s\nThen start it with:\n  twofold serve --data-dir %s --database '%s'\n",
		len(out.Tables), out.MasterKey, dataDir, out.To)
	if strings.Contains(out.To, ":xxxxx@") {
		fmt.Fprintln(w, "(with the password in place of xxxxx)")
	}
}
