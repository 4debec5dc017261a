package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testToken = "test-token"

// fakeAPI serves handler as the Wuyou API, after checking the bearer token
// every command must send.
func fakeAPI(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("%s %s: Authorization %q, want the --token", r.Method, r.URL.Path, got)
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// cliResult is what one wuyouctl run printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCLI runs wuyouctl against srv with the test token.
func runCLI(srv *httptest.Server, args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	args = append(args, "--server", srv.URL, "--token", testToken)
	err := run(context.Background(), args, &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), err}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, detail string, errs ...fieldError) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail, "errors": errs,
	})
}

func mustWrite(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// crewList has rows 2 (quoted comma in the name) and 4 (a field short) to
// fail, and row 5 after a blank line, which the server does not count.
const crewList = `seafarer_book_no,name,nationality,msisdn,vessel_imo,vessel_name,sign_on,sign_off,union_member_no
E1001,Li Wei,CN,+8613800000001,9074729,Yuan Wang,2026-01-15,,U1
E1002,"Cruz, Juan",PH,'+63 917 000 0002,9074729,Yuan Wang,2026-01-15,,U2
E1003,Wang Fang,CN,+8613800000003,9074729,Yuan Wang,2026-01-15,,U3
E1004,Zhang Min,CN,+8613800000004,9074729,Yuan Wang,2026-01-15,U4

E1005,Chen Jie,CN,+8613800000005,9074728,Yuan Wang,2026-01-15,,U5
`

// crewListReport is what the server reports for crewList.
var crewListReport = bulkReport{
	Total: 5, Created: 1, Updated: 1, Failed: 3,
	Results: []bulkResult{
		{Row: 1, Status: "created", ID: "sf_1"},
		{Row: 2, Status: "failed", Errors: []fieldError{{Field: "msisdn", Message: "must be an E.164 number"}}},
		{Row: 3, Status: "updated", ID: "sf_3"},
		{Row: 4, Status: "failed", Errors: []fieldError{{Field: "row", Message: "has 8 fields but the header has 9"}}},
		{Row: 5, Status: "failed", Errors: []fieldError{
			{Field: "vessel_imo", Message: "is not a valid IMO number: the check digit does not match"},
			{Field: "sign_off", Message: "must not be before sign_on"},
		}},
	},
}

// bulkAPI fakes the bulk route: it checks the request and answers rep.
func bulkAPI(t *testing.T, companyID string, wantBody []byte, rep bulkReport) *httptest.Server {
	return fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/v1/companies/"+companyID+"/seafarers:bulk", r.URL.Path)
		assert.Equal(t, "text/csv", r.Header.Get("Content-Type"))
		assert.Equal(t, int64(len(wantBody)), r.ContentLength, "the file's size is announced")
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		assert.Equal(t, string(wantBody), string(body), "the file is sent as it is")
		writeJSON(w, http.StatusOK, rep)
	})
}

func TestCrewImport_ReportsEachFailedRowAndWritesThemBackToFix(t *testing.T) {
	input := mustWrite(t, "crew-list.csv", crewList)
	srv := bulkAPI(t, "co_1", []byte(crewList), crewListReport)

	res := runCLI(srv, "crew", "import", input, "--company", "co_1")

	require.EqualError(t, res.err, "3 of 5 rows failed", "a failed row makes the command fail")
	require.Equal(t, `crew-list.csv: 5 rows: 1 created, 1 updated, 3 failed

ROW  FIELD       MESSAGE
2    msisdn      must be an E.164 number
4    row         has 8 fields but the header has 9
5    vessel_imo  is not a valid IMO number: the check digit does not match
5    sign_off    must not be before sign_on

wrote the 3 failed rows to `+filepath.Join(filepath.Dir(input), "crew-list.failed.csv")+`: fix them there and import that file again
`, res.stdout)

	// The original header and fields, an errors column, and only the failed
	// rows: ready to be fixed and sent again. A cell a spreadsheet would run
	// as a formula is quoted with a leading ' (wuyou.CSVCell); the import
	// reads it back without.
	require.Equal(t, `seafarer_book_no,name,nationality,msisdn,vessel_imo,vessel_name,sign_on,sign_off,union_member_no,errors
E1002,"Cruz, Juan",PH,'+63 917 000 0002,9074729,Yuan Wang,2026-01-15,,U2,msisdn: must be an E.164 number
E1004,Zhang Min,CN,+8613800000004,9074729,Yuan Wang,2026-01-15,U4,,row: has 8 fields but the header has 9
E1005,Chen Jie,CN,+8613800000005,9074728,Yuan Wang,2026-01-15,,U5,vessel_imo: is not a valid IMO number: the check digit does not match; sign_off: must not be before sign_on
`, mustRead(t, filepath.Join(filepath.Dir(input), "crew-list.failed.csv")))

	require.NotContains(t, res.stderr, "uploading crew-list.csv", "stderr is not a terminal: no bar")
	require.Contains(t, res.stderr, "the server is enrolling the rows")
}

