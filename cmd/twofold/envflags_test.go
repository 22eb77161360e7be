package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// eachFlag calls fn with every flag every command of the tree defines (its own and the
// persistent ones it hands down), but cobra's --help and --version.
func eachFlag(root *cobra.Command, fn func(c *cobra.Command, f *pflag.Flag)) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !(c == root && f.Name == "version") {
				fn(c, f)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Every flag is a setting, read from its TWOFOLD_* variable and saying so in its help, or an
// argument of one run with the reason it has none. A new flag that is neither fails here.
func TestEveryFlagIsASettingOrAnArgument(t *testing.T) {
	root := newRoot(Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	meaning := map[string]string{} // variable → the flag name it is for
	settings := 0
	eachFlag(root, func(c *cobra.Command, f *pflag.Flag) {
		where := c.CommandPath() + " --" + f.Name
		variable, reason := f.Annotations[envAnnotation], f.Annotations[argumentAnnotation]
		switch {
		case len(variable) == 0 && len(reason) == 0:
			t.Errorf("%s has no variable and is not marked as an argument: call setting or argument where it is defined", where)
		case len(variable) > 0 && len(reason) > 0:
			t.Errorf("%s is marked both a setting (%s) and an argument (%s)", where, variable[0], reason[0])
		case len(reason) > 0 && strings.TrimSpace(reason[0]) == "":
			t.Errorf("%s is an argument without a reason", where)
		case len(variable) > 0:
			settings++
			v := variable[0]
			if !strings.HasPrefix(v, "TWOFOLD_") {
				t.Errorf("%s reads %s, not a TWOFOLD_ variable", where, v)
			}
			if !strings.Contains(f.Usage, "(env "+v+")") {
				t.Errorf("%s: its help does not name %s: %q", where, v, f.Usage)
			}
			if other, ok := meaning[v]; ok && other != f.Name {
				t.Errorf("%s sets both --%s and --%s", v, other, f.Name)
			}
			meaning[v] = f.Name
		}
	})
	if settings < 40 {
		t.Errorf("only %d settings found: is the tree walked?", settings)
	}
	if meaning["TWOFOLD_SHUTDOWN_TIMEOUT"] != "shutdown-timeout" {
		t.Error("--shutdown-timeout has no TWOFOLD_SHUTDOWN_TIMEOUT")
	}
}

// Each setting takes the value of its variable; the command line wins over the variable.
func TestSettingsReadTheirVariables(t *testing.T) {
	sample := map[string]string{"int": "7", "int64": "7", "duration": "7s", "bool": "true", "string": "from-the-environment"}
	probe := newRoot(Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	type setting struct{ path, flag, variable, typ string }
	var all []setting
	eachFlag(probe, func(c *cobra.Command, f *pflag.Flag) {
		if v := f.Annotations[envAnnotation]; len(v) > 0 {
			all = append(all, setting{c.CommandPath(), f.Name, v[0], f.Value.Type()})
		}
	})
	// Persistent settings are read by every command below them: check one such command too.
	all = append(all, setting{"twofold app list", "data-dir", "TWOFOLD_DATA_DIR", "string"},
		setting{"twofold device codes", "vault", "TWOFOLD_VAULT", "string"})
	for _, s := range all {
		want, ok := sample[s.typ]
		if !ok {
			t.Errorf("%s --%s: no sample value for type %s", s.path, s.flag, s.typ)
			continue
		}
		for _, cmdline := range []bool{false, true} {
			env := Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(name string) string {
				if name == s.variable {
					return want
				}
				return ""
			}}
			c, _, err := newRoot(env).Find(strings.Fields(s.path)[1:])
			if err != nil {
				t.Fatalf("%s: %v", s.path, err)
			}
			var args []string
			expect, from := want, s.variable
			if cmdline {
				expect, from = map[string]string{"int": "9", "int64": "9", "duration": "9s", "bool": "false", "string": "from-the-command-line"}[s.typ], "--"+s.flag
				args = []string{"--" + s.flag + "=" + expect}
			}
			if err := c.ParseFlags(args); err != nil {
				t.Fatalf("%s %v: %v", s.path, args, err)
			}
			if err := applyEnv(c, env); err != nil {
				t.Fatalf("%s with %s=%s: %v", s.path, s.variable, want, err)
			}
			if got := c.Flags().Lookup(s.flag).Value.String(); got != expect {
				t.Errorf("%s --%s with %s=%s (command line %v) = %q, want %q", s.path, s.flag, s.variable, want, args, got, expect)
			}
			if got := source(c.Flags(), s.flag); got != from {
				t.Errorf("%s --%s: source %q, want %q", s.path, s.flag, got, from)
			}
		}
	}
}

// A bad value is reported under the name it was given by: the variable when it came from one.
func TestBadSettingNamesItsSource(t *testing.T) {
	for _, tc := range []struct {
		variable, value string
		args            []string
		want            string
	}{
		{"TWOFOLD_SHUTDOWN_TIMEOUT", "lots", nil, `TWOFOLD_SHUTDOWN_TIMEOUT="lots": not a duration`},
		{"TWOFOLD_CODE_ATTEMPTS", "five", nil, `TWOFOLD_CODE_ATTEMPTS="five": not a whole number`},
		{"TWOFOLD_PPROF_ALLOW_REMOTE", "sure", nil, `TWOFOLD_PPROF_ALLOW_REMOTE="sure": not true or false`},
		{"TWOFOLD_LIMIT_SENDS", "lots", nil, "TWOFOLD_LIMIT_SENDS:"},
		{"TWOFOLD_CODE_ATTEMPTS", "0", nil, "TWOFOLD_CODE_ATTEMPTS must be positive"},
		{"TWOFOLD_LOG_FORMAT", "xml", nil, "TWOFOLD_LOG_FORMAT must be text or json"},
		{"TWOFOLD_LOG_LEVEL", "loud", nil, "TWOFOLD_LOG_LEVEL:"},
		{"TWOFOLD_TRUSTED_PROXIES", "everyone", nil, "TWOFOLD_TRUSTED_PROXIES:"},
		{"TWOFOLD_CALLBACK_LEASE", "5s", nil, "TWOFOLD_CALLBACK_LEASE (5s) must exceed --callback-timeout"},
		// The command line wins, and is named.
		{"TWOFOLD_LIMIT_SENDS", "5/1m", []string{"--limit-sends", "lots"}, "--limit-sends:"},
	} {
		var out, errOut bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(name string) string {
			if name == tc.variable {
				return tc.value
			}
			return ""
		}}
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
		err := run(t.Context(), args, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s %v: %v, want an error with %q", tc.variable, tc.value, tc.args, err, tc.want)
		}
	}
	// healthcheck's --addr shares serve's variable.
	err := run(t.Context(), []string{"healthcheck"}, Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		Getenv: func(name string) string {
			if name == "TWOFOLD_ADDR" {
				return "no-port"
			}
			return ""
		}})
	if err == nil || !strings.Contains(err.Error(), `TWOFOLD_ADDR "no-port"`) {
		t.Errorf("healthcheck with TWOFOLD_ADDR=no-port: %v", err)
	}
}
