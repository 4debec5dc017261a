// Command wuyoud is the Wuyou service: the HTTP API and the metering
// consumer in one process. `wuyoud dev` runs it with embedded stand-ins for
// Kafka and Redis and seeded demo data, for trying it out.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wuyoud:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  wuyoud                 run the service; configured by WUYOU_* environment variables
  wuyoud dev [--simulate] [--http ADDR]
                         run with demo data on an embedded Kafka-protocol broker,
                         Redis-compatible store and throwaway PostgreSQL, each unless its
                         WUYOU_* variable is set; on 127.0.0.1:8080 unless WUYOU_HTTP_ADDR
                         or --http says otherwise (wuyoud dev --help says more)
  wuyoud migrate         apply the PostgreSQL schema migrations to WUYOU_POSTGRES_URL and exit
  wuyoud rebuild-hot-state [--quiesce 10s]
                         write Redis's hot metering state again from PostgreSQL (after Redis
                         lost data; wuyoud does it at start when Redis lost everything) and exit
  wuyoud version         print the version, commit, build time (when known) and Go version`

// run starts the command named by args and returns when ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := ""
	if len(args) > 0 {
		command = args[0]
	}
	switch command {
	case "version":
		return runVersion(stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	case "dev":
		return runDevEnv(ctx, args[1:], getenv, stdout, stderr)
	}
	// The level is read before the rest of the configuration, so that every
	// command logs at it; ConfigFromEnv reads it again through the same parser.
	level, err := parseLogLevel(getenv("WUYOU_LOG_LEVEL"))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(stderr, level)
	switch command {
	case "":
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout, log)
	case "rebuild-hot-state":
		routeRedisLog(log)
		return runRebuildHotState(ctx, args[1:], getenv, stdout, log)
	default:
		return fmt.Errorf("unknown command %q\n%s", command, usage)
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log.Info("starting wuyoud", "config", cfg)
	routeRedisLog(log)
	s, err := start(ctx, cfg, deps{}, log)
	if err != nil {
		return err
	}
	log.Info("wuyoud ready", "http", s.addr.String())
	<-ctx.Done()
	log.Info("stopping wuyoud")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return s.stop(sctx)
}
