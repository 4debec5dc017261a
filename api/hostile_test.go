package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// Inputs a hostile client would try (issue 18). Each case says what is
// refused and why.

// requireFieldRefused checks a 400 problem+json naming field.
func requireFieldRefused(tb testing.TB, status int, header http.Header, body []byte, field string) {
	tb.Helper()
	require.Equal(tb, http.StatusBadRequest, status, "%s", body)
	require.Equal(tb, "application/problem+json", header.Get(fiber.HeaderContentType))
	var p problemBody
	require.NoError(tb, json.Unmarshal(body, &p))
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	require.Contains(tb, fields, field, "%s", body)
}

// Every name (company, seafarer, vessel, programme) follows one text rule
// (wuyou.CheckText): control characters such as NUL, tabs and line breaks
// would break screens, reports and CSV exports, and U+FFFD marks text that
// was not UTF-8. Each is refused with a 400 naming the field.
func TestEveryNameRefusesControlCharactersWith400NamingTheField(t *testing.T) {
	f := MustAPIFixture(t)
	now := time.Now().UTC()
	for _, bad := range []string{"a\u0000b", "a\tb", "a\nb", "a\u0085b", "a\ufffdb"} {
		t.Run("programme name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/programmes", token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{
					"name": bad, "pack_seconds": 600, "valid_days": 30, "priority": 1,
					"starts_at": now, "ends_at": now.Add(24 * time.Hour),
				})})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("company name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/companies", token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{"name": bad, "registration_no": "REG-X"})})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("seafarer name "+jsonQuote(bad), func(t *testing.T) {
			e := f.newEnrolment()
			e.Name = bad
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/companies/" + f.companyA.ID + "/seafarers",
				token: f.union, contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, e)})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("vessel name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "PATCH", path: "/v1/seafarers/" + f.a1.ID, token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{"vessel_name": bad})})
			requireFieldRefused(t, status, header, body, "vessel_name")
		})
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// RFC 7519 makes exp, nbf and iat NumericDates: JSON numbers. A token
// that writes one as a string (which jwt's decoder would read as the
// number inside) is not a conforming token and gets 401, with a good
// signature and a time that would otherwise pass.
func TestATokenWhoseDatesAreStringsIs401(t *testing.T) {
	f := MustAuthFixture(t)
	app := newAuthTestApp(f.verifier)
	good := validMapClaims()
	exp := good["exp"].(int64)
	iat := good["iat"].(int64)
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		want   int
	}{
		{"exp as a number is accepted", good, http.StatusOK},
		{"exp as a fractional number is accepted", claimsWith(good, "exp", float64(exp)+0.5), http.StatusOK},
		{"exp as a string is refused", claimsWith(good, "exp", strconv.FormatInt(exp, 10)), http.StatusUnauthorized},
		{"exp as a string in another letter case is refused", claimsWith(claimsWith(good, "exp", nil), "EXP", strconv.FormatInt(exp, 10)), http.StatusUnauthorized},
		{"exp as true is refused", claimsWith(good, "exp", true), http.StatusUnauthorized},
		{"exp as an object is refused", claimsWith(good, "exp", map[string]any{"n": exp}), http.StatusUnauthorized},
		{"nbf as a string is refused", claimsWith(good, "nbf", strconv.FormatInt(iat, 10)), http.StatusUnauthorized},
		{"iat as a string is refused", claimsWith(good, "iat", strconv.FormatInt(iat, 10)), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := doAuthRequest(t, app, "/me", "Bearer "+MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", tc.claims))
			require.Equal(t, tc.want, status, "%s", body)
		})
	}
}

