package pgschema_test

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/internal/pgtest"
)

func mustEmptyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.MustEmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrateAppliesEveryEmbeddedMigrationInOrderAndRecordsTheVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := mustEmptyPool(t)

	before, err := pgschema.Version(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, before, "a database never migrated is at version 0")

	applied, err := pgschema.Migrate(ctx, pool)
	require.NoError(t, err)
	files, err := fs.Glob(pgschema.Migrations(), "*.sql")
	require.NoError(t, err)
	require.Len(t, applied, len(files), "every embedded migration is applied to an empty database")
	require.Equal(t, int64(1), applied[0].Version)
	require.Equal(t, "00001_meta.sql", applied[0].File)
	for i := 1; i < len(applied); i++ {
		require.Less(t, applied[i-1].Version, applied[i].Version, "migrations run in version order")
	}

	latest, err := pgschema.Latest()
	require.NoError(t, err)
	after, err := pgschema.Version(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, latest, after)

	var recorded int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM goose_db_version WHERE version_id = $1 AND is_applied", latest).Scan(&recorded))
	require.Equal(t, 1, recorded, "the version is recorded in goose_db_version")
}

func TestMigratingTwiceAppliesNothingTheSecondTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := mustEmptyPool(t)
	_, err := pgschema.Migrate(ctx, pool)
	require.NoError(t, err)
	var databaseID string
	require.NoError(t, pool.QueryRow(ctx, "SELECT value FROM wuyou_meta WHERE key = 'database_id'").Scan(&databaseID))

	again, err := pgschema.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, again)
	var stillID string
	require.NoError(t, pool.QueryRow(ctx, "SELECT value FROM wuyou_meta WHERE key = 'database_id'").Scan(&stillID))
	require.Equal(t, databaseID, stillID, "the second run changed nothing")
}

func TestReplicasMigratingAtOnceApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.MustEmptyURL(t)
	const replicas = 3
	type outcome struct {
		applied []pgschema.Applied
		err     error
	}
	outcomes := make(chan outcome, replicas)
	for range replicas {
		go func() {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				outcomes <- outcome{err: err}
				return
			}
			defer pool.Close()
			applied, err := pgschema.Migrate(ctx, pool)
			outcomes <- outcome{applied, err}
		}()
	}
	total := 0
	for range replicas {
		o := <-outcomes
		require.NoError(t, o.err)
		total += len(o.applied)
	}
	files, err := fs.Glob(pgschema.Migrations(), "*.sql")
	require.NoError(t, err)
	require.Equal(t, len(files), total, "each migration is applied by exactly one replica")
}

func TestTheFirstMigrationGivesTheDatabaseAnIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.MustPool(t)
	var id, created string
	require.NoError(t, pool.QueryRow(ctx, "SELECT value FROM wuyou_meta WHERE key = 'database_id'").Scan(&id))
	require.NoError(t, pool.QueryRow(ctx, "SELECT value FROM wuyou_meta WHERE key = 'created_at'").Scan(&created))
	require.Len(t, id, 36)
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, created)
}
