package pgtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/pgschema"
)

func TestEachCallGetsItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := MustPool(t), MustPool(t)
	var nameA, nameB string
	require.NoError(t, a.QueryRow(ctx, "SELECT current_database()").Scan(&nameA))
	require.NoError(t, b.QueryRow(ctx, "SELECT current_database()").Scan(&nameB))
	require.True(t, strings.HasPrefix(nameA, "wuyou_test_"), nameA)
	require.NotEqual(t, nameA, nameB)

	latest, err := pgschema.Latest()
	require.NoError(t, err)
	version, err := pgschema.Version(ctx, a)
	require.NoError(t, err)
	require.Equal(t, latest, version)

	_, err = a.Exec(ctx, "INSERT INTO wuyou_meta (key, value) VALUES ('only-in-a', 'x')")
	require.NoError(t, err)
	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM wuyou_meta WHERE key = 'only-in-a'").Scan(&n))
	require.Zero(t, n, "a row written in one test database is not seen in another")
}

func TestAnEmptyDatabaseHasNoMigrationApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, MustEmptyURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var tables int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables))
	require.Zero(t, tables)
}

func TestTheDatabaseIsDroppedWhenTheTestEndsEvenWithConnectionsLeftOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := MustPool(t)
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&name))
		// A connection the test forgot to close, outside the pool.
		leaked, err := pgx.Connect(ctx, MustURLOf(t, name))
		require.NoError(t, err)
		_ = leaked
		// And one acquired from the pool and never released.
		_, err = pool.Acquire(ctx)
		require.NoError(t, err)
	})
	admin, err := pgx.Connect(ctx, URL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	var exists bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s still exists after its test ended", name)
}

// MustURLOf is the URL of the named database on the test server.
func MustURLOf(tb testing.TB, name string) string {
	tb.Helper()
	u, err := WithDatabase(URL(), name)
	require.NoError(tb, err)
	return u
}

// fatalTB records the first Fatalf and stops the goroutine like testing does.
type fatalTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fatalTB) Helper()               {}
func (f *fatalTB) Cleanup(func())        {}
func (f *fatalTB) Errorf(string, ...any) {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestNoReachablePostgreSQLFailsTheTestSayingWhatToSet(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustDatabase(tb, "postgres://root:secret-pw@127.0.0.1:1/test?sslmode=disable", true)
	}()
	<-done
	require.Contains(t, tb.fatal, "no PostgreSQL at root@127.0.0.1:1/test")
	require.Contains(t, tb.fatal, "WUYOU_TEST_POSTGRES_URL")
	require.NotContains(t, tb.fatal, "secret-pw")
}

func TestWithDatabaseReplacesOnlyTheDatabase(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"url", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "postgres://root@127.0.0.1:5432/wuyou_test_x?sslmode=disable"},
		{"url without a database", "postgresql://u:p@db.example:6543?sslmode=require", "postgresql://u:p@db.example:6543/wuyou_test_x?sslmode=require"},
		{"url with dbname in the query", "postgres://root@h/?dbname=test", "postgres://root@h/wuyou_test_x?dbname=wuyou_test_x"},
		{"key=value", "host=127.0.0.1 user=root dbname=test", "host=127.0.0.1 user=root dbname=test dbname=wuyou_test_x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WithDatabase(tc.in, "wuyou_test_x")
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			cfg, err := pgx.ParseConfig(got)
			require.NoError(t, err)
			require.Equal(t, "wuyou_test_x", cfg.Database)
		})
	}
}

func TestDatabasesLeftBehindByAKilledRunAreSweptOnceStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, URL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	now := time.Now()
	stale := databaseName(now.Add(-staleAfter - time.Hour))
	recent := databaseName(now.Add(-time.Minute)) // another process's test, still running
	for _, name := range []string{stale, recent} {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
		t.Cleanup(func() { _ = drop(URL(), name) })
	}
	sweep(ctx, admin, now)
	exists := func(name string) bool {
		var ok bool
		require.NoError(t, admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok))
		return ok
	}
	require.False(t, exists(stale), "a database older than %s is dropped", staleAfter)
	require.True(t, exists(recent), "a recent one may belong to a test still running")
}
