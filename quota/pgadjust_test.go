package quota

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
)

// Adjust entries (CONTRACT §7.3) in PostgreSQL: a CDR settling a session
// that was already charged applies the difference as one adjust, whose
// signed amounts move every figure and whose draws move the grants, but
// which is never a call.

// adjustedNovember is one seafarer's November: one call (a debit: 120 s,
// 60 covered by pg_a, 60 overage), a positive adjust (+90 s: 30 more from
// pg_a, 60 more overage) and a negative one (-40 s, all given back to
// pg_a), the negative one applied on 2 December for a call of 30 November
// (November still open: it is November's).
func adjustedNovember(t *testing.T, f *pgStatementFixture) (debit, plus, minus SeafarerEntry) {
	t.Helper()
	debit = pgDebit("sf_1", "cdr-1", nov.Add(10*meterDay), 120, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 60})
	plus = pgAdjust("sf_1", "cdr-2", nov.Add(12*meterDay), nov.Add(12*meterDay+time.Hour), 90, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 30})
	minus = pgAdjust("sf_1", "cdr-3", nov.Add(29*meterDay), dec.Add(meterDay+time.Hour), -40, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: -40})
	mustAppend(t, f, debit, plus, minus)
	return debit, plus, minus
}

func TestPGStatementsAddAdjustsSignedAmountsToTheFiguresButCountOnlyTheCall(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, dec.Add(5*meterDay), "sf_1")
	_, plus, minus := adjustedNovember(t, f)
	require.Equal(t, "2026-11", minus.Entry.StatementPeriod, "an adjust is counted in its call's period while that is open")

	// 120 + 90 - 40 billable; 60 + 30 - 40 covered; 60 + 60 + 0 overage;
	// 99 + 99 + 0 overage amount; 45 + 45 - 45 welfare.
	want := billing.Figures{Calls: 1, BillableSeconds: 170, CoveredSeconds: 50, OverageSeconds: 120,
		OverageAmount: billing.Money{Minor: 198, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}}
	company := mustPGStatement(t, f, "2026-11", "company:"+statementCompany)
	require.Equal(t, want, company.Figures)
	require.Equal(t, []billing.Line{{SeafarerID: "sf_1", Figures: want}}, company.Lines)

	seafarer := mustPGStatement(t, f, "2026-11", "seafarer:sf_1")
	require.Equal(t, want, seafarer.Figures, "the call lines and the adjust lines add up to the same figures")
	require.Len(t, seafarer.Lines, 3)
	var calls []int64
	for _, l := range seafarer.Lines {
		calls = append(calls, l.Calls)
	}
	require.Equal(t, []int64{1, 0, 0}, calls, "by call time: the call, then each adjust, which is no call")
	require.Equal(t, plus.Entry.ID, seafarer.Lines[1].EntryID)
	require.Equal(t, billing.Figures{BillableSeconds: -40, CoveredSeconds: -40,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: -45, Currency: "CNY"}}, seafarer.Lines[2].Figures)

	programme := mustPGStatement(t, f, "2026-11", "programme:pg_a")
	require.Equal(t, billing.Figures{Calls: 1, BillableSeconds: 50, CoveredSeconds: 50,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}}, programme.Figures,
		"the programme's covered seconds and welfare move by the adjusts' shares")
	used, err := f.store.ProgrammeSecondsUsed(context.Background(), "pg_a")
	require.NoError(t, err)
	require.EqualValues(t, 50, used, "seconds used moves by the adjusts")

	require.Empty(t, mustPGStatement(t, f, "2026-12", "company:"+statementCompany).Lines,
		"filed in December, the negative adjust is November's only")

	// Reconciliation by call time: the adjusts move the seconds, not the calls.
	rep, err := f.statements.Reconcile(context.Background(), "2026-11", strings.NewReader("msisdn,calls,billable_seconds,covered_seconds\n"))
	require.NoError(t, err)
	require.Equal(t, billing.SettlementTotals{MSISDNs: 1, Calls: 1, BillableSeconds: 170, CoveredSeconds: 50}, rep.Totals.Wuyou)
}

