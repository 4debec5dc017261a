package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/crew"
)

// A crew list's sign_on and sign_off are checked row by row, each bad date
// failing its own row with the field named; a status column is not read
// (bulk enrolment does not sign anyone off: PATCH and the vessel routes
// do), and re-enrolling a signed-off seafarer signs them on again.
func TestACrewListsDatesAreValidatedPerRowAndItsStatusColumnIsIgnored(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	status, _, body := f.do(t, apiRequest{method: "POST", path: "/v1/companies/" + f.companyA.ID + "/vessels/9074729:sign-off",
		token: f.companyAToken, contentType: "application/json", body: []byte(`{"date":"2026-06-30"}`)})
	require.Equal(t, http.StatusOK, status, "%s", body)

	csv := "seafarer_book_no,name,msisdn,sign_on,sign_off,status\n" +
		"A-0001,Li Wei,+8613800000001,2026-08-01,,signed_off\n" + // re-enrolled: signed on again
		"SB-2,Two,+8613700000002,2026/08/01,,active\n" +
		"SB-3,Three,+8613700000003,2026-08-01,2026-07-31,\n" +
		"SB-4,Four,+8613700000004,,0000-01-01,\n" +
		"SB-5,Five,+8613700000005,2026-08-01,2026-08-01,signed_off\n" // a one-day voyage; status ignored
	status, _, body = f.do(t, apiRequest{method: "POST", path: "/v1/companies/" + f.companyA.ID + "/seafarers:bulk",
		token: f.companyAToken, contentType: "text/csv", body: []byte(csv)})
	require.Equal(t, http.StatusOK, status, "%s", body)
	rep := decodeReport(t, body)
	require.Equal(t, [4]int{5, 1, 1, 3}, [4]int{rep.Total, rep.Created, rep.Updated, rep.Failed}, "%s", body)
	wantErrors := map[int]string{
		2: "sign_on: must be a date written YYYY-MM-DD",
		3: "sign_off: must not be before sign_on (2026-08-01)",
		4: "sign_off: is not a real date",
	}
	for _, r := range rep.Results {
		want, bad := wantErrors[r.Row]
		if !bad {
			require.Empty(t, r.Errors, "row %d", r.Row)
			continue
		}
		require.Len(t, r.Errors, 1, "row %d", r.Row)
		require.Equal(t, want, r.Errors[0].Field+": "+r.Errors[0].Message, "row %d", r.Row)
	}
	a1 := f.mustSeafarer(t, f.a1.ID)
	require.Equal(t, [3]string{crew.StatusActive, "2026-08-01", ""}, [3]string{a1.Status, a1.SignOn, a1.SignOff})
	five := f.mustSeafarer(t, rep.Results[4].ID)
	require.Equal(t, [3]string{crew.StatusActive, "2026-08-01", "2026-08-01"}, [3]string{five.Status, five.SignOn, five.SignOff})
}
