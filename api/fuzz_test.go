package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// One fuzz target per JSON request body. Each drives its route through the
// whole server (authentication, body parsing, validation, the real Redis
// stores on a prefix of their own) with a union token, and holds the
// contract of §3 for any body at all: the answer is a 2xx, or a 4xx
// problem+json with a detail; a 400 for a body that decodes into the
// route's input names the invalid fields in errors[]; never a 5xx, never a
// panic. And nothing is stored from a refused request: the system of
// record (every table) and the hot state (every key of the fixture's
// prefix) are the same after a 4xx as before it (fx.send checks). Seed
// corpora are under testdata/fuzz/<FuzzName>/ and in f.Add calls, so plain
// `go test` runs them; `make test` runs each target for a few seconds,
// `make fuzz` for longer.

// fuzzFixture is a server with one company, one seafarer of it and one
// programme for the routes that name them.
type fuzzFixture struct {
	app                                *fiber.App
	d                                  *deployment
	union                              string
	companyID, seafarerID, programmeID string
	grantID                            string // the seafarer's grant, for the void route
	seq                                atomic.Int64
}

func mustFuzzFixture(f *testing.F) *fuzzFixture {
	f.Helper()
	// Fuzzing makes thousands of writes with one token.
	ls := mustServerOn(f, MustDeployment(f), MustAuthFixture(f).verifier, func(c *Config) { c.WriteRateLimit = -1 })
	ctx := context.Background()
	co, err := ls.crew.CreateCompany(ctx, "Fuzz Shipping", "FUZZ-1")
	require.NoError(f, err)
	sf, _, err := ls.crew.Enrol(ctx, co.ID, crew.Enrolment{BookNo: "FZ-0001", Name: "Fu Zi", MSISDN: "+8613700000001", VesselIMO: "9074729"})
	require.NoError(f, err)
	now := time.Now().UTC()
	p, err := ls.programmes.CreateProgramme(ctx, quota.ProgrammeInput{
		Name: "Fuzz packs", PackSeconds: 600, ValidDays: 30, Priority: 1,
		StartsAt: now.Add(-time.Hour), EndsAt: now.Add(365 * 24 * time.Hour),
	})
	require.NoError(f, err)
	c := seafarerClaims()
	c.Role, c.Subject = token.RoleUnion, "fuzz-officer"
	fx := &fuzzFixture{
		app: ls.server.App(), d: ls.deployment, union: MustMint(f, MustAuthFixture(f).ed, c),
		companyID: co.ID, seafarerID: sf.ID, programmeID: p.ID,
	}
	issuer := ls.newIssuer(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	iss, _, err := issuer.StartAndRun(ctx, p.ID, "fuzz-seed", quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}}, 10)
	require.NoError(f, err)
	require.EqualValues(f, 1, iss.Issued)
	fx.grantID = quota.IssuanceGrantID(iss.ID, sf.ID)
	return fx
}

// storedTables are every table a request could write, and what each row is
// compared by.
var storedTables = []string{"companies", "seafarers", "msisdn_holdings", "programmes", "issuances", "issuance_targets",
	"grants", "ledger_entries", "statement_periods", "held_events", "event_claims", "audit_records"}

// stored is a digest of everything the fixture's deployment holds: each
// table's rows and every Redis key under its prefix with its value.
func (fx *fuzzFixture) stored(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var q strings.Builder
	q.WriteString("SELECT concat_ws(' '")
	for _, table := range storedTables {
		fmt.Fprintf(&q, ", (SELECT '%[1]s:' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM %[1]s x)", table)
	}
	q.WriteString(")")
	var sum string
	require.NoError(t, fx.d.pool.QueryRow(ctx, q.String()).Scan(&sum))
	keys, err := redistest.Keys(ctx, fx.d.rdb, fx.d.prefix+":*")
	require.NoError(t, err)
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		v, err := fx.d.rdb.Dump(ctx, k).Result()
		require.NoError(t, err)
		fmt.Fprintf(h, "%s=%x;", k, sha256.Sum256([]byte(v)))
	}
	return fmt.Sprintf("%s redis:%d:%x", sum, len(keys), h.Sum(nil))
}

