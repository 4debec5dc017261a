package api

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// The union's hotline, one of a tariff's free numbers.
const hotline = "+861239500"

// MustFreeCallsFixture is MustAPIFixture where A1 (who made a paid call)
// and A2 (who made none) each called the union's hotline, metered the way
// the consumer meters a call to a free number: billing nothing, marked
// free.
func MustFreeCallsFixture(tb testing.TB) *apiFixture {
	tb.Helper()
	f := MustAPIFixture(tb)
	for _, sf := range []struct{ id, msisdn string }{{f.a1.ID, f.a1.MSISDN}, {f.a2.ID, f.a2.MSISDN}} {
		f.meter(tb, quota.Usage{
			SeafarerID: sf.id, MSISDN: sf.msisdn, Source: "urn:carrier:test", EventID: "cdr-hotline-" + sf.id,
			Type: "carrier.usage.voice", CallTime: time.Now().UTC().Add(-time.Minute), DurationSeconds: 305,
			CalledNumber: hotline, VisitedCountry: "SG", Free: true,
			OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
		})
	}
	return f
}

// usageEvents lists the event ids of a seafarer's usage as tok reads it.
func usageEvents(t *testing.T, f *apiFixture, seafarerID, tok, query string) (events []string, free []bool, next string) {
	t.Helper()
	status, _, body := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/" + seafarerID + "/usage" + query, token: tok})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var page struct {
		Items []struct {
			EventID string `json:"event_id"`
			Free    bool   `json:"free"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	for _, e := range page.Items {
		if e.EventID != "" {
			events = append(events, e.EventID)
			free = append(free, e.Free)
		}
	}
	return events, free, page.NextCursor
}

// A company never learns that one of its crew called a free number (the
// union's hotline about their employer): its crew's usage leaves such calls
// out, while the union and the seafarer themselves see them.
func TestACompanyDoesNotSeeItsCrewsCallsToFreeNumbersInUsage(t *testing.T) {
	t.Parallel()
	f := MustFreeCallsFixture(t)
	hotlineCall, paidCall := "cdr-hotline-"+f.a1.ID, "cdr-"+f.a1.ID
	for _, tc := range []struct {
		name, token string
		want        []string
		free        []bool
	}{
		{"the union sees the free call", f.union, []string{hotlineCall, paidCall}, []bool{true, false}},
		{"the seafarer sees their own", f.seafarerA1, []string{hotlineCall, paidCall}, []bool{true, false}},
		{"the company does not", f.companyAToken, []string{paidCall}, []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, free, _ := usageEvents(t, f, f.a1.ID, tc.token, "")
			require.Equal(t, tc.want, events)
			require.Equal(t, tc.free, free)
		})
	}
	events, _, _ := usageEvents(t, f, f.a2.ID, f.companyAToken, "")
	require.Empty(t, events, "A2 only called the hotline")

	// A page is full of what the company may see: the grant and the paid
	// call, no cursor to a page the free call would have pushed out.
	status, _, body := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/" + f.a1.ID + "/usage?limit=2", token: f.companyAToken})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Items, 2)
	require.Empty(t, page.NextCursor)
	require.NotContains(t, string(body), "free")
	require.NotContains(t, string(body), "9500")
}

// A company's own statement (JSON and CSV) carries no free_calls or
// free_seconds, counts in calls only the paid ones and has no line for a
// seafarer who only called free numbers; the union reads the same
// statement with them.
func TestACompanysStatementDoesNotTellOfFreeCallsButTheUnionsDoes(t *testing.T) {
	t.Parallel()
	f := MustFreeCallsFixture(t)
	path := statementPath(billing.PeriodOf(time.Now()), "company:"+f.companyA.ID)
	read := func(tok string) (map[string]any, string) {
		status, _, body := f.do(t, apiRequest{method: "GET", path: path, token: tok})
		require.Equal(t, http.StatusOK, status, "%s", body)
		var st map[string]any
		require.NoError(t, json.Unmarshal(body, &st))
		return st, string(body)
	}

	union, _ := read(f.union)
	require.EqualValues(t, 3, union["calls"], "A1's paid call and both hotline calls")
	require.EqualValues(t, 2, union["free_calls"])
	require.EqualValues(t, 610, union["free_seconds"])
	require.Len(t, union["lines"], 2)

	company, body := read(f.companyAToken)
	require.NotContains(t, body, "free_")
	require.EqualValues(t, 1, company["calls"], "A1's paid call only")
	require.EqualValues(t, 1, company["totals"].(map[string]any)["calls"])
	require.Equal(t, union["billable_seconds"], company["billable_seconds"])
	require.Equal(t, union["overage_amount"], company["overage_amount"])
	lines := company["lines"].([]any)
	require.Len(t, lines, 1, "A2 only called the hotline: no line")
	require.Equal(t, f.a1.ID, lines[0].(map[string]any)["seafarer_id"])

	readCSV := func(tok string) [][]string {
		status, _, body := f.do(t, apiRequest{method: "GET", path: path, token: tok, header: map[string]string{"Accept": "text/csv"}})
		require.Equal(t, http.StatusOK, status, "%s", body)
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		require.NoError(t, err)
		return recs
	}
	u, c := readCSV(f.union), readCSV(f.companyAToken)
	require.Equal(t, []string{"free_calls", "free_seconds"}, u[0][len(u[0])-2:])
	require.Equal(t, u[0][:len(u[0])-2], c[0], "the company's columns are the union's without the free calls'")
	require.Len(t, u, 3)
	require.Len(t, c, 2)
	require.Equal(t, f.a1.ID, c[1][0])
	require.Equal(t, "1", c[1][5], "calls")
}

// What else a company reads of its crew (the allowance and the crew list)
// says nothing of a call to a free number: it draws nothing and bills
// nothing, so both read the same before and after it.
func TestACallToAFreeNumberChangesNothingACompanyReadsOfItsCrew(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	read := func() (allowance map[string]any, list string) {
		status, _, body := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/" + f.a2.ID + "/allowance", token: f.companyAToken})
		require.Equal(t, http.StatusOK, status, "%s", body)
		require.NoError(t, json.Unmarshal(body, &allowance))
		delete(allowance, "as_of")
		status, _, body = f.do(t, apiRequest{method: "GET", path: "/v1/companies/" + f.companyA.ID + "/seafarers", token: f.companyAToken})
		require.Equal(t, http.StatusOK, status, "%s", body)
		return allowance, string(body)
	}
	allowanceBefore, listBefore := read()
	f.meter(t, quota.Usage{
		SeafarerID: f.a2.ID, MSISDN: f.a2.MSISDN, Source: "urn:carrier:test", EventID: "cdr-hotline-a2",
		Type: "carrier.usage.voice", CallTime: time.Now().UTC().Add(-time.Minute), DurationSeconds: 305,
		CalledNumber: hotline, VisitedCountry: "SG", Free: true,
	})
	events, _, _ := usageEvents(t, f, f.a2.ID, f.union, "")
	require.Equal(t, []string{"cdr-hotline-a2"}, events, "the call is metered")
	allowanceAfter, listAfter := read()
	require.Equal(t, allowanceBefore, allowanceAfter)
	require.Equal(t, listBefore, listAfter)
}
