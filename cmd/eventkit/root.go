package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses. A halted relay exits 3 and a killed one 4, so that a
// supervisor can tell them from a crash.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitHalted = 3
	exitKilled = 4
)

// exitCodeError carries an exit status up to Main. Its message, if any, is
// printed as "eventkit <command>: <message>".
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// streams are the command's standard input and outputs, swapped in tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &streams{in: stdin, out: stdout, err: stderr}
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	name := "eventkit"
	if cmd != nil {
		name = cmd.CommandPath() // "eventkit offsets show", not "eventkit show"
	}
	var ee *exitCodeError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(ee.err))
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
	if isUsage(err) {
		return exitUsage
	}
	return exitError
}

// oneLine joins the lines of an error, such as the one line per problem
// that errors.Join gives, so that every failure is one line on stderr.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func isUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand") || strings.Contains(s, "flag needs an argument") ||
		strings.HasPrefix(s, "invalid argument") || strings.HasPrefix(s, "required flag")
}

func newRoot(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "eventkit",
		Short: "Reliable asynchronous event processing on Apache Kafka",
		Long: `eventkit runs the pieces of reliable event processing on Kafka: an embedded
broker for development, the sidecar relay that delivers events to an HTTP
endpoint, and the tools to produce, tail and inspect consumer groups.

Start everything on a laptop with:

  eventkit dev`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd)
		},
	}
	for _, add := range commands {
		root.AddCommand(add(s))
	}
	documentEnv(root)
	return root
}

// commands builds each subcommand; every command file adds itself in init.
var commands []func(*streams) *cobra.Command

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
