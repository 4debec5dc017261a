package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
)

// `wuyoud backfill-ledger` copies what the Redis ledger holds into
// PostgreSQL, needing only the Redis and PostgreSQL variables, and says how
// much it copied; run again it copies nothing twice.
func TestBackfillLedgerCopiesTheRedisLedgerIntoPostgreSQLOnce(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustClient(t)
	url := pgtest.MustURL(t)
	store := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{})
	now := time.Now().UTC()
	_, _, err := store.AddGrant(ctx, quota.GrantInput{ID: "gr-bf", SeafarerID: "sf-bf", ProgrammeID: "pr_bf", Seconds: 600,
		EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour), Priority: 1})
	require.NoError(t, err)
	_, err = store.Debit(ctx, quota.Usage{SeafarerID: "sf-bf", MSISDN: "+8613800000001", Source: "urn:carrier:test", EventID: "bf-1",
		Type: "carrier.usage.voice", CallTime: now.Add(-time.Minute), DurationSeconds: 100, BillableSeconds: 120, VisitedCountry: "SG", Increment: 60})
	require.NoError(t, err)

	env := map[string]string{"WUYOU_REDIS_ADDRS": strings.Join(redistest.Addrs(), ","), "WUYOU_REDIS_PREFIX": prefix, "WUYOU_POSTGRES_URL": url}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, runBackfillLedger(ctx, nil, func(k string) string { return env[k] }, &out, log))
		require.Contains(t, out.String(), "copied the ledger of 1 seafarers: 2 entries")
	}
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	entries, _, err := quota.NewPGLedger(pool).Ledger(ctx, "sf-bf", quota.LedgerFilter{})
	require.NoError(t, err)
	require.Len(t, entries, 2, "the grant and the debit, once each")
}
