package quota

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
)

// mustCompanyCrew registers company id (named name) with the given
// seafarers in the registry's tables, which the overview's ranking joins.
func mustCompanyCrew(t *testing.T, f *pgStatementFixture, id, name string, seafarers ...string) {
	t.Helper()
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `INSERT INTO companies (id, name, registration_no, created_at) VALUES ($1, $2, $1, now())`, id, name)
	require.NoError(t, err)
	for _, sf := range seafarers {
		_, err := f.pool.Exec(ctx, `INSERT INTO seafarers (id, company_id, seafarer_book_no, name, status, created_at, updated_at)
VALUES ($1, $2, $1, $1, 'active', now(), now())`, sf, id)
		require.NoError(t, err)
	}
}

func TestPGMonthOverviewCountsEachDaysCallsAndLateCallsOfAClosedMonthAsAdjustments(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, oct.Add(10*meterDay), "sf_1", "sf_2", "sf_3")
	mustCompanyCrew(t, f, "co_a", "Alpha Shipping", "sf_1", "sf_2")
	mustCompanyCrew(t, f, "co_b", "Beta Maritime", "sf_3")
	g := Draw{GrantID: "gr_1", ProgrammeID: "pg_a", Seconds: 60}
	mustAppend(t, f,
		pgDebit("sf_1", "cdr-1", oct.Add(meterDay+time.Hour), 120, 45, g),  // 2 October: 60 covered, 60 overage
		pgDebit("sf_2", "cdr-2", oct.Add(meterDay+2*time.Hour), 60, 45, g), // 2 October: 60 covered
		pgDebit("sf_3", "cdr-3", oct.Add(30*meterDay), 180, 45),            // 31 October: 180 overage
		pgDebit("sf_1", "cdr-4", nov.Add(meterDay), 60, 45))                // November: not October's
	f.clock.Advance(30 * meterDay)
	mustPGClose(t, f, "2026-10")
	mustAppend(t, f, pgDebit("sf_3", "cdr-late", oct.Add(29*meterDay), 120, 45)) // October's, counted in November

	ctx := context.Background()
	o, err := f.store.MonthOverview(ctx, "2026-10", 5)
	require.NoError(t, err)
	require.Equal(t, billing.PeriodClosed, o.Status)
	require.Len(t, o.Days, 31)
	require.Equal(t, DayFigures{Date: "2026-10-02", Calls: 2, CoveredSeconds: 120, OverageSeconds: 60}, o.Days[1])
	require.Equal(t, DayFigures{Date: "2026-10-31", Calls: 1, OverageSeconds: 180}, o.Days[30])
	require.Equal(t, DayFigures{Date: "2026-10-30"}, o.Days[29], "the late call is counted in November, not in its closed month")
	require.Equal(t, DayFigures{}, o.Adjustments)
	require.Equal(t, []CompanyOverage{
		{CompanyID: "co_b", Name: "Beta Maritime", Calls: 1, OverageSeconds: 180, OverageAmount: billing.Money{Minor: 3 * 99, Currency: "CNY"}},
		{CompanyID: "co_a", Name: "Alpha Shipping", Calls: 1, OverageSeconds: 60, OverageAmount: billing.Money{Minor: 99, Currency: "CNY"}},
	}, o.TopOverage, "most overage first; calls without overage do not count")

	o, err = f.store.MonthOverview(ctx, "2026-11", 1)
	require.NoError(t, err)
	require.Equal(t, billing.PeriodOpen, o.Status)
	require.Len(t, o.Days, 30)
	require.Equal(t, DayFigures{Date: "2026-11-02", Calls: 1, OverageSeconds: 60}, o.Days[1])
	require.Equal(t, DayFigures{Calls: 1, OverageSeconds: 120}, o.Adjustments, "October's late call, counted in November")
	require.Equal(t, []CompanyOverage{
		{CompanyID: "co_b", Name: "Beta Maritime", Calls: 1, OverageSeconds: 120, OverageAmount: billing.Money{Minor: 2 * 99, Currency: "CNY"}},
	}, o.TopOverage, "top 1; the adjustment counts for its company")

	for _, bad := range []struct {
		period string
		top    int
	}{{"2026-13", 5}, {"2026-10", -1}, {"2026-10", MaxTopOverage + 1}} {
		_, err := f.store.MonthOverview(ctx, bad.period, bad.top)
		require.Error(t, err, "%v", bad)
	}
}

// TestPGMonthOverviewReadsOnlyItsPeriodsRows loads four months of debits
// and checks that neither overview query scans another month's partition:
// the period's own rows are read through ledger_debits_by_statement or its
// own partition (a month's overview reads the month), earlier months by the
// index, later months are pruned by the period's end.
func TestPGMonthOverviewReadsOnlyItsPeriodsRows(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, dec.Add(40*meterDay))
	ctx := context.Background()
	var batch []SeafarerEntry
	for n := range 12_000 {
		at := oct.Add(time.Duration(n%(120*24)) * time.Hour).Add(time.Duration(n) * time.Second)
		batch = append(batch, pgDebit(fmt.Sprintf("sf_%05d", n%3000), "cdr-"+strconv.Itoa(n), at, 120, 45))
		if n%40 == 0 {
			batch = append(batch, pgAdjust(fmt.Sprintf("sf_%05d", n%3000), "cdr-a-"+strconv.Itoa(n), at, at.Add(time.Hour), 30, 45))
		}
		if len(batch) >= 2000 {
			mustAppend(t, f, batch...)
			batch = batch[:0]
		}
	}
	_, err := f.pool.Exec(ctx, "ANALYZE ledger_entries")
	require.NoError(t, err)
	var withRows []string
	rows, err := f.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'ledger_entries'::regclass AND c.reltuples > 0`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		withRows = append(withRows, name)
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, len(withRows), 4, "four months of rows")
	start, end, _ := billing.PeriodBounds("2026-11")
	for name, plan := range map[string]planNode{
		"by day":        mustPlan(t, f.pool, overviewDaysSQL, "2026-11", end, adjustsFrom(start)),
		"top companies": mustPlan(t, f.pool, overviewTopSQL, "2026-11", end, 5, adjustsFrom(start)),
	} {
		var read []string
		plan.walk(func(n planNode) {
			if strings.HasPrefix(n.RelationName, "ledger_entries") {
				read = append(read, n.NodeType+" "+n.RelationName+" "+n.IndexName)
				if n.NodeType == "Seq Scan" && n.RelationName != "ledger_entries_202611" {
					require.NotContains(t, withRows, n.RelationName, "%s scans another month with rows", name)
				}
			}
		})
		require.NotEmpty(t, read, name)
		for _, r := range read {
			// Adjusts are filed when applied, possibly after the period's
			// end: later months are read only through the adjusts' index.
			if strings.Contains(r, "ledger_entries_202612") || strings.Contains(r, "ledger_entries_202701") {
				require.Regexp(t, `^(Bitmap )?Index (Only )?Scan ledger_entries_20(2612|2701) ledger_entries_20(2612|2701)_statement_period_seafarer_id_idx1$`, r,
					"%s reads a month after the period other than by the adjusts' index", name)
			}
		}
		t.Logf("%s: %s", name, strings.Join(read, ", "))
	}
}
