package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
)

func migrateCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database's schema up to date, then exit",
		Long: `Apply pending schema migrations to the database (--database, else the SQLite file in
--data-dir) and exit. ` + "`twofold serve`" + ` does the same on start, under a lock, so several instances
starting together migrate once; run this alone first to upgrade before starting new versions.

It makes only the schema: on an empty PostgreSQL database that is a provisioning step, and
the installation (bound to a master key) is made by ` + "`twofold init`" + ` or the first ` + "`twofold serve`" + `.
A SQLite database it does not create: it says where it looked instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := database(cmd)
			if err != nil {
				return err
			}
			if !store.IsPostgresDSN(db) {
				if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
					dir, _ := cmd.Flags().GetString("data-dir")
					return notInstalled(cmd, dir, db)
				}
			}
			if err := store.Migrate(cmd.Context(), db); err != nil {
				return fmt.Errorf("migrate %s: %w", redactDSN(db), err)
			}
			fmt.Fprintf(env.Stdout, "The database %s is up to date.\n", redactDSN(db))
			return nil
		},
	}
}

func initCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create an installation: the data directory, its master key and the database",
		Long: `Create a Twofold installation where --data-dir (or --database) points: the data directory
(0700), the master key that seals secrets at rest (master.key, 0600, unless TWOFOLD_MASTER_KEY
is set) and the database with its schema, bound to that key. Then exit.

Every command but serve and init refuses to run where there is no installation, so that one run
in the wrong directory does not make a new, empty one there. serve makes one on its first start
too, and an application to try the API with; init makes no application (serve makes that first
one if there is none), so an application created right after, for instance with an Authy API
key kept (twofold app create --api-key), is the only one.

Where there is an installation already, init says so and changes nothing.`,
		Example: `  twofold init && twofold app create --name Shop --api-key "$AUTHY_API_KEY" && twofold serve
  twofold init --database postgres://twofold@db.example.com/twofold   # with TWOFOLD_MASTER_KEY set`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := database(cmd)
			if err != nil {
				return err
			}
			existed, err := store.Installed(ctx, db)
			if err != nil {
				return fmt.Errorf("open database %s: %w", redactDSN(db), err)
			}
			log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			in, err := open(ctx, cmd, env, log, true)
			if err != nil {
				return err
			}
			defer in.Close()
			where := redactDSN(db)
			if !store.IsPostgresDSN(db) {
				where, _ = filepath.Abs(in.dataDir)
			}
			if existed {
				_, err := fmt.Fprintf(env.Stdout, "%s already holds a Twofold installation: nothing changed.\n", where)
				return err
			}
			fmt.Fprintf(env.Stdout, "Created a Twofold installation in %s.\n", where)
			if in.createdKey {
				abs, _ := filepath.Abs(filepath.Join(in.dataDir, seal.MasterKeyFile))
				fmt.Fprintf(env.Stdout, "Its master key is %s: back it up, without it the sealed secrets cannot be read.\n", abs)
			}
			_, err = fmt.Fprintf(env.Stdout, "Start the server with: %s serve%s\n", selfCommand(), pointArgs(cmd))
			return err
		},
	}
}

// pointArgs repeats the --data-dir given on the command line, and mentions the --database,
// for a command printed for the user to run next. (The database URL may hold a password: it is
// not printed.)
func pointArgs(cmd *cobra.Command) string {
	var s string
	if cmd.Flags().Changed("data-dir") {
		dir, _ := cmd.Flags().GetString("data-dir")
		s += " --data-dir " + shellQuote(dir)
	}
	if cmd.Flags().Changed("database") {
		s += " (with the same --database)"
	}
	return s
}

// shellQuote quotes s for a POSIX shell unless it needs none.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
