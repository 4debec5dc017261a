// Command wuyouctl is the operator CLI of Wuyou: it mints tokens offline and
// talks to the wuyoud API (CONTRACT §6).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.As(err, new(reportedUsageError)) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(exitCode(err))
	}
}

// run executes one wuyouctl command line. The environment is read only where
// the persistent flags take their defaults (root.go).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := &globalOptions{}
	root := newRootCmd(opts, os.Getenv)
	root.AddCommand(newDLQCmd(os.Getenv), newAuditCmd(opts), newVersionCmd())
	enforceUsage(root)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	return reportUsage(stderr, cmd, err)
}
