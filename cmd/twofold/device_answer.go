package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// deviceAnswerCmd is `device approve` (status approved) or `device deny` (denied).
func deviceAnswerCmd(o *deviceOpts, status string) *cobra.Command {
	var account, number, reason string
	var asJSON, notRequested bool
	verb, title, done := "approve", "Approve", "Approved"
	if status == string(twofold.Denied) {
		verb, title, done = "deny", "Deny", "Denied"
	}
	cmd := &cobra.Command{
		Use:   verb + " UUID",
		Short: title + " one approval request, signed with the device's key",
		Long: fmt.Sprintf(`%s the approval request UUID. The device is the vault's device that can see the request
(or --account).`, title) + denyHelp(status),
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give the UUID of the request to %s (see: twofold device watch)", verb)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			uuid := args[0]
			if number != "" && !allDigits(number) {
				return fmt.Errorf("--number %q: give the digits shown on the login page", number)
			}
			if notRequested {
				if reason != "" {
					return errors.New("give --not-requested or --reason, not both: --not-requested is the reason")
				}
				reason = onetouch.NotRequestedReason
			}
			v, err := o.open()
			if err != nil {
				return err
			}
			devs, err := pickDevices(v, account)
			if err != nil {
				return err
			}
			client := newHTTPClient()
			defer client.CloseIdleConnections()
			e, req, err := findRequest(cmd.Context(), client, devs, uuid)
			if err != nil {
				return err
			}
			if req.Status != string(twofold.Pending) {
				return fmt.Errorf("request %s is already %s", uuid, req.Status)
			}
			if status == string(twofold.Approved) && req.NumberRequired && number == "" {
				return fmt.Errorf("request %s asks for the number shown on the login page: add --number N", uuid)
			}
			res, err := forDevice(client, *e.device).answer(cmd.Context(), *e.device, uuid, status, number, reason)
			if err != nil {
				return fmt.Errorf("%s request %s: %w", verb, uuid, err)
			}
			if asJSON {
				return printJSON(o.env.Stdout, res)
			}
			fmt.Fprintf(o.env.Stdout, "%s request %s from %s (%q). %s\n", done, uuid, termSafe(res.AppName), res.Message, answerOutcome(res))
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "answer as this device (number or name from 'twofold device list')")
	if status == string(twofold.Approved) {
		cmd.Flags().StringVar(&number, "number", "", "the number shown on the login page (number matching)")
	} else {
		cmd.Flags().StringVar(&reason, "reason", "", "why the request is denied (the application sees it)")
		cmd.Flags().BoolVar(&notRequested, "not-requested", false, "you did not make this request (someone else typed your name): deny it with the reason \"not requested\", which blocks further passwordless sign-ins for a while")
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the answered request as JSON")
	argument(cmd.Flags(), argOutput, "json")
	argument(cmd.Flags(), argTarget)
	return cmd
}

// denyHelp is what deny's help adds about --not-requested.
func denyHelp(status string) string {
	if status != string(twofold.Denied) {
		return ""
	}
	return `

A request you did not make (a sign-in you did not start: someone typed your name) is denied
with --not-requested. The application sees the reason "not requested", and Twofold then sends
no passwordless sign-in requests for you for a while (an hour by default), so that whoever
typed your name cannot keep your phone ringing.`
}

// findRequest asks each device in turn for the request and returns the first that sees it.
func findRequest(ctx context.Context, client *http.Client, devs []vaultEntry, uuid string) (vaultEntry, approvalRequest, error) {
	var other error
	for _, e := range devs {
		req, err := forDevice(client, *e.device).getRequest(ctx, uuid)
		if err == nil {
			return e, req, nil
		}
		if len(devs) == 1 {
			return vaultEntry{}, approvalRequest{}, fmt.Errorf("request %s (%s): %w", uuid, e.label(), err)
		}
		if !isAPIError(err, twofold.CodeRequestNotFound, twofold.CodeInvalidAccessKey) {
			other = fmt.Errorf("%s: %w", e.label(), err)
		}
	}
	err := fmt.Errorf("no device in the vault knows request %s", uuid)
	if other != nil {
		err = errors.Join(err, other)
	}
	return vaultEntry{}, approvalRequest{}, err
}
