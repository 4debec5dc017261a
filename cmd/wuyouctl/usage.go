package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Command-line mistakes (an unknown command or flag, a missing or extra
// argument, a required flag not given, a flag value that does not parse)
// are usageErrors: wuyouctl prints the error and the command's usage on
// stderr and exits 2. Cobra reports most of them as plain errors, so
// enforceUsage rewires the tree once it is built.

// requiredAnnotation is the annotation cobra's MarkFlagRequired sets.
const requiredAnnotation = cobra.BashCompOneRequiredFlag

// enforceUsage makes every mistake on root's command line a usageError:
// flag errors through the flag error function (a group may set its own),
// argument errors by wrapping each command's Args, required flags checked
// by root's PersistentPreRunE instead of cobra, and a group command run
// without or with an unknown subcommand refused instead of printing help
// and exiting 0.
func enforceUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	required := map[*cobra.Command][]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usagef("%s needs a command", cmd.CommandPath())
				}
				return usagef("unknown command %q for %s", args[0], cmd.CommandPath())
			}
		case c.Args != nil:
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if len(f.Annotations[requiredAnnotation]) > 0 {
				delete(f.Annotations, requiredAnnotation)
				required[c] = append(required[c], f.Name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		var missing []string
		for _, name := range required[cmd] {
			if !cmd.Flags().Changed(name) {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return usagef(`required flag(s) "%s" not set`, strings.Join(missing, `", "`)) // cobra's words
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}

// reportUsage writes a usage error and the usage of the command it was
// made on to stderr; main then only sets the exit status.
func reportUsage(stderr io.Writer, cmd *cobra.Command, err error) error {
	var ue usageError
	if cmd == nil || !errors.As(err, &ue) {
		return err
	}
	fmt.Fprintf(stderr, "Error: %v\n\n%s", err, cmd.UsageString())
	return reportedUsageError{ue}
}

// reportedUsageError is a usageError already written out with its usage.
type reportedUsageError struct{ usageError }

func (e reportedUsageError) Unwrap() error { return e.usageError }
