package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
)

// statementAPI answers GET /v1/statements with st, checking the query.
func statementAPI(t *testing.T, period, payer string, st billing.Statement) *httptest.Server {
	return fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/statements", r.URL.Path)
		require.Equal(t, period, r.URL.Query().Get("period"))
		require.Equal(t, payer, r.URL.Query().Get("payer"))
		writeJSON(w, http.StatusOK, st)
	})
}

func cny(minor int64) billing.Money { return billing.Money{Minor: minor, Currency: "CNY"} }

func companyStatement() billing.Statement {
	closedAt := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	lines := []billing.Line{
		{SeafarerID: "sf_a", Figures: billing.Figures{Calls: 3, BillableSeconds: 300, CoveredSeconds: 240, OverageSeconds: 60, OverageAmount: cny(99), WelfareCost: cny(180)}},
		{SeafarerID: "sf_a", AdjustsPeriod: "2026-10", Figures: billing.Figures{Calls: 1, BillableSeconds: 60, CoveredSeconds: 60, OverageAmount: cny(0), WelfareCost: cny(45)}},
	}
	total := billing.Figures{Calls: 4, BillableSeconds: 360, CoveredSeconds: 300, OverageSeconds: 60, OverageAmount: cny(99), WelfareCost: cny(225)}
	return billing.Statement{Period: "2026-11", Payer: "company:co_1", Status: billing.PeriodClosed, ClosedAt: &closedAt,
		Figures: total, Totals: total, Lines: lines}
}

func TestStatement_PrintsTotalsAndALinePerSeafarerAndAdjustedPeriod(t *testing.T) {
	srv := statementAPI(t, "2026-11", "company:co_1", companyStatement())
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_1")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, `statement of 2026-11 for company:co_1 (closed at 2026-12-02T09:00:00Z)
4 calls: 6 min billable, 5 min covered, 1 min overage
welfare cost 2.25 CNY, overage amount 0.99 CNY

SEAFARER  ADJUSTS  CALLS  BILLABLE  COVERED  OVERAGE  OVERAGE AMOUNT  WELFARE COST
sf_a               3      5 min     4 min    1 min    0.99 CNY        1.80 CNY
sf_a      2026-10  1      1 min     1 min    0 s      0.00 CNY        0.45 CNY
`, res.stdout)
}

func TestStatement_CSVPrintsTheLinesWithAHeaderRow(t *testing.T) {
	srv := statementAPI(t, "2026-11", "company:co_1", companyStatement())
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_1", "--csv")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, `seafarer_id,seafarer_name,company_id,company_name,adjusts_period,calls,billable_seconds,covered_seconds,overage_seconds,overage_amount_minor,welfare_cost_minor,currency,data_sessions,billable_bytes,covered_bytes,overage_bytes,sms_messages,billable_sms,covered_sms,overage_sms,free_calls,free_seconds
sf_a,,,,,3,300,240,60,99,180,CNY,0,0,0,0,0,0,0,0,0,0
sf_a,,,,2026-10,1,60,60,0,0,45,CNY,0,0,0,0,0,0,0,0,0,0
`, res.stdout)
}

// A company reading its own statement gets it without the free calls; its
// CSV then has no free columns either (not columns of zeros).
func TestStatement_CSVOfACompanysOwnStatementHasNoFreeColumns(t *testing.T) {
	full := companyStatement()
	srv := fakeAPI(t, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, full.WithoutFreeCalls()) })
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_1", "--csv")
	require.NoError(t, res.err, res.stderr)
	header, _, _ := strings.Cut(res.stdout, "\n")
	require.NotContains(t, header, "free_")
	require.True(t, strings.HasSuffix(header, ",overage_sms"), "%s", header)
}

func TestStatement_ShowsTheServersProblem(t *testing.T) {
	srv := fakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, "company co_9 not found")
	})
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_9")
	require.EqualError(t, res.err, "404 Not Found: company co_9 not found")
}

func TestStatement_RefusesABadCommandLineBeforeAsking(t *testing.T) {
	srv := fakeAPI(t, func(http.ResponseWriter, *http.Request) { t.Error("nothing should be sent") })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--period", "November", "--payer", "company:co_1"}, "--period"},
		{[]string{"--period", "2026-11", "--payer", "ship:1"}, "--payer"},
		{[]string{"--payer", "company:co_1"}, "period"},
		{[]string{"--period", "2026-11", "--payer", "company:co_1", "--csv", "--json"}, "exclude"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := runCLI(srv, append([]string{"statement"}, tc.args...)...)
			require.ErrorContains(t, res.err, tc.want)
		})
	}
}

func TestStatement_ShowsThePayersAndSeafarersNamesWhenTheServerGivesThem(t *testing.T) {
	st := companyStatement()
	st.PayerName = "Alpha Shipping"
	for i := range st.Lines {
		st.Lines[i].SeafarerName, st.Lines[i].CompanyID, st.Lines[i].CompanyName = "Li Wei", "co_1", "Alpha Shipping"
	}
	srv := statementAPI(t, "2026-11", "company:co_1", st)
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_1")
	require.NoError(t, res.err, res.stderr)
	require.Contains(t, res.stdout, "statement of 2026-11 for company:co_1 Alpha Shipping (closed")
	require.Contains(t, res.stdout, "NAME    COMPANY         SEAFARER  ADJUSTS")
	require.Contains(t, res.stdout, "Li Wei  Alpha Shipping  sf_a")
}

// A statement with data and SMS prints a line per unit under the calls,
// in the unit's own terms.
func TestStatement_PrintsDataAndSMSFiguresInTheirUnits(t *testing.T) {
	st := companyStatement()
	st.Units = []billing.UnitFigures{
		{Unit: "bytes", Events: 2, Billable: 3 << 20, Covered: 1 << 20, Overage: 2 << 20, OverageAmount: cny(600), WelfareCost: cny(100)},
		{Unit: "sms", Events: 4, Billable: 4, Covered: 3, Overage: 1, OverageAmount: cny(100), WelfareCost: cny(120)},
	}
	st.Lines = nil
	srv := statementAPI(t, "2026-11", "company:co_1", st)
	res := runCLI(srv, "statement", "--period", "2026-11", "--payer", "company:co_1")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, `statement of 2026-11 for company:co_1 (closed at 2026-12-02T09:00:00Z)
4 calls: 6 min billable, 5 min covered, 1 min overage
data: 2 sessions: 3 MB billable, 1 MB covered, 2 MB overage (overage amount 6.00 CNY)
SMS: 4 messages: 4 sms billable, 3 sms covered, 1 sms overage (overage amount 1.00 CNY)
welfare cost 2.25 CNY, overage amount 0.99 CNY
no lines
`, res.stdout)
}
