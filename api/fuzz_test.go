package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// One fuzz target per JSON request body. Each drives its route through the
// whole server (authentication, body parsing, validation, the real Redis
// stores on a prefix of their own) with a union token, and holds the
// contract of §3 for any body at all: the answer is a 2xx, or a 4xx
// problem+json with a detail; a 400 for a body that decodes into the
// route's input names the invalid fields in errors[]; never a 5xx, never a
// panic. Seed corpora are under testdata/fuzz/<FuzzName>/; `make test` runs
// each target for a few seconds, `make fuzz` for longer.

// fuzzFixture is a server with one company, one seafarer of it and one
// programme for the routes that name them.
type fuzzFixture struct {
	app                                *fiber.App
	union                              string
	companyID, seafarerID, programmeID string
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
	return &fuzzFixture{
		app: ls.server.App(), union: MustMint(f, MustAuthFixture(f).ed, c),
		companyID: co.ID, seafarerID: sf.ID, programmeID: p.ID,
	}
}

// send drives one request through the app and returns the answer.
func (fx *fuzzFixture) send(t *testing.T, method, path string, body []byte, header ...string) (int, http.Header, []byte) {
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
