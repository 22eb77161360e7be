package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

func adminCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the operators who sign in to the console",
		Long: `Manage operators: the people who sign in to this server's console. Passwords are hashed with
argon2id; five wrong passwords in a row lock sign-in for 15 minutes. On a terminal the
password is asked for twice; otherwise the first line of standard input is the password:

  printf '%s\n' "$PASSWORD" | twofold admin create ana@example.com`,
	}
	cmd.AddCommand(adminCreateCmd(env), adminEnrolCmd(env), adminListCmd(env), adminPasswordCmd(env), adminRemoveCmd(env))
	return cmd
}

func withOperators(cmd *cobra.Command, env Env, fn func(*operators.Service) error) error {
	return withApps(cmd, env, func(in *instance) error { return fn(operators.New(in.store, in.now)) })
}

// consoleFactors is the operators' second factor over this instance's services. ot may be nil
// where no push is sent (the CLI).
func consoleFactors(in *instance, v *verify.Service, d *devices.Service, ot *onetouch.Service) *console.Factors {
	s := console.Services{
		EnsureConsole: in.apps.EnsureConsole, CreateCustomUser: in.store.CreateCustomUser, ListDevices: in.store.ListDevices,
		Enroll: v.Enroll, Check: v.Check, RegistrationToken: d.RegistrationToken,
	}
	if ot != nil {
		s.CreateApproval, s.GetApproval = ot.Create, ot.Get
	}
	return console.NewFactors(s, in.now)
}

// serveDefaultAddr is where `twofold serve` listens unless told otherwise (its --addr).
const serveDefaultAddr = "127.0.0.1:8080"

// qrLinkTTL is how long the page with an operator's QR code works: long enough to pass the
// link to the person, short because it shows their seed.
const qrLinkTTL = time.Hour

// enrolmentBase is the URL an operator's links are printed with: --public-url, else the address
// twofold serve is set to listen on (--addr, TWOFOLD_ADDR), which works on the server itself.
// guessed reports the second case, when the links may not work from another machine.
func enrolmentBase(publicURL, addr string) (base string, guessed bool) {
	if base = strings.TrimRight(publicURL, "/"); base != "" {
		return base, false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost" // every address: this machine's is one of them
	}
	return "http://" + net.JoinHostPort(host, port), true
}

// printEnrolment tells a new operator how to set up their second factor.
func printEnrolment(env Env, base string, guessed bool, e console.Enrolment, qrExpires time.Time) {
	fmt.Fprintf(env.Stdout, `
Set up the second factor for the console (either or both):

  * an authenticator app (codes): open this page and scan its QR code, before %s:
      %s%s
    or add this account by hand:
      %s

  * Twofold's authenticator (codes and push approvals), before %s:
      open   %s/authenticator/#register=%s
      or run twofold device enrol '%s/authenticator/#register=%s'
`, qrExpires.Local().Format(time.DateTime), base, console.EnrolmentPath(e.QRLink), e.TOTPURI,
		e.TokenExpires.Local().Format(time.DateTime), base, e.RegistrationToken, base, e.RegistrationToken)
	if guessed {
		fmt.Fprintf(env.Stdout, `
These links use %s: twofold serve's address (--addr, TWOFOLD_ADDR), which works on
this machine. From elsewhere, give the address people reach the server at with --public-url
or TWOFOLD_PUBLIC_URL (https://2fa.example.com), and run this command again.
`, base)
	}
}

// enrolOperator issues the operator's second-factor enrolment and prints it.
func enrolOperator(cmd *cobra.Command, env Env, in *instance, op twofold.Operator, asJSON bool) error {
	cfg := verify.DefaultConfig()
	cfg.QRLinkTTL = qrLinkTTL
	v := verify.New(in.store, nil, in.keys, cfg, in.now)
	d := devices.New(in.store, in.keys, in.apps.Reveal, 24*time.Hour, in.now)
	e, err := consoleFactors(in, v, d, nil).Enrol(cmd.Context(), op)
	if err != nil {
		return err
	}
	qrExpires := in.now().Add(qrLinkTTL)
	publicURL, _ := cmd.Flags().GetString("public-url")
	addr, _ := cmd.Flags().GetString("addr")
	base, guessed := enrolmentBase(publicURL, addr)
	if asJSON {
		return printJSON(env.Stdout, struct {
			operatorOut
			TOTPURI           string    `json:"totp_uri"`
			QRPageURL         string    `json:"totp_qr_page"`
			QRPageExpires     time.Time `json:"totp_qr_page_expires_at"`
			RegistrationToken string    `json:"registration_token"`
			RegistrationURL   string    `json:"registration_url"`
			TokenExpires      time.Time `json:"registration_expires_at"`
		}{operatorJSON(op), e.TOTPURI, base + console.EnrolmentPath(e.QRLink), qrExpires, e.RegistrationToken,
			base + "/authenticator/#register=" + e.RegistrationToken, e.TokenExpires})
	}
	printEnrolment(env, base, guessed, e, qrExpires)
	return nil
}

