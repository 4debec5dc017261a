package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// apiCall is one request a fake API received.
type apiCall struct {
	method, path, query, contentType, body string
}

// recordingAPI answers each request with answer and records it.
func recordingAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*[]apiCall, func(args ...string) cliResult) {
	var calls []apiCall
	srv := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls = append(calls, apiCall{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Content-Type"), string(b)})
		answer(w, r)
	})
	return &calls, func(args ...string) cliResult { return runCLI(srv, args...) }
}

func TestCompanyCreate_PostsTheCompanyAndPrintsItsID(t *testing.T) {
	calls, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"id": "co_1", "name": "COSCO Shipping", "registration_no": "91310000X", "created_at": time.Now()})
	})
	res := cli("company", "create", "--name", "COSCO Shipping", "--registration-no", "91310000X")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, []apiCall{{"POST", "/v1/companies", "", "application/json", `{"name":"COSCO Shipping","registration_no":"91310000X"}`}}, *calls)
	require.Equal(t, "created company co_1: COSCO Shipping (registration no. 91310000X)\n", res.stdout)
}

func TestCompanyCreate_AConflictIsTheServersProblemAndExits1(t *testing.T) {
	_, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusConflict, "a company with registration number 91310000X already exists",
			fieldError{Field: "registration_no", Message: "is taken"})
	})
	res := cli("company", "create", "--name", "COSCO Shipping", "--registration-no", "91310000X")
	require.ErrorContains(t, res.err, "409")
	require.ErrorContains(t, res.err, "registration_no: is taken")
	require.Equal(t, 1, exitCode(res.err))
}

func TestCompanyList_ReadsEveryPageOfTheSearch(t *testing.T) {
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	calls, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			writeJSON(w, http.StatusOK, map[string]any{"items": []company{{"co_1", "Alpha Shipping", "R1", at}}, "next_cursor": "co_1"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": []company{{"co_2", "Beta Shipping", "R2", at}}, "next_cursor": ""})
	})
	res := cli("company", "list", "--q", "shipping")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, []apiCall{
		{method: "GET", path: "/v1/companies", query: "limit=500&q=shipping"},
		{method: "GET", path: "/v1/companies", query: "cursor=co_1&limit=500&q=shipping"},
	}, *calls)
	require.Equal(t, `ID    NAME            REGISTRATION NO.  CREATED
co_1  Alpha Shipping  R1                2026-11-02
co_2  Beta Shipping   R2                2026-11-02
2 companies
`, res.stdout)
}

func TestGrantVoid_VoidsTheGrantAndSaysWhatWasLeft(t *testing.T) {
	calls, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": "le_9", "kind": "void", "grant_id": "gr_1", "seconds": 5400})
	})
	res := cli("grant", "void", "sf_1", "gr_1")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, []apiCall{{method: "POST", path: "/v1/seafarers/sf_1/grants/gr_1:void"}}, *calls)
	require.Equal(t, "voided grant gr_1 of sf_1: "+duration(5400)+" were left (ledger entry le_9)\n", res.stdout)
}

func TestPeriodClose_ClosesTheMonthAndSaysSince(t *testing.T) {
	calls, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"period": "2026-11", "status": "closed", "closed_at": "2026-12-01T00:05:00Z", "seafarers": 42})
	})
	res := cli("period", "close", "2026-11")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, []apiCall{{method: "POST", path: "/v1/periods/2026-11:close"}}, *calls)
	require.Equal(t, "period 2026-11 is closed since 2026-12-01T00:05:00Z; 42 seafarers have figures in it\n", res.stdout)
}

