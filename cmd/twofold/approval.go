package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func approvalCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approval",
		Short: "Answer a sandbox application's OneTouch approval requests (works while the server runs)",
	}
	cmd.AddCommand(approvalAnswerCmd(env))
	return cmd
}

// approvalJSON is an answered request as `approval answer --json` prints it.
type approvalJSON struct {
	UUID    string `json:"uuid"`
	AppID   int64  `json:"app_id"`
	AuthyID int64  `json:"authy_id"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

func approvalAnswerCmd(env Env) *cobra.Command {
	var appFlag int64
	var reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "answer UUID approved|denied [--app ID] [--reason TEXT]",
		Short: "Approve or deny a pending approval request of a sandbox application, in place of a device",
		Long: `Approve or deny a pending OneTouch approval request of a sandbox application, as the
user's device would: the request is finished and its callback sent. A sandbox application
accepts approval requests for users without a device, as Authy's sandbox did, and they stay
pending until they expire or are answered here, so that a test suite can go on.

Only a sandbox application's requests are answered (twofold app create --sandbox); a
production application's requests are answered only by the user's device. The application is
found from the request's UUID unless --app names it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			uuid, status := args[0], twofold.ApprovalStatus(args[1])
			if status != twofold.Approved && status != twofold.Denied {
				return fmt.Errorf("%q: the answer is approved or denied", args[1])
			}
			return withApps(cmd, env, func(in *instance) error {
				ctx := cmd.Context()
				app, err := approvalApp(ctx, in, uuid, appFlag)
				if err != nil {
					return err
				}
				ot := onetouch.New(in.store, onetouch.DefaultConfig(), onetouch.Hooks{}, in.now)
				ot.SetAuditor(in.audit)
				r, err := ot.AnswerSandbox(ctx, app, uuid, status, reason)
				switch {
				case errors.Is(err, onetouch.ErrNotSandbox):
					return fmt.Errorf("application %d (%s) is not a sandbox: its approval requests are answered only by the user's device", app.ID, app.Name)
				case twofold.ErrorCode(err) == twofold.CodeRequestNotFound:
					return fmt.Errorf("no approval request %s in application %d", uuid, app.ID)
				case err != nil:
					return err
				}
				// The server's callback dispatcher polls its queue, so the callback goes out
				// within its poll interval though this process cannot wake it.
				if asJSON {
					return json.NewEncoder(env.Stdout).Encode(approvalJSON{UUID: r.UUID, AppID: r.AppID, AuthyID: r.UserID,
						Status: string(r.Status), Reason: r.Reason})
				}
				_, err = fmt.Fprintf(env.Stdout, "approval request %s (application %d, user %d): %s\n", r.UUID, r.AppID, r.UserID, r.Status)
				return err
			})
		},
	}
	cmd.Flags().Int64Var(&appFlag, "app", 0, "the application the request belongs to (default: found from the UUID)")
	cmd.Flags().StringVar(&reason, "reason", "", "why it was denied, as a device may say")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

// approvalApp returns the application named by --app, else the one that has the request.
func approvalApp(ctx context.Context, in *instance, uuid string, id int64) (twofold.App, error) {
	if id != 0 {
		app, err := in.apps.Get(ctx, id)
		if err != nil {
			return twofold.App{}, cliError(err, id)
		}
		return app, nil
	}
	list, err := in.apps.List(ctx)
	if err != nil {
		return twofold.App{}, err
	}
	// UUIDs are random and unique across applications; the store finds them per application,
	// and an installation has few applications.
	for _, app := range list {
		switch _, err := in.store.GetApprovalRequest(ctx, app.ID, uuid); {
		case err == nil:
			return app, nil
		case !errors.Is(err, twofold.ErrNotFound):
			return twofold.App{}, err
		}
	}
	return twofold.App{}, fmt.Errorf("no approval request %s in any application", uuid)
}
