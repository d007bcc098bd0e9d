package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag falls back to an environment variable named after it:
// --tls-ca reads EVENTKIT_TLS_CA, --data EVENTKIT_DATA. One rule for all
// commands means an operator can guess the name, and a deployment can
// configure a container entirely from its environment.

// envName returns the environment variable a flag falls back to.
func envName(flag string) string {
	return "EVENTKIT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// skipEnv are flags that never come from the environment.
var skipEnv = map[string]bool{"help": true, "version": true}

// noEnv marks flags of one command that are taken from its command line
// only: the decision to change something (--execute) must be typed, and a
// name that means something else elsewhere (--partitions, a count for the
// broker, a list for a reset) must not leak in from a variable set for the
// other command.
const noEnv = "eventkit-no-env"

func commandLineOnly(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		_ = fs.SetAnnotation(n, noEnv, []string{"true"})
	}
}

func envless(f *pflag.Flag) bool { return skipEnv[f.Name] || f.Annotations[noEnv] != nil }

// alternatives marks flags of one command that exclude each other (--db or
// --lookback): once one is given on the command line, the others are not
// filled from the environment, where a variable set for another use
// (EVENTKIT_DB for lookback serve) would make the command refuse the pair.
const alternatives = "eventkit-alternatives"

func oneOf(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		_ = fs.SetAnnotation(n, alternatives, names)
	}
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its environment variable, when that is set. The flag's own parser
// reads the value, so a malformed one fails as clearly as on the command
// line, and the flag counts as given for required-flag checks.
func applyEnv(cmd *cobra.Command) error {
	typed := make(map[string]bool) // flags an alternative given on the command line excludes
	cmd.Flags().Visit(func(f *pflag.Flag) {
		for _, n := range f.Annotations[alternatives] {
			typed[n] = true
		}
	})
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || envless(f) || typed[f.Name] {
			return
		}
		name := envOf(f)
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return
		}
		if e := cmd.Flags().Set(f.Name, v); e != nil {
			err = &exitCodeError{code: exitUsage, err: fmt.Errorf("%s: %v", name, e)}
		}
	})
	return err
}

// envOf is the variable flag f falls back to: the one its help names, as
// "(env EVENTKIT_…)", else EVENTKIT_ and the flag's name. The help is what
// operators read, so it is also what is looked up: a flag whose variable
// carries its command's name (EVENTKIT_RELAY_TO) does not also answer to
// the generic one (EVENTKIT_TO), which a variable set for another command
// could fill.
func envOf(f *pflag.Flag) string {
	const mark = "(env "
	if i := strings.Index(f.Usage, mark+"EVENTKIT_"); i >= 0 {
		rest := f.Usage[i+len(mark):]
		if j := strings.IndexFunc(rest, func(r rune) bool { return !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_') }); j > 0 {
			return rest[:j]
		}
	}
	return envName(f.Name)
}

// documentEnv adds "(env EVENTKIT_…)" to the help of every flag of cmd and
// its subcommands that does not name its variable already.
func documentEnv(cmd *cobra.Command) {
	note := func(f *pflag.Flag) {
		if !envless(f) && !strings.Contains(f.Usage, "env EVENTKIT_") {
			f.Usage += " (env " + envName(f.Name) + ")"
		}
	}
	cmd.LocalFlags().VisitAll(note)
	cmd.PersistentFlags().VisitAll(note)
	for _, c := range cmd.Commands() {
		documentEnv(c)
	}
}
