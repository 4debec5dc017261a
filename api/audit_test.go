package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// auditPage reads GET /v1/audit with query q as token.
func (f *apiFixture) auditPage(tb testing.TB, tok string, q url.Values) page[audit.Record] {
	tb.Helper()
	status, _, body := f.do(tb, apiRequest{method: "GET", path: "/v1/audit?" + q.Encode(), token: tok})
	require.Equal(tb, http.StatusOK, status, "%s", body)
	var p page[audit.Record]
	require.NoError(tb, json.Unmarshal(body, &p))
	return p
}

// Every write made with a person's token that succeeds is recorded, newest
// first, with its actor, action, resource, request id and summary; refused
// writes record nothing.
func TestEverySuccessfulStaffWriteIsRecordedAndNothingElse(t *testing.T) {
	f := MustAPIFixture(t)
	now := time.Now().UTC()
	post := func(tok, path string, body any, header map[string]string) (int, []byte) {
		t.Helper()
		r := apiRequest{method: "POST", path: path, token: tok, header: header}
		if body != nil {
			r.contentType, r.body = fiber.MIMEApplicationJSON, mustJSON(t, body)
		}
		status, _, answer := f.do(t, r)
		return status, answer
	}
	requestID := func(id string) map[string]string { return map[string]string{"X-Request-Id": id} }

	// Refused: each must leave no record.
	status, _ := post(f.companyAToken, "/v1/programmes", map[string]any{"name": "x"}, nil) // 403
	require.Equal(t, http.StatusForbidden, status)
	status, _ = post(f.union, "/v1/companies", map[string]any{"name": ""}, nil) // 400
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = post(f.companyAToken, "/v1/companies/"+f.companyB.ID+"/seafarers", f.newEnrolment(), nil) // 404
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, f.auditPage(t, f.union, nil).Items, "refused writes record nothing")

	// Succeeded: one record each.
	status, body := post(f.union, "/v1/companies", map[string]any{"name": "Gamma Lines", "registration_no": "REG-G"}, requestID("req-company"))
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var co struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &co))

	status, body = post(f.companyAToken, "/v1/companies/"+f.companyA.ID+"/seafarers", f.newEnrolment(), requestID("req-enrol"))
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var sf struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &sf))

	status, _, body = f.do(t, apiRequest{method: "PATCH", path: "/v1/seafarers/" + sf.ID, token: f.companyAToken,
		contentType: fiber.MIMEApplicationJSON, body: []byte(`{"status":"signed_off","msisdn":"+8613811112222"}`), header: requestID("req-patch")})
	require.Equal(t, http.StatusOK, status, "%s", body)

	status, _, body = f.do(t, apiRequest{method: "POST", path: "/v1/companies/" + f.companyA.ID + "/seafarers:bulk", token: f.companyAToken,
		contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, []any{f.newEnrolment(), map[string]any{"name": "no book"}}), header: requestID("req-bulk")})
	require.Equal(t, http.StatusOK, status, "%s", body)

	status, body = post(f.union, "/v1/programmes", map[string]any{"name": "Winter packs", "pack_seconds": 600, "valid_days": 30,
		"priority": 2, "starts_at": now.Add(-time.Hour), "ends_at": now.Add(90 * 24 * time.Hour)}, requestID("req-programme"))
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var prog struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &prog))

	status, body = post(f.union, "/v1/programmes/"+prog.ID+"/issuances", map[string]any{"seafarer_ids": []string{f.a1.ID}},
		map[string]string{"X-Request-Id": "req-issue", "Idempotency-Key": "k-1"})
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	var iss quota.Issuance
	require.NoError(t, json.Unmarshal(body, &iss))

	grants, err := f.quota.Grants(context.Background(), f.a2.ID)
	require.NoError(t, err)
	status, body = post(f.union, "/v1/seafarers/"+f.a2.ID+"/grants/"+grants[0].ID+":void", nil, requestID("req-void"))
	require.Equal(t, http.StatusOK, status, "%s", body)

	previous := billing.PeriodOf(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour))
	status, body = post(f.union, "/v1/periods/"+previous+":close", nil, requestID("req-close"))
	require.Equal(t, http.StatusOK, status, "%s", body)

	union := wuyou.Actor{Sub: "union-officer-1", Role: token.RoleUnion}
	managerA := wuyou.Actor{Sub: "crew-manager-a", Role: token.RoleCompany, CompanyID: f.companyA.ID}
	type want struct {
		actor                       wuyou.Actor
		action, resource, requestID string
	}
	wants := []want{
		{union, audit.ActionPeriodClose, "periods/" + previous, "req-close"},
		{union, audit.ActionGrantVoid, "seafarers/" + f.a2.ID + "/grants/" + grants[0].ID, "req-void"},
		{union, audit.ActionIssuanceStart, "issuances/" + iss.ID, "req-issue"},
		{union, audit.ActionProgrammeCreate, "programmes/" + prog.ID, "req-programme"},
		{managerA, audit.ActionSeafarerBulkEnrol, "companies/" + f.companyA.ID, "req-bulk"},
		{managerA, audit.ActionSeafarerUpdate, "seafarers/" + sf.ID, "req-patch"},
		{managerA, audit.ActionSeafarerEnrol, "seafarers/" + sf.ID, "req-enrol"},
		{union, audit.ActionCompanyCreate, "companies/" + co.ID, "req-company"},
	}
	got := f.auditPage(t, f.union, nil)
	require.Len(t, got.Items, len(wants), "%+v", got.Items)
	for i, w := range wants {
		r := got.Items[i]
		require.Equal(t, w, want{r.Actor, r.Action, r.Resource, r.RequestID}, "record %d", i)
		require.NotEmpty(t, r.Summary, "record %d", i)
		require.WithinDuration(t, time.Now(), r.At, time.Minute)
	}
	require.Equal(t, "set msisdn, status=signed_off", got.Items[5].Summary, "a patch names what it set, not the number")
	require.Contains(t, got.Items[4].Summary, "2 rows: 1 created, 0 updated, 1 failed")

	t.Run("a company reads only what its own tokens did", func(t *testing.T) {
		mine := f.auditPage(t, f.companyAToken, nil)
		require.Len(t, mine.Items, 3)
		for _, r := range mine.Items {
			require.Equal(t, managerA, r.Actor)
		}
		companyB := f.token(t, token.RoleCompany, "crew-manager-b", f.companyB.ID)
		require.Empty(t, f.auditPage(t, companyB, nil).Items)
		require.Empty(t, f.auditPage(t, companyB, url.Values{"actor": {"crew-manager-a"}}).Items, "asking by actor does not widen it")
	})

	t.Run("filters by actor, resource and time", func(t *testing.T) {
		require.Len(t, f.auditPage(t, f.union, url.Values{"actor": {"crew-manager-a"}}).Items, 3)
		byResource := f.auditPage(t, f.union, url.Values{"resource": {"seafarers/" + sf.ID}}).Items
		require.Len(t, byResource, 2)
		require.Empty(t, f.auditPage(t, f.union, url.Values{"to": {now.Add(-time.Hour).Format(time.RFC3339)}}).Items)
		require.Len(t, f.auditPage(t, f.union, url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}}).Items, len(wants))
	})

	t.Run("pages follow next_cursor", func(t *testing.T) {
		var ids []string
		q := url.Values{"limit": {"3"}}
		for range 10 {
			p := f.auditPage(t, f.union, q)
			for _, r := range p.Items {
				ids = append(ids, r.ID)
			}
			if p.NextCursor == "" {
				break
			}
			q.Set("cursor", p.NextCursor)
		}
		require.Len(t, ids, len(wants))
		for i, r := range got.Items {
			require.Equal(t, r.ID, ids[i])
		}
	})

	t.Run("grant and void ledger entries name their actor", func(t *testing.T) {
		entries, _, err := f.ledger.Ledger(context.Background(), f.a1.ID, quota.LedgerFilter{})
		require.NoError(t, err)
		var grant *quota.LedgerEntry
		for _, e := range entries {
			if e.Kind == quota.KindGrant && e.ProgrammeID == prog.ID {
				grant = e
			}
			if e.Kind == quota.KindDebit {
				require.Nil(t, e.Actor, "a debit is nobody's doing")
			}
		}
		require.NotNil(t, grant)
		require.Equal(t, &union, grant.Actor)

		status, _, body := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/" + f.a2.ID + "/usage", token: f.union})
		require.Equal(t, http.StatusOK, status)
		var usage page[quota.LedgerEntry]
		require.NoError(t, json.Unmarshal(body, &usage))
		var void *quota.LedgerEntry
		for i := range usage.Items {
			if usage.Items[i].Kind == quota.KindVoid {
				void = &usage.Items[i]
			}
		}
		require.NotNil(t, void, "%s", body)
		require.Equal(t, &union, void.Actor)
	})

	t.Run("no route changes or deletes a record", func(t *testing.T) {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			for _, path := range []string{"/v1/audit", "/v1/audit/" + got.Items[0].ID} {
				status, header, body := f.do(t, apiRequest{method: method, path: path, token: f.union,
					contentType: fiber.MIMEApplicationJSON, body: []byte(`{"summary":"nothing happened"}`)})
				require.Equal(t, http.StatusNotFound, status, "%s %s: %s", method, path, body)
				require.Equal(t, "application/problem+json", header.Get(fiber.HeaderContentType))
			}
		}
		after := f.auditPage(t, f.union, nil)
		require.Equal(t, got.Items, after.Items)
	})
}