func TestPGMonthOverviewMovesEachDayByItsAdjustsWithoutCountingThemAsCalls(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, dec.Add(5*meterDay), "sf_1")
	mustCompanyCrew(t, f, "co_a", "Alpha Shipping", "sf_1")
	adjustedNovember(t, f)
	o, err := f.store.MonthOverview(context.Background(), "2026-11", 5)
	require.NoError(t, err)
	require.Equal(t, DayFigures{Date: "2026-11-11", Calls: 1, CoveredSeconds: 60, OverageSeconds: 60}, o.Days[10])
	require.Equal(t, DayFigures{Date: "2026-11-13", CoveredSeconds: 30, OverageSeconds: 60}, o.Days[12])
	require.Equal(t, DayFigures{Date: "2026-11-30", CoveredSeconds: -40}, o.Days[29])
	require.Equal(t, []CompanyOverage{{CompanyID: "co_a", Name: "Alpha Shipping", Calls: 1, OverageSeconds: 120,
		OverageAmount: billing.Money{Minor: 198, Currency: "CNY"}}}, o.TopOverage)
}

func TestPGAdjustOfAClosedPeriodsCallIsCountedInTheFirstOpenPeriodAndCloseCountsItsSeafarer(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, dec.Add(5*meterDay), "sf_1", "sf_2")
	mustAppend(t, f, pgDebit("sf_1", "cdr-1", oct.Add(meterDay), 120, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 60}))
	mustPGClose(t, f, "2026-10")
	frozen := mustPGStatementJSON(t, f, "2026-10", "company:"+statementCompany)

	late := pgAdjust("sf_2", "cdr-2", oct.Add(30*meterDay), dec.Add(meterDay), 30, 45, Draw{GrantID: "gr_b", ProgrammeID: "pg_a", Seconds: 30})
	mustAppend(t, f, late)
	require.Equal(t, "2026-11", late.Entry.StatementPeriod, "October is closed: counted in November")
	require.Equal(t, "2026-10", late.Entry.AdjustsPeriod)
	require.Equal(t, frozen, mustPGStatementJSON(t, f, "2026-10", "company:"+statementCompany), "the closed statement never changes")
	nov := mustPGStatement(t, f, "2026-11", "company:"+statementCompany)
	require.Equal(t, []billing.Line{{SeafarerID: "sf_2", AdjustsPeriod: "2026-10", Figures: billing.Figures{BillableSeconds: 30, CoveredSeconds: 30,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}}}}, nov.Lines)

	closed := mustPGClose(t, f, "2026-11")
	require.EqualValues(t, 1, *closed.Seafarers, "a seafarer with only an adjust has figures in the period")
}