// send drives one request through the app and returns the answer, after
// checking that a refused request (4xx) stored and changed nothing.
// Content-Type is JSON unless header sets it.
func (fx *fuzzFixture) send(t *testing.T, method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	before := fx.stored(t)
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", bearer(fx.union))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := fx.app.Test(req, -1)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if res.StatusCode >= 400 && res.StatusCode < 500 {
		require.Equal(t, before, fx.stored(t), "%s %s with body %q was refused (%d %s) but stored or changed something",
			method, path, body, res.StatusCode, b)
	}
	return res.StatusCode, res.Header, b
}

// requireContractAnswer holds the invariant of every body route. In is the
// route's input type: when body decodes into it, a 400 must be a validation
// error naming fields.
func requireContractAnswer[In any](t *testing.T, body []byte, status int, header http.Header, answer []byte) {
	t.Helper()
	require.Less(t, status, 500, "body %q → %d %s", body, status, answer)
	if status < 300 {
		require.GreaterOrEqual(t, status, 200)
		require.True(t, json.Valid(answer), "a %d answers JSON: %s", status, answer)
		return
	}
	require.GreaterOrEqual(t, status, 400, "body %q → %d", body, status)
	require.Equal(t, "application/problem+json", header.Get("Content-Type"), "body %q → %d %s", body, status, answer)
	var p problemBody
	require.NoError(t, json.Unmarshal(answer, &p), "answer: %s", answer)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, strings.TrimSpace(p.Detail), "body %q → %d without a detail", body, status)
	for _, e := range p.Errors {
		require.NotEmpty(t, e.Field, "body %q → %s", body, answer)
		require.NotEmpty(t, e.Message, "body %q → %s", body, answer)
	}
	var in In
	if status == http.StatusBadRequest && json.Unmarshal(body, &in) == nil {
		require.NotEmpty(t, p.Errors, "body %q decodes, so its 400 names the invalid fields: %s", body, answer)
	}
}

func FuzzCreateCompanyBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/companies", body)
		requireContractAnswer[struct {
			Name           string `json:"name"`
			RegistrationNo string `json:"registration_no"`
		}](t, body, status, header, answer)
	})
}

func FuzzEnrolSeafarerBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/companies/"+fx.companyID+"/seafarers", body)
		requireContractAnswer[crew.Enrolment](t, body, status, header, answer)
	})
}

func FuzzPatchSeafarerBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPatch, "/v1/seafarers/"+fx.seafarerID, body)
		requireContractAnswer[crew.SeafarerUpdate](t, body, status, header, answer)
	})
}

func FuzzCreateProgrammeBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/programmes", body)
		requireContractAnswer[quota.ProgrammeInput](t, body, status, header, answer)
	})
}

func FuzzStartIssuanceBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	// Seeds that name the fixture's own seafarer and company, which the
	// checked-in corpus cannot know.
	f.Add([]byte(fmt.Sprintf(`{"seafarer_ids":[%q]}`, fx.seafarerID)))
	f.Add([]byte(fmt.Sprintf(`{"company_id":%q}`, fx.companyID)))
	f.Fuzz(func(t *testing.T, body []byte) {
		key := fmt.Sprintf("fuzz-%d", fx.seq.Add(1))
		status, header, answer := fx.send(t, http.MethodPost, "/v1/programmes/"+fx.programmeID+"/issuances", body, "Idempotency-Key", key)
		requireContractAnswer[quota.IssuanceTarget](t, body, status, header, answer)
	})
}

func FuzzBulkEnrolJSONBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/companies/"+fx.companyID+"/seafarers:bulk", body)
		// A body that is an array of rows is never refused as a whole: bad
		// rows fail alone in the report.
		requireContractAnswer[rowArray](t, body, status, header, answer)
		if status != http.StatusOK {
			return
		}
		var report struct {
			Total, Created, Updated, Failed int
			Results                         []struct {
				Row    int
				Status string
				Errors []struct{ Field, Message string }
			}
		}
		require.NoError(t, json.Unmarshal(answer, &report))
		require.Equal(t, report.Total, report.Created+report.Updated+report.Failed, "report: %s", answer)
		require.Len(t, report.Results, report.Total)
		for _, r := range report.Results {
			if r.Status == "failed" {
				require.NotEmpty(t, r.Errors, "a failed row says why: %s", answer)
				for _, e := range r.Errors {
					require.NotEmpty(t, e.Message, "report: %s", answer)
				}
			}
		}
	})
}

// rowArray decodes from a JSON array of objects only; null, which
// encoding/json would take for an empty slice, is not one.
type rowArray []map[string]json.RawMessage

func (r *rowArray) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return errors.New("null is not an array of rows")
	}
	return json.Unmarshal(b, (*[]map[string]json.RawMessage)(r))
}

// The write routes whose input is not (only) a JSON body: a crew list as
// CSV, the reconciliation's settlement CSV, and the routes whose input is
// their path (a void, a period's close). Each holds the same invariant.

func FuzzBulkEnrolCSVBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Add([]byte("seafarer_book_no,name,msisdn\nFZ-0100,Fu Yi,+8613700000100\n"))
	f.Add([]byte("seafarer_book_no,name,msisdn\n=cmd|' /C calc'!A0,\"a\nb\",+86\n"))
	f.Add([]byte("name\n\"unterminated"))
	f.Add([]byte("\xef\xbb\xbfseafarer_book_no,name,msisdn,msisdn\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/companies/"+fx.companyID+"/seafarers:bulk", body, "Content-Type", "text/csv")
		requireContractAnswer[notJSON](t, body, status, header, answer)
	})
}

func FuzzReconcileCSVBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Add([]byte("msisdn,calls,billable_seconds,covered_seconds\n+8613700000001,1,60,60\n"))
	f.Add([]byte("msisdn,calls,billable_seconds,covered_seconds\n@SUM(A1),-1,x,\n"))
	f.Add([]byte("calls\n1\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, body []byte) {
		path := "/v1/reconciliations?period=" + time.Now().UTC().Format("2006-01")
		status, header, answer := fx.send(t, http.MethodPost, path, body, "Content-Type", "text/csv")
		requireContractAnswer[notJSON](t, body, status, header, answer)
	})
}

// FuzzVoidGrantPath voids whatever grant the path names: the fixture's
// own grant once (then 409 every time), or one that does not exist.
func FuzzVoidGrantPath(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Add("", false)
	f.Add("g_nosuchgrant", false)
	f.Add("../../companies", false)
	f.Add("%00", false)
	f.Add("", true)
	f.Fuzz(func(t *testing.T, grantID string, own bool) {
		if own {
			grantID = fx.grantID
		}
		path := "/v1/seafarers/" + fx.seafarerID + "/grants/" + url.PathEscape(grantID) + ":void"
		status, header, answer := fx.send(t, http.MethodPost, path, nil)
		requireContractAnswer[notJSON](t, []byte(grantID), status, header, answer)
	})
}

// FuzzClosePeriodPath closes whatever period the path names: only months
// that have ended can be closed (a 422 otherwise, storing nothing).
func FuzzClosePeriodPath(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Add(time.Now().UTC().Format("2006-01"))
	f.Add("2026-13")
	f.Add("0000-01")
	f.Add("9999-12")
	f.Add("2026-1")
	f.Add("")
	f.Fuzz(func(t *testing.T, period string) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/periods/"+url.PathEscape(period)+":close", nil)
		requireContractAnswer[notJSON](t, []byte(period), status, header, answer)
	})
}

// notJSON is the input of a route whose body is not JSON: nothing decodes
// into it, so a 400 need not name fields.
type notJSON struct{}

func (*notJSON) UnmarshalJSON([]byte) error { return errors.New("not a JSON input") }
