package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/pgtest"
)

var sessionCallLine = regexp.MustCompile(`simulate: call (\S+) went through a session: \d+ updates, terminated after \d+ s, charged \d+ s`)

// wuyoud dev --simulate says that some of its calls go through the session
// API, puts them through it on its embedded store (open, updates,
// terminate), and their CDRs then settle the sessions: an adjust entry of
// the session's call in PostgreSQL. The guide shows carriersim --sessions
// with the carrier token.
func TestDevSimulatePutsSomeCallsThroughSessionsThatTheirCDRsSettle(t *testing.T) {
	t.Parallel()
	url := pgtest.MustURL(t)
	d := mustStartDevWith(t, map[string]string{"WUYOU_POSTGRES_URL": url}, "--http", "127.0.0.1:0", "--simulate")
	// The --simulate line follows the guide once the simulator starts.
	simulating := regexp.MustCompile(`--simulate: .*\n.*through the real-time session API first`)
	MustWaitFor(t, 30*time.Second, "the --simulate line", func() bool { return simulating.MatchString(d.out.String()) })
	require.Contains(t, d.out.String(), "--sessions --server http://127.0.0.1:")

	var sessionID string
	MustWaitFor(t, 90*time.Second, "a simulated call through a session", func() bool {
		if m := sessionCallLine.FindStringSubmatch(d.out.String()); m != nil {
			sessionID = m[1]
			return true
		}
		return false
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// The terminate's debit carries the session id; the CDR that follows
	// (same call, its own event id) is the zero adjust that settles it.
	MustWaitFor(t, 30*time.Second, "the session's CDR to settle it", func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM ledger_entries d JOIN ledger_entries a
			ON a.kind = 'adjust' AND a.msisdn = d.msisdn AND a.call_time = d.call_time AND a.event_id <> d.event_id
			WHERE d.kind = 'debit' AND d.event_id = $1`, sessionID).Scan(&n))
		return n == 1
	})
	require.NoError(t, d.stop(t))
}
