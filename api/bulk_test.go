package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/token"
)

// bulkCSVHeader is the contract's column order.
var bulkCSVHeader = []string{"seafarer_book_no", "name", "nationality", "msisdn", "vessel_imo", "vessel_name", "sign_on", "sign_off", "union_member_no"}

// badRow is one way a crew list row goes wrong, and the one error the report
// gives for it.
type badRow struct {
	// spoil spoils the good row numbered n.
	spoil   func(tb testing.TB, f *apiFixture, row []string, n int) []string
	field   string
	message string // a part of the error message
}

// otherCompanysSeafarer enrols a seafarer in company B for row n to collide with.
func otherCompanysSeafarer(tb testing.TB, f *apiFixture, n int) *crew.Seafarer {
	tb.Helper()
	sf, _, err := f.crew.Enrol(context.Background(), f.companyB.ID, crew.Enrolment{
		BookNo: fmt.Sprintf("B-%06d", n), Name: "Beta Hand", MSISDN: fmt.Sprintf("+86135%08d", n),
	})
	require.NoError(tb, err)
	return sf
}

// setColumn returns a spoil that sets one column.
func setColumn(column int, value string) func(testing.TB, *apiFixture, []string, int) []string {
	return func(_ testing.TB, _ *apiFixture, r []string, _ int) []string { r[column] = value; return r }
}

// badRows cycle over the rows chosen to be bad: each kind of mistake a crew
// manager's spreadsheet makes, validation and registry conflicts alike.
var badRows = []badRow{
	{setColumn(3, "+86 139 0000 1111"), "msisdn", "E.164"},
	{setColumn(1, ""), "name", "is required"},
	{setColumn(4, "9074728"), "vessel_imo", "check digit"},
	{setColumn(6, "2026-02-30"), "sign_on", "not a real date"},
	{setColumn(7, "2025-12-31"), "sign_off", "must not be before sign_on (2026-01-15)"},
	{setColumn(2, "XX"), "nationality", "ISO 3166-1 alpha-2"},
	{setColumn(0, "BK 1"), "seafarer_book_no", "letters A-Z, digits and hyphens"},
	{setColumn(0, "BK-000001"), "seafarer_book_no", "duplicate of row 1"},
	{func(_ testing.TB, _ *apiFixture, r []string, _ int) []string { return r[:8] }, "row", "has 8 fields but the header has 9"},
	{func(tb testing.TB, f *apiFixture, r []string, n int) []string {
		r[3] = otherCompanysSeafarer(tb, f, n).MSISDN
		return r
	}, "msisdn", "belongs to another seafarer"},
	{func(tb testing.TB, f *apiFixture, r []string, n int) []string {
		r[0] = otherCompanysSeafarer(tb, f, n).BookNo
		return r
	}, "seafarer_book_no", "enrolled with another company"},
}

