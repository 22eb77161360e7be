package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag of the command tree is one of two kinds, marked where it is defined:
//
//   - a setting (setting, settingAs): how or where the program runs (--addr, --data-dir,
//     --rate-limit, ...). It reads its TWOFOLD_* variable when the command line does not give
//     it, so a container or a unit file configures the program without arguments;
//   - an argument of one run (argument): --json, --yes, --name, a filter. A variable for it
//     would act on every run it is set for (a TWOFOLD_YES that confirms every deletion), so
//     it has none, and says why.
//
// applyEnv fills the settings before any command runs; TestEveryFlagIsASettingOrAnArgument
// walks the tree and fails on a flag that is neither, so a new flag cannot forget its variable.
const (
	envAnnotation      = "twofold:env"      // the variable a setting reads
	argumentAnnotation = "twofold:argument" // why a flag has no variable
	fromEnvAnnotation  = "twofold:from-env" // present once applyEnv gave the flag its value
)

// envName is the variable of the flag name: TWOFOLD_ and the name in capitals, dashes as
// underscores (--shutdown-timeout: TWOFOLD_SHUTDOWN_TIMEOUT).
func envName(flag string) string {
	return "TWOFOLD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// setting marks the named flags of fs as settings read from their envName; with no names,
// every flag of fs not marked yet.
func setting(fs *pflag.FlagSet, names ...string) {
	mark(fs, names, func(f *pflag.Flag) { bindEnv(f, envName(f.Name)) })
}

// settingAs marks the flag name of fs as a setting read from variable, for the few whose
// variable is older than this rule (--database: TWOFOLD_DATABASE_URL).
func settingAs(fs *pflag.FlagSet, name, variable string) {
	bindEnv(lookup(fs, name), variable)
}

// argument marks the named flags of fs (with no names, every flag not marked yet) as arguments
// of one run, for the reason given.
func argument(fs *pflag.FlagSet, reason string, names ...string) {
	mark(fs, names, func(f *pflag.Flag) { annotate(f, argumentAnnotation, reason) })
}

func mark(fs *pflag.FlagSet, names []string, do func(*pflag.Flag)) {
	if len(names) > 0 {
		for _, n := range names {
			do(lookup(fs, n))
		}
		return
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Annotations[envAnnotation] == nil && f.Annotations[argumentAnnotation] == nil {
			do(f)
		}
	})
}

func lookup(fs *pflag.FlagSet, name string) *pflag.Flag {
	f := fs.Lookup(name)
	if f == nil {
		panic("no flag --" + name) // a mistake in the command tree, found by every test
	}
	return f
}

func bindEnv(f *pflag.Flag, variable string) {
	annotate(f, envAnnotation, variable)
	if note := "(env " + variable + ")"; !strings.Contains(f.Usage, note) {
		f.Usage += " " + note
	}
}

func annotate(f *pflag.Flag, key, value string) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[key] = []string{value}
}

// applyEnv gives every setting of cmd (its own and those it inherits) that the command line
// left alone the value of its variable, if that is set. A value the flag cannot take is an
// error that names the variable.
func applyEnv(cmd *cobra.Command, env Env) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		variable := f.Annotations[envAnnotation]
		if err != nil || len(variable) == 0 || f.Changed {
			return
		}
		v := env.Getenv(variable[0])
		if v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s=%q: %s", variable[0], v, badValue(f, e))
			return
		}
		f.Annotations[fromEnvAnnotation] = variable
	})
	return err
}

// badValue says what a flag wants, in place of strconv's "parsing ...: invalid syntax".
func badValue(f *pflag.Flag, err error) string {
	switch f.Value.Type() {
	case "int", "int64":
		return "not a whole number"
	case "duration":
		return "not a duration (such as 30s, 10m or 1h30m)"
	case "bool":
		return "not true or false"
	}
	return err.Error()
}

// source names where the value of the flag name of fs came from, for an error about it: its
// variable when applyEnv set it, else --name.
func source(fs *pflag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		if v := f.Annotations[fromEnvAnnotation]; len(v) > 0 {
			return v[0]
		}
	}
	return "--" + name
}

// Why an argument has no variable, by kind.
const (
	argOutput  = "how this run prints its answer"
	argFilter  = "chooses what this run shows"
	argConfirm = "a confirmation, given on purpose for each run"
	argTarget  = "what this one run acts on or makes"
	argApp     = "a setting of the one application this run changes, kept in its database"
)
