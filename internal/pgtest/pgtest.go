// Package pgtest gives each test its own PostgreSQL database, so tests never
// see each other's rows and can run in parallel. The database is created
// fresh (CREATE DATABASE wuyou_test_<unix time>_<random>), migrated with the embedded
// schema unless asked not to, and dropped when the test ends, even if
// connections to it are still open.
//
// The server is WUYOU_TEST_POSTGRES_URL, else DefaultURL; the URL names the
// database to connect to for creating and dropping (any database the role
// may connect to). `make test` and .ci/run find or start one
// (scripts/test-postgres.sh). A test that needs PostgreSQL fails, never
// skips, when none is reachable: a skipped integration test would pass
// without checking anything.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou/internal/pgschema"
)

// DefaultURL is the PostgreSQL tests use when WUYOU_TEST_POSTGRES_URL is
// not set: the machine's own, with trust authentication.
const DefaultURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// URL returns the URL of the server tests use, naming the database from
// which test databases are created.
func URL() string {
	if v := strings.TrimSpace(os.Getenv("WUYOU_TEST_POSTGRES_URL")); v != "" {
		return v
	}
	return DefaultURL
}

// MustPool returns a pool on a fresh database with every migration applied.
// The pool is closed and the database dropped when the test ends.
func MustPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return mustPool(tb, mustDatabase(tb, URL(), true))
}

// MustURL returns the URL of a fresh database with every migration applied,
// for code under test that connects by itself (wuyoud's configuration). The
// database is dropped when the test ends.
func MustURL(tb testing.TB) string {
	tb.Helper()
	return mustDatabase(tb, URL(), true)
}

// MustEmptyURL returns the URL of a fresh database with no migration
// applied, for tests of migrating itself. It is dropped when the test ends.
func MustEmptyURL(tb testing.TB) string {
	tb.Helper()
	return mustDatabase(tb, URL(), false)
}

func mustPool(tb testing.TB, dbURL string) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		tb.Fatalf("pgtest: pool on the test database: %v", err)
	}
	tb.Cleanup(func() { closeWithin(pool, 2*time.Second) })
	return pool
}

// closeWithin closes pool, waiting at most d: Close waits for every acquired
// connection to be released, and a test that leaked one must not hang its
// cleanup. The database is dropped WITH (FORCE) afterwards regardless.
func closeWithin(pool *pgxpool.Pool, d time.Duration) {
	done := make(chan struct{})
	go func() {
		pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// mustDatabase creates a database on the server at adminURL, migrates it
// when asked, registers its drop, and returns its URL.
func mustDatabase(tb testing.TB, adminURL string, migrate bool) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("pgtest: no PostgreSQL at %s (set WUYOU_TEST_POSTGRES_URL, or run `make test`, which finds or starts one with scripts/test-postgres.sh): %v",
			where(adminURL), err)
	}
	defer admin.Close(context.Background())
	sweepOnce.Do(func() { sweep(ctx, admin, time.Now()) })

	name := databaseName(time.Now())
	dbURL, err := WithDatabase(adminURL, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := drop(adminURL, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	if migrate {
		pool, err := pgxpool.New(ctx, dbURL)
		if err != nil {
			tb.Fatalf("pgtest: pool on %s: %v", name, err)
		}
		_, err = pgschema.Migrate(ctx, pool)
		pool.Close()
		if err != nil {
			tb.Fatalf("pgtest: migrating %s: %v", name, err)
		}
	}
	return dbURL
}

// Test databases are named wuyou_test_<unix seconds>_<random>, so that
// those left behind by a test process that was killed before its cleanup
// ran can be told by age and swept.
const namePrefix = "wuyou_test_"

// staleAfter is the age after which a test database is taken to be left
// over: no test runs that long (go test's default timeout is 10 minutes).
const staleAfter = 6 * time.Hour

var sweepOnce sync.Once

func databaseName(now time.Time) string {
	return fmt.Sprintf("%s%d_%s", namePrefix, now.Unix(), randomHex(4))
}

// createdAt reads the creation time out of a test database's name.
func createdAt(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return time.Time{}, false
	}
	secs, _, ok := strings.Cut(rest, "_")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// sweep drops test databases older than staleAfter, once per test process;
// failing to is not the test's concern.
func sweep(ctx context.Context, admin *pgx.Conn, now time.Time) {
	rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", namePrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		if at, ok := createdAt(name); ok && now.Sub(at) > staleAfter {
			_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
	}
}

// drop removes the database, terminating whatever is still connected to it.
func drop(adminURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func connect(ctx context.Context, connString string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// WithDatabase returns connString with its database replaced by name. It
// takes both forms PostgreSQL accepts: a postgres:// URL and key=value
// pairs (where a later dbname overrides an earlier one).
func WithDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("not a PostgreSQL URL: %s", where(connString))
		}
		u.Path, u.RawPath = "/"+name, ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	return strings.TrimSpace(connString) + " dbname=" + name, nil
}

// where names the server and database of connString without its password,
// for messages.
func where(connString string) string {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return "an unparseable connection string"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
