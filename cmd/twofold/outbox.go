package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/twofold"
)

func outboxCmd(env Env) *cobra.Command {
	var f twofold.MessageFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "outbox [--app ID] [--to NUMBER]",
		Short: "List recorded messages (the codes that would have been sent), newest last",
		Long: `List the messages Twofold handed to delivery, newest last. With the default outbox
delivery nothing leaves the machine, so this is where a developer reads the code an SMS, call
or email would have carried. Bodies are sealed in the database and opened here with the
master key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.Contains(f.To, "@") {
				// A phone number as people write it: match on its digits.
				f.To = strings.TrimPrefix(strings.Map(func(r rune) rune {
					if strings.ContainsRune(" -().", r) {
						return -1
					}
					return r
				}, f.To), "+")
			}
			return withApps(cmd, env, func(in *instance) error {
				msgs, err := in.outbox.List(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					type message struct {
						SID       string    `json:"sid"`
						AppID     int64     `json:"app_id"`
						UserID    int64     `json:"authy_id"`
						Channel   string    `json:"channel"`
						To        string    `json:"to"`
						Body      string    `json:"body"`
						Status    string    `json:"status"`
						CreatedAt time.Time `json:"created_at"`
					}
					out := make([]message, 0, len(msgs))
					for _, m := range msgs {
						out = append(out, message{m.SID, m.AppID, m.UserID, string(m.Channel), m.To, m.Body, m.Status, m.CreatedAt})
					}
					return printJSON(env.Stdout, out)
				}
				if len(msgs) == 0 {
					fmt.Fprintln(env.Stdout, "The outbox is empty.")
					return nil
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tAPP\tCHANNEL\tTO\tSTATUS\tBODY")
				for _, m := range msgs {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", m.CreatedAt.Local().Format(time.DateTime), m.AppID,
						m.Channel, m.To, m.Status, strings.ReplaceAll(m.Body, "\n", " "))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().Int64Var(&f.AppID, "app", 0, "only this application's messages")
	cmd.Flags().StringVar(&f.To, "to", "", "only messages to this recipient (phone digits or email, partial match)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "show at most this many (the newest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
