package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/masterkey"
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
	keys, created, err := loadKeys(dir, env)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactDSN(db), err)
	}
	checked, err := masterkey.Check(ctx, st, keys)
	if err != nil {
		st.Close()
		return nil, err
	}
	auditKey, err := masterkey.AuditKey(ctx, st, keys, checked)
	if err != nil {
		st.Close()
		return nil, err
	}
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	engine := "sqlite"
	if store.IsPostgresDSN(db) {
		engine = "postgres"
	}
	in := &instance{
		dataDir: dir, engine: engine, store: st, keys: keys, createdKey: created, now: now,
		apps:   apps.New(st, keys, now),
		outbox: deliver.NewOutbox(st, keys, log, now),
		audit:  audit.New(st, auditKey, now, log),
	}
	in.apps.SetAuditor(in.audit)
	return in, nil
}

func (in *instance) Close() error { return in.store.Close() }

// loadKeys reads the master keys: the current one (TWOFOLD_MASTER_KEY, else master.key in the
// data directory, made on first start) and the other accepted ones (TWOFOLD_MASTER_KEY_OTHERS,
// else master.key.others). created reports a master.key made now. With other keys configured no
// master key is ever made: a fresh random one beside them would seal what no other server can
// open.
func loadKeys(dir string, env Env) (*seal.Keyring, bool, error) {
	others, err := seal.LoadOtherKeys(dir, env.Getenv("TWOFOLD_MASTER_KEY_OTHERS"))
	if err != nil {
		return nil, false, err
	}
	current, created, err := seal.LoadMasterKey(dir, env.Getenv("TWOFOLD_MASTER_KEY"), len(others) == 0)
	if err != nil {
		if len(others) > 0 {
			err = fmt.Errorf("%w (other master keys are configured, so none is made)", err)
		}
		return nil, false, err
	}
	keys, err := seal.NewRing(current, others...)
	if err != nil {
		return nil, false, err
	}
	return keys, created, nil
}