// crewListCSV is a crew list of n rows; the rows numbered in bad (1-based)
// are spoiled, each by the next kind in badRows. It returns the expected
// error of each bad row.
func crewListCSV(tb testing.TB, f *apiFixture, n int, bad []int) ([]byte, map[int]badRow) {
	tb.Helper()
	want := make(map[int]badRow, len(bad))
	for i, row := range bad {
		want[row] = badRows[i%len(badRows)]
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(tb, w.Write(bulkCSVHeader))
	for i := 1; i <= n; i++ {
		row := []string{
			fmt.Sprintf("BK-%06d", i), fmt.Sprintf("Seafarer %d", i), "CN", fmt.Sprintf("+86136%08d", i),
			"9074729", "MV Yuan Wang", "2026-01-15", "", fmt.Sprintf("U%d", i),
		}
		if b, ok := want[i]; ok {
			row = b.spoil(tb, f, row, i)
		}
		require.NoError(tb, w.Write(row))
	}
	w.Flush()
	require.NoError(tb, w.Error())
	return buf.Bytes(), want
}

// spreadRows returns k distinct row numbers from 2 to n, spread across the
// list (row 1 stays good: a duplicate refers to it).
func spreadRows(n, k int) []int {
	rows := make([]int, k)
	for i := range rows {
		rows[i] = 2 + i*(n-2)/k + i%7
	}
	return rows
}

func decodeReport(tb testing.TB, body []byte) bulkReport {
	tb.Helper()
	var rep bulkReport
	require.NoError(tb, json.Unmarshal(body, &rep), "%s", body)
	return rep
}

func decodeProblem(tb testing.TB, header http.Header, body []byte) problem {
	tb.Helper()
	require.Equal(tb, "application/problem+json", header.Get(fiber.HeaderContentType))
	var p problem
	require.NoError(tb, json.Unmarshal(body, &p), "%s", body)
	return p
}

// requireReport checks a report of n rows whose bad rows are want and whose
// good rows all have status good.
func requireReport(t *testing.T, rep bulkReport, n int, want map[int]badRow, good string) {
	t.Helper()
	require.Equal(t, n, rep.Total)
	require.Equal(t, len(want), rep.Failed)
	require.Len(t, rep.Results, n, "one result per row")
	counts := map[string]int{}
	var failed []int
	for i, res := range rep.Results {
		require.Equal(t, i+1, res.Row, "results are in row order")
		counts[res.Status]++
		b, bad := want[res.Row]
		if !bad {
			require.Equal(t, good, res.Status, "row %d: %+v", res.Row, res.Errors)
			require.NotEmpty(t, res.ID, "row %d", res.Row)
			continue
		}
		failed = append(failed, res.Row)
		require.Equal(t, "failed", res.Status, "row %d", res.Row)
		require.Empty(t, res.ID, "row %d", res.Row)
		require.Len(t, res.Errors, 1, "row %d: %+v", res.Row, res.Errors)
		require.Equal(t, b.field, res.Errors[0].Field, "row %d", res.Row)
		require.Contains(t, res.Errors[0].Message, b.message, "row %d", res.Row)
	}
	wantRows := make([]int, 0, len(want))
	for row := range want {
		wantRows = append(wantRows, row)
	}
	sort.Ints(wantRows)
	require.Equal(t, wantRows, failed, "exactly the bad rows failed")
	require.Equal(t, map[string]int{good: n - len(want), "failed": len(want)}, counts)
	switch good {
	case "created":
		require.Equal(t, n-len(want), rep.Created)
		require.Zero(t, rep.Updated)
	case "updated":
		require.Equal(t, n-len(want), rep.Updated)
		require.Zero(t, rep.Created)
	}
}

func TestBulkEnrol_TenThousandRowCSVFailsOnlyItsBadRowsAndResendingUpdates(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	const rows = 10_000
	bad := spreadRows(rows, 37)
	body, want := crewListCSV(t, f, rows, bad)
	require.Len(t, want, 37)
	path := "/v1/companies/" + f.companyA.ID + "/seafarers:bulk"
	upload := apiRequest{method: "POST", path: path, token: f.companyAToken, contentType: "text/csv", body: body, timeout: -1}

	status, _, res := f.do(t, upload)
	require.Equal(t, http.StatusOK, status, "%.500s", res)
	first := decodeReport(t, res)
	requireReport(t, first, rows, want, "created")
	require.Equal(t, 9963, first.Created)

	sf, err := f.crew.SeafarerByMSISDN(context.Background(), "+8613600010000")
	require.NoError(t, err, "the last row is enrolled")
	require.Equal(t, f.companyA.ID, sf.CompanyID)
	require.Equal(t, "BK-010000", sf.BookNo)

	t.Run("re-sending the same file updates every good row", func(t *testing.T) {
		status, _, res := f.do(t, upload)
		require.Equal(t, http.StatusOK, status, "%.500s", res)
		again := decodeReport(t, res)
		requireReport(t, again, rows, want, "updated")
		for i := range again.Results {
			require.Equal(t, first.Results[i].ID, again.Results[i].ID, "row %d keeps its seafarer", i+1)
		}
	})
}

func TestBulkEnrol(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	ctx := context.Background()
	path := "/v1/companies/" + f.companyA.ID + "/seafarers:bulk"

	t.Run("a JSON array is enrolled row by row", func(t *testing.T) {
		body := mustJSON(t, []any{
			crew.Enrolment{BookNo: "J-1", Name: "Ana Cruz", Nationality: "PH", MSISDN: "+639170000001", VesselIMO: "IMO 9074729"},
			map[string]string{"seafarer_book_no": "J-2", "name": "Ben Reyes", "msisdn": "0917 000 0002"},
			"not an object",
			crew.Enrolment{BookNo: f.a1.BookNo, Name: f.a1.Name, MSISDN: f.a1.MSISDN, VesselName: "MV Renamed"},
		})
		status, _, res := f.do(t, apiRequest{method: "POST", path: path, token: f.companyAToken, contentType: "application/json", body: body})
		require.Equal(t, http.StatusOK, status, "%s", res)
		rep := decodeReport(t, res)
		require.Equal(t, bulkReport{Total: 4, Created: 1, Updated: 1, Failed: 2}, bulkReport{Total: rep.Total, Created: rep.Created, Updated: rep.Updated, Failed: rep.Failed})
		require.Equal(t, []string{"created", "failed", "failed", "updated"}, []string{rep.Results[0].Status, rep.Results[1].Status, rep.Results[2].Status, rep.Results[3].Status})
		require.Equal(t, "msisdn", rep.Results[1].Errors[0].Field)
		require.Equal(t, "row", rep.Results[2].Errors[0].Field)
		require.Equal(t, f.a1.ID, rep.Results[3].ID)

		sf, err := f.crew.Seafarer(ctx, rep.Results[0].ID)
		require.NoError(t, err)
		require.Equal(t, "9074729", sf.VesselIMO, "values are normalized")
		sf, err = f.crew.Seafarer(ctx, f.a1.ID)
		require.NoError(t, err)
		require.Equal(t, "MV Renamed", sf.VesselName)
	})

	t.Run("a body that is neither CSV nor JSON is 400 naming Content-Type", func(t *testing.T) {
		status, header, res := f.do(t, apiRequest{method: "POST", path: path, token: f.companyAToken, contentType: "text/plain",
			body: []byte("seafarer_book_no,name,msisdn\nX-1,Someone,+8613700000001\n")})
		require.Equal(t, http.StatusBadRequest, status, "%s", res)
		p := decodeProblem(t, header, res)
		require.Equal(t, http.StatusBadRequest, p.Status)
		require.Contains(t, p.Detail, "Content-Type")
		_, err := f.crew.SeafarerByMSISDN(ctx, "+8613700000001")
		require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err), "nothing was enrolled")
	})

	t.Run("a CSV without the msisdn column is 400 naming it", func(t *testing.T) {
		status, header, res := f.do(t, apiRequest{method: "POST", path: path, token: f.companyAToken, contentType: "text/csv",
			body: []byte("seafarer_book_no,name,vessel_imo\nX-2,Someone,9074729\n")})
		require.Equal(t, http.StatusBadRequest, status, "%s", res)
		p := decodeProblem(t, header, res)
		require.Contains(t, p.Detail, "msisdn")
		require.Equal(t, []wuyou.FieldError{{Field: "msisdn", Message: "required column is missing from the CSV header"}}, p.Errors)
	})

	t.Run("another company's token is 404 and enrols nothing", func(t *testing.T) {
		companyB := f.token(t, token.RoleCompany, "crew-manager-b", f.companyB.ID)
		status, header, res := f.do(t, apiRequest{method: "POST", path: path, token: companyB, contentType: "text/csv",
			body: []byte(strings.Join(bulkCSVHeader, ",") + "\nX-3,Intruder,CN,+8613700000003,,,,,\n")})
		require.Equal(t, http.StatusNotFound, status, "%s", res)
		decodeProblem(t, header, res)
		_, err := f.crew.SeafarerByMSISDN(ctx, "+8613700000003")
		require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err), "nothing was enrolled")
	})
}
