package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// runBackfillLedger copies the ledger entries Redis holds into PostgreSQL:
// what a deployment that ran with the ledger in Redis only does once, after
// `wuyoud migrate`, so that GET …/usage (read from PostgreSQL) lists what
// came before. It is idempotent and may run while wuyoud meters. It needs
// the Redis and PostgreSQL variables only.
func runBackfillLedger(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	if len(args) > 0 {
		return fmt.Errorf("wuyoud backfill-ledger takes no arguments, got %q\n%s", args, usage)
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.validatePostgres(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(cfg.RedisAddrs) == 0 {
		return fmt.Errorf("configuration: WUYOU_REDIS_ADDRS is required")
	}
	s := &service{log: log, cfg: cfg, rdb: newRedis(cfg)}
	defer s.rdb.Close()
	if err := s.openPostgres(ctx, cfg, wuyou.SystemClock); err != nil {
		return err
	}
	defer s.pg.Close()
	store := quota.NewRedisStore(s.rdb, cfg.RedisPrefix, wuyou.SystemClock, quota.Options{DedupeWindow: cfg.DedupeWindow, LedgerHorizon: cfg.LedgerHorizon})
	last := time.Now()
	seafarers, entries, err := store.CopyLedger(ctx, s.ledger, func(seafarers, entries int) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "… %d seafarers, %d entries\n", seafarers, entries)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied the ledger of %d seafarers: %d entries (those already in PostgreSQL were kept as they were)\n", seafarers, entries)
	return nil
}
