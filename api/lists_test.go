package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// mustWalk reads every page of a list at limit items a page and returns
// the ids in order.
func mustWalk(t *testing.T, f *apiFixture, doc *openapi3.T, path string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "the list never ends")
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		status, body := sendDocumented(t, f, doc, http.MethodGet, path+sep+q.Encode(), f.union, nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
		var p struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(body, &p))
		require.LessOrEqual(t, len(p.Items), limit)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
}

func TestCompaniesAreListedOldestFirstAPageAtATimeAndFoundByAnyPartOfTheirNameInAnyCase(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t) // Alpha Shipping, Beta Maritime
	doc := mustLoadOpenAPI(t)
	ctx := context.Background()
	want := []string{f.companyA.ID, f.companyB.ID}
	for i, name := range []string{"Gamma Lines", "COSCO 中远 Shipping", "100% Tankers_Ltd"} {
		co, err := f.crew.CreateCompany(ctx, name, fmt.Sprintf("REG-L%d", i))
		require.NoError(t, err)
		want = append(want, co.ID)
	}

	for _, limit := range []int{1, 2, 5, 500} {
		require.Equal(t, want, mustWalk(t, f, doc, "/v1/companies", limit), "limit %d", limit)
	}
	for _, tc := range []struct {
		name, q string
		want    []string
	}{
		{"lower case finds a capitalised word", "shipping", []string{f.companyA.ID, want[3]}},
		{"upper case finds a lower-case part", "MARI", []string{f.companyB.ID}},
		{"Chinese text", "中远", []string{want[3]}},
		{"a percent sign is a percent sign, not a wildcard", "100%", []string{want[4]}},
		{"an underscore is an underscore", "s_l", []string{want[4]}},
		{"nothing matches", "Delta", nil},
		{"blank is everything", "  ", want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustWalk(t, f, doc, "/v1/companies?q="+url.QueryEscape(tc.q), 1)
			require.Equal(t, tc.want, got)
		})
	}

	status, body := sendDocumented(t, f, doc, http.MethodGet, "/v1/companies?q=alpha", f.union, nil)
	require.Equal(t, http.StatusOK, status)
	var p page[crew.Company]
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, []crew.Company{*f.companyA}, p.Items, "an item is the company as GET /v1/companies/{id} shows it")
}

func TestProgrammesAreListedWithTheirBudgetPacksIssuedAndSecondsUsed(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t) // one programme, 4 packs issued
	doc := mustLoadOpenAPI(t)
	ctx := context.Background()
	f.meter(t, quota.Usage{ // covered by the pack: the seeded calls were made before it was issued
		SeafarerID: f.a2.ID, MSISDN: f.a2.MSISDN, Source: "urn:carrier:test", EventID: "cdr-list-a2", Type: "carrier.usage.voice",
		CallTime: time.Now().UTC(), DurationSeconds: 100, BillableSeconds: 120, CalledNumber: calledNumber, VisitedCountry: "SG",
		OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
	})
	other, err := f.programmes.CreateProgramme(ctx, quota.ProgrammeInput{
		Name: "Spring Festival calls home", PackSeconds: 600, ValidDays: 30, BudgetPacks: 10,
		StartsAt: f.programme.StartsAt, EndsAt: f.programme.EndsAt,
	})
	require.NoError(t, err)

	require.Equal(t, []string{f.programme.ID, other.ID}, mustWalk(t, f, doc, "/v1/programmes", 1))
	status, body := sendDocumented(t, f, doc, http.MethodGet, "/v1/programmes?q=WORRY", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var p page[quota.Programme]
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, p.Items, 1)
	one, err := f.programmes.Programme(ctx, f.programme.ID)
	require.NoError(t, err)
	require.Equal(t, *one, p.Items[0], "an item is the programme as GET /v1/programmes/{id} shows it")
	require.EqualValues(t, 4, p.Items[0].PacksIssued)
	require.EqualValues(t, 120, p.Items[0].SecondsUsed)
}

func TestListsRefuseABadLimitCursorOrQueryNamingTheField(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	for _, list := range []struct{ path, othersCursor string }{
		{"/v1/companies", f.programme.ID},
		{"/v1/programmes", f.companyA.ID},
	} {
		for _, tc := range []struct{ name, query, field string }{
			{"limit 0", "limit=0", "limit"},
			{"limit over 500", "limit=501", "limit"},
			{"limit not a number", "limit=ten", "limit"},
			{"a cursor no list returned", "cursor=zzz", "cursor"},
			{"another list's cursor", "cursor=" + url.QueryEscape(list.othersCursor), "cursor"},
			{"a cursor in lower case", "cursor=" + url.QueryEscape(strings.ToLower(list.othersCursor[:3]+f.companyA.ID[3:])), "cursor"},
			{"a query of 201 characters", "q=" + strings.Repeat("a", 201), "q"},
			{"a query with a control character", "q=%01", "q"},
		} {
			t.Run(list.path+": "+tc.name, func(t *testing.T) {
				status, body := sendDocumented(t, f, doc, http.MethodGet, list.path+"?"+tc.query, f.union, nil)
				require.Equal(t, http.StatusBadRequest, status, "%s", body)
				var p problemBody
				require.NoError(t, json.Unmarshal(body, &p))
				require.Len(t, p.Errors, 1, "%s", body)
				require.Equal(t, tc.field, p.Errors[0].Field)
			})
		}
	}
}

// Union staff and a company find a crew member by part of the name or by
// the number as they would type it (?q= on a company's seafarers); the
// answer is as documented, never another company's crew, and a query that
// is not text is a 400 naming q.
func TestACompanysSeafarersAreFoundByPartOfTheNameOrTheNumber(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t) // A: Li Wei +8613800000001, Wang Fang +8613800000002; B: Zhang Min, Chen Jie
	doc := mustLoadOpenAPI(t)
	crewOfA := "/v1/companies/" + f.companyA.ID + "/seafarers"
	for _, tc := range []struct {
		name, q string
		want    []string
	}{
		{"part of a name in another case", "wang", []string{f.a2.ID}},
		{"a number with spaces as typed", "+86 138 0000 0001", []string{f.a1.ID}},
		{"digits both numbers hold", "13800000", []string{f.a1.ID, f.a2.ID}},
		{"another company's crew member is not found", "Zhang", nil},
		{"another company's number is not found", "13900000001", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ElementsMatch(t, tc.want, mustWalk(t, f, doc, crewOfA+"?q="+url.QueryEscape(tc.q), 500))
		})
	}
	status, body := sendDocumented(t, f, doc, http.MethodGet, crewOfA+"?q=%01", f.union, nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	var p problemBody
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, p.Errors, 1, "%s", body)
	require.Equal(t, "q", p.Errors[0].Field)
}