func TestPGLedgerStoresAnAdjustOnceAndReadsItBackWithItsSignedAmounts(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	adjust := pgAdjust("sf_1", "cdr-1", ledgerSuiteT0.Add(time.Hour), ledgerSuiteT0.Add(2*time.Hour), -40, 45,
		Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: -25}, Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: -15})
	zero := pgAdjust("sf_1", "cdr-2", ledgerSuiteT0.Add(time.Hour), ledgerSuiteT0.Add(3*time.Hour), 0, 45)
	require.NoError(t, l.Append(ctx, []SeafarerEntry{adjust, zero}))
	require.NoError(t, l.Append(ctx, []SeafarerEntry{adjust}), "a redelivered adjust is not an error")
	require.NoError(t, l.Append(ctx, []SeafarerEntry{adjust, pgAdjust("sf_1", "cdr-1", ledgerSuiteT0.Add(time.Hour), ledgerSuiteT0.Add(2*time.Hour), -40, 45,
		Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: -25}, Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: -15})}), "twice in one batch")
	require.Equal(t, 2, countLedgerRows(t, pool), "each adjust stored once")

	got, _, err := l.Ledger(ctx, "sf_1", LedgerFilter{})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, zero.Entry.ID, got[0].ID, "filed under the second it was applied, newest first")
	a := got[1]
	require.Equal(t, KindAdjust, a.Kind)
	require.Equal(t, adjust.Entry.ID, a.ID)
	require.True(t, strings.HasPrefix(a.ID, "a_"))
	require.Equal(t, [3]int64{-40, -40, 0}, [3]int64{a.BillableSeconds, a.CoveredSeconds, a.OverageSeconds})
	require.Equal(t, billing.Money{Minor: -45, Currency: "CNY"}, *a.WelfareCost)
	require.Equal(t, []Draw{{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: -25}, {GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: -15}}, a.Draws)
	require.Equal(t, adjust.Entry.At, a.At)
	require.Equal(t, *adjust.Entry.CallTime, *a.CallTime)
	require.Equal(t, "2026-11", a.StatementPeriod)

	var shares string
	require.NoError(t, pool.QueryRow(ctx, "SELECT programme_shares::text FROM ledger_entries WHERE id = $1", a.ID).Scan(&shares))
	require.JSONEq(t, `[{"programme_id":"pg_a","seconds":-25,"welfare_minor":-29},{"programme_id":"pg_b","seconds":-15,"welfare_minor":-16}]`, shares,
		"signed shares, the welfare split by seconds, the remainder to the first programme")
}

func TestPGLedgerAllowsNegativeCoveredSecondsOnAnAdjustOnly(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	at := ledgerSuiteT0.Add(time.Hour)
	require.NoError(t, l.Append(ctx, []SeafarerEntry{pgAdjust("sf_1", "cdr-1", at, at.Add(time.Minute), -60, 45, Draw{GrantID: "gr_a", Seconds: -60})}))
	_, err := pool.Exec(ctx, `UPDATE ledger_entries SET kind = 'debit', id = 'd_' || substr(id, 3)`)
	require.ErrorContains(t, err, "ledger_covered_seconds_not_negative", "the same row as a debit is refused")
	_, err = pool.Exec(ctx, `UPDATE ledger_entries SET overage_seconds = 1`)
	require.ErrorContains(t, err, "ledger_adjust_billable_is_covered_plus_overage")
}

func TestAnAdjustsProgrammeSharesAreSignedAndAddUpToItsWelfareCost(t *testing.T) {
	t.Parallel()
	at := ledgerSuiteT0.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		entry SeafarerEntry
		want  []programmePart
	}{
		{"given shares adding up to the cost are kept",
			pgAdjust("sf_1", "cdr-1", at, at, -40, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: -25, WelfareMinor: -30},
				Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: -15, WelfareMinor: -15}),
			[]programmePart{{"pg_a", -25, -30}, {"pg_b", -15, -15}}},
		{"shares not adding up to the cost (SplitWelfare of the difference alone) are split by seconds",
			pgAdjust("sf_1", "cdr-2", at, at, 5, 0, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 5, WelfareMinor: 45}),
			[]programmePart{{"pg_a", 5, 0}}},
		{"none given: split by seconds, the remainder to the first",
			pgAdjust("sf_1", "cdr-3", at, at, 90, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 50}, Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: 40}),
			[]programmePart{{"pg_a", 50, 50}, {"pg_b", 40, 40}}},
		{"a zero adjust has no shares", pgAdjust("sf_1", "cdr-4", at, at, 0, 45), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := programmeShares(tc.entry.Entry)
			require.Equal(t, tc.want, got)
			var sum int64
			for _, s := range got {
				sum += s.WelfareMinor
			}
			if len(got) > 0 {
				require.Equal(t, tc.entry.Entry.WelfareCost.Minor, sum, "the shares add up to the welfare cost")
			}
		})
	}
}