// An MSISDN in a path is read as a path segment: a literal "+" is a plus,
// as %2B is (query-string decoding would make it a space, and a registered
// subscriber "unknown"). A space is not a plus.
func TestAnMSISDNInAPathMayWriteItsPlusAsItIs(t *testing.T) {
	f := MustAPIFixture(t)
	for _, tc := range []struct {
		name, segment string
		want          int
	}{
		{"a literal + is a plus", f.a1.MSISDN, http.StatusOK},
		{"%2B is a plus", msisdnPath(f.a1.MSISDN), http.StatusOK},
		{"%2b is a plus", strings.ReplaceAll(f.a1.MSISDN, "+", "%2b"), http.StatusOK},
		{"%20 is a space, not a plus", strings.ReplaceAll(f.a1.MSISDN, "+", "%20"), http.StatusNotFound},
		{"no + at all is not the subscriber", strings.TrimPrefix(f.a1.MSISDN, "+"), http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "GET", path: "/v1/carrier/subscribers/" + tc.segment + "/allowance", token: f.carrierToken})
			require.Equal(t, tc.want, status, "%s", body)
			if status != http.StatusOK {
				require.Equal(t, "application/problem+json", header.Get(fiber.HeaderContentType))
				return
			}
			var a struct {
				MSISDN           string `json:"msisdn"`
				RemainingSeconds int64  `json:"remaining_seconds"`
			}
			require.NoError(t, json.Unmarshal(body, &a))
			require.Equal(t, f.a1.MSISDN, a.MSISDN)
			require.Positive(t, a.RemainingSeconds)
		})
	}
}

// readCSV reads a CSV answer, which must hold no NUL.
func readCSV(tb testing.TB, body []byte) [][]string {
	tb.Helper()
	require.Equal(tb, -1, bytes.IndexByte(body, 0), "a CSV export never carries a NUL: %q", body)
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	require.NoError(tb, err, "%s", body)
	return records
}

// A carrier's event id is the carrier's text; a statement's CSV carries it
// to a spreadsheet. A cell that would start a formula is quoted with a
// leading ', while the MSISDN (+ and digits: a number, never a formula)
// stays as it is.
func TestStatementCSVNeutralisesCellsThatWouldRunAsFormulas(t *testing.T) {
	f := MustAPIFixture(t)
	hostile := `=HYPERLINK("http://evil.test","x")`
	f.meter(t, quota.Usage{
		SeafarerID: f.a2.ID, MSISDN: f.a2.MSISDN, Source: "urn:carrier:test", EventID: hostile,
		Type: "carrier.usage.voice", CallTime: time.Now().UTC(), DurationSeconds: 100, BillableSeconds: 120,
		CalledNumber: calledNumber, VisitedCountry: "SG", Increment: 60,
	})
	status, header, body := f.do(t, apiRequest{method: "GET", path: statementPath(billing.PeriodOf(time.Now()), "seafarer:"+f.a2.ID),
		token: f.union, header: map[string]string{"Accept": "text/csv"}})
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.True(t, strings.HasPrefix(header.Get(fiber.HeaderContentType), "text/csv"))
	records := readCSV(t, body)
	require.Len(t, records, 2, "header and the one call: %q", records)
	col := map[string]int{}
	for i, name := range records[0] {
		col[name] = i
	}
	require.Equal(t, "'"+hostile, records[1][col["event_id"]])
	require.Equal(t, f.a2.MSISDN, records[1][col["msisdn"]], "an MSISDN is a number, left as it is")
}

// A reconciliation report echoes the carrier's rows; an invalid row's
// MSISDN cell is whatever the file held, and is quoted when it would start
// a formula. Negative figures stay numbers.
func TestReconciliationCSVNeutralisesCellsThatWouldRunAsFormulas(t *testing.T) {
	f := MustStatementsFixture(t)
	settlement := "msisdn,calls,billable_seconds,covered_seconds\n" +
		"\"=1+cmd|' /C calc'!A0\",1,60,0\n" +
		"@SUM(A1),1,60,0\n"
	status, _, body := f.do(t, apiRequest{method: "POST", path: "/v1/reconciliations?period=" + billing.PeriodOf(time.Now()),
		token: f.union, contentType: "text/csv", body: []byte(settlement), header: map[string]string{"Accept": "text/csv"}})
	require.Equal(t, http.StatusOK, status, "%s", body)
	records := readCSV(t, body)
	var invalid []string
	for _, r := range records[1:] {
		for _, cell := range r {
			require.Equal(t, wuyou.CSVCell(cell), cell, "cell %q of %q could start a formula", cell, r)
		}
		if r[1] == "invalid_row" {
			invalid = append(invalid, r[0])
		}
	}
	require.Equal(t, []string{"'=1+cmd|' /C calc'!A0", "'@SUM(A1)"}, invalid)
}
