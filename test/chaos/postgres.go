package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wuyou/wuyou/internal/pgtest"
)

// database is the PostgreSQL database of one fsync mode's run: created
// empty on the server tests use (WUYOU_TEST_POSTGRES_URL, else pgtest's
// default), migrated by wuyoud itself at its first start, and dropped at
// the end. PostgreSQL is not a target of the faults: the harness checks
// what wuyoud makes of its own and Redis's failures with the system of
// record standing.
type database struct {
	admin string // the server's URL, naming the database to create and drop from
	name  string
	url   string
}

// createDatabase creates a database named wuyou_chaos_<random>.
func createDatabase(ctx context.Context) (*database, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	d := &database{admin: pgtest.URL(), name: "wuyou_chaos_" + hex.EncodeToString(b)}
	var err error
	if d.url, err = pgtest.WithDatabase(d.admin, d.name); err != nil {
		return nil, fmt.Errorf("WUYOU_TEST_POSTGRES_URL: %w", err)
	}
	conn, err := connectAdmin(ctx, d.admin)
	if err != nil {
		return nil, fmt.Errorf("no PostgreSQL at WUYOU_TEST_POSTGRES_URL (or %s when it is not set; scripts/test-postgres.sh finds or starts one): %w", pgtest.DefaultURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.name, err)
	}
	return d, nil
}

// drop removes the database, ending any session still connected to it.
func (d *database) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connectAdmin(ctx, d.admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}

func connectAdmin(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}
