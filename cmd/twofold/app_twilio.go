package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// twofold app twilio-credentials: an application's credentials for the Verify API (/v2, see
// docs/verify-v2.md), in Twilio's shape: one account SID with an auth token, and API keys. Tokens
// and secrets are printed once, when they are made.

func appTwilioCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "twilio-credentials",
		Aliases: []string{"twilio"},
		Short:   "Manage an application's credentials for the Twilio Verify API (/v2)",
		Long: `An application's credentials for the Twilio Verify v2 API that twofold serve answers under
/v2 (docs/verify-v2.md): an account SID (AC and 32 hex digits) with an auth token, and any number
of API keys (SK…) with a secret, used as Twilio's are: HTTP Basic, the SID as user name. Tokens
and secrets are printed once, when they are made; keep them where your application reads its
Twilio credentials.`,
	}
	cmd.AddCommand(twilioCreateCmd(env), twilioShowCmd(env), twilioRotateCmd(env), twilioKeyCmd(env), twilioRevokeCmd(env))
	return cmd
}

// twilioJSON is an application's Twilio credentials as the CLI prints them with --json.
type twilioJSON struct {
	AppID      int64           `json:"app_id"`
	AccountSID string          `json:"account_sid"`
	AuthToken  string          `json:"auth_token,omitempty"` // only when made now
	APIKeys    []twilioKeyJSON `json:"api_keys"`
}

type twilioKeyJSON struct {
	SID       string    `json:"sid"`
	Name      string    `json:"name"`
	Secret    string    `json:"secret,omitempty"` // only when made now
	CreatedAt time.Time `json:"created_at"`
}

func twilioCreateCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Give an application its account SID and auth token (printed once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTwilio(cmd, env, args[0], func(in *instance, id int64) error {
				acct, token, err := in.apps.CreateTwilioAccount(cmd.Context(), id)
				if err != nil {
					return cliError(err, id)
				}
				return printTwilio(env, in, cmd, acct, token, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func twilioShowCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an application's account SID and API key SIDs (never their secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTwilio(cmd, env, args[0], func(in *instance, id int64) error {
				return printTwilio(env, in, cmd, twofold.TwilioCredential{AppID: id}, "", asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func twilioRotateCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-token ID",
		Short: "Give an application's account a new auth token (printed once); the old one stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTwilio(cmd, env, args[0], func(in *instance, id int64) error {
				acct, token, err := in.apps.RotateTwilioToken(cmd.Context(), id)
				if err != nil {
					return noAccount(err, id)
				}
				return printTwilio(env, in, cmd, acct, token, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func twilioKeyCmd(env Env) *cobra.Command {
	var asJSON bool
	var name string
	cmd := &cobra.Command{
		Use:   "create-key ID [--name NAME]",
		Short: "Give an application a new API key (its secret printed once)",
		Long: `Give an application a new API key: an SK… SID and a secret, printed once. Use it as Twilio's
API keys are used, with the account SID beside it (twilio-node: twilio(keySid, secret,
{accountSid})).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTwilio(cmd, env, args[0], func(in *instance, id int64) error {
				key, secret, err := in.apps.CreateTwilioKey(cmd.Context(), id, name)
				if err != nil {
					return cliError(err, id)
				}
				acct, err := in.store.TwilioAccount(cmd.Context(), id)
				if err != nil {
					return err
				}
				k := twilioKeyJSON{SID: key.SID, Name: key.Name, Secret: secret, CreatedAt: key.CreatedAt}
				if asJSON {
					return printJSON(env.Stdout, struct {
						AppID      int64  `json:"app_id"`
						AccountSID string `json:"account_sid"`
						twilioKeyJSON
					}{id, acct.SID, k})
				}
				_, err = fmt.Fprintf(env.Stdout, "API key of application %d:\n  Account SID:  %s\n  API key SID:  %s\n  Secret:       %s  (shown once: keep it now)\n",
					id, acct.SID, key.SID, secret)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&name, "name", "", "a friendly name for the key (at most 64 characters)")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget, "name")
	return cmd
}

func twilioRevokeCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-key ID SID",
		Short: "Remove one of an application's API keys; it stops working at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTwilio(cmd, env, args[0], func(in *instance, id int64) error {
				if err := in.apps.RevokeTwilioKey(cmd.Context(), id, args[1]); err != nil {
					if errors.Is(err, twofold.ErrNotFound) {
						return fmt.Errorf("application %d has no API key %s (see: twofold app twilio-credentials show %d)", id, args[1], id)
					}
					return err
				}
				_, err := fmt.Fprintf(env.Stdout, "Revoked API key %s of application %d.\n", args[1], id)
				return err
			})
		},
	}
}

// withTwilio runs fn with the application the argument names, which must exist.
func withTwilio(cmd *cobra.Command, env Env, arg string, fn func(in *instance, id int64) error) error {
	id, err := appID(arg)
	if err != nil {
		return err
	}
	return withApps(cmd, env, func(in *instance) error {
		if _, err := in.apps.Get(cmd.Context(), id); err != nil {
			return cliError(err, id)
		}
		return fn(in, id)
	})
}

func noAccount(err error, id int64) error {
	if errors.Is(err, twofold.ErrNotFound) {
		return fmt.Errorf("application %d has no Twilio account SID yet: run twofold app twilio-credentials create %d", id, id)
	}
	return err
}

// printTwilio prints the application's credentials; token is the auth token just made, if any.
func printTwilio(env Env, in *instance, cmd *cobra.Command, acct twofold.TwilioCredential, token string, asJSON bool) error {
	list, err := in.apps.TwilioCredentials(cmd.Context(), acct.AppID)
	if err != nil {
		return err
	}
	out := twilioJSON{AppID: acct.AppID, AuthToken: token, APIKeys: []twilioKeyJSON{}}
	for _, c := range list {
		if c.Kind == twofold.TwilioAccount {
			out.AccountSID = c.SID
		} else {
			out.APIKeys = append(out.APIKeys, twilioKeyJSON{SID: c.SID, Name: c.Name, CreatedAt: c.CreatedAt})
		}
	}
	if out.AccountSID == "" {
		return noAccount(twofold.ErrNotFound, acct.AppID)
	}
	if asJSON {
		return printJSON(env.Stdout, out)
	}
	printTwilioText(env.Stdout, out)
	return nil
}

func printTwilioText(w io.Writer, c twilioJSON) {
	fmt.Fprintf(w, "Twilio Verify API credentials of application %d (HTTP Basic; docs/verify-v2.md):\n", c.AppID)
	fmt.Fprintf(w, "  Account SID:  %s\n", c.AccountSID)
	if c.AuthToken != "" {
		fmt.Fprintf(w, "  Auth token:   %s  (shown once: keep it now)\n", c.AuthToken)
	}
	if len(c.APIKeys) == 0 {
		fmt.Fprintln(w, "  API keys:     none (twofold app twilio-credentials create-key ID)")
	}
	for i, k := range c.APIKeys {
		label := "  API keys:     "
		if i > 0 {
			label = "                "
		}
		fmt.Fprintf(w, "%s%s  %q  created %s\n", label, k.SID, k.Name, k.CreatedAt.Format(time.RFC3339))
	}
}