// Filters that cannot be read are refused with a 400 naming the field.
func TestBadAuditFiltersAre400NamingTheField(t *testing.T) {
	f := MustAPIServer(t)
	now := time.Now().UTC()
	for _, tc := range []struct{ name, query, field string }{
		{"from is not a time", "from=yesterday", "from"},
		{"to is not a time", "to=2026-13-01T00:00:00Z", "to"},
		{"from after to", "from=" + now.Format(time.RFC3339) + "&to=" + now.Add(-time.Hour).Format(time.RFC3339), "from"},
		{"a cursor this list did not give", "cursor=sf_01JD0000000000000000000000", "cursor"},
		{"a cursor that is free text", "cursor=" + url.QueryEscape("' OR 1=1 --"), "cursor"},
		{"a limit out of range", "limit=501", "limit"},
		{"an actor with a control character", "actor=a%00b", "actor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "GET", path: "/v1/audit?" + tc.query, token: f.union})
			requireFieldRefused(t, status, header, body, tc.field)
		})
	}
	t.Run("an unknown resource is an empty page, not an error", func(t *testing.T) {
		p := f.auditPage(t, f.union, url.Values{"resource": {fmt.Sprintf("seafarers/sf_%d", now.UnixNano())}})
		require.Empty(t, p.Items)
		require.Empty(t, p.NextCursor)
	})
}

