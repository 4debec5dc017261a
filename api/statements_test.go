package api

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// MustStatementsFixture is MustAPIFixture (whose server has statements
// over the ledger in PostgreSQL) with one more call of A2 metered the way
// the consumer meters (debit, then record), at the wholesale price of the
// default tariff's Asia zone.
func MustStatementsFixture(tb testing.TB) *apiFixture {
	tb.Helper()
	f := MustAPIFixture(tb)
	u := quota.Usage{
		SeafarerID: f.a2.ID, MSISDN: f.a2.MSISDN, Source: "urn:carrier:test", EventID: "cdr-statement-a2",
		Type: "carrier.usage.voice", CallTime: time.Now().UTC(), DurationSeconds: 100, BillableSeconds: 120,
		CalledNumber: calledNumber, VisitedCountry: "SG", Increment: 60,
		OveragePrice: billing.Money{Minor: 99, Currency: "CNY"}, WholesalePrice: billing.Money{Minor: 45, Currency: "CNY"},
	}
	f.meter(tb, u)
	return f
}

func statementPath(period, payer string) string {
	return "/v1/statements?period=" + period + "&payer=" + payer
}

func TestStatementsAreTheUnionsAndACompanyReadsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	period := billing.PeriodOf(time.Now())
	companyB := f.token(t, token.RoleCompany, "crew-manager-b", f.companyB.ID)
	for _, tc := range []struct {
		name, payer, token string
		want               int
	}{
		{"union reads company A's", "company:" + f.companyA.ID, f.union, http.StatusOK},
		{"union reads the programme's", "programme:" + f.programme.ID, f.union, http.StatusOK},
		{"union reads seafarer A1's", "seafarer:" + f.a1.ID, f.union, http.StatusOK},
		{"company A reads its own", "company:" + f.companyA.ID, f.companyAToken, http.StatusOK},
		{"company B reads company A's: not found", "company:" + f.companyA.ID, companyB, http.StatusNotFound},
		{"company A reads the programme's: forbidden", "programme:" + f.programme.ID, f.companyAToken, http.StatusForbidden},
		{"company A reads its seafarer A1's: forbidden", "seafarer:" + f.a1.ID, f.companyAToken, http.StatusForbidden},
		{"seafarer A1 reads their own: forbidden", "seafarer:" + f.a1.ID, f.seafarerA1, http.StatusForbidden},
		{"carrier: forbidden", "company:" + f.companyA.ID, f.carrierToken, http.StatusForbidden},
		{"no token: unauthorized", "company:" + f.companyA.ID, "", http.StatusUnauthorized},
		{"union reads an unknown company's: not found", "company:co_nosuchcompany", f.union, http.StatusNotFound},
		{"union reads an unknown programme's: not found", "programme:pg_nosuchprogramme", f.union, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "GET", path: statementPath(period, tc.payer), token: tc.token})
			require.Equal(t, tc.want, status, "%s", body)
			if status != http.StatusOK {
				require.Equal(t, "application/problem+json", header.Get(fiber.HeaderContentType))
			}
		})
	}
}

func TestCompanyStatementTotalsItsCrewsCallsWithTheWelfareCostAndOverage(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	period := billing.PeriodOf(time.Now())
	status, _, body := f.do(t, apiRequest{method: "GET", path: statementPath(period, "company:"+f.companyA.ID), token: f.companyAToken})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var st map[string]any
	require.NoError(t, json.Unmarshal(body, &st))
	for _, field := range []string{"period", "payer", "calls", "billable_seconds", "covered_seconds", "overage_seconds", "overage_amount", "welfare_cost", "lines", "totals"} {
		require.Contains(t, st, field)
	}
	require.Equal(t, period, st["period"])
	require.Equal(t, "company:"+f.companyA.ID, st["payer"])
	require.EqualValues(t, 2, st["calls"], "A1's seeded call and A2's")
	require.EqualValues(t, 180+120, st["billable_seconds"])
	require.Equal(t, map[string]any{"minor": float64(2 * 45), "currency": "CNY"}, st["welfare_cost"], "A1's call had no wholesale price")
	lines := st["lines"].([]any)
	require.Len(t, lines, 2)
	require.NotContains(t, string(body), f.b1.ID, "company B's crew is not on A's statement")
	require.NotContains(t, string(body), calledNumber)
}

func TestStatementAsCSVHasAHeaderRowAndALinePerSeafarer(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	period := billing.PeriodOf(time.Now())
	status, header, body := f.do(t, apiRequest{method: "GET", path: statementPath(period, "programme:"+f.programme.ID),
		token: f.union, header: map[string]string{"Accept": "text/csv"}})
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.True(t, strings.HasPrefix(header.Get(fiber.HeaderContentType), "text/csv"))
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"seafarer_id", "seafarer_name", "company_id", "company_name", "adjusts_period", "calls",
		"billable_seconds", "covered_seconds", "overage_seconds", "overage_amount_minor", "welfare_cost_minor", "currency",
		"data_sessions", "billable_bytes", "covered_bytes", "overage_bytes", "sms_messages", "billable_sms", "covered_sms", "overage_sms",
		"free_calls", "free_seconds"}, recs[0])
	require.Equal(t, [][]string{{f.a2.ID, "Wang Fang", f.companyA.ID, "Alpha Shipping", "", "1", "120", "120", "0", "0", "90", "CNY",
		"0", "0", "0", "0", "0", "0", "0", "0", "0", "0"}}, recs[1:],
		"A2's call is the one indexed; the programme pays for covered time only; names stand beside the ids")
}