// enrolmentFlags are the flags of the commands that print an enrolment's links.
func enrolmentFlags(cmd *cobra.Command) {
	cmd.Flags().String("public-url", "", "the server's URL, for the enrolment links")
	cmd.Flags().String("addr", serveDefaultAddr, "the address twofold serve listens on, for the links when --public-url is not set")
	setting(cmd.Flags(), "public-url", "addr")
}

func adminCreateCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Add an operator",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(env, "Password for "+args[0]+": ")
			if err != nil {
				return err
			}
			return withApps(cmd, env, func(in *instance) error {
				o, err := operators.New(in.store, in.now).Create(cmd.Context(), args[0], pw)
				if errors.Is(err, twofold.ErrConflict) {
					return fmt.Errorf("an operator %s exists already (to change the password: twofold admin password %s)", args[0], args[0])
				}
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(env.Stdout, "Operator %s created.\n", o.Email)
				}
				return enrolOperator(cmd, env, in, o, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	enrolmentFlags(cmd)
	argument(cmd.Flags(), argOutput, "json")
	return cmd
}

func adminEnrolCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "enrol EMAIL",
		Short: "Issue a new second factor for an operator (a new TOTP seed and a device registration link)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApps(cmd, env, func(in *instance) error {
				o, err := in.store.OperatorByEmail(cmd.Context(), args[0])
				if err != nil {
					return operatorError(err, args[0])
				}
				return enrolOperator(cmd, env, in, o, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	enrolmentFlags(cmd)
	argument(cmd.Flags(), argOutput, "json")
	return cmd
}

func adminListCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List operators",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withOperators(cmd, env, func(ops *operators.Service) error {
				list, err := ops.List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					out := make([]operatorOut, 0, len(list))
					for _, o := range list {
						out = append(out, operatorJSON(o))
					}
					return printJSON(env.Stdout, out)
				}
				if len(list) == 0 {
					fmt.Fprintln(env.Stdout, "No operators yet: twofold admin create EMAIL")
					return nil
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EMAIL\tCREATED\tLAST SIGN-IN\tSTATE")
				for _, o := range list {
					state := "active"
					if o.Locked(time.Now()) {
						state = "locked until " + o.LockedUntil.Local().Format(time.DateTime)
					}
					last := "never"
					if !o.LastLoginAt.IsZero() {
						last = o.LastLoginAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Email, o.CreatedAt.Local().Format(time.DateTime), last, state)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func adminPasswordCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "password EMAIL",
		Short: "Set an operator's password (and lift a lockout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(env, "New password for "+args[0]+": ")
			if err != nil {
				return err
			}
			return withOperators(cmd, env, func(ops *operators.Service) error {
				if err := ops.SetPassword(cmd.Context(), args[0], pw); err != nil {
					return operatorError(err, args[0])
				}
				fmt.Fprintf(env.Stdout, "Password of %s changed.\n", args[0])
				return nil
			})
		},
	}
}

func adminRemoveCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove EMAIL",
		Short: "Remove an operator",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withOperators(cmd, env, func(ops *operators.Service) error {
				if err := ops.Remove(cmd.Context(), args[0]); err != nil {
					return operatorError(err, args[0])
				}
				fmt.Fprintf(env.Stdout, "Operator %s removed.\n", args[0])
				return nil
			})
		},
	}
}

func operatorError(err error, email string) error {
	if errors.Is(err, twofold.ErrNotFound) {
		return fmt.Errorf("no operator %s (see: twofold admin list)", email)
	}
	return err
}

type operatorOut struct {
	Email       string     `json:"email"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
	LockedUntil *time.Time `json:"locked_until"`
}

func operatorJSON(o twofold.Operator) operatorOut {
	out := operatorOut{Email: o.Email, CreatedAt: o.CreatedAt}
	if !o.LastLoginAt.IsZero() {
		out.LastLoginAt = &o.LastLoginAt
	}
	if o.Locked(time.Now()) {
		out.LockedUntil = &o.LockedUntil
	}
	return out
}

// readPassword asks on a terminal (twice, without echo) or reads the first line of stdin.
func readPassword(env Env, prompt string) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(p string) (string, error) {
			fmt.Fprint(env.Stderr, p)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(env.Stderr)
			return string(b), err
		}
		pw, err := ask(prompt)
		if err != nil {
			return "", err
		}
		again, err := ask("Repeat it: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords differ")
		}
		return pw, nil
	}
	if env.Stdin == nil {
		return "", errors.New("no password: run on a terminal, or give it on standard input")
	}
	line, err := bufio.NewReader(env.Stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil && !errors.Is(err, os.ErrClosed) {
			return "", errors.New("no password on standard input")
		}
		return "", errors.New("the password is empty")
	}
	return line, nil
}
