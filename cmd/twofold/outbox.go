package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/twofold"
)

func outboxCmd(env Env) *cobra.Command {
	var f twofold.MessageFilter
	var asJSON, summary, codeOnly bool
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "outbox [--app ID] [--to NUMBER] [--summary | --code]",
		Short: "List the messages handed to delivery (and the codes they carried), newest last",
		Long: `List the messages Twofold handed to delivery, newest last, with the provider that took each
one, its id there, its delivery report and any error. With the default outbox delivery
nothing leaves the machine, so this is where a developer reads the code an SMS, call or email
would have carried. Bodies are sealed in the database and opened here with the master key.

--summary counts instead: messages by channel, provider and status (sent, failed, recorded,
sandbox), and codes refused before sending by reason (limit_user, limit_number, limit_country,
limit_app, country, landline, premium_rate, app_installed).

--code prints only the code of the newest message (after --app and --to), for scripts:

  CODE=$(twofold outbox --to 2015550123 --code)`,
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
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			return withApps(cmd, env, func(in *instance) error {
				if summary {
					return printSummary(cmd, env, in, f, since, asJSON)
				}
				if codeOnly {
					return printNewestCode(cmd, env, in, f)
				}
				msgs, err := in.outbox.List(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					type message struct {
						SID        string    `json:"sid"`
						AppID      int64     `json:"app_id"`
						UserID     int64     `json:"authy_id"`
						Channel    string    `json:"channel"`
						To         string    `json:"to"`
						Body       string    `json:"body"`
						Status     string    `json:"status"`
						Provider   string    `json:"provider"`
						ProviderID string    `json:"provider_id"`
						Delivery   string    `json:"delivery"`
						Attempts   int       `json:"attempts"`
						Error      string    `json:"error"`
						CreatedAt  time.Time `json:"created_at"`
						UpdatedAt  time.Time `json:"updated_at"`
					}
					out := make([]message, 0, len(msgs))
					for _, m := range msgs {
						out = append(out, message{m.SID, m.AppID, m.UserID, string(m.Channel), m.To, m.Body, m.Status,
							m.Provider, m.ProviderID, m.Delivery, m.Attempts, m.Error, m.CreatedAt, m.UpdatedAt})
					}
					return printJSON(env.Stdout, out)
				}
				if len(msgs) == 0 {
					fmt.Fprintln(env.Stdout, "The outbox is empty.")
					return nil
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tAPP\tCHANNEL\tTO\tSTATUS\tPROVIDER\tBODY")
				for _, m := range msgs {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.CreatedAt.Local().Format(time.DateTime), m.AppID,
						m.Channel, m.To, outcome(m), m.Provider, strings.ReplaceAll(m.Body, "\n", " "))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().Int64Var(&f.AppID, "app", 0, "only this application's messages")
	cmd.Flags().StringVar(&f.To, "to", "", "only messages to this recipient (phone digits or email, partial match)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "show at most this many (the newest)")
	cmd.Flags().DurationVar(&since, "since", 0, "only messages of this last while, e.g. 1h (with --summary: default 24h)")
	cmd.Flags().BoolVar(&summary, "summary", false, "count messages by channel, provider and status, and refusals by reason")
	cmd.Flags().BoolVar(&codeOnly, "code", false, "print only the code the newest message carries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagsMutuallyExclusive("summary", "code")
	cmd.MarkFlagsMutuallyExclusive("json", "code")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argFilter)
	return cmd
}

// printNewestCode prints the code of the newest message that f selects, found in its body by
// the length of its application's codes.
func printNewestCode(cmd *cobra.Command, env Env, in *instance, f twofold.MessageFilter) error {
	f.Limit = 1
	msgs, err := in.outbox.List(cmd.Context(), f)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return errors.New("no message matches: the outbox holds no code to print")
	}
	m := msgs[len(msgs)-1]
	length := 0
	if a, err := in.apps.Get(cmd.Context(), m.AppID); err == nil {
		length = a.TokenLength
	}
	code := messageCode(m.Body, length)
	if code == "" {
		return fmt.Errorf("the newest message (%s to %s, %s) carries no code", m.Channel, m.To, m.CreatedAt.Local().Format(time.DateTime))
	}
	fmt.Fprintln(env.Stdout, code)
	return nil
}

// outcome says in a word or three what became of a message: its status, the provider's latest
// report, and the error when it failed.
func outcome(m twofold.Message) string {
	s := m.Status
	if m.Delivery != "" {
		s += " (" + m.Delivery + ")"
	}
	if m.Error != "" {
		s += ": " + m.Error
	}
	return s
}

func printSummary(cmd *cobra.Command, env Env, in *instance, f twofold.MessageFilter, since time.Duration, asJSON bool) error {
	if since <= 0 {
		since = 24 * time.Hour
	}
	from := time.Now().Add(-since)
	counts, err := in.outbox.Summary(cmd.Context(), f.AppID, from)
	if err != nil {
		return err
	}
	if asJSON {
		type count struct {
			Channel  string `json:"channel"`
			Provider string `json:"provider,omitempty"`
			Status   string `json:"status"`
			Reason   string `json:"reason,omitempty"`
			Count    int64  `json:"count"`
		}
		out := make([]count, 0, len(counts))
		for _, c := range counts {
			out = append(out, count{string(c.Channel), c.Provider, c.Status, c.Reason, c.Count})
		}
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "Since %s (refusals are counted per day, from that day's start):\n\n", from.Local().Format(time.DateTime))
	if len(counts) == 0 {
		fmt.Fprintln(env.Stdout, "Nothing sent or refused.")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tPROVIDER\tSTATUS\tREASON\tCOUNT")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", c.Channel, dash(c.Provider), c.Status, dash(c.Reason), c.Count)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
