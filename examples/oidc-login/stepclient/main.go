// Command stepclient creates the step client the OIDC sample needs, in the data directory of a
// Twofold server (SQLite), and prints its id and secret as JSON:
//
//	go run ./examples/oidc-login/stepclient --data-dir ./demo-data --redirect-uri http://127.0.0.1:3001/callback
//	{"client_id":"tfc_...","client_secret":"tfs_..."}
//
// It stands in for `twofold oidc-client create` until the command exists; examples/oidc-login/
// demo.sh calls it from one shell function, create_step_client, which then calls the command.
// It reads the master key as the server does (TWOFOLD_MASTER_KEY, else master.key in the data
// directory), never makes one, and records the creation in the audit trail.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stepclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stepclient", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the Twofold server's data directory (SQLite)")
	appID := fs.Int64("app", 1, "the application whose users the step asks")
	name := fs.String("name", "OIDC login sample", "the client's name, shown on the step page")
	redirect := fs.String("redirect-uri", "http://127.0.0.1:3001/callback", "the sample's callback")
	match := fs.String("user-match", string(twofold.MatchEmail), "how login_hint names the user: id, custom_id or email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	made, err := Create(ctx, *dataDir, *appID, hostedstep.Spec{Name: name, RedirectURIs: &[]string{*redirect},
		UserMatch: (*twofold.UserMatch)(match)})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{"client_id": made.Client.ClientID, "client_secret": made.Secret})
}

// Create opens the installation in dataDir and creates a step client of application appID.
func Create(ctx context.Context, dataDir string, appID int64, sp hostedstep.Spec) (hostedstep.Created, error) {
	db := filepath.Join(dataDir, store.DatabaseFile)
	if _, err := os.Stat(db); err != nil {
		return hostedstep.Created{}, fmt.Errorf("no Twofold installation in %s (start twofold serve --data-dir %s first): %w", dataDir, dataDir, err)
	}
	others, err := seal.LoadOtherKeys(dataDir, os.Getenv("TWOFOLD_MASTER_KEY_OTHERS"))
	if err != nil {
		return hostedstep.Created{}, err
	}
	current, _, err := seal.LoadMasterKey(dataDir, os.Getenv("TWOFOLD_MASTER_KEY"), false)
	if err != nil {
		return hostedstep.Created{}, err
	}
	keys, err := seal.NewRing(current, others...)
	if err != nil {
		return hostedstep.Created{}, err
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return hostedstep.Created{}, err
	}
	defer st.Close()
	checked, err := masterkey.Check(ctx, st, keys)
	if err != nil {
		return hostedstep.Created{}, err
	}
	auditKey, err := masterkey.AuditKey(ctx, st, keys, checked)
	if err != nil {
		return hostedstep.Created{}, err
	}
	clients := hostedstep.NewClients(st, keys, nil)
	clients.SetAuditor(audit.New(st, auditKey, nil, slog.New(slog.DiscardHandler)))
	made, err := clients.Create(ctx, appID, sp)
	if err != nil {
		var te *twofold.Error
		if errors.As(err, &te) {
			return hostedstep.Created{}, errors.New(te.Message)
		}
		return hostedstep.Created{}, err
	}
	return made, nil
}