func TestCrewImport_WritesFailedRowsWhereFailedOutSays(t *testing.T) {
	input := mustWrite(t, "list.csv", crewList)
	out := filepath.Join(t.TempDir(), "fix-me.csv")
	srv := bulkAPI(t, "co_1", []byte(crewList), crewListReport)

	res := runCLI(srv, "crew", "import", input, "--company", "co_1", "--failed-out", out)

	require.Error(t, res.err)
	require.Contains(t, mustRead(t, out), "E1002,")
	_, err := os.Stat(filepath.Join(filepath.Dir(input), "list.failed.csv"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing is written to the default path")
}

func TestCrewImport_KeepsExcelsBOMAndCRLFAndALineThatIsNotCSV(t *testing.T) {
	content := "\uFEFFseafarer_book_no,name,msisdn\r\nE1,Li Wei,+8613800000001\r\nE2,Bad \"quote,+8613800000002\r\n"
	input := mustWrite(t, "excel.csv", content)
	srv := bulkAPI(t, "co_1", []byte(content), bulkReport{
		Total: 2, Created: 1, Failed: 1,
		Results: []bulkResult{
			{Row: 1, Status: "created", ID: "sf_1"},
			{Row: 2, Status: "failed", Errors: []fieldError{{Field: "row", Message: "line 3 is not valid CSV"}}},
		},
	})

	res := runCLI(srv, "crew", "import", input, "--company", "co_1")

	require.EqualError(t, res.err, "1 of 2 rows failed")
	require.Equal(t, "\uFEFFseafarer_book_no,name,msisdn,errors\r\n"+
		`"E2,Bad ""quote,+8613800000002",,,row: line 3 is not valid CSV`+"\r\n",
		mustRead(t, filepath.Join(filepath.Dir(input), "excel.failed.csv")))
}

func TestCrewImport_AllRowsEnrolledExitsZeroAndWritesNoFile(t *testing.T) {
	input := mustWrite(t, "ok.csv", "seafarer_book_no,name,msisdn\nE1,Li Wei,+8613800000001\n")
	srv := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		// The company id is one path segment, escaped.
		assert.Equal(t, "/v1/companies/co%2F1/seafarers:bulk", r.URL.EscapedPath())
		writeJSON(w, http.StatusOK, bulkReport{Total: 1, Created: 1, Results: []bulkResult{{Row: 1, Status: "created", ID: "sf_1"}}})
	})

	res := runCLI(srv, "crew", "import", input, "--company", "co/1")

	require.NoError(t, res.err)
	require.Equal(t, "ok.csv: 1 rows: 1 created, 0 updated, 0 failed\n", res.stdout)
	_, err := os.Stat(filepath.Join(filepath.Dir(input), "ok.failed.csv"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestCrewImport_ListsTheFirstHundredFailedRowsAndWritesThemAll(t *testing.T) {
	var list strings.Builder
	list.WriteString("seafarer_book_no,name,msisdn\n")
	rep := bulkReport{Total: 150, Failed: 150}
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&list, "E%d,Sailor %d,+86 138 %d\n", i, i, i)
		rep.Results = append(rep.Results, bulkResult{Row: i, Status: "failed", Errors: []fieldError{{Field: "msisdn", Message: "must be an E.164 number"}}})
	}
	input := mustWrite(t, "big.csv", list.String())
	srv := bulkAPI(t, "co_1", []byte(list.String()), rep)

	res := runCLI(srv, "crew", "import", input, "--company", "co_1")

	require.EqualError(t, res.err, "150 of 150 rows failed")
	require.Contains(t, res.stdout, "\n100  msisdn  must be an E.164 number\n… and 50 more failed rows, all in ")
	require.NotContains(t, res.stdout, "\n101  msisdn")
	written := mustRead(t, filepath.Join(filepath.Dir(input), "big.failed.csv"))
	require.Equal(t, 151, strings.Count(written, "\n"), "the header and every failed row")
}

func TestCrewImport_ShowsTheServersProblem(t *testing.T) {
	input := mustWrite(t, "no-msisdn.csv", "seafarer_book_no,name\nE1,Li Wei\n")
	srv := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeProblem(w, http.StatusBadRequest, "CSV header lacks required columns: msisdn",
			fieldError{Field: "msisdn", Message: "required column is missing from the CSV header"})
	})

	res := runCLI(srv, "crew", "import", input, "--company", "co_1")

	require.EqualError(t, res.err, "400 Bad Request: CSV header lacks required columns: msisdn\n"+
		"  msisdn: required column is missing from the CSV header")
	require.Empty(t, res.stdout)
	_, err := os.Stat(filepath.Join(filepath.Dir(input), "no-msisdn.failed.csv"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestCrewImport_RefusesBeforeSendingAnything(t *testing.T) {
	srv := fakeAPI(t, func(http.ResponseWriter, *http.Request) { t.Error("nothing should be sent") })
	input := mustWrite(t, "crew.csv", crewList)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no --company", []string{"crew", "import", input, "--server", srv.URL, "--token", testToken}, `"company" not set`},
		{"no token", []string{"crew", "import", input, "--company", "co_1", "--server", srv.URL}, "no bearer token: pass --token or set WUYOU_TOKEN"},
		{"a server that is not a URL", []string{"crew", "import", input, "--company", "co_1", "--server", "localhost:8080", "--token", testToken}, `--server "localhost:8080": must be an http:// or https:// URL`},
		{"a file that does not exist", []string{"crew", "import", filepath.Join(t.TempDir(), "nope.csv"), "--company", "co_1", "--server", srv.URL, "--token", testToken}, "nope.csv"},
		{"--failed-out naming the input", []string{"crew", "import", input, "--company", "co_1", "--failed-out", input, "--server", srv.URL, "--token", testToken}, "is the input file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "no token" {
				t.Setenv(envToken, "")
			}
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestAPIError_RendersStatusDetailAndFieldErrors(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"problem with field errors", "application/problem+json", `{"title":"Conflict","status":409,"detail":"MSISDN +8613800000001 belongs to another seafarer","errors":[{"field":"msisdn","message":"belongs to another seafarer"},{"field":"","message":"try another"}]}`,
			409, "409 Conflict: MSISDN +8613800000001 belongs to another seafarer\n  msisdn: belongs to another seafarer\n  try another"},
		{"problem without detail", "application/problem+json", `{"title":"Forbidden","status":403}`, 403, "403 Forbidden"},
		{"a proxy's HTML page", "text/html", "<html>" + strings.Repeat("x", 300) + "</html>", 502, "502 Bad Gateway: <html>" + strings.Repeat("x", 194) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.contentType}}}
			require.Equal(t, tt.want, newAPIError(res, []byte(tt.body)).Error())
		})
	}
}

