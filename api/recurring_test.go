package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/quota"
)

// Proves: a recurring programme is created, read and listed with its
// recurrence, audience and month as the document describes; bad shapes
// are 400s naming the field, also as documented; an issuance of it is 409.
func TestARecurringProgrammeOverTheAPIIsAsDocumented(t *testing.T) {
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	now := time.Now().UTC()
	body := map[string]any{
		"name": "Monthly hour", "pack_seconds": 3600, "priority": 2, "budget_packs": 100,
		"starts_at": now.Add(-time.Hour), "ends_at": now.AddDate(1, 0, 0),
		"recurrence": map[string]any{"every": "month", "while": "signed_on", "rollover_max": 600},
		"company_id": f.companyA.ID,
	}
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union, body)
	require.Equal(t, http.StatusCreated, status, "%s", answer)
	var created quota.Programme
	require.NoError(t, json.Unmarshal(answer, &created))
	require.Equal(t, &quota.Recurrence{Every: "month", While: "signed_on", RolloverMax: 600, TimeZone: "Asia/Shanghai"}, created.Recurrence)
	require.Equal(t, f.companyA.ID, created.CompanyID)
	require.Zero(t, created.ValidDays)
	trail := f.auditPage(t, f.union, url.Values{"resource": {"programmes/" + created.ID}})
	require.Len(t, trail.Items, 1)
	require.Contains(t, trail.Items[0].Summary, "created recurring programme \"Monthly hour\": 3600 s a month (rollover up to 600 s, months of Asia/Shanghai) while signed on, to company "+f.companyA.ID)

	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/programmes/"+created.ID, f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var got quota.Programme
	require.NoError(t, json.Unmarshal(answer, &got))
	require.Equal(t, created.Recurrence, got.Recurrence)
	require.NotNil(t, got.Month)
	require.EqualValues(t, 100, *got.BudgetRemainingPacks)
	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/programmes", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	require.Contains(t, string(answer), `"recurrence":{"every":"month"`)

	for name, c := range map[string]struct {
		edit  func(map[string]any)
		field string
	}{
		"no audience":   {func(b map[string]any) { delete(b, "company_id") }, "audience"},
		"two audiences": {func(b map[string]any) { b["all"] = true }, "audience"},
		"unknown zone": {func(b map[string]any) {
			b["recurrence"] = map[string]any{"every": "month", "while": "signed_on", "time_zone": "Mars/Olympus"}
		}, "recurrence.time_zone"},
		"negative rollover": {func(b map[string]any) {
			b["recurrence"] = map[string]any{"every": "month", "while": "signed_on", "rollover_max": -1}
		}, "recurrence.rollover_max"},
		"unknown company":             {func(b map[string]any) { b["company_id"] = "co_nobody" }, "company_id"},
		"audience without recurrence": {func(b map[string]any) { delete(b, "recurrence"); b["valid_days"] = 30 }, "company_id"},
	} {
		b := map[string]any{}
		for k, v := range body {
			b[k] = v
		}
		c.edit(b)
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union, b)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", name, answer)
		var p problemBody
		require.NoError(t, json.Unmarshal(answer, &p))
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
		}
		require.Contains(t, fields, c.field, name)
	}

	status, _, answer = f.do(t, apiRequest{method: http.MethodPost, path: "/v1/programmes/" + created.ID + "/issuances", token: f.union,
		contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{"company_id": f.companyA.ID}),
		header: map[string]string{"Idempotency-Key": "k1"}})
	require.Equal(t, http.StatusConflict, status, "%s", answer)
}

// Proves: an enrolment, a bulk enrolment, a PATCH of a seafarer and a
// vessel's sign-on each nudge the monthly issue once they succeed, and a
// refused request does not.
func TestRegistryWritesNudgeTheMonthlyIssue(t *testing.T) {
	f := MustAPIFixture(t)
	var nudges atomic.Int64
	f.server.cfg.RecurringNudge = func() { nudges.Add(1) }
	send := func(method, path string, body any) int {
		status, _, answer := f.do(t, apiRequest{method: method, path: path, token: f.union, contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, body)})
		t.Logf("%s %s: %d %.200s", method, path, status, answer)
		return status
	}
	enrolment := map[string]any{"seafarer_book_no": "N-1", "name": "Sun Li", "msisdn": "+8613700000001", "sign_on": "2026-01-01"}
	require.Equal(t, http.StatusCreated, send(http.MethodPost, "/v1/companies/"+f.companyA.ID+"/seafarers", enrolment))
	require.EqualValues(t, 1, nudges.Load())
	require.Equal(t, http.StatusOK, send(http.MethodPatch, "/v1/seafarers/"+f.a1.ID, map[string]any{"sign_off": "2030-01-01"}))
	require.EqualValues(t, 2, nudges.Load())
	require.Equal(t, http.StatusOK, send(http.MethodPost, "/v1/companies/"+f.companyA.ID+"/seafarers:bulk",
		[]map[string]any{{"seafarer_book_no": "N-2", "name": "Zhou Yi", "msisdn": "+8613700000002"}}))
	require.EqualValues(t, 3, nudges.Load())
	require.Equal(t, http.StatusOK, send(http.MethodPost, "/v1/companies/"+f.companyA.ID+"/vessels/9074729:sign-on", map[string]any{}))
	require.EqualValues(t, 4, nudges.Load())
	require.Equal(t, http.StatusBadRequest, send(http.MethodPatch, "/v1/seafarers/"+f.a1.ID, map[string]any{"status": "asleep"}))
	require.EqualValues(t, 4, nudges.Load(), "a refused request nudges nothing")
}
