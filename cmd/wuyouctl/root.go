package main

import (
	"github.com/spf13/cobra"
)

// Persistent flags and the environment variables behind them (CONTRACT §6).
const (
	envServer     = "WUYOU_SERVER"
	envToken      = "WUYOU_TOKEN"
	defaultServer = "http://localhost:8080"
)

// globalOptions are the persistent flags of every subcommand that talks to
// the API. Subcommand groups that need them take a *globalOptions.
type globalOptions struct {
	Server string // base URL of wuyoud
	Token  string // bearer token sent with every request
}

// newRootCmd builds the wuyouctl command tree. getenv is consulted only for
// persistent flags that were not given on the command line, so a flag beats
// its environment variable, which beats the default.
//
// Each subcommand group lives in its own file and is added here with one
// AddCommand line. Subcommands must not set their own PersistentPreRunE:
// cobra would run theirs instead of the root's and skip the environment.
func newRootCmd(opts *globalOptions, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:           "wuyouctl",
		Short:         "Operate Wuyou, the seafarers' free call minutes service",
		SilenceUsage:  true, // a failed request is not a usage mistake
		SilenceErrors: true, // main prints the error once
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.fillFromEnv(cmd, getenv)
			return nil
		},
	}
	flags := root.PersistentFlags()
	flags.StringVar(&opts.Server, "server", defaultServer, "Wuyou API base URL (env "+envServer+")")
	// The token's default is not shown in --help: it is a secret.
	flags.StringVar(&opts.Token, "token", "", "bearer token for the API (env "+envToken+")")

	root.AddCommand(newTokenCmd())
	root.AddCommand(newCrewCmd(opts))
	root.AddCommand(newAllowanceCmd(opts))
	root.AddCommand(newIssueCmd(opts))
	root.AddCommand(newStatementCmd(opts))
	root.AddCommand(newCompanyCmd(opts), newGrantCmd(opts), newPeriodCmd(opts), newReconcileCmd(opts))
	return root
}

// fillFromEnv sets each persistent flag that was not given on the command
// line from its environment variable, when that is set.
func (o *globalOptions) fillFromEnv(cmd *cobra.Command, getenv func(string) string) {
	for _, f := range []struct {
		flag, env string
		dst       *string
	}{
		{"server", envServer, &o.Server},
		{"token", envToken, &o.Token},
	} {
		if cmd.Flags().Changed(f.flag) {
			continue
		}
		if v := getenv(f.env); v != "" {
			*f.dst = v
		}
	}
}
