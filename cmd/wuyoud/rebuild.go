package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// runRebuildHotState writes Redis's hot metering state again from
// PostgreSQL (quota.RebuildHotState): what an operator runs after Redis
// lost some of its data (a failover, the last second of an everysec
// append-only file). wuyoud does it by itself at start when Redis lost
// everything. Replicas that are running stop metering while it runs (the
// hot-state mark is removed first) and go on when it is done; --quiesce is
// how long it then waits for batches already past the mark to be recorded.
// It needs the Redis and PostgreSQL variables only.
func runRebuildHotState(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("rebuild-hot-state", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	quiesce := fs.Duration("quiesce", 10*time.Second, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("wuyoud rebuild-hot-state takes only --quiesce DURATION (default 10s), got %q\n%s", args, usage)
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
	store := quota.NewRedisStore(s.rdb, cfg.RedisPrefix, wuyou.SystemClock, quota.Options{DedupeWindow: cfg.DedupeWindow})
	fmt.Fprintf(stdout, "metering paused; waiting %s for batches in flight, then reading PostgreSQL\n", *quiesce)
	last := time.Now()
	rep, err := quota.RebuildHotState(ctx, s.pg, store, quota.RebuildOptions{Quiesce: *quiesce, Progress: func(done, total int) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "… %d of %d seafarers\n", done, total)
		}
	}})
	if err != nil {
		return fmt.Errorf("rebuild the hot state (metering stays paused until a rebuild completes): %w", err)
	}
	fmt.Fprintf(stdout, "rebuilt the hot state of %d seafarers (%d grants, %d event identities) in %s; metering resumes\n",
		rep.Seafarers, rep.Grants, rep.Identities, rep.Took.Round(time.Millisecond))
	return nil
}
