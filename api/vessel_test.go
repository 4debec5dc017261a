package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/crew"
)

func (f *apiFixture) mustSeafarer(tb testing.TB, id string) *crew.Seafarer {
	tb.Helper()
	sf, err := f.crew.Seafarer(context.Background(), id)
	require.NoError(tb, err)
	return sf
}

// Companies A and B each have two seafarers on vessel 9074729 (signed on
// 2026-01-15): A's sign-off and sign-on change A's crew only, answer what
// they did as documented, and a repeat changes nothing.
func TestAVesselsCrewIsSignedOffAndOnInOneRequestAndARepeatChangesNothing(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	base := "/v1/companies/" + f.companyA.ID + "/vessels/"

	status, body := sendDocumented(t, f, doc, "POST", base+"9074729:sign-off", f.companyAToken, []byte(`{"date":"2026-06-30"}`))
	require.Equal(t, http.StatusOK, status, "%s", body)
	var got crew.VesselSigned
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, crew.VesselSigned{VesselIMO: "9074729", Direction: crew.SignOff, Date: "2026-06-30", Changed: 2,
		SeafarerIDs: []string{f.a1.ID, f.a2.ID}}, got)
	for _, sf := range []*crew.Seafarer{f.a1, f.a2} {
		now := f.mustSeafarer(t, sf.ID)
		require.Equal(t, crew.StatusSignedOff, now.Status)
		require.Equal(t, "2026-06-30", now.SignOff)
	}
	for _, sf := range []*crew.Seafarer{f.b1, f.b2} {
		require.Equal(t, *sf, *f.mustSeafarer(t, sf.ID), "B's crew on the same vessel is untouched")
	}

	status, body = sendDocumented(t, f, doc, "POST", base+"IMO%209074729:sign-off", f.union, []byte(`{"date":"2026-06-30"}`))
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, crew.VesselSigned{VesselIMO: "9074729", Direction: crew.SignOff, Date: "2026-06-30", Unchanged: 2,
		SeafarerIDs: []string{}}, got, "a repeat (by union staff, IMO prefix and all) changes nothing and says so")

	// No body: today in UTC.
	status, body = sendDocumented(t, f, doc, "POST", base+"9074729:sign-on", f.companyAToken, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.NoError(t, json.Unmarshal(body, &got))
	today := time.Now().UTC().Format(time.DateOnly)
	require.Equal(t, crew.VesselSigned{VesselIMO: "9074729", Direction: crew.SignOn, Date: today, Changed: 2,
		SeafarerIDs: []string{f.a1.ID, f.a2.ID}}, got)
	for _, sf := range []*crew.Seafarer{f.a1, f.a2} {
		now := f.mustSeafarer(t, sf.ID)
		require.Equal(t, [3]string{crew.StatusActive, today, ""}, [3]string{now.Status, now.SignOn, now.SignOff})
	}

	// Each request that changed something is in the audit trail, named for
	// the vessel; the repeat too (it succeeded), saying nothing changed.
	records := f.auditPage(t, f.union, url.Values{"resource": {"companies/" + f.companyA.ID + "/vessels/9074729"}}).Items
	require.Len(t, records, 3)
	for _, r := range records {
		require.Equal(t, audit.ActionSeafarerUpdate, r.Action)
	}
	require.Equal(t, "signed on the crew of vessel 9074729 as of "+today+": 2 changed, 0 unchanged", records[0].Summary)
	require.Equal(t, "signed off the crew of vessel 9074729 as of 2026-06-30: 0 changed, 2 unchanged", records[1].Summary)
	require.Equal(t, "signed off the crew of vessel 9074729 as of 2026-06-30: 2 changed, 0 unchanged", records[2].Summary)
}

func TestAVesselSigningRefusesBadInputNamingTheFieldAndChangesNothing(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	base := "/v1/companies/" + f.companyA.ID + "/vessels/"
	for _, tc := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"an IMO number whose check digit is wrong is 400 naming vessel_imo", "9074720:sign-off", `{}`, http.StatusBadRequest, "vessel_imo"},
		{"an IMO number of letters is 400 naming vessel_imo", "ABCDEFG:sign-off", `{}`, http.StatusBadRequest, "vessel_imo"},
		{"a date written day first is 400 naming date", "9074729:sign-off", `{"date":"30/06/2026"}`, http.StatusBadRequest, "date"},
		{"a day that does not exist is 400 naming date", "9074729:sign-on", `{"date":"2026-04-31"}`, http.StatusBadRequest, "date"},
		{"a sign-off date before the crew's sign_on is 400 naming date", "9074729:sign-off", `{"date":"2026-01-14"}`, http.StatusBadRequest, "date"},
		{"a date that is not a string is 400", "9074729:sign-off", `{"date":20260630}`, http.StatusBadRequest, ""},
		{"a body that is not JSON is 400", "9074729:sign-off", `date=2026-06-30`, http.StatusBadRequest, ""},
		{"a vessel the company has no crew on is 404", "9319466:sign-off", `{}`, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := sendDocumented(t, f, doc, "POST", base+tc.path, f.companyAToken, []byte(tc.body))
			require.Equal(t, tc.status, status, "%s", body)
			var p problem
			require.NoError(t, json.Unmarshal(body, &p))
			if tc.field != "" {
				require.Len(t, p.Errors, 1, "%s", body)
				require.Equal(t, tc.field, p.Errors[0].Field, "%s", body)
			}
		})
	}
	for _, sf := range []*crew.Seafarer{f.a1, f.a2} {
		require.Equal(t, *sf, *f.mustSeafarer(t, sf.ID), "a refused request changed nothing")
	}
}