// A void whose ledger entry cannot be recorded at once is still a void: the
// trail records it although the answer is 503, and the entry recorded when
// the void is repeated names who repeated it.
func TestAVoidAnswered503IsInTheTrailAndItsRepairNamesAnActor(t *testing.T) {
	f := MustAPIFixture(t)
	rec := &flakyRecorder{fail: 1}
	cfg := f.server.cfg
	cfg.Ledger, cfg.Registry = rec, nil // a registry of its own
	f.app = New(cfg).App()
	grants, err := f.quota.Grants(context.Background(), f.a1.ID)
	require.NoError(t, err)
	path := "/v1/seafarers/" + f.a1.ID + "/grants/" + grants[0].ID + ":void"

	status, _, body := f.do(t, apiRequest{method: "POST", path: path, token: f.union})
	require.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
	trail := f.auditPage(t, f.union, nil).Items
	require.Len(t, trail, 1)
	require.Equal(t, audit.ActionGrantVoid, trail[0].Action)
	require.Contains(t, trail[0].Summary, "not recorded yet")

	status, _, body = f.do(t, apiRequest{method: "POST", path: path, token: f.union})
	require.Equal(t, http.StatusConflict, status, "%s", body)
	require.Len(t, rec.recorded, 1)
	require.Equal(t, &wuyou.Actor{Sub: "union-officer-1", Role: token.RoleUnion}, rec.recorded[0].Actor)
	require.Len(t, f.auditPage(t, f.union, nil).Items, 1, "the 409 itself changed nothing")
}