// allowanceJSON is an allowance answer as the server writes it.
const allowanceJSON = `{"seafarer_id":"sf_1","remaining_seconds":3450,"remaining_minutes":57,"grants":[` +
	`{"id":"gr_a","programme_id":"pg_1","granted_seconds":3600,"remaining_seconds":3450,"effective_at":"2026-11-01T00:00:00Z","expires_at":"2027-01-30T00:00:00Z","priority":1,"status":"active"},` +
	`{"id":"gr_b","programme_id":"pg_2","granted_seconds":1800,"remaining_seconds":1800,"effective_at":"2027-01-01T00:00:00Z","expires_at":"2027-02-01T00:00:00Z","priority":2,"status":"pending"}],` +
	`"period":"2026-11","used_seconds":150,"overage_seconds":0,"as_of":"2026-11-28T10:00:00Z"}`

func allowanceAPI(t *testing.T) *httptest.Server {
	return fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		if r.URL.Path != "/v1/seafarers/sf_1/allowance" {
			writeProblem(w, http.StatusNotFound, "seafarer "+strings.Split(r.URL.Path, "/")[3]+" not found")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, allowanceJSON)
	})
}

func TestAllowance_PrintsMinutesLeftAndEachGrant(t *testing.T) {
	res := runCLI(allowanceAPI(t), "allowance", "sf_1")

	require.NoError(t, res.err)
	require.Equal(t, `sf_1: 57 minutes left (3450 s), as of 2026-11-28T10:00:00Z
this period (2026-11): 2 min 30 s used, 0 s overage

GRANT  PROGRAMME  LEFT         GRANTED  EFFECTIVE             EXPIRES               STATUS
gr_a   pg_1       57 min 30 s  60 min   2026-11-01T00:00:00Z  2027-01-30T00:00:00Z  active
gr_b   pg_2       30 min       30 min   2027-01-01T00:00:00Z  2027-02-01T00:00:00Z  pending
`, res.stdout)
}

