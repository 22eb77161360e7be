package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
)

// instance is an opened data directory: the store and the keys that unseal it.
type instance struct {
	dataDir    string
	store      *store.Store
	keys       *seal.Keyring
	createdKey bool
	apps       *apps.Service
	outbox     *deliver.Outbox
	audit      *audit.Log
	now        func() time.Time
}

// open opens the data directory named by the command's --data-dir, creating it on first use.
func open(ctx context.Context, cmd *cobra.Command, env Env, log *slog.Logger) (*instance, error) {
	dir, _ := cmd.Flags().GetString("data-dir")
	master, created, err := seal.LoadMasterKey(dir, env.Getenv("TWOFOLD_MASTER_KEY"), true)
	if err != nil {
		return nil, err
	}
	keys, err := seal.New(master)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, store.DatabaseFile))
	if err != nil {
		return nil, fmt.Errorf("open database in %s: %w", dir, err)
	}
	now := time.Now
	in := &instance{
		dataDir: dir, store: st, keys: keys, createdKey: created, now: now,
		apps:   apps.New(st, keys, now),
		outbox: deliver.NewOutbox(st, keys, log, now),
		audit:  audit.New(st, keys.Subkey(audit.KeyLabel), now, log),
	}
	in.apps.SetAuditor(in.audit)
	return in, nil
}

func (in *instance) Close() error { return in.store.Close() }
