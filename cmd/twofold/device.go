package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/vault"
)

// deviceCmd is the command-line authenticator: it keeps OneTouch devices and TOTP accounts in
// an encrypted vault, shows codes and answers approval requests.
func deviceCmd(env Env) *cobra.Command {
	o := &deviceOpts{env: env}
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Command-line authenticator: enrol, codes, watch and answer OneTouch requests",
		Long: `A command-line authenticator for Twofold (and any otpauth:// TOTP account).

It keeps its devices and accounts in one encrypted file, the vault (AES-256-GCM under a key
derived from a passphrase with argon2id; mode 0600): --vault, else $TWOFOLD_VAULT, else
~/.config/twofold/vault. The passphrase is read from $TWOFOLD_VAULT_PASSPHRASE, or asked on
the terminal.

  twofold device enrol 'authy://account?token=...' --server https://2fa.example.com
  twofold device enrol 'https://2fa.example.com/authenticator/#register=tfr_...'
  twofold device enrol --qr code.png
  twofold device codes
  twofold device watch           # answer approval requests as they arrive`,
	}
	cmd.PersistentFlags().StringVar(&o.vaultPath, "vault", defaultVaultPath(env), "vault file")
	setting(cmd.PersistentFlags(), "vault")
	cmd.AddCommand(deviceEnrolCmd(o), deviceListCmd(o), deviceCodesCmd(o), deviceWatchCmd(o),
		deviceAnswerCmd(o, "approved"), deviceAnswerCmd(o, "denied"), deviceRemoveCmd(o))
	return cmd
}

// deviceOpts is what the device subcommands share.
type deviceOpts struct {
	env       Env
	vaultPath string
}

func defaultVaultPath(env Env) string {
	if x := env.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "twofold", "vault")
	}
	home := env.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "twofold", "vault")
}

func (o *deviceOpts) path() (string, error) {
	if o.vaultPath == "" {
		return "", errors.New("no vault path: pass --vault FILE or set TWOFOLD_VAULT")
	}
	return o.vaultPath, nil
}