func TestReconcile_SendsTheSettlementAsCSVAndPrintsTheDifferences(t *testing.T) {
	settlement := "msisdn,calls,billable_seconds,covered_seconds\n+8613800000001,2,240,240\n"
	calls, cli := recordingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(`{"period":"2026-11","matched":0,
			"missing_in_wuyou":[],"missing_in_carrier":[{"msisdn":"+8613800000002","calls":1,"billable_seconds":60,"covered_seconds":60}],
			"differences":[{"msisdn":"+8613800000001","field":"covered_seconds","wuyou":180,"carrier":240}],
			"invalid_rows":[],"invalid_row_count":0,
			"totals":{"wuyou":{"msisdns":2,"calls":3,"billable_seconds":300,"covered_seconds":240},"carrier":{"msisdns":1,"calls":2,"billable_seconds":240,"covered_seconds":240}}}`), &rep))
		writeJSON(w, http.StatusOK, rep)
	})
	file := mustWrite(t, "cmcc-2026-11.csv", settlement)
	res := cli("reconcile", file, "--period", "2026-11")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, []apiCall{{"POST", "/v1/reconciliations", "period=2026-11", "text/csv", settlement}}, *calls)
	require.Contains(t, res.stdout, "0 matched, 1 differences, 0 missing in Wuyou, 1 missing in the carrier's file, 0 invalid rows\n")
	require.Contains(t, res.stdout, "+8613800000001  covered_seconds                180")
	require.Contains(t, res.stdout, "+8613800000002  missing in the carrier's file  1 calls")

	res = cli("reconcile", file, "--period", "2026-11", "--csv")
	require.NoError(t, res.err, res.stderr)
	require.Contains(t, res.stdout, "+8613800000001")
}

// usageMistakes are command lines wuyouctl must refuse as mistakes (exit
// 2, usage on stderr) before calling any server, with a word of the error.
var usageMistakes = []struct {
	name string
	args []string
	want string
}{
	{"an unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
	{"a group without its command", []string{"company"}, "wuyouctl company needs a command"},
	{"an unknown command of a group", []string{"grant", "revoke", "sf_1", "gr_1"}, `unknown command "revoke" for wuyouctl grant`},
	{"an unknown flag", []string{"allowance", "sf_1", "--colour"}, "unknown flag: --colour"},
	{"a flag value of the wrong type", []string{"issue", "pg_1", "--company", "co_1", "--poll", "soon"}, `invalid argument "soon" for "--poll"`},
	{"a missing argument", []string{"grant", "void", "sf_1"}, "accepts 2 arg(s), received 1"},
	{"an extra argument", []string{"period", "close", "2026-11", "2026-12"}, "accepts 1 arg(s), received 2"},
	{"a required flag left out", []string{"company", "create", "--name", "Alpha"}, `required flag(s) "registration-no" not set`},
	{"a period that is not a month", []string{"period", "close", "2026-13"}, "must be a month as YYYY-MM"},
	{"reconcile without --period", []string{"reconcile", "x.csv"}, `required flag(s) "period" not set`},
	{"reconcile with --csv and --json", []string{"reconcile", "x.csv", "--period", "2026-11", "--csv", "--json"}, "exclude each other"},
}

func TestUsageMistakesPrintTheUsageOnStderrAndExitWithStatus2(t *testing.T) {
	srv := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a usage mistake reached the server: %s %s", r.Method, r.URL)
	})
	for _, tc := range usageMistakes {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(srv, tc.args...)
			require.ErrorContains(t, res.err, tc.want)
			require.Equal(t, 2, exitCode(res.err))
			require.Contains(t, res.stderr, "Error: ")
			require.Contains(t, res.stderr, tc.want)
			require.Contains(t, res.stderr, "Usage:\n  wuyouctl ")
			require.Empty(t, res.stdout)
		})
	}
}

// The process itself: main exits 2 and writes the error and the usage to
// stderr once. The test binary runs main when WUYOUCTL_RUN_MAIN is set.
func TestMainExitsWithStatus2OnAUsageMistake(t *testing.T) {
	if args := os.Getenv("WUYOUCTL_RUN_MAIN"); args != "" {
		os.Args = append([]string{"wuyouctl"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	for _, tc := range []struct {
		args string
		want int
	}{
		{"grant void sf_1", 2},
		{"frobnicate", 2},
		{"period close 2026-11 --server http://127.0.0.1:1 --token x", 1}, // not a usage mistake: the server is unreachable
	} {
		t.Run(tc.args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitsWithStatus2OnAUsageMistake$")
			cmd.Env = append(os.Environ(), "WUYOUCTL_RUN_MAIN="+tc.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
			require.Equal(t, tc.want, exit.ExitCode(), "stderr: %s", stderr.String())
			if tc.want == 2 {
				require.Equal(t, 1, strings.Count(stderr.String(), "Error: "), stderr.String())
				require.Contains(t, stderr.String(), "Usage:")
			} else {
				require.NotContains(t, stderr.String(), "Usage:")
			}
			require.Empty(t, stdout.String())
		})
	}
}
