package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

func TestOverviewShowsTheMonthsCoveredAndOverageMinutesByDayAndTheCompaniesWithMostOverage(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t) // A1 and B1 each made a 3-minute call before their packs were issued: overage
	doc := mustLoadOpenAPI(t)
	now := time.Now().UTC()
	call := func(sf *crew.Seafarer, id string, at time.Time, billable int64) {
		f.meter(t, quota.Usage{
			SeafarerID: sf.ID, MSISDN: sf.MSISDN, Source: "urn:carrier:test", EventID: id, Type: "carrier.usage.voice",
			CallTime: at, DurationSeconds: billable, BillableSeconds: billable, CalledNumber: calledNumber, VisitedCountry: "SG",
			OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
		})
	}
	call(f.a2, "cdr-ov-a2", now, 120)                     // covered by A2's pack
	call(f.b2, "cdr-ov-b2", now.Add(-20*time.Minute), 60) // before B2's pack: overage
	seeded := now.Add(-10 * time.Minute)                  // when the fixture's calls were made
	period := billing.PeriodOf(seeded)

	status, body := sendDocumented(t, f, doc, http.MethodGet, "/v1/ops/overview?period="+period, f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var o quota.MonthOverview
	require.NoError(t, json.Unmarshal(body, &o))
	start, end, _ := billing.PeriodBounds(period)
	require.Equal(t, period, o.Period)
	require.Equal(t, billing.PeriodOpen, o.Status)
	require.Len(t, o.Days, int(end.Sub(start).Hours()/24), "one entry per day of the month")
	// What each day of the month should show: the calls made that day.
	want := map[string]quota.DayFigures{}
	for _, c := range []struct {
		at               time.Time
		covered, overage int64
	}{{seeded, 0, 180}, {seeded, 0, 180}, {now, 120, 0}, {now.Add(-20 * time.Minute), 0, 60}} {
		if billing.PeriodOf(c.at) != period {
			continue // the test runs in the first minutes of a month
		}
		d := want[c.at.Format(time.DateOnly)]
		d.Calls, d.CoveredSeconds, d.OverageSeconds = d.Calls+1, d.CoveredSeconds+c.covered, d.OverageSeconds+c.overage
		want[c.at.Format(time.DateOnly)] = d
	}
	for i, d := range o.Days {
		date := start.AddDate(0, 0, i).Format(time.DateOnly)
		w := want[date]
		w.Date = date
		require.Equal(t, w, d)
	}
	require.Equal(t, quota.DayFigures{}, o.Adjustments)

	require.Len(t, o.TopOverage, 2)
	require.Equal(t, f.companyB.ID, o.TopOverage[0].CompanyID, "B's crew ran up 4 minutes of overage, A's 3")
	require.Equal(t, "Beta Maritime", o.TopOverage[0].Name)
	require.EqualValues(t, 240, o.TopOverage[0].OverageSeconds)
	require.Equal(t, billing.Money{Minor: 4 * 300, Currency: "CNY"}, o.TopOverage[0].OverageAmount)
	require.Equal(t, f.companyA.ID, o.TopOverage[1].CompanyID)

	status, body = sendDocumented(t, f, doc, http.MethodGet, "/v1/ops/overview?top=1&period="+period, f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &o))
	require.Len(t, o.TopOverage, 1)

	status, body = sendDocumented(t, f, doc, http.MethodGet, "/v1/ops/overview?period=2001-01", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &o))
	require.Len(t, o.Days, 31)
	require.Empty(t, o.TopOverage, "a month without calls has no company with overage")
}

func TestOverviewRefusesABadPeriodOrTopNamingTheField(t *testing.T) {
	t.Parallel()
	f := MustAPIServer(t)
	doc := mustLoadOpenAPI(t)
	for query, field := range map[string]string{
		"period=2026-13": "period", "period=last": "period", "top=-1": "top", "top=51": "top", "top=many": "top",
	} {
		t.Run(query, func(t *testing.T) {
			status, body := sendDocumented(t, f, doc, http.MethodGet, "/v1/ops/overview?"+query, f.union, nil)
			require.Equal(t, http.StatusBadRequest, status, "%s", body)
			var p problemBody
			require.NoError(t, json.Unmarshal(body, &p))
			require.Len(t, p.Errors, 1)
			require.Equal(t, field, p.Errors[0].Field)
		})
	}
}