func TestAllowance_JSONPrintsTheServersAnswer(t *testing.T) {
	res := runCLI(allowanceAPI(t), "allowance", "sf_1", "--json")

	require.NoError(t, res.err)
	require.Equal(t, allowanceJSON+"\n", res.stdout)
}

func TestAllowance_UnknownSeafarerIsTheServers404(t *testing.T) {
	res := runCLI(allowanceAPI(t), "allowance", "sf_9")

	require.EqualError(t, res.err, "404 Not Found: seafarer sf_9 not found")
	require.Empty(t, res.stdout)
}

// issuanceAPI fakes the issuance routes: the POST answers running, and
// each GET reports more progress until the issuance is done.
type issuanceAPI struct {
	t     *testing.T
	mu    sync.Mutex
	posts []issuanceRequest
	polls int
	// steps are the issuance's states, one per answer: the POST's first.
	steps []issuance
}

type issuanceRequest struct {
	path, key string
	body      map[string]any
}

func (a *issuanceAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/issuances"):
		assert.Equal(a.t, "application/json", r.Header.Get("Content-Type"))
		var body map[string]any
		assert.NoError(a.t, json.NewDecoder(r.Body).Decode(&body))
		a.posts = append(a.posts, issuanceRequest{r.URL.Path, r.Header.Get("Idempotency-Key"), body})
		writeJSON(w, http.StatusAccepted, a.steps[0])
	case r.Method == http.MethodGet && r.URL.Path == "/v1/issuances/"+a.steps[0].ID:
		a.polls++
		writeJSON(w, http.StatusOK, a.steps[min(a.polls, len(a.steps)-1)])
	default:
		writeProblem(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	}
}

func newIssuanceAPI(t *testing.T, steps ...issuance) (*issuanceAPI, *httptest.Server) {
	a := &issuanceAPI{t: t, steps: steps}
	return a, fakeAPI(t, a.serve)
}

func TestIssue_StartsTheIssuanceAndWaitsUntilItIsDone(t *testing.T) {
	running := issuance{ID: "is_1", ProgrammeID: "pg_1", Status: "running", Total: 300}
	half := running
	half.Issued, half.Skipped = 140, 10
	done := half
	done.Status, done.Issued, done.Skipped = "done", 290, 10
	api, srv := newIssuanceAPI(t, running, half, done)

	res := runCLI(srv, "issue", "pg_1", "--company", "co_1", "--poll", "1ms")

	require.NoError(t, res.err)
	key := defaultIdempotencyKey("pg_1", issuanceTarget{CompanyID: "co_1"})
	require.Equal(t, []issuanceRequest{{"/v1/programmes/pg_1/issuances", key, map[string]any{"company_id": "co_1"}}}, api.posts)
	require.Equal(t, 2, api.polls)
	require.Equal(t, "issuance is_1 of programme pg_1: done (idempotency key "+key+")\n"+
		"300 seafarers: 290 issued, 10 skipped (not active), 0 failed\n", res.stdout)
	require.NotContains(t, res.stderr, "%", "stderr is not a terminal: no bar")
}

