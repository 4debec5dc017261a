package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou/internal/pgschema"
)

// runMigrate applies the schema migrations embedded in this binary to
// WUYOU_POSTGRES_URL, prints each one it applied and the version the
// database is now at, and returns. Running it again applies nothing. It
// needs no other variable: an operator migrates before deploying.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	if len(args) > 0 {
		return fmt.Errorf("wuyoud migrate takes no arguments, got %q\n%s", args, usage)
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.validatePostgres(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	target := maskPostgresURL(cfg.PostgresURL)
	log.Info("migrating the PostgreSQL schema", "postgres_url", target)

	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", target, err)
	}
	defer pool.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s does not answer: %w", target, err)
	}

	applied, err := pgschema.Migrate(ctx, pool)
	for _, a := range applied {
		fmt.Fprintf(stdout, "applied %s\n", a)
	}
	if err != nil {
		return err
	}
	version, err := pgschema.Version(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema already at version %d: nothing to apply\n", version)
	} else {
		fmt.Fprintf(stdout, "schema now at version %d (%d migration(s) applied)\n", version, len(applied))
	}
	log.Info("PostgreSQL schema migrated", "applied", len(applied), "version", version)
	return nil
}
