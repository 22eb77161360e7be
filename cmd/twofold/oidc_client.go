package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// oidcClientCmd manages the hosted second-factor step's clients: the identity providers and
// applications that send users to the step (OpenID Connect, or an Auth0 Action).
func oidcClientCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oidc-client",
		Short: "Manage the clients of the hosted second-factor step (OpenID Connect relying parties, Auth0 Actions)",
		Long: `A client is an identity provider or an application that sends its users to Twofold's hosted
second-factor step mid-login: through OpenID Connect (Okta, Entra ID, any OIDC library) or an
Auth0 Action. It belongs to one application and may name that application's users only.

  twofold oidc-client create --app 1 --name Okta --redirect-uri https://acme.okta.com/oauth2/v1/authorize/callback --user-match email
  twofold oidc-client list
  twofold oidc-client update CLIENT_ID --factors push,totp --rotate-secret
  twofold oidc-client update CLIENT_ID --passwordless   # "sign in with your phone", no password
  twofold oidc-client delete CLIENT_ID --yes

The client secret (and an Auth0 Action's secret) are shown once, when made or rotated.
See docs/hosted-step.md and docs/identity-providers.md.`,
	}
	cmd.AddCommand(oidcClientCreateCmd(env), oidcClientListCmd(env), oidcClientShowCmd(env), oidcClientUpdateCmd(env), oidcClientDeleteCmd(env))
	return cmd
}

// clientFlags are the settings of a client as flags.
type clientFlags struct {
	name, userMatch, factors, hintJWKS, hintIssuer, clientJWKS, auth0Domain string
	redirects                                                               []string
	allowLoginHint, passwordless                                            bool
}

func (f *clientFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "a name operators know the client by")
	fs.StringArrayVar(&f.redirects, "redirect-uri", nil, "where users go back to, matched exactly; repeatable (https, or http to localhost)")
	fs.StringVar(&f.factors, "factors", "", "factors offered, in order: push,totp,sms,call,email (default: all)")
	fs.StringVar(&f.userMatch, "user-match", "", "how the name the client gives finds the user: id (authy_id), custom_id or email (default: id)")
	fs.BoolVar(&f.allowLoginHint, "allow-login-hint", false, "let an unsigned login_hint name the user (else only a signed request object or id_token_hint)")
	fs.StringVar(&f.hintJWKS, "hint-jwks-url", "", "the identity provider's JWKS that signs its id_token_hint (Entra ID)")
	fs.StringVar(&f.hintIssuer, "hint-issuer", "", "the iss an id_token_hint must have (required with --hint-jwks-url)")
	fs.StringVar(&f.clientJWKS, "client-jwks-url", "", "the client's own JWKS: private_key_jwt and request objects signed with its keys")
	fs.StringVar(&f.auth0Domain, "auth0-domain", "", "the Auth0 tenant whose Action sends users (e.g. acme.us.auth0.com); makes the Action's secret")
	fs.BoolVar(&f.passwordless, "passwordless", false, "let users sign in with a passwordless push alone: an authorization request that names no user asks for the username (needs --user-match email or custom_id)")
}

// spec is what the command line gave, as a hostedstep.Spec: only the flags set.
func (f *clientFlags) spec(cmd *cobra.Command) hostedstep.Spec {
	var sp hostedstep.Spec
	changed := cmd.Flags().Changed
	if changed("name") {
		sp.Name = &f.name
	}
	if changed("redirect-uri") {
		sp.RedirectURIs = &f.redirects
	}
	if changed("factors") {
		var list []twofold.Factor
		for _, x := range strings.Split(f.factors, ",") {
			if x = strings.TrimSpace(x); x != "" {
				list = append(list, twofold.Factor(x))
			}
		}
		sp.Factors = &list
	}
	if changed("user-match") {
		m := twofold.UserMatch(f.userMatch)
		sp.UserMatch = &m
	}
	if changed("allow-login-hint") {
		sp.AllowLoginHint = &f.allowLoginHint
	}
	if changed("hint-jwks-url") {
		sp.HintJWKSURL = &f.hintJWKS
	}
	if changed("hint-issuer") {
		sp.HintIssuer = &f.hintIssuer
	}
	if changed("client-jwks-url") {
		sp.ClientJWKSURL = &f.clientJWKS
	}
	if changed("auth0-domain") {
		sp.Auth0Domain = &f.auth0Domain
	}
	if changed("passwordless") {
		sp.Passwordless = &f.passwordless
	}
	return sp
}

