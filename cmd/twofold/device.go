package main

import "github.com/spf13/cobra"

// deviceCmd is the command-line authenticator (issue 4): being written.
func deviceCmd(env Env) *cobra.Command {
	return &cobra.Command{Use: "device", Short: "Command-line authenticator (enrol, codes, watch, approve)", Hidden: true}
}
