package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
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

// open opens the store and the master key. Only serve and init create an installation
// (create): for every other command a data directory or database that holds none is an error
// saying where it looked and how to point elsewhere. Making one there instead (a new master
// key, an empty database) would answer "no application with id 1" for a command merely run in
// the wrong directory, and leave a stray installation behind.
func open(ctx context.Context, cmd *cobra.Command, env Env, log *slog.Logger, create bool) (*instance, error) {
	dir, _ := cmd.Flags().GetString("data-dir")
	db, err := database(cmd)
	if err != nil {
		return nil, err
	}
	if !create {
		installed, err := store.Installed(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", redactDSN(db), err)
		}
		if !installed {
			return nil, notInstalled(cmd, dir, db)
		}
	}
	keys, created, err := loadKeys(dir, env, create)
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
// data directory, made when create) and the other accepted ones (TWOFOLD_MASTER_KEY_OTHERS,
// else master.key.others). created reports a master.key made now. With other keys configured no
// master key is ever made: a fresh random one beside them would seal what no other server can
// open.
func loadKeys(dir string, env Env, create bool) (*seal.Keyring, bool, error) {
	others, err := seal.LoadOtherKeys(dir, env.Getenv("TWOFOLD_MASTER_KEY_OTHERS"))
	if err != nil {
		return nil, false, err
	}
	current, created, err := seal.LoadMasterKey(dir, env.Getenv("TWOFOLD_MASTER_KEY"), create && len(others) == 0)
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

// notInstalled is the error of a command that found no installation where cmd points: where it
// looked (an absolute path, and which setting said so) and how to point elsewhere or make one.
func notInstalled(cmd *cobra.Command, dir, db string) error {
	var where string
	if store.IsPostgresDSN(db) {
		where = fmt.Sprintf("no Twofold installation in the PostgreSQL database %s (from %s): it was never set up "+
			"(twofold migrate makes only the schema)", redactDSN(db), source(cmd.Flags(), "database"))
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			abs = dir
		}
		from := source(cmd.Flags(), "data-dir")
		if !cmd.Flags().Changed("data-dir") && from == "--data-dir" {
			from = "the default, --data-dir " + dir
		}
		what := "there is no " + store.DatabaseFile + " there"
		if _, err := os.Stat(filepath.Join(abs, store.DatabaseFile)); err == nil {
			what = "its " + store.DatabaseFile + " was never set up"
		}
		where = fmt.Sprintf("no Twofold installation in %s (from %s): %s", abs, from, what)
	}
	return fmt.Errorf("%s.\nPoint at yours with --data-dir DIR or TWOFOLD_DATA_DIR, or at a PostgreSQL database with "+
		"--database URL or TWOFOLD_DATABASE_URL;\nor create one there with: %s init%s (serve, too, creates one on its first start)",
		where, selfCommand(), pointArgs(cmd))
}
