package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// buildInfo is what the binary knows of its own build, from the Go toolchain's build info: the
// module version (a tag with `go install ...@vX`, "(devel)" for a checkout), and, for a build
// in a git checkout, the commit, its time and whether the tree had changes.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	BuildDate string `json:"build_date,omitempty"` // the commit's time, as Go records it
	Modified  bool   `json:"modified,omitempty"`   // built from a tree with uncommitted changes
	Go        string `json:"go"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(unknown)", Go: "(unknown)"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Version, b.Go = info.Main.Version, info.GoVersion
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.BuildDate = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one line `twofold --version` prints.
func (b buildInfo) String() string {
	s := b.Version
	if b.Commit != "" {
		commit := b.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		s += " (commit " + commit
		if b.Modified {
			s += ", modified"
		}
		if b.BuildDate != "" {
			s += ", " + b.BuildDate
		}
		s += ")"
	}
	return s + ", " + b.Go
}

func versionCmd(env Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := readBuildInfo()
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			_, err := fmt.Fprintln(env.Stdout, "twofold", b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	argument(cmd.Flags(), argOutput)
	return cmd
}

func healthcheckCmd(env Env) *cobra.Command {
	var addr string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the server at --addr answers /healthz with ok, non-zero otherwise",
		Long: `Ask the running server's /healthz, as a container's health check does (the Dockerfile's
HEALTHCHECK runs it): exit 0 when it answers 200 (the database answers too), 1 otherwise, saying
why on standard error. --addr is the address the server listens on, as given to serve (env
TWOFOLD_ADDR); an address on all interfaces (0.0.0.0:8080, :8080) is asked on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			url, err := healthURL(addr, source(cmd.Flags(), "addr"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", url, err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s: %s", url, res.Status, strings.TrimSpace(string(body)))
			}
			_, err = fmt.Fprintln(env.Stdout, "ok")
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "the address the server listens on")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	setting(cmd.Flags(), "addr")
	settingAs(cmd.Flags(), "timeout", "TWOFOLD_HEALTHCHECK_TIMEOUT")
	return cmd
}

// healthURL is the /healthz URL of a server listening on addr (host:port).
func healthURL(addr, from string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("%s %q: want host:port, as given to serve", from, addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
