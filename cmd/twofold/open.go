package main

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	engine     string // "sqlite" or "postgres", for logs
	store      *store.Store
	keys       *seal.Keyring
	createdKey bool
	apps       *apps.Service
	outbox     *deliver.Outbox
	audit      *audit.Log
	now        func() time.Time
}

// database names the store the command works on: --database (a PostgreSQL URL), else the
// SQLite file in --data-dir.
func database(cmd *cobra.Command) (string, error) {
	dir, _ := cmd.Flags().GetString("data-dir")
	db, _ := cmd.Flags().GetString("database")
	switch {
	case db == "":
		return filepath.Join(dir, store.DatabaseFile), nil
	case store.IsPostgresDSN(db):
		return db, nil
	}
	return "", fmt.Errorf("--database %q: want a postgres:// URL (SQLite lives in --data-dir)", redactDSN(db))
}

// redactDSN hides a password in a database URL, for messages.
func redactDSN(db string) string {
	if u, err := url.Parse(db); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return db
}

// open opens the store and the master key, creating the data directory on first use.
func open(ctx context.Context, cmd *cobra.Command, env Env, log *slog.Logger) (*instance, error) {
	dir, _ := cmd.Flags().GetString("data-dir")
	db, err := database(cmd)
	if err != nil {
		return nil, err
	}
	master, created, err := seal.LoadMasterKey(dir, env.Getenv("TWOFOLD_MASTER_KEY"), true)
	if err != nil {
		return nil, err
	}
	keys, err := seal.New(master)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactDSN(db), err)
	}
	if err := checkMasterKey(ctx, st, keys); err != nil {
		st.Close()
		return nil, err
	}
	now := time.Now
	engine := "sqlite"
	if store.IsPostgresDSN(db) {
		engine = "postgres"
	}
	in := &instance{
		dataDir: dir, engine: engine, store: st, keys: keys, createdKey: created, now: now,
		apps:   apps.New(st, keys, now),
		outbox: deliver.NewOutbox(st, keys, log, now),
		audit:  audit.New(st, keys.Subkey(audit.KeyLabel), now, log),
	}
	in.apps.SetAuditor(in.audit)
	return in, nil
}

func (in *instance) Close() error { return in.store.Close() }

// checkMasterKey refuses a master key other than the one the database was first used with
// (several instances, or a TWOFOLD_MASTER_KEY typed wrong): with it nothing sealed could be
// read, and new secrets would be sealed under a key the others lack.
func checkMasterKey(ctx context.Context, st *store.Store, keys *seal.Keyring) error {
	mine := keys.Lookup("master key check")
	got, err := st.ServerKeyOrCreate(ctx, store.ServerKey{Name: "master-key-check", PublicKey: mine, PrivateSealed: []byte{}, CreatedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	if !hmac.Equal(got.PublicKey, mine) {
		return errors.New("this master key is not the one the database was set up with: use the same master.key " +
			"(or TWOFOLD_MASTER_KEY) on every instance")
	}
	return nil
}