func TestIssue_DrawsAProgressBarOnATerminal(t *testing.T) {
	running := issuance{ID: "is_1", ProgrammeID: "pg_1", Status: "running", Total: 300}
	half := running
	half.Issued, half.Skipped = 140, 10
	done := half
	done.Status, done.Issued, done.Skipped = "done", 290, 10
	_, srv := newIssuanceAPI(t, running, half, done)
	terminal := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = terminal })

	res := runCLI(srv, "issue", "pg_1", "--company", "co_1", "--poll", "1ms")

	require.NoError(t, res.err)
	require.Contains(t, res.stderr, "issuing")
	require.Contains(t, res.stderr, "100%")
	require.Contains(t, res.stderr, "(300/300)")
}

func TestIssue_RerunningTheSameCommandSendsTheSameKey(t *testing.T) {
	done := issuance{ID: "is_1", ProgrammeID: "pg_1", Status: "done", Total: 2, Issued: 2}
	api, srv := newIssuanceAPI(t, done)
	ids := mustWrite(t, "ids.txt", "\uFEFF# spring winners\nsf_2\r\n\n  sf_1  \n")
	reordered := mustWrite(t, "ids2.txt", "sf_1\nsf_2\n")

	for _, args := range [][]string{
		{"issue", "pg_1", "--seafarers", ids},
		{"issue", "pg_1", "--seafarers", ids},
		{"issue", "pg_1", "--seafarers", reordered},
		{"issue", "pg_1", "--vessel", "9074729"},
		{"issue", "pg_2", "--vessel", "9074729", "--effective-at", "2027-01-01T08:00:00+08:00"},
		{"issue", "pg_2", "--vessel", "9074729", "--idempotency-key", "spring-2027"},
	} {
		res := runCLI(srv, args...)
		require.NoError(t, res.err, "%v", args)
	}

	require.Len(t, api.posts, 6)
	require.Equal(t, map[string]any{"seafarer_ids": []any{"sf_2", "sf_1"}}, api.posts[0].body, "ids in file order")
	require.Equal(t, api.posts[0].key, api.posts[1].key, "the same command, the same key")
	require.Equal(t, api.posts[0].key, api.posts[2].key, "the same seafarers in another order are the same target")
	require.NotEqual(t, api.posts[0].key, api.posts[3].key, "another target, another key")
	require.Equal(t, map[string]any{"vessel_imo": "9074729", "effective_at": "2027-01-01T00:00:00Z"}, api.posts[4].body)
	require.Equal(t, "/v1/programmes/pg_2/issuances", api.posts[4].path)
	require.NotEqual(t, api.posts[3].key, api.posts[4].key, "another programme, another key")
	require.Equal(t, "spring-2027", api.posts[5].key)
	require.Zero(t, api.polls, "a done issuance is not polled")
}

func TestIssue_ListsFailuresAndExitsNonZero(t *testing.T) {
	done := issuance{ID: "is_1", ProgrammeID: "pg_1", Status: "done", Total: 3, Issued: 1, Failed: 2,
		Failures: []issuanceFailure{{"sf_2", "budget_exhausted"}, {"sf_3", "budget_exhausted"}}}
	_, srv := newIssuanceAPI(t, done)

	res := runCLI(srv, "issue", "pg_1", "--company", "co_1")

	require.EqualError(t, res.err, "2 of 3 seafarers got no pack")
	require.True(t, strings.HasSuffix(res.stdout, `3 seafarers: 1 issued, 0 skipped (not active), 2 failed

SEAFARER  REASON
sf_2      budget_exhausted
sf_3      budget_exhausted
`), res.stdout)
}