// PATCH /v1/seafarers/{id} takes sign_on and sign_off and refuses what
// would break sign_off ≥ sign_on with a 400 naming the field, never a 500
// from the database's CHECK.
func TestPatchSignsOnAndOffAndRefusesDatesOutOfOrderNamingTheField(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	path := "/v1/seafarers/" + f.a1.ID // signed on 2026-01-15
	today := time.Now().UTC().Format(time.DateOnly)
	patch := func(t *testing.T, body string) (int, crew.Seafarer, problem) {
		t.Helper()
		status, answer := sendDocumented(t, f, doc, "PATCH", path, f.companyAToken, []byte(body))
		var sf crew.Seafarer
		var p problem
		if status == http.StatusOK {
			require.NoError(t, json.Unmarshal(answer, &sf))
		} else {
			require.NoError(t, json.Unmarshal(answer, &p))
		}
		return status, sf, p
	}
	for _, tc := range []struct {
		name, body      string
		status, on, off string // as stored after the request
		refused         string // the field named by a 400; "" when accepted
	}{
		{"sign_off before sign_on is refused naming sign_off", `{"sign_off":"2026-01-14"}`, "", "", "", "sign_off"},
		{"a planned sign_off is recorded", `{"sign_off":"2026-03-01"}`, crew.StatusActive, "2026-01-15", "2026-03-01", ""},
		{"a sign_on after the recorded sign_off starts a later voyage and clears that sign_off", `{"sign_on":"2026-03-02"}`, crew.StatusActive, "2026-03-02", "", ""},
		{"a new planned sign_off is recorded", `{"sign_off":"2026-09-30"}`, crew.StatusActive, "2026-03-02", "2026-09-30", ""},
		{"sign_off null clears it", `{"sign_off":null}`, crew.StatusActive, "2026-03-02", "", ""},
		{"sign_on not written YYYY-MM-DD is refused naming sign_on", `{"sign_on":"2026-3-2"}`, "", "", "", "sign_on"},
		{"signing off without a date records today", `{"status":"signed_off"}`, crew.StatusSignedOff, "2026-03-02", today, ""},
		{"a signed-off seafarer keeps a sign_off: clearing it is refused", `{"sign_off":""}`, "", "", "", "sign_off"},
		{"signing on again starts a voyage on the date given and clears the sign_off", `{"status":"active","sign_on":"2026-04-01"}`, crew.StatusActive, "2026-04-01", "", ""},
		{"signing off on a date before sign_on is refused naming sign_off", `{"status":"signed_off","sign_off":"2026-03-31"}`, "", "", "", "sign_off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.mustSeafarer(t, f.a1.ID)
			status, sf, p := patch(t, tc.body)
			if tc.refused != "" {
				require.Equal(t, http.StatusBadRequest, status, "%+v", p)
				require.Len(t, p.Errors, 1, "%+v", p)
				require.Equal(t, tc.refused, p.Errors[0].Field, "%+v", p)
				require.Equal(t, *before, *f.mustSeafarer(t, f.a1.ID), "a refused request changed nothing")
				return
			}
			require.Equal(t, http.StatusOK, status, "%+v", p)
			require.Equal(t, [3]string{tc.status, tc.on, tc.off}, [3]string{sf.Status, sf.SignOn, sf.SignOff})
		})
	}
}

// PATCHes of seafarers and their vessel's sign-off sent at the same time:
// every PATCH's change and the sign-off are both there afterwards.
func TestConcurrentPatchesAndAVesselSignOffThroughTheAPILoseNeither(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	base := "/v1/companies/" + f.companyA.ID + "/vessels/9074729"
	for round := 0; round < 4; round++ {
		names := map[string]string{f.a1.ID: fmt.Sprintf("MV Round %d-1", round), f.a2.ID: fmt.Sprintf("MV Round %d-2", round)}
		var wg sync.WaitGroup
		send := func(r apiRequest) {
			defer wg.Done()
			status, _, body := f.do(t, r)
			if status != http.StatusOK {
				t.Errorf("%s %s: %d %s", r.method, r.path, status, body)
			}
		}
		wg.Add(3)
		go send(apiRequest{method: "POST", path: base + ":sign-off", token: f.companyAToken, contentType: "application/json", body: []byte(`{"date":"2026-06-30"}`)})
		for id, name := range names {
			go send(apiRequest{method: "PATCH", path: "/v1/seafarers/" + id, token: f.companyAToken, contentType: "application/json",
				body: mustJSON(t, map[string]string{"vessel_name": name})})
		}
		wg.Wait()
		for id, name := range names {
			sf := f.mustSeafarer(t, id)
			require.Equal(t, name, sf.VesselName, "round %d: the PATCH is kept", round)
			require.Equal(t, [2]string{crew.StatusSignedOff, "2026-06-30"}, [2]string{sf.Status, sf.SignOff}, "round %d: the sign-off is kept", round)
		}
		status, _, body := f.do(t, apiRequest{method: "POST", path: base + ":sign-on", token: f.companyAToken, contentType: "application/json", body: []byte(`{"date":"2026-06-01"}`)})
		require.Equal(t, http.StatusOK, status, "%s", body)
	}
}
