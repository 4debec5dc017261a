package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/internal/pgtest"
)

func TestMigrateAppliesTheSchemaAndSaysWhatThenFindsNothingToApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.MustEmptyURL(t)
	env := envOf(map[string]string{"WUYOU_POSTGRES_URL": dbURL})

	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"migrate"}, env, &out, &errOut))
	require.Contains(t, out.String(), "applied 00001_meta.sql")
	latest, err := pgschema.Latest()
	require.NoError(t, err)
	require.Regexp(t, `schema now at version \d+`, out.String())
	require.Contains(t, out.String(), "schema now at version "+itoa(latest))

	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	version, err := pgschema.Version(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, latest, version)

	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate"}, env, &out, &errOut))
	require.NotContains(t, out.String(), "applied")
	require.Contains(t, out.String(), "schema already at version "+itoa(latest)+": nothing to apply")
}

func TestMigrateWithoutAPostgresURLNamesTheVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"migrate"}, envOf(map[string]string{}), &out, &errOut)
	require.ErrorContains(t, err, "WUYOU_POSTGRES_URL is required")
}

func TestMigrateAgainstAnUnreachableServerFailsWithoutShowingThePassword(t *testing.T) {
	var out, errOut bytes.Buffer
	env := envOf(map[string]string{"WUYOU_POSTGRES_URL": "postgres://wuyou:s3cr3t-pg@127.0.0.1:1/wuyou?connect_timeout=2"})
	err := run(context.Background(), []string{"migrate"}, env, &out, &errOut)
	require.ErrorContains(t, err, "does not answer")
	require.NotContains(t, err.Error()+errOut.String(), "s3cr3t-pg")
	require.True(t, strings.Contains(errOut.String(), `"postgres_url":"postgres://wuyou:***@127.0.0.1:1/wuyou?connect_timeout=2"`), errOut.String())
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