func TestStatementQueryNamesEachBadField(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	status, header, body := f.do(t, apiRequest{method: "GET", path: statementPath("2026-13", "ship:x"), token: f.union})
	require.Equal(t, http.StatusBadRequest, status)
	p := decodeProblem(t, header, body)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	require.Equal(t, []string{"period", "payer"}, fields)
}

func TestPeriodCanBeClosedByTheUnionOnceItHasEnded(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	now := time.Now().UTC()
	current := billing.PeriodOf(now)
	previous := billing.PeriodOf(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour))

	status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/periods/" + current + ":close", token: f.union})
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", body)
	require.Equal(t, "period_not_ended", decodeProblem(t, header, body).Reason)

	status, _, body = f.do(t, apiRequest{method: "POST", path: "/v1/periods/" + previous + ":close", token: f.companyAToken})
	require.Equal(t, http.StatusForbidden, status, "%s", body)

	status, _, body = f.do(t, apiRequest{method: "POST", path: "/v1/periods/" + previous + ":close", token: f.union})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var st billing.PeriodState
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, billing.PeriodState{Period: previous, Status: billing.PeriodClosed, ClosedAt: st.ClosedAt, Seafarers: st.Seafarers}, st)

	status, _, body = f.do(t, apiRequest{method: "GET", path: statementPath(previous, "company:"+f.companyA.ID), token: f.union})
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Contains(t, string(body), `"status":"closed"`)
}

func TestReconciliationReportsWhatTheCarrierAndWuyouDisagreeOn(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	period := billing.PeriodOf(time.Now())
	settlement := "msisdn,calls,billable_seconds,covered_seconds\n" +
		f.a2.MSISDN + ",2,120,120\n" + // Wuyou metered one call, covered
		"+8613700000099,1,60,0\n"
	path := "/v1/reconciliations?period=" + period
	status, _, body := f.do(t, apiRequest{method: "POST", path: path, token: f.union, contentType: "text/csv", body: []byte(settlement)})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var rep billing.Reconciliation
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, []billing.Difference{{MSISDN: f.a2.MSISDN, Field: "calls", Wuyou: 1, Carrier: 2}}, rep.Differences)
	require.Equal(t, []billing.SettlementRow{{MSISDN: "+8613700000099", Calls: 1, BillableSeconds: 60}}, rep.MissingInWuyou)

	status, header, body := f.do(t, apiRequest{method: "POST", path: path, token: f.union, contentType: "text/csv",
		body: []byte(settlement), header: map[string]string{"Accept": "text/csv"}})
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.True(t, strings.HasPrefix(header.Get(fiber.HeaderContentType), "text/csv"))
	require.Contains(t, string(body), f.a2.MSISDN+",difference,calls,1,2,")

	for _, tc := range []struct {
		name, token, contentType string
		want                     int
	}{
		{"a company may not reconcile", f.companyAToken, "text/csv", http.StatusForbidden},
		{"a body that is not CSV is refused", f.union, "application/json", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := f.do(t, apiRequest{method: "POST", path: path, token: tc.token, contentType: tc.contentType, body: []byte(settlement)})
			require.Equal(t, tc.want, status, "%s", body)
		})
	}
}

func TestStatementsNameThePayerAndEachSeafarerAndCompanyBesideTheirIDs(t *testing.T) {
	t.Parallel()
	f := MustStatementsFixture(t)
	doc := mustLoadOpenAPI(t)
	period := billing.PeriodOf(time.Now())
	type line struct {
		SeafarerID   string `json:"seafarer_id"`
		SeafarerName string `json:"seafarer_name"`
		CompanyID    string `json:"company_id"`
		CompanyName  string `json:"company_name"`
	}
	for _, tc := range []struct {
		payer, name string
		lines       []line
	}{
		{"programme:" + f.programme.ID, "Worry-free at sea", []line{{f.a2.ID, "Wang Fang", f.companyA.ID, "Alpha Shipping"}}},
		{"company:" + f.companyA.ID, "Alpha Shipping", []line{
			{f.a1.ID, "Li Wei", f.companyA.ID, "Alpha Shipping"}, {f.a2.ID, "Wang Fang", f.companyA.ID, "Alpha Shipping"}}},
		{"seafarer:" + f.a1.ID, "Li Wei", []line{{}}}, // one call line: the seafarer is the payer
	} {
		t.Run(tc.payer, func(t *testing.T) {
			status, body := sendDocumented(t, f, doc, http.MethodGet, statementPath(period, tc.payer), f.union, nil)
			require.Equal(t, http.StatusOK, status, "%s", body)
			var st struct {
				PayerName string `json:"payer_name"`
				Lines     []line `json:"lines"`
			}
			require.NoError(t, json.Unmarshal(body, &st))
			require.Equal(t, tc.name, st.PayerName)
			require.Equal(t, tc.lines, st.Lines)
		})
	}
}
