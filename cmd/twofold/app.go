package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func appCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Manage applications (works while the server runs)",
	}
	cmd.AddCommand(appCreateCmd(env), appListCmd(env), appShowCmd(env), appKeyCmd(env), appUpdateCmd(env), appRotateCmd(env), appDeleteCmd(env),
		appTwilioCmd(env))
	return cmd
}

// appJSON is an application as the CLI prints it with --json.
type appJSON struct {
	AppID             int64             `json:"app_id"`
	Name              string            `json:"name"`
	APIKey            string            `json:"api_key,omitempty"`
	Sandbox           bool              `json:"sandbox"`
	Console           bool              `json:"console"` // the console's own application: its users are the operators
	TokenLength       int               `json:"token_length"`
	TOTPDigits        int               `json:"totp_digits"`
	TOTPPeriod        int               `json:"totp_period"`
	TOTPWindow        int               `json:"totp_window"`
	SMSEnabled        bool              `json:"sms_enabled"`
	CallEnabled       bool              `json:"call_enabled"`
	UnconfirmedBypass bool              `json:"unconfirmed_bypass"`
	CallbackURL       string            `json:"callback_url"`
	CallbackMethod    string            `json:"callback_method"`
	CallbackExpired   bool              `json:"callback_expired"`
	CallbackDisabled  bool              `json:"callback_disabled"`
	CallbackFailures  int               `json:"callback_failures"`
	CallbackLastError string            `json:"callback_last_error,omitempty"`
	ContactEmail      string            `json:"contact_email"`
	NumberMatching    bool              `json:"number_matching"`
	DeviceTOTPPeriod  int               `json:"device_totp_period"`
	AllowedCountries  []string          `json:"allowed_countries"`
	CustomMessages    bool              `json:"custom_messages"`
	CustomCodes       bool              `json:"custom_codes"`
	MigrationTools    bool              `json:"migration_tools"` // users/{id}/phone_number and users/{id}/secret/export answer
	LogoURL           string            `json:"logo_url"`        // shown on the hosted step; "" for none
	SMSProvider       string            `json:"sms_provider"`    // "" means the server's default
	CallProvider      string            `json:"call_provider"`   // "" means the server's default
	EmailProvider     string            `json:"email_provider"`  // "" means the server's default
	Limits            map[string]string `json:"limits"`          // the application's own limits, by kind; others are the server's
	// Passkeys: the relying party id ("" when off), origins, user verification, usernameless.
	PasskeyRPID         string    `json:"passkey_rp_id"`
	PasskeyOrigins      []string  `json:"passkey_origins"` // what assertions may come from
	PasskeyUV           string    `json:"passkey_user_verification"`
	PasskeyUsernameless bool      `json:"passkey_usernameless"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

func toJSON(a twofold.App, key string) appJSON {
	j := appJSON{
		AppID: a.ID, Name: a.Name, APIKey: key, Sandbox: a.Sandbox, Console: a.Console, TokenLength: a.TokenLength,
		TOTPDigits: a.TOTPDigits, TOTPPeriod: a.TOTPPeriod, TOTPWindow: a.TOTPSkew, SMSEnabled: a.SMSEnabled,
		CallEnabled: a.CallEnabled, UnconfirmedBypass: a.UnconfirmedBypass, CallbackURL: a.CallbackURL,
		CallbackMethod: a.CallbackMethod, ContactEmail: a.ContactEmail, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		CallbackExpired: a.CallbackExpired, CallbackDisabled: a.CallbackDisabled(), CallbackFailures: a.CallbackFailures,
		CallbackLastError: a.CallbackLastError, NumberMatching: a.NumberMatching, DeviceTOTPPeriod: a.DeviceTOTPPeriod,
		AllowedCountries: append([]string{}, a.AllowedCountries...), CustomMessages: a.CustomMessages,
		CustomCodes: a.CustomCodes, MigrationTools: a.MigrationTools, LogoURL: a.LogoURL, SMSProvider: a.Provider(twofold.SMS), CallProvider: a.Provider(twofold.Call),
		EmailProvider: a.Provider(twofold.Email), Limits: map[string]string{},
		PasskeyRPID: a.PasskeyRPID, PasskeyOrigins: append([]string{}, a.PasskeyAllowedOrigins()...), PasskeyUV: a.PasskeyUserVerification(),
		PasskeyUsernameless: a.PasskeyUsernameless,
	}
	for k, l := range a.Limits {
		j.Limits[string(k)] = l.String()
	}
	return j
}

// ownLimits lists an application's own limits; the rest are the server's.
func ownLimits(m map[string]string) string {
	var parts []string
	for _, k := range twofold.LimitKinds {
		if v, ok := m[string(k)]; ok {
			parts = append(parts, string(k)+" "+v)
		}
	}
	if len(parts) == 0 {
		return "the server's"
	}
	return strings.Join(parts, ", ") + " (others: the server's)"
}

func orDefault(provider string) string {
	if provider == "" {
		return "(server default)"
	}
	return provider
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// showApp prints one application, as JSON or for people.
func showApp(env Env, a twofold.App, key string, asJSON bool) error {
	if asJSON {
		return printJSON(env.Stdout, toJSON(a, key))
	}
	printApp(env.Stdout, a, key)
	return nil
}

// printApp prints one application for people, with its key when given.
func printApp(w io.Writer, a twofold.App, key string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	j := toJSON(a, key)
	rows := [][2]string{
		{"app id", strconv.FormatInt(j.AppID, 10)},
		{"name", j.Name},
	}
	if key != "" {
		rows = append(rows, [2]string{"api key", key})
	}
	mode := "live"
	if a.Console {
		mode = "console (its users are the operators; see twofold admin)"
	}
	if a.Sandbox {
		mode = "SANDBOX (nothing delivered; token 0000000 always verifies)"
	}
	callback := j.CallbackURL
	switch {
	case callback == "":
		callback = "(none)"
	case a.CallbackDisabled():
		callback = fmt.Sprintf("%s %s — DISABLED since %s after %d failed deliveries (last: %s); re-enable with: twofold app update %d --callback-enabled",
			j.CallbackMethod, callback, a.CallbackDisabledAt.Format(time.RFC3339), a.CallbackFailures, a.CallbackLastError, a.ID)
	default:
		callback = j.CallbackMethod + " " + callback
		if a.CallbackFailures > 0 {
			callback += fmt.Sprintf(" (%d recent failures; last: %s)", a.CallbackFailures, a.CallbackLastError)
		}
	}
	rows = append(rows,
		[2]string{"mode", mode},
		[2]string{"token length", strconv.Itoa(j.TokenLength)},
		[2]string{"totp", fmt.Sprintf("%d digits, %ds period, window ±%d", j.TOTPDigits, j.TOTPPeriod, j.TOTPWindow)},
		[2]string{"sms", onOff(j.SMSEnabled)},
		[2]string{"calls", onOff(j.CallEnabled)},
		[2]string{"unconfirmed bypass", onOff(j.UnconfirmedBypass)},
		[2]string{"number matching", onOff(j.NumberMatching)},
		[2]string{"sends to", countries(j.AllowedCountries)},
		[2]string{"providers", fmt.Sprintf("sms %s, calls %s, email %s", orDefault(j.SMSProvider), orDefault(j.CallProvider),
			orDefault(j.EmailProvider))},
		[2]string{"limits", ownLimits(j.Limits)},
		[2]string{"phone verification", fmt.Sprintf("custom messages %s, custom codes %s", onOff(j.CustomMessages), onOff(j.CustomCodes))},
		[2]string{"device codes", fmt.Sprintf("%d digits, %ds period", j.TokenLength, j.DeviceTOTPPeriod)},
		[2]string{"migration exports", onOff(j.MigrationTools)},
		[2]string{"logo", j.LogoURL},
		[2]string{"passkeys", passkeysLine(j)},
		[2]string{"callback", callback},
		[2]string{"contact email", j.ContactEmail},
		[2]string{"created", j.CreatedAt.Format(time.RFC3339)},
	)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

func passkeysLine(j appJSON) string {
	if j.PasskeyRPID == "" {
		return "off (no relying party id: --passkey-rp-id)"
	}
	return fmt.Sprintf("rp id %s, origins %s, user verification %s, usernameless %s", j.PasskeyRPID,
		strings.Join(j.PasskeyOrigins, " "), j.PasskeyUV, onOff(j.PasskeyUsernameless))
}

func countries(list []string) string {
	if len(list) == 0 {
		return "all countries"
	}
	return strings.Join(list, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// withApps opens the data directory for a short CLI command. Its logs go to stderr, quietly;
// the audit trail records what it changes as done by "cli".
func withApps(cmd *cobra.Command, env Env, fn func(*instance) error) error {
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := open(cmd.Context(), cmd, env, log, false)
	if err != nil {
		return err
	}
	defer in.Close()
	cmd.SetContext(audit.WithActor(cmd.Context(), "cli")) // what the command does is the operator's
	return fn(in)
}

func appID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not an application id", arg)
	}
	return id, nil
}

// cliError turns store and validation errors into messages for a person.
func cliError(err error, id int64) error {
	switch {
	case errors.Is(err, twofold.ErrNotFound):
		return fmt.Errorf("no application with id %d (see: twofold app list)", id)
	case errors.Is(err, apps.ErrInvalid):
		return err
	}
	return err
}

func appCreateCmd(env Env) *cobra.Command {
	var name, key string
	var sandbox, asJSON bool
	cmd := &cobra.Command{
		Use:   "create --name NAME [--api-key KEY] [--sandbox]",
		Short: "Create an application and print its API key",
		Long: `Create an application and print its API key. The key is shown here and by
'app show --show-key'; it is stored sealed and looked up by keyed hash.

--api-key imports an existing Authy API key (32 letters and digits), so an application moving
from Authy keeps its key. --sandbox makes a test application that behaves as Authy's sandbox:
nothing is delivered, the token 0000000 verifies for every user, any phone number of 7 to 15
digits is taken, and approval requests for users without a device wait for 'twofold approval
answer' (see docs/api.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				a, k, err := in.apps.Create(cmd.Context(), apps.CreateParams{Name: name, APIKey: key, Sandbox: sandbox})
				if err != nil {
					return err
				}
				return showApp(env, a, k, asJSON)
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "application name (required)")
	cmd.Flags().StringVar(&key, "api-key", "", "import this existing Authy API key instead of making one")
	cmd.Flags().BoolVar(&sandbox, "sandbox", false, "sandbox application: deliver nothing; token 0000000 always verifies")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("name")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

func appListCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List applications",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApps(cmd, env, func(in *instance) error {
				list, err := in.apps.List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]appJSON, 0, len(list))
					for _, a := range list {
						out = append(out, toJSON(a, ""))
					}
					return printJSON(env.Stdout, out)
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tMODE\tCREATED")
				for _, a := range list {
					mode := "live"
					if a.Sandbox {
						mode = "SANDBOX"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", a.ID, a.Name, mode, a.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func appShowCmd(env Env) *cobra.Command {
	var asJSON, showKey bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an application's settings (and, with --show-key, its API key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, env, args[0], showKey, func(a twofold.App, key string) error { return showApp(env, a, key, asJSON) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&showKey, "show-key", false, "also print the API key")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), "prints a secret: asked for on purpose each time", "show-key")
	return cmd
}

func appKeyCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "key ID",
		Short: "Print an application's API key alone, for scripts: KEY=$(twofold app key 1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, env, args[0], true, func(_ twofold.App, key string) error {
				_, err := fmt.Fprintln(env.Stdout, key)
				return err
			})
		},
	}
}

// withApp runs fn with the application the argument names and, when reveal is set, its API key.
func withApp(cmd *cobra.Command, env Env, arg string, reveal bool, fn func(a twofold.App, key string) error) error {
	id, err := appID(arg)
	if err != nil {
		return err
	}
	return withApps(cmd, env, func(in *instance) error {
		a, err := in.apps.Get(cmd.Context(), id)
		if err != nil {
			return cliError(err, id)
		}
		key := ""
		if reveal {
			if key, err = in.apps.Reveal(a); err != nil {
				return err
			}
		}
		return fn(a, key)
	})
}

func appRotateCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-key ID",
		Short: "Give an application a new API key; the old key stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := appID(args[0])
			if err != nil {
				return err
			}
			return withApps(cmd, env, func(in *instance) error {
				a, key, err := in.apps.RotateKey(cmd.Context(), id)
				if err != nil {
					return cliError(err, id)
				}
				return showApp(env, a, key, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func appDeleteCmd(env Env) *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "delete ID --yes",
		Short: "Delete an application with its users, devices, codes, requests, callbacks and messages",
		Long: `Delete an application and everything it owns: its users (their ids, phones and seeds),
devices, codes, approval requests, callbacks and outbox messages. Its API key stops working at
once. The audit trail keeps the deletion. This cannot be undone, so it asks for --yes; the
console's own application (its users are the operators) cannot be deleted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := appID(args[0])
			if err != nil {
				return err
			}
			return withApps(cmd, env, func(in *instance) error {
				a, err := in.apps.Get(cmd.Context(), id)
				if err != nil {
					return cliError(err, id)
				}
				if !yes {
					return fmt.Errorf("this deletes application %d (%q) with all its users and data, for good: run again with --yes", id, a.Name)
				}
				if err := in.apps.Delete(cmd.Context(), id); err != nil {
					return cliError(err, id)
				}
				if asJSON {
					return json.NewEncoder(env.Stdout).Encode(map[string]any{"app_id": id, "name": a.Name, "deleted": true})
				}
				_, err = fmt.Fprintf(env.Stdout, "Deleted application %d (%q).\n", id, a.Name)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete, for good")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argConfirm, "yes")
	argument(cmd.Flags(), argOutput, "json")
	return cmd
}
