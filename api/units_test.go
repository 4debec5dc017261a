package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// Proves, through the API and against api/openapi.json: a programme of 2 GB
// data packs is created with unit and pack_amount (a bytes programme by
// pack_seconds, or seconds by two different amounts, is a 400 naming the
// field); its packs become bytes grants; a data session draws them and
// shows in the usage with its unit and billable/covered/overage; the
// allowance lists a balance per unit while remaining_seconds and the
// carrier's lookup still count seconds only; the programme says how many
// bytes were used.
func TestDataProgrammesAllowanceAndUsageOverTheAPIAreAsDocumented(t *testing.T) {
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	ctx := context.Background()
	now := time.Now().UTC()
	base := func(extra map[string]any) map[string]any {
		body := map[string]any{"name": "Data at sea", "valid_days": 30, "priority": 1,
			"starts_at": now.Add(-time.Hour), "ends_at": now.AddDate(1, 0, 0)}
		for k, v := range extra {
			body[k] = v
		}
		return body
	}

	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{base(map[string]any{"unit": "bytes", "pack_seconds": 3600}), "pack_seconds"},
		{base(map[string]any{"pack_seconds": 3600, "pack_amount": 1800}), "pack_amount"},
		{base(map[string]any{"unit": "minutes", "pack_amount": 10}), "unit"},
	} {
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union, bad.body)
		require.Equal(t, http.StatusBadRequest, status, "%s", answer)
		require.Contains(t, string(answer), `"field":"`+bad.field+`"`)
	}

	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union,
		base(map[string]any{"unit": "bytes", "pack_amount": 2 << 30}))
	require.Equal(t, http.StatusCreated, status, "%s", answer)
	var created map[string]any
	require.NoError(t, json.Unmarshal(answer, &created))
	require.Equal(t, "bytes", created["unit"])
	require.EqualValues(t, 2<<30, created["pack_amount"])
	require.EqualValues(t, 0, created["pack_seconds"], "bytes are never shown as seconds")
	id := created["id"].(string)
	trail := f.auditPage(t, f.union, url.Values{"resource": {"programmes/" + id}})
	require.Len(t, trail.Items, 1)
	require.Contains(t, trail.Items[0].Summary, "packs of 2147483648 bytes valid 30 days", "the audit trail names the unit")

	iss, _, err := f.issuer.StartAndRun(ctx, id, "data-"+f.companyA.ID, quota.IssuanceTarget{CompanyID: f.companyA.ID}, 100)
	require.NoError(t, err)
	require.EqualValues(t, 2, iss.Issued)
	f.meter(t, quota.Usage{
		SeafarerID: f.a1.ID, MSISDN: f.a1.MSISDN, Source: "urn:carrier:test", EventID: "data-" + f.a1.ID,
		Type: billing.TypeData, CallTime: time.Now().UTC(), // after the packs took effect
		Unit: billing.UnitBytes, Billable: 3 << 20, VolumeBytes: 3<<20 - 10,
		VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: billing.BytesPerMB,
	})

	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+f.a1.ID+"/allowance", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var a quota.Allowance
	require.NoError(t, json.Unmarshal(answer, &a))
	units := map[string][2]int64{}
	for _, b := range a.Balances {
		units[b.Unit] = [2]int64{b.Granted, b.Remaining}
	}
	require.Equal(t, [2]int64{2 << 30, 2<<30 - 3<<20}, units["bytes"])
	require.Equal(t, [2]int64{3600, 3600}, units["seconds"], "the seed's hour (its call came before it: overage)")
	require.EqualValues(t, 3600, a.RemainingSeconds, "remaining_seconds counts seconds only")
	require.Equal(t, []quota.UnitFigure{{Unit: "seconds", Used: 180, Overage: 180}, {Unit: "bytes", Used: 3 << 20}}, a.Usage)

	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/carrier/subscribers/"+msisdnPath(f.a1.MSISDN)+"/allowance", f.carrierToken, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	require.Contains(t, string(answer), `"remaining_seconds":3600`)

	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+f.a1.ID+"/usage", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var usage struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal(answer, &usage))
	var data map[string]any
	for _, e := range usage.Items {
		if e["event_id"] == "data-"+f.a1.ID {
			data = e
		}
	}
	require.NotNil(t, data, "the data session is in the usage: %s", answer)
	require.Equal(t, "bytes", data["unit"])
	require.EqualValues(t, 3<<20, data["billable"])
	require.EqualValues(t, 3<<20, data["covered"])
	require.EqualValues(t, 0, data["billable_seconds"])

	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/programmes/"+id, f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var got map[string]any
	require.NoError(t, json.Unmarshal(answer, &got))
	require.EqualValues(t, 3<<20, got["used"], "bytes drawn from the programme's packs")
	require.EqualValues(t, 2*(2<<30), got["granted"])
	require.EqualValues(t, 0, got["seconds_used"])
}
