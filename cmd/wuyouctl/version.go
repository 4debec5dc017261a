package main

import (
	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou/internal/buildinfo"
)

// newVersionCmd is `wuyouctl version`: this binary's version, commit, build
// time when known and Go version. It needs no server.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this wuyouctl",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return buildinfo.Read().Write(cmd.OutOrStdout(), "wuyouctl")
		},
	}
}
