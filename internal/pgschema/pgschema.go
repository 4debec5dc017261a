// Package pgschema owns Wuyou's PostgreSQL schema: the versioned SQL
// migrations in migrations/ (embedded in every binary) and the one function
// that brings a database up to date with them.
//
// Migrations are goose SQL files named NNNNN_what.sql, numbered in the
// order they must run; a number is never reused or edited once released.
// goose records each applied version in the goose_db_version table, and
// Migrate holds a PostgreSQL advisory lock while it runs, so replicas that
// start together migrate once and the others wait.
package pgschema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var embedded embed.FS

// Migrations is the folder of migration files compiled into the binary.
func Migrations() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the folder is embedded at build time; it cannot be missing
	}
	return sub
}

// Applied is one migration Migrate ran.
type Applied struct {
	Version  int64
	File     string // e.g. 00001_meta.sql
	Duration time.Duration
}

func (a Applied) String() string {
	return fmt.Sprintf("%s (%s)", a.File, a.Duration.Round(time.Millisecond))
}

// provider is goose over pool: the embedded files, the PostgreSQL dialect,
// a session-level advisory lock held while migrating, no logging of its own
// (callers report what Migrate returns).
func provider(pool *pgxpool.Pool) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockTimeout(1, 300),  // wait up to 5 min, polling each second, for another replica's migration
		lock.WithUnlockTimeout(1, 60), // a lock not released within a minute is released with its connection
	)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, stdlib.OpenDBFromPool(pool), Migrations(),
		goose.WithSessionLocker(locker),
		goose.WithLogger(goose.NopLogger()),
		goose.WithDisableGlobalRegistry(true),
	)
}

// Migrate applies every migration the database has not had yet, in order,
// each in its own transaction, and returns those it applied (none when the
// database is up to date). A failing migration stops it: the ones before
// stay applied, the failing one is rolled back, and the error names its file.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]Applied, error) {
	p, err := provider(pool)
	if err != nil {
		return nil, fmt.Errorf("pgschema: %w", err)
	}
	defer p.Close()
	results, err := p.Up(ctx)
	applied := make([]Applied, 0, len(results))
	for _, r := range results {
		if r.Error == nil {
			applied = append(applied, Applied{Version: r.Source.Version, File: path.Base(r.Source.Path), Duration: r.Duration})
		}
	}
	if err != nil {
		var pe *goose.PartialError
		if errors.As(err, &pe) && pe.Failed != nil && pe.Failed.Source != nil {
			return applied, fmt.Errorf("pgschema: migration %s failed: %w", path.Base(pe.Failed.Source.Path), pe.Err)
		}
		return applied, fmt.Errorf("pgschema: migrate: %w", err)
	}
	return applied, nil
}

// Version is the highest migration version the database has applied (0 for
// a database never migrated).
func Version(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	p, err := provider(pool)
	if err != nil {
		return 0, fmt.Errorf("pgschema: %w", err)
	}
	defer p.Close()
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgschema: version: %w", err)
	}
	return v, nil
}

// Latest is the highest version among the embedded migrations: the version
// a migrated database is at.
func Latest() (int64, error) {
	names, err := fs.Glob(Migrations(), "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return 0, fmt.Errorf("pgschema: migration %s: %w", name, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
