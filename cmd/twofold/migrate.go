package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/store"
)

func migrateCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database's schema up to date, then exit",
		Long: `Apply pending schema migrations to the database (--database, else the SQLite file in
--data-dir) and exit. ` + "`twofold serve`" + ` does the same on start, under a lock, so several instances
starting together migrate once; run this alone first to upgrade before starting new versions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := database(cmd)
			if err != nil {
				return err
			}
			if err := store.Migrate(cmd.Context(), db); err != nil {
				return fmt.Errorf("migrate %s: %w", redactDSN(db), err)
			}
			fmt.Fprintf(env.Stdout, "The database %s is up to date.\n", redactDSN(db))
			return nil
		},
	}
}
