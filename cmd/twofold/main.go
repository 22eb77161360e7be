// Command twofold is a self-hosted two-factor authentication server that speaks the Authy API.
//
//	twofold serve                  run the server (SQLite in ./twofold-data)
//	twofold init                   make the installation (data directory, master key) without running it
//	twofold app create --name Shop make an application and print its API key
//	twofold outbox                 read the messages (codes) that would have been sent
//	twofold import from-authy ...  bring an application's users over from Authy
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/egress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	if err := run(ctx, os.Args[1:], env); err != nil {
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintln(os.Stderr, "twofold:", err)
		}
		os.Exit(1)
	}
}

// loggedError is an error the command has logged already, in the format of its logs: main
// prints nothing more, so that with JSON logs every line on standard error is JSON.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// Env is what a run of the program sees of the world, so tests can run it in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Ready, if set, is called with the server's address once it is listening.
	Ready func(addr string)
	// OnCallback, if set, observes every callback delivery attempt after it is recorded.
	OnCallback func(callback.Attempt)
	// OnVerifyEvents, if set, is given the server's entry point for Verify webhook events, so
	// that tests can emit them (factors and challenges emit through the same one).
	OnVerifyEvents func(apps.VerifyEvents)
	// OnPush, if set, observes the outcome of every push delivery.
	OnPush func(kind, outcome string)
	// Resolver, if set, looks up the hosts of push endpoints and callback URLs instead of the
	// system's resolver; the egress guard checks what it answers.
	Resolver egress.Resolver
	// OnRoute, if set, is told every route pattern the server registers, the console's too.
	OnRoute func(pattern string)
	// Now, if set, is the clock of the services instead of time.Now (tests that move time).
	Now func() time.Time
}

// run executes the command line args (without the program name).
func run(ctx context.Context, args []string, env Env) error {
	root := newRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// newRoot is the whole command tree, reading its defaults from env.
func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "twofold",
		Short:         "Self-hosted two-factor authentication with the Authy API",
		Long:          "Twofold is a self-hosted two-factor authentication service that speaks the Authy REST API:\nchange your Authy client's API host to a Twofold server and keep your code.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readBuildInfo().String(),
	}
	root.SetVersionTemplate("twofold {{.Version}}\n")
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	pf := root.PersistentFlags()
	pf.String("data-dir", "./twofold-data", "directory holding the database and master key")
	pf.String("database", "", "PostgreSQL URL (postgres://user:pass@host/db) instead of the SQLite file in --data-dir")
	setting(pf, "data-dir")
	settingAs(pf, "database", "TWOFOLD_DATABASE_URL")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd, env) }
	root.AddCommand(serveCmd(env), appCmd(env), approvalCmd(env), outboxCmd(env), deviceCmd(env), adminCmd(env), migrateCmd(env), initCmd(env), auditCmd(env), migrateDataCmd(env), masterKeyCmd(env), importCmd(env), oidcClientCmd(env), oidcKeyCmd(env), versionCmd(env), healthcheckCmd(env))
	refuseUnknownVerbs(root)
	return root
}

// refuseUnknownVerbs makes every command that only groups others (app, audit, device, ...)
// answer an unknown verb with an error and cobra's suggestions, exit status 1, as the root
// does; without a verb it prints its help. Cobra's default there is the help and exit 0, which
// hides a typo in a script.
func refuseUnknownVerbs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownVerbs(sub)
	}
	if !c.HasSubCommands() || c.Runnable() || c == c.Root() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on its own path
		}
		if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t")
		}
		return fmt.Errorf("%s\n\nRun '%s --help' for usage", msg, cmd.CommandPath())
	}
}
