package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/quota"
)

// defaultPostgresURL is the server the measurements create their databases
// on when WUYOU_TEST_POSTGRES_URL is not set: the machine's own, as for the
// tests (internal/pgtest).
const defaultPostgresURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// benchDatabase is a database of the run's own: created fresh on the
// server, migrated, and dropped (with any connection still open) by drop.
type benchDatabase struct {
	pool *pgxpool.Pool
	name string
	drop func()
}

// freshBenchDatabase creates a database of the run's own on the server at
// serverURL (which names a database the role may connect to), migrates it
// with the embedded schema and returns a pool on it. The name follows
// internal/pgtest's (wuyoubench_<unix time>_<random>), so a database left
// by a killed run is recognisable and never reused.
func freshBenchDatabase(ctx context.Context, serverURL string) (*benchDatabase, error) {
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL at WUYOU_TEST_POSTGRES_URL: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("wuyoubench_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		_ = admin.Close(ctx)
		return nil, fmt.Errorf("PostgreSQL: create database: %w", err)
	}
	dropDB := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		_ = admin.Close(ctx)
	}
	cfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		dropDB()
		return nil, fmt.Errorf("WUYOU_TEST_POSTGRES_URL: %w", err)
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		_, err = pgschema.Migrate(ctx, pool)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		dropDB()
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	return &benchDatabase{pool: pool, name: name, drop: func() { pool.Close(); dropDB() }}, nil
}

// openLabAndDatabase is openLab on redisEnv's Redis and openDatabase on
// env's PostgreSQL; done drops the database and closes the lab.
func openLabAndDatabase(ctx context.Context, redisEnv, env environment, name string, out *results) (*lab, *benchDatabase, func(), error) {
	l, err := openLab(ctx, redisEnv, name, out)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := openDatabase(ctx, env, out)
	if err != nil {
		l.close()
		return nil, nil, nil, err
	}
	return l, db, func() { db.drop(); l.close() }, nil
}

// openDatabase is freshBenchDatabase on the server of env, reporting its version.
func openDatabase(ctx context.Context, env environment, out *results) (*benchDatabase, error) {
	db, err := freshBenchDatabase(ctx, env.PostgresURL)
	if err != nil {
		return nil, err
	}
	var v string
	if err := db.pool.QueryRow(ctx, "SHOW server_version").Scan(&v); err == nil {
		out.info("postgres_version", "%s", v)
	}
	return db, nil
}

// pipeline is the metering path wired as cmd/wuyoud wires it: the registry
// (crew.PGStore, one query per batch to resolve MSISDNs), event identity
// claims (quota.PGClaims) and the ledger (quota.PGLedger, appended before
// offsets are committed) in PostgreSQL, held events in PostgreSQL
// (carrier.PGHeld), and only the hot metering state in Redis
// (quota.RedisStore, guarded by the hot-state mark).
type pipeline struct {
	pool     *pgxpool.Pool
	store    *quota.RedisStore
	registry *crew.PGStore
	claims   *quota.PGClaims
	ledger   *quota.PGLedger
	held     *carrier.PGHeld
}

// newPipeline wires the stores over rdb (keys under prefix) and pool. The
// hot-state mark is set as quota.EnsureHotState sets it for a new
// deployment: the measurements share one database between prefixes, so a
// second prefix must not be rebuilt from the first one's rows.
func newPipeline(ctx context.Context, rdb redis.UniversalClient, prefix string, pool *pgxpool.Pool) (*pipeline, error) {
	p := &pipeline{
		pool:     pool,
		registry: crew.NewPGStore(pool, wuyou.SystemClock),
		claims:   quota.NewPGClaims(pool),
		ledger:   quota.NewPGLedger(pool),
		held:     carrier.NewPGHeld(pool),
	}
	p.store = quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{
		DedupeWindow: dedupeWindow, HotStateGuard: true, Claims: p.claims,
	})
	now := wuyou.SystemClock()
	if err := p.ledger.EnsureMonths(ctx, now.AddDate(0, -1, 0), now, now.AddDate(0, 1, 0)); err != nil {
		return nil, err
	}
	if err := p.store.MarkHotState(ctx, quota.HotMark{RebuiltAt: now, By: "empty"}); err != nil {
		return nil, err
	}
	return p, nil
}

// ledgerDebits counts the debits stored in the ledger.
func ledgerDebits(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE kind = 'debit'`).Scan(&n)
	return n, err
}

// relationBytes is pg_total_relation_size of a table with its indexes and
// TOAST, partitions included.
func relationBytes(ctx context.Context, pool *pgxpool.Pool, table string) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8
FROM pg_class c
WHERE c.oid = $1::regclass
   OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`, table).Scan(&n)
	return n, err
}

// consumer is a carrier.Consumer over p wired as cmd/wuyoud wires it, in
// the group "wuyoubench", its counters in reg.
func (p *pipeline) consumer(brokers []string, topics carrier.Topics, writer *kafka.Writer, reg *prometheus.Registry) *carrier.Consumer {
	return carrier.NewConsumer(carrier.ConsumerConfig{
		Brokers: brokers, Group: "wuyoubench", Topics: topics, HomeCountry: homeCountry,
		DedupeWindow: p.store.DedupeWindow(), Tariff: billing.DefaultTariff(), Resolver: p.registry, Meter: p.store,
		Held: p.held, Ledger: p.ledger, Publisher: carrier.NewPublisher(writer, topics, wuyou.SystemClock),
		Metrics: carrier.NewMetrics(reg), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: wuyou.SystemClock,
	})
}
