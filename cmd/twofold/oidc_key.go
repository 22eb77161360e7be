package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/signingkeys"
)

// oidcKeyCmd lists and rotates the keys that sign the hosted step's id tokens.
func oidcKeyCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oidc-key",
		Short: "List and rotate the keys that sign the hosted step's id tokens (published at /oauth2/jwks)",
		Long: `The hosted step signs id tokens with RS256 keys kept sealed in the database; every server on
the database uses them. The newest key that has started signs; the key set at /oauth2/jwks
publishes every key that has not started yet, the signing key, and older keys for 7 days after a
newer one started, so verifiers holding a cached key set never meet an unknown key.

  twofold oidc-key list
  twofold oidc-key rotate --start-in 48h   # publish now, sign from the day after tomorrow

Relying parties that cache key sets for long (Entra ID: a day or more) need --start-in longer
than their cache. The first key is made when the server first needs one.`,
	}
	cmd.AddCommand(oidcKeyListCmd(env), oidcKeyRotateCmd(env))
	return cmd
}

type keyJSON struct {
	KeyID     string    `json:"kid"`
	Start     time.Time `json:"start"`
	Signing   bool      `json:"signing"`
	Published bool      `json:"published"`
}

func keyStates(ctx context.Context, k *signingkeys.Keys) ([]keyJSON, error) {
	all, err := k.All(ctx)
	if err != nil {
		return nil, err
	}
	signer, err := k.Signer(ctx)
	if err != nil {
		return nil, err
	}
	published, err := k.Published(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]keyJSON, 0, len(all))
	for _, key := range all {
		j := keyJSON{KeyID: key.ID, Start: key.Start, Signing: key.ID == signer.ID}
		for _, p := range published {
			j.Published = j.Published || p.ID == key.ID
		}
		out = append(out, j)
	}
	return out, nil
}

func printSigningKeys(env Env, keys []keyJSON, asJSON bool) error {
	if asJSON {
		return printJSON(env.Stdout, keys)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tSTARTS\tSTATE")
	for _, k := range keys {
		state := "retired (no longer published)"
		switch {
		case k.Signing:
			state = "signing"
		case k.Published && k.Start.After(time.Now()):
			state = "published, signs from its start"
		case k.Published:
			state = "published (verifies what it signed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.KeyID, k.Start.Local().Format(time.DateTime), state)
	}
	return tw.Flush()
}

func oidcKeyListCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys: which signs, which are published",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				keys, err := keyStates(cmd.Context(), signingkeys.New(in.store, in.keys, in.now))
				if err != nil {
					return err
				}
				return printSigningKeys(env, keys, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func oidcKeyRotateCmd(env Env) *cobra.Command {
	var asJSON bool
	var startIn time.Duration
	cmd := &cobra.Command{
		Use:   "rotate [--start-in DURATION]",
		Short: "Make a new signing key, published at once, signing from now or after --start-in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if startIn < 0 || startIn > 30*24*time.Hour {
				return fmt.Errorf("--start-in %s: want 0 to 720h", startIn)
			}
			return withApps(cmd, env, func(in *instance) error {
				k := signingkeys.New(in.store, in.keys, in.now)
				if _, err := k.Rotate(cmd.Context(), in.now().Add(startIn)); err != nil {
					return err
				}
				keys, err := keyStates(cmd.Context(), k)
				if err != nil {
					return err
				}
				return printSigningKeys(env, keys, asJSON)
			})
		},
	}
	cmd.Flags().DurationVar(&startIn, "start-in", 0, "publish the key now and sign with it from this long from now (e.g. 48h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}