func TestIssue_ShowsTheServersProblem(t *testing.T) {
	srv := fakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusConflict, "Idempotency-Key was already used with a different body")
	})

	res := runCLI(srv, "issue", "pg_1", "--company", "co_1", "--idempotency-key", "k1")
	require.EqualError(t, res.err, "409 Conflict: Idempotency-Key was already used with a different body")

	res = runCLI(srv, "issue", "pg_1", "--company", "co_1", "--effective-at", "2027-01-01T00:00:00Z")
	require.EqualError(t, res.err, "409 Conflict: Idempotency-Key was already used with a different body\n"+
		"(this programme was issued to this target before with other options; to issue again on purpose, pass a new --idempotency-key)",
		"with the default key, the conflict is explained")
}

func TestIssue_RefusesABadCommandLine(t *testing.T) {
	srv := fakeAPI(t, func(http.ResponseWriter, *http.Request) { t.Error("nothing should be sent") })
	empty := mustWrite(t, "empty.txt", "# nobody\n\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no target", []string{"issue", "pg_1"}, "at least one of the flags in the group [company vessel seafarers] is required"},
		{"two targets", []string{"issue", "pg_1", "--company", "co_1", "--vessel", "9074729"}, "none of the others can be"},
		{"a bad --effective-at", []string{"issue", "pg_1", "--company", "co_1", "--effective-at", "tomorrow"}, `--effective-at "tomorrow": must be an RFC 3339 time`},
		{"a seafarers file without ids", []string{"issue", "pg_1", "--seafarers", empty}, "lists no seafarer ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(srv, tt.args...)
			require.ErrorContains(t, res.err, tt.wantErr)
		})
	}
}

func TestDefaultFailedOut(t *testing.T) {
	for in, want := range map[string]string{
		"crew.csv":          "crew.failed.csv",
		"dir/Crew List.CSV": "dir/Crew List.failed.CSV",
		"crew.txt":          "crew.txt.failed.csv",
		"crew":              "crew.failed.csv",
	} {
		require.Equal(t, want, defaultFailedOut(in), fmt.Sprintf("defaultFailedOut(%q)", in))
	}
}

// A seafarer holding data and SMS packs sees what is left of each unit, and
// each pack's amounts in its own unit, never bytes as seconds.
func TestAllowance_PrintsDataAndSMSInTheirUnits(t *testing.T) {
	const body = `{"seafarer_id":"sf_1","remaining_seconds":0,"remaining_minutes":0,"grants":[` +
		`{"id":"gr_d","programme_id":"pg_d","unit":"bytes","granted":2147483648,"remaining":1610612736,"granted_seconds":0,"remaining_seconds":0,"effective_at":"2026-11-01T00:00:00Z","expires_at":"2026-12-01T00:00:00Z","priority":1,"status":"active"},` +
		`{"id":"gr_s","programme_id":"pg_s","unit":"sms","granted":50,"remaining":47,"granted_seconds":0,"remaining_seconds":0,"effective_at":"2026-11-01T00:00:00Z","expires_at":"2026-12-01T00:00:00Z","priority":1,"status":"active"}],` +
		`"period":"2026-11","used_seconds":0,"overage_seconds":0,"as_of":"2026-11-28T10:00:00Z",` +
		`"balances":[{"unit":"bytes","granted":2147483648,"remaining":1610612736,"reserved":0,"expires_at":"2026-12-01T00:00:00Z"},` +
		`{"unit":"sms","granted":50,"remaining":47,"reserved":0,"expires_at":"2026-12-01T00:00:00Z"}]}`
	api := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
	res := runCLI(api, "allowance", "sf_1")

	require.NoError(t, res.err)
	require.Equal(t, `sf_1: 0 minutes left (0 s), as of 2026-11-28T10:00:00Z
this period (2026-11): 0 s used, 0 s overage
data: 1.5 GB left of 2 GB
SMS: 47 sms left of 50 sms

GRANT  PROGRAMME  LEFT    GRANTED  EFFECTIVE             EXPIRES               STATUS
gr_d   pg_d       1.5 GB  2 GB     2026-11-01T00:00:00Z  2026-12-01T00:00:00Z  active
gr_s   pg_s       47 sms  50 sms   2026-11-01T00:00:00Z  2026-12-01T00:00:00Z  active
`, res.stdout)
}