// clientJSON is a client as --json prints it; secrets only when just made.
type clientJSON struct {
	ClientID       string    `json:"client_id"`
	AppID          int64     `json:"app_id"`
	Name           string    `json:"name"`
	RedirectURIs   []string  `json:"redirect_uris"`
	Factors        []string  `json:"factors"`
	UserMatch      string    `json:"user_match"`
	AllowLoginHint bool      `json:"allow_login_hint"`
	HintJWKSURL    string    `json:"hint_jwks_url,omitempty"`
	HintIssuer     string    `json:"hint_issuer,omitempty"`
	ClientJWKSURL  string    `json:"client_jwks_url,omitempty"`
	Auth0Domain    string    `json:"auth0_domain,omitempty"`
	Passwordless   bool      `json:"passwordless"`
	Secret         string    `json:"client_secret,omitempty"`
	Auth0Secret    string    `json:"auth0_secret,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toClientJSON(c twofold.StepClient, secret, auth0Secret string) clientJSON {
	out := clientJSON{ClientID: c.ClientID, AppID: c.AppID, Name: c.Name, RedirectURIs: append([]string{}, c.RedirectURIs...),
		Factors: []string{}, UserMatch: string(c.UserMatch), AllowLoginHint: c.AllowLoginHint, HintJWKSURL: c.HintJWKSURL,
		HintIssuer: c.HintIssuer, ClientJWKSURL: c.ClientJWKSURL, Auth0Domain: c.Auth0Domain, Passwordless: c.Passwordless, Secret: secret, Auth0Secret: auth0Secret,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	for _, f := range c.Factors {
		out.Factors = append(out.Factors, string(f))
	}
	return out
}

func printClient(w io.Writer, c twofold.StepClient, secret, auth0Secret string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "client id\t%s\n", c.ClientID)
	if secret != "" {
		fmt.Fprintf(tw, "client secret\t%s\t(shown once: store it now)\n", secret)
	}
	fmt.Fprintf(tw, "application\t%d\n", c.AppID)
	fmt.Fprintf(tw, "name\t%s\n", c.Name)
	for i, u := range c.RedirectURIs {
		label := ""
		if i == 0 {
			label = "redirect URIs"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, u)
	}
	var factors []string
	for _, f := range c.Factors {
		factors = append(factors, string(f))
	}
	fmt.Fprintf(tw, "factors\t%s\n", strings.Join(factors, ", "))
	fmt.Fprintf(tw, "users named by\t%s%s\n", c.UserMatch, map[bool]string{true: " (an unsigned login_hint is allowed)", false: ""}[c.AllowLoginHint])
	if c.HintJWKSURL != "" {
		fmt.Fprintf(tw, "id_token_hint keys\t%s (issuer %s)\n", c.HintJWKSURL, c.HintIssuer)
	}
	if c.ClientJWKSURL != "" {
		fmt.Fprintf(tw, "client keys\t%s\n", c.ClientJWKSURL)
	}
	if c.Auth0Domain != "" {
		fmt.Fprintf(tw, "Auth0 tenant\t%s\n", c.Auth0Domain)
	}
	if c.Passwordless {
		fmt.Fprintf(tw, "passwordless sign-in\tallowed: a request naming no user asks for the username\n")
	}
	if auth0Secret != "" {
		fmt.Fprintf(tw, "Auth0 Action secret\t%s\t(shown once: put it in the Action's secrets)\n", auth0Secret)
	}
	tw.Flush()
}

func showClient(env Env, c twofold.StepClient, secret, auth0Secret string, asJSON bool) error {
	if asJSON {
		return printJSON(env.Stdout, toClientJSON(c, secret, auth0Secret))
	}
	printClient(env.Stdout, c, secret, auth0Secret)
	return nil
}

// clientError says a client id names no client in the CLI's words.
func clientError(err error, id string) error {
	if errors.Is(err, twofold.ErrNotFound) {
		return fmt.Errorf("no step client %q (see: twofold oidc-client list)", id)
	}
	var te *twofold.Error
	if errors.As(err, &te) && len(te.Fields) > 0 {
		var lines []string
		for _, f := range []string{"name", "redirect_uri", "factors", "user_match", "hint_jwks_url", "hint_issuer", "client_jwks_url", "auth0_domain", "passwordless"} {
			if why, ok := te.Fields[f]; ok {
				lines = append(lines, "--"+strings.ReplaceAll(f, "_", "-")+": "+why)
			}
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	return err
}

func stepClients(in *instance) *hostedstep.Clients {
	c := hostedstep.NewClients(in.store, in.keys, in.now)
	c.SetAuditor(in.audit)
	return c
}

func oidcClientCreateCmd(env Env) *cobra.Command {
	var f clientFlags
	var appArg int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --app ID --name NAME --redirect-uri URI [flags]",
		Short: "Make a client; prints its client id and secret (the secret only now)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				made, err := stepClients(in).Create(cmd.Context(), appArg, f.spec(cmd))
				if errors.Is(err, twofold.ErrNotFound) {
					return fmt.Errorf("no application with id %d (see: twofold app list)", appArg)
				}
				if err != nil {
					return clientError(err, "")
				}
				return showClient(env, made.Client, made.Secret, made.Auth0Secret, asJSON)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().Int64Var(&appArg, "app", 0, "the application whose users the client may name")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("app")
	cmd.MarkFlagRequired("name")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

func oidcClientListCmd(env Env) *cobra.Command {
	var appArg int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--app ID]",
		Short: "List the clients (of one application, or all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				list, err := stepClients(in).List(cmd.Context(), appArg)
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]clientJSON, 0, len(list))
					for _, c := range list {
						out = append(out, toClientJSON(c, "", ""))
					}
					return printJSON(env.Stdout, out)
				}
				if len(list) == 0 {
					fmt.Fprintln(env.Stdout, "No step clients yet; make one with: twofold oidc-client create --app ID --name NAME --redirect-uri URI")
					return nil
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT ID\tAPP\tNAME\tUSERS BY\tREDIRECT URIS")
				for _, c := range list {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", c.ClientID, c.AppID, c.Name, c.UserMatch, strings.Join(c.RedirectURIs, " "))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().Int64Var(&appArg, "app", 0, "only this application's clients")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argFilter)
	return cmd
}

func oidcClientShowCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show CLIENT_ID",
		Short: "Show a client's settings (never its secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApps(cmd, env, func(in *instance) error {
				c, err := stepClients(in).Get(cmd.Context(), args[0])
				if err != nil {
					return clientError(err, args[0])
				}
				return showClient(env, c, "", "", asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func oidcClientUpdateCmd(env Env) *cobra.Command {
	var f clientFlags
	var rot hostedstep.Rotation
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID [flags]",
		Short: "Change a client's settings (only the flags given) or rotate its secrets",
		Long: `Change a client's settings: only the flags given change (--redirect-uri replaces the whole
list). --rotate-secret gives the client a new client secret and --rotate-auth0-secret a new
Auth0 Action secret, printed once; the old ones stop working at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApps(cmd, env, func(in *instance) error {
				up, err := stepClients(in).Update(cmd.Context(), args[0], f.spec(cmd), rot)
				if err != nil {
					return clientError(err, args[0])
				}
				return showClient(env, up.Client, up.Secret, up.Auth0Secret, asJSON)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&rot.Secret, "rotate-secret", false, "make a new client secret (printed once)")
	cmd.Flags().BoolVar(&rot.Auth0Secret, "rotate-auth0-secret", false, "make a new Auth0 Action secret (printed once)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

func oidcClientDeleteCmd(env Env) *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "delete CLIENT_ID --yes",
		Short: "Delete a client: its secrets stop working and its users' steps in progress end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApps(cmd, env, func(in *instance) error {
				cs := stepClients(in)
				c, err := cs.Get(cmd.Context(), args[0])
				if err != nil {
					return clientError(err, args[0])
				}
				if !yes {
					return fmt.Errorf("this deletes step client %s (%q): its relying party can no longer send users; run again with --yes", c.ClientID, c.Name)
				}
				if err := cs.Delete(cmd.Context(), c.ClientID); err != nil {
					return clientError(err, args[0])
				}
				if asJSON {
					return printJSON(env.Stdout, map[string]any{"client_id": c.ClientID, "deleted": true})
				}
				fmt.Fprintf(env.Stdout, "Deleted step client %s (%s).\n", c.ClientID, c.Name)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete, for good")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argConfirm, "yes")
	return cmd
}