// passphrase reads the vault passphrase from the environment or, on a terminal, asks for it
// (twice for a new vault).
func (o *deviceOpts) passphrase(path string, confirm bool) ([]byte, error) {
	if p := o.env.Getenv("TWOFOLD_VAULT_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	f, ok := o.env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("the vault %s needs its passphrase: set TWOFOLD_VAULT_PASSPHRASE, or run on a terminal to be asked for it", path)
	}
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(o.env.Stderr, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(o.env.Stderr)
		return p, err
	}
	prompt := "Passphrase for " + path + ": "
	if confirm {
		prompt = "New passphrase for the vault " + path + ": "
	}
	p, err := ask(prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("the passphrase must not be empty")
	}
	if confirm {
		again, err := ask("Repeat the passphrase: ")
		if err != nil {
			return nil, err
		}
		if string(again) != string(p) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

// open opens the existing vault.
func (o *deviceOpts) open() (*vault.Vault, error) {
	path, err := o.path()
	if err != nil {
		return nil, err
	}
	if ok, err := vault.Exists(path); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("no vault at %s yet: add an account with 'twofold device enrol LINK' (or choose the vault with --vault or TWOFOLD_VAULT)", path)
	}
	pass, err := o.passphrase(path, false)
	if err != nil {
		return nil, err
	}
	return vault.Open(path, pass)
}

// update runs fn on the vault under its lock and saves it when fn succeeds. With create, a
// missing vault is made (with a new passphrase).
func (o *deviceOpts) update(create bool, fn func(v *vault.Vault) error) error {
	path, err := o.path()
	if err != nil {
		return err
	}
	unlock, err := vault.Lock(path)
	if err != nil {
		return fmt.Errorf("locking the vault: %w", err)
	}
	defer unlock()
	v, err := o.open()
	if _, serr := os.Stat(path); err != nil && create && errors.Is(serr, fs.ErrNotExist) {
		var pass []byte
		if pass, err = o.passphrase(path, true); err != nil {
			return err
		}
		v, err = vault.Create(path, pass, vault.DefaultParams)
	}
	if err != nil {
		return err
	}
	if err := fn(v); err != nil {
		return err
	}
	return v.Save()
}

// vaultEntry is one account of the vault as the commands number it: devices first, then TOTP
// accounts, from 1.
type vaultEntry struct {
	index   int
	device  *vault.Device
	account *vault.Account
	pos     int // index in Devices or Accounts
}

func vaultEntries(v *vault.Vault) []vaultEntry {
	var out []vaultEntry
	for i := range v.Devices {
		out = append(out, vaultEntry{index: len(out) + 1, device: &v.Devices[i], pos: i})
	}
	for i := range v.Accounts {
		out = append(out, vaultEntry{index: len(out) + 1, account: &v.Accounts[i], pos: i})
	}
	return out
}

func (e vaultEntry) kind() string {
	if e.device != nil {
		return "device"
	}
	return "totp"
}

func (e vaultEntry) label() string {
	if d := e.device; d != nil {
		return fmt.Sprintf("%s (authy id %d)", termSafe(d.AppName), d.AuthyID)
	}
	if a := e.account; a.Issuer != "" {
		return termSafe(a.Issuer + ":" + a.Account)
	}
	return termSafe(e.account.Account)
}

func (e vaultEntry) totp() otp.TOTP {
	if d := e.device; d != nil {
		return otp.TOTP{Secret: d.TOTPSecret, Digits: d.Digits, Period: d.Period, Algorithm: otp.SHA1}
	}
	a := e.account
	return otp.TOTP{Secret: a.Secret, Digits: a.Digits, Period: a.Period, Algorithm: otp.Algorithm(a.Algorithm)}
}

// names are what an account may be called on the command line besides its number.
func (e vaultEntry) names() []string {
	if d := e.device; d != nil {
		return []string{e.label(), d.AppName}
	}
	return []string{e.label(), e.account.Issuer, e.account.Account}
}

// selectEntry finds the account called arg: its number in 'device list', or its name (exactly,
// else as a unique part of one), case-insensitively. kind limits the search ("" for any).
func selectVaultEntry(v *vault.Vault, arg, kind string) (vaultEntry, error) {
	all := vaultEntries(v)
	var list []vaultEntry
	for _, e := range all {
		if kind == "" || e.kind() == kind {
			list = append(list, e)
		}
	}
	if n, err := strconv.Atoi(arg); err == nil && n >= 1 && n <= len(all) {
		if e := all[n-1]; kind == "" || e.kind() == kind {
			return e, nil
		}
		return vaultEntry{}, fmt.Errorf("account %d is not a %s", n, kind)
	}
	for _, exact := range []bool{true, false} {
		var found []vaultEntry
		for _, e := range list {
			for _, name := range e.names() {
				if name != "" && (strings.EqualFold(name, arg) || !exact && strings.Contains(strings.ToLower(name), strings.ToLower(arg))) {
					found = append(found, e)
					break
				}
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			var names []string
			for _, e := range found {
				names = append(names, fmt.Sprintf("%d %s", e.index, e.label()))
			}
			return vaultEntry{}, fmt.Errorf("%q matches several accounts (%s): give its number", arg, strings.Join(names, ", "))
		}
	}
	return vaultEntry{}, fmt.Errorf("no account %q in the vault (see: twofold device list)", arg)
}

// accountJSON is an account as list --json prints it: never its secrets.
type accountJSON struct {
	Index     int       `json:"index"`
	Type      string    `json:"type"`
	Name      string    `json:"name"`
	Server    string    `json:"server,omitempty"`
	AppName   string    `json:"app_name,omitempty"`
	AppID     int64     `json:"app_id,omitempty"`
	AuthyID   int64     `json:"authy_id,omitempty"`
	DeviceID  int64     `json:"device_id,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	Account   string    `json:"account,omitempty"`
	Digits    int       `json:"digits"`
	Period    int       `json:"period"`
	Algorithm string    `json:"algorithm"`
	AddedAt   time.Time `json:"added_at"`
}

func vaultEntryJSON(e vaultEntry) accountJSON {
	t := e.totp()
	j := accountJSON{Index: e.index, Type: e.kind(), Name: e.label(), Digits: t.Digits, Period: t.Period, Algorithm: string(t.Algorithm)}
	if d := e.device; d != nil {
		j.Server, j.AppName, j.AppID, j.AuthyID, j.DeviceID, j.AddedAt = d.Server, d.AppName, d.AppID, d.AuthyID, d.DeviceID, d.AddedAt
	} else {
		j.Issuer, j.Account, j.AddedAt = e.account.Issuer, e.account.Account, e.account.AddedAt
	}
	return j
}

func deviceListCmd(o *deviceOpts) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the vault's devices and TOTP accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := o.open()
			if err != nil {
				return err
			}
			list := vaultEntries(v)
			if asJSON {
				out := make([]accountJSON, 0, len(list))
				for _, e := range list {
					out = append(out, vaultEntryJSON(e))
				}
				return printJSON(o.env.Stdout, out)
			}
			if len(list) == 0 {
				fmt.Fprintln(o.env.Stdout, "The vault is empty; add an account with: twofold device enrol LINK")
				return nil
			}
			tw := tabwriter.NewWriter(o.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tTYPE\tNAME\tDETAILS")
			for _, e := range list {
				j := vaultEntryJSON(e)
				details := fmt.Sprintf("%d digits, %ds, %s", j.Digits, j.Period, j.Algorithm)
				if e.device != nil {
					details = fmt.Sprintf("device %d at %s; codes: %d digits, %ds", j.DeviceID, j.Server, j.Digits, j.Period)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.index, e.kind(), j.Name, details)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

// codeJSON is one current code.
type codeJSON struct {
	Index       int    `json:"index"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	Code        string `json:"code"`
	SecondsLeft int    `json:"seconds_left"`
	Period      int    `json:"period"`
}

func deviceCodesCmd(o *deviceOpts) *cobra.Command {
	var asJSON, codeOnly bool
	cmd := &cobra.Command{
		Use:   "codes [ACCOUNT]",
		Short: "Print the current code of every account (or of one), with the seconds it has left",
		Long: `Print the current code of every account: the TOTP accounts' and each device's own seed
(which the application's verify accepts), with the seconds each code has left.
ACCOUNT is a number from 'twofold device list' or a name. --code prints only the code of
ACCOUNT (which may be left out when the vault holds one account), for scripts:

  CODE=$(twofold device codes 1 --code)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := o.open()
			if err != nil {
				return err
			}
			list := vaultEntries(v)
			if codeOnly && len(args) == 0 && len(list) != 1 {
				return fmt.Errorf("--code prints one account's code and the vault holds %d: name one (see: twofold device list)", len(list))
			}
			if len(args) == 1 {
				e, err := selectVaultEntry(v, args[0], "")
				if err != nil {
					return err
				}
				list = []vaultEntry{e}
			}
			now := time.Now()
			out := make([]codeJSON, 0, len(list))
			for _, e := range list {
				t := e.totp()
				period := t.Period
				if period <= 0 {
					period = otp.DefaultPeriod
				}
				out = append(out, codeJSON{Index: e.index, Type: e.kind(), Name: e.label(), Code: t.Code(now),
					SecondsLeft: period - int(now.Unix()%int64(period)), Period: period})
			}
			if codeOnly {
				fmt.Fprintln(o.env.Stdout, out[0].Code)
				return nil
			}
			if asJSON {
				return printJSON(o.env.Stdout, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(o.env.Stdout, "The vault is empty; add an account with: twofold device enrol LINK")
				return nil
			}
			tw := tabwriter.NewWriter(o.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tNAME\tCODE\tLEFT")
			for _, c := range out {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%ds\n", c.Index, c.Name, c.Code, c.SecondsLeft)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&codeOnly, "code", false, "print only the code of ACCOUNT")
	cmd.MarkFlagsMutuallyExclusive("json", "code")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func deviceRemoveCmd(o *deviceOpts) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove [ACCOUNT]",
		Short: "Remove a device (from the server, then the vault) or a TOTP account",
		Long: `Remove an account from the vault. A device is first removed from its server
(DELETE /device/v1/device), so its key and token stop working; --force drops it from the vault
even when the server cannot be reached. ACCOUNT is a number from 'twofold device list' or a
name; it may be left out when the vault holds a single account.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client := newHTTPClient()
			defer client.CloseIdleConnections()
			var label string
			err := o.update(false, func(v *vault.Vault) error {
				var e vaultEntry
				switch all := vaultEntries(v); {
				case len(args) == 1:
					var err error
					if e, err = selectVaultEntry(v, args[0], ""); err != nil {
						return err
					}
				case len(all) == 1:
					e = all[0]
				case len(all) == 0:
					return errors.New("the vault is empty")
				default:
					return errors.New("which account? give its number or name (see: twofold device list)")
				}
				label = e.label()
				if d := e.device; d != nil {
					err := forDevice(client, *d).call(cmd.Context(), "DELETE", "/device/v1/device", nil, nil)
					switch {
					case isAPIError(err, twofold.CodeInvalidAccessKey, twofold.CodeDeviceNotFound):
						fmt.Fprintf(o.env.Stderr, "The server no longer knows this device (%v); dropping it from the vault.\n", err)
					case err != nil && force:
						fmt.Fprintf(o.env.Stderr, "Could not remove the device from %s (%v); dropping it from the vault anyway.\n", d.Server, err)
					case err != nil:
						return fmt.Errorf("removing the device from %s: %w (--force drops it from the vault anyway)", d.Server, err)
					}
					v.Devices = append(v.Devices[:e.pos], v.Devices[e.pos+1:]...)
				} else {
					v.Accounts = append(v.Accounts[:e.pos], v.Accounts[e.pos+1:]...)
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "Removed %s.\n", label)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "drop a device from the vault even if the server cannot remove it")
	argument(cmd.Flags(), argConfirm)
	return cmd
}
