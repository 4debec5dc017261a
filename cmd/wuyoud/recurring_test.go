package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/token"
)

// Proves, on a whole wuyoud: an enrolment of a signed-on seafarer gets the
// month's grant of a recurring programme within moments (the API's nudge,
// not the 30 s sweep), recorded in the ledger and in Redis; and a seafarer
// who became eligible while no wuyoud ran gets it from the sweep at start.
func TestWuyoudIssuesRecurringGrantsAfterEnrolmentAndAtStart(t *testing.T) {
	st := MustWuyouStack(t, 1)
	node := st.MustStartNode(t, "recurring")
	union := st.MustToken(t, token.RoleUnion, "union-officer", "")
	companyID := MustCompany(t, node.api, union, "Recurring")
	now := time.Now().UTC()
	var prog struct{ ID string }
	node.api.MustCall(t, http.StatusCreated, "POST", "/v1/programmes", union, map[string]any{
		"name": "Monthly hour", "pack_seconds": 3600, "priority": 1, "budget_packs": 0,
		"starts_at": now.Add(-time.Hour), "ends_at": now.AddDate(1, 0, 0),
		"recurrence": map[string]any{"every": "month", "while": "signed_on"}, "company_id": companyID,
	}, &prog)
	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly) // signed on in every zone's today

	var sf struct{ ID string }
	node.api.MustCall(t, http.StatusCreated, "POST", "/v1/companies/"+companyID+"/seafarers", union, map[string]any{
		"seafarer_book_no": "R-1", "name": "Sun Li", "msisdn": "+8613700000011", "sign_on": yesterday,
	}, &sf)
	pool := st.MustPool(t)
	grantsOf := func(seafarerID string) (n int) {
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM grants g
JOIN ledger_entries l ON l.id = 'g_' || g.id AND l.seafarer_id = g.seafarer_id
WHERE g.programme_id = $1 AND g.seafarer_id = $2`, prog.ID, seafarerID).Scan(&n))
		return n
	}
	MustWaitFor(t, 10*time.Second, "the enrolled seafarer's grant, stored with its ledger entry", func() bool { return grantsOf(sf.ID) == 1 })
	var allowance struct {
		RemainingSeconds int64 `json:"remaining_seconds"`
	}
	node.api.MustCall(t, http.StatusOK, "GET", "/v1/seafarers/"+sf.ID+"/allowance", union, nil, &allowance)
	require.EqualValues(t, 3600, allowance.RemainingSeconds, "the grant is in Redis")

	// While nothing runs, a second seafarer is written straight into the
	// registry; the next start's first sweep gives the grant.
	node.MustStop(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO seafarers (id, company_id, seafarer_book_no, name, sign_on, status, created_at, updated_at)
VALUES ('sf_offline', $1, 'R-2', 'Zhou Yi', $2::date, 'active', now(), now())`, companyID, yesterday)
	require.NoError(t, err)
	started := time.Now()
	st.MustStartNode(t, "recurring")
	MustWaitFor(t, 10*time.Second, "the grant of the seafarer who became eligible while wuyoud was down", func() bool { return grantsOf("sf_offline") == 1 })
	require.Less(t, time.Since(started), recurringSweep, "issued by the sweep at start, not a later tick")
	require.Equal(t, 1, grantsOf(sf.ID), "nothing issued twice across the restart")
	MustWaitFor(t, 10*time.Second, "every grant added to Redis and announced", func() bool {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM recurring_unannounced`).Scan(&n))
		return n == 0
	})
}
