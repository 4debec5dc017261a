package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// The tenancy rules (CONTRACT §2): a company sees only its own crew, a
// seafarer only themself, union staff everything, the carrier balances by
// MSISDN and nothing else. A forbidden role is 403; another tenant's resource
// is 404, so that its existence does not leak.

const tenancyIssuer = "https://issuer.wuyou.test"

// calledNumber is what the seeded calls of A1 and B1 dialled.
const calledNumber = "+861012345678"

// apiFixture is a real server over a deployment of its own (a fresh
// database and key prefix), seeded with two companies A and B, each with
// two seafarers holding one pack of the same programme, and one call each
// for A1 and B1.
type apiFixture struct {
	*deployment
	server *Server
	app    *fiber.App
	issuer *quota.Issuer
	key    *token.SigningKey

	companyA, companyB *crew.Company
	a1, a2, b1, b2     *crew.Seafarer
	programme          *quota.Programme
	// issuanceA and issuanceB gave the programme's packs to A's and B's crew.
	issuanceA, issuanceB *quota.Issuance

	// Tokens of the four roles; the company and seafarer are A's.
	union, companyAToken, seafarerA1, carrierToken string

	seq atomic.Int64 // makes book numbers, MSISDNs and keys unique per request
}

// MustAPIServer builds the server over a deployment of its own, with a
// verifier for a freshly generated key, and nothing seeded.
func MustAPIServer(tb testing.TB) *apiFixture {
	tb.Helper()
	return MustAPIServerLogging(tb, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// MustAPIServerLogging is MustAPIServer writing its logs to log.
func MustAPIServerLogging(tb testing.TB, log *slog.Logger) *apiFixture {
	tb.Helper()
	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	require.NoError(tb, err)
	jwks, err := token.JWKS(key)
	require.NoError(tb, err)
	verifier, err := NewVerifierFromJWKS(jwks, tenancyIssuer, "wuyou", nil)
	require.NoError(tb, err)

	f := &apiFixture{deployment: MustDeployment(tb), key: key}
	f.issuer = f.newIssuer(tb, log)
	f.server = New(f.config(f.issuer, verifier, log))
	f.app = f.server.App()
	f.union = f.token(tb, token.RoleUnion, "union-officer-1", "")
	f.carrierToken = f.token(tb, token.RoleCarrier, "carrier-cmcc", "")
	return f
}

// MustAPIFixture is MustAPIServer seeded with companies A and B (see apiFixture).
func MustAPIFixture(tb testing.TB) *apiFixture {
	tb.Helper()
	return seed(tb, MustAPIServer(tb))
}

// MustAPIFixtureLogging is MustAPIFixture writing its logs to log.
func MustAPIFixtureLogging(tb testing.TB, log *slog.Logger) *apiFixture {
	tb.Helper()
	return seed(tb, MustAPIServerLogging(tb, log))
}

// seed enrols companies A and B, their crew and their grants.
func seed(tb testing.TB, f *apiFixture) *apiFixture {
	tb.Helper()
	ctx := context.Background()
	var err error
	f.companyA, err = f.crew.CreateCompany(ctx, "Alpha Shipping", "REG-A")
	require.NoError(tb, err)
	f.companyB, err = f.crew.CreateCompany(ctx, "Beta Maritime", "REG-B")
	require.NoError(tb, err)
	enrol := func(co *crew.Company, book, name, msisdn string) *crew.Seafarer {
		sf, created, err := f.crew.Enrol(ctx, co.ID, crew.Enrolment{
			BookNo: book, Name: name, Nationality: "CN", MSISDN: msisdn, VesselIMO: "9074729", SignOn: "2026-01-15",
		})
		require.NoError(tb, err)
		require.True(tb, created)
		return sf
	}
	f.a1 = enrol(f.companyA, "A-0001", "Li Wei", "+8613800000001")
	f.a2 = enrol(f.companyA, "A-0002", "Wang Fang", "+8613800000002")
	f.b1 = enrol(f.companyB, "B-0001", "Zhang Min", "+8613900000001")
	f.b2 = enrol(f.companyB, "B-0002", "Chen Jie", "+8613900000002")

	now := time.Now().UTC()
	f.programme, err = f.programmes.CreateProgramme(ctx, quota.ProgrammeInput{
		Name: "Worry-free at sea", PackSeconds: 3600, ValidDays: 90, Priority: 1,
		StartsAt: now.Add(-24 * time.Hour), EndsAt: now.Add(365 * 24 * time.Hour),
	})
	require.NoError(tb, err)
	issue := func(co *crew.Company) *quota.Issuance {
		iss, _, err := f.issuer.StartAndRun(ctx, f.programme.ID, "seed-"+co.ID, quota.IssuanceTarget{CompanyID: co.ID}, 100)
		require.NoError(tb, err)
		require.Equal(tb, quota.IssuanceDone, iss.Status)
		require.EqualValues(tb, 2, iss.Issued)
		return iss
	}
	f.issuanceA, f.issuanceB = issue(f.companyA), issue(f.companyB)
	for _, sf := range []*crew.Seafarer{f.a1, f.b1} {
		f.meter(tb, quota.Usage{
			SeafarerID: sf.ID, MSISDN: sf.MSISDN, Source: "urn:carrier:test", EventID: "cdr-" + sf.ID,
			Type: "carrier.usage.voice", CallTime: now.Add(-10 * time.Minute), DurationSeconds: 125, BillableSeconds: 180,
			CalledNumber: calledNumber, VisitedCountry: "SG",
			OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
		})
	}

	f.companyAToken = f.token(tb, token.RoleCompany, "crew-manager-a", f.companyA.ID)
	f.seafarerA1 = f.token(tb, token.RoleSeafarer, f.a1.ID, "")
	return f
}

func (f *apiFixture) token(tb testing.TB, role, sub, companyID string) string {
	tb.Helper()
	tok, err := f.key.Mint(token.Claims{
		Issuer: tenancyIssuer, Audience: "wuyou", Subject: sub, Role: role, CompanyID: companyID, TTL: time.Hour,
	}, time.Now())
	require.NoError(tb, err)
	return tok
}

// next returns a number not returned before by this fixture.
func (f *apiFixture) next() int64 { return f.seq.Add(1) }

// apiRequest is one request to the fixture's server.
type apiRequest struct {
	method, path, token string
	contentType         string
	body                []byte
	header              map[string]string
	// timeout is app.Test's: 0 means its default (1s), -1 none.
	timeout int
}

// do sends r through app.Test and returns the status, the headers and the body.
func (f *apiFixture) do(tb testing.TB, r apiRequest) (int, http.Header, []byte) {
	tb.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.path, body)
	if r.contentType != "" {
		req.Header.Set(fiber.HeaderContentType, r.contentType)
	}
	if r.token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = 10_000 // a Redis under -race is slower than app.Test's 1s default allows
	}
	res, err := f.app.Test(req, timeout)
	require.NoError(tb, err, "%s %s", r.method, r.path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	return res.StatusCode, res.Header, b
}

// msisdnPath is an MSISDN as a path segment: its "+" percent-encoded.
func msisdnPath(msisdn string) string { return strings.ReplaceAll(msisdn, "+", "%2B") }

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return b
}

// tenant says whose resource a request names: A's (the caller's own, or A1
// themself for the seafarer) or B's (another tenant's).
type tenant int

const (
	tenantA tenant = iota
	tenantB
)

// routeAccess says what each role gets on a route, for A's and for B's resource.
type routeAccess struct {
	union, company, seafarer, carrier [2]int
}

func everyTenant(status int) [2]int   { return [2]int{status, status} }
func ownTenantOnly(status int) [2]int { return [2]int{status, http.StatusNotFound} }

var denied = everyTenant(http.StatusForbidden)

// tenancyRoute is one registered /v1 route and who may use it.
type tenancyRoute struct {
	method, route string // exactly as server.go registers it
	// action describes the request; %s is replaced by the resource label.
	action string
	// resource labels A's and B's resource; empty for a route that names no
	// tenant's resource (it is then tried once, as "A").
	resource [2]string
	path     func(tb testing.TB, f *apiFixture, tn tenant) string
	// body returns the request's content type and body; nil sends none.
	body   func(tb testing.TB, f *apiFixture, tn tenant) (string, []byte)
	header func(f *apiFixture, tn tenant) map[string]string
	want   routeAccess
	// check, when set, inspects a 2xx body further.
	check func(t *testing.T, role string, tn tenant, body []byte)
}

func jsonBody(v func(f *apiFixture, tn tenant) any) func(testing.TB, *apiFixture, tenant) (string, []byte) {
	return func(tb testing.TB, f *apiFixture, tn tenant) (string, []byte) {
		return fiber.MIMEApplicationJSON, mustJSON(tb, v(f, tn))
	}
}

func (f *apiFixture) company(tn tenant) *crew.Company {
	if tn == tenantA {
		return f.companyA
	}
	return f.companyB
}

// seafarer is A1 for A (the seafarer token's own record) and B1 for B.
func (f *apiFixture) seafarer(tn tenant) *crew.Seafarer {
	if tn == tenantA {
		return f.a1
	}
	return f.b1
}

// newEnrolment is a valid enrolment with a book number and MSISDN not used before.
func (f *apiFixture) newEnrolment() crew.Enrolment {
	n := f.next()
	return crew.Enrolment{
		BookNo: fmt.Sprintf("T-%06d", n), Name: "New Hand", Nationality: "PH",
		MSISDN: fmt.Sprintf("+6391700%05d", n), VesselIMO: "9074729", SignOn: "2026-02-01",
	}
}

var (
	companyLabels  = [2]string{"company A", "company B"}
	crewLabels     = [2]string{"A's crew", "B's crew"}
	seafarerLabels = [2]string{"A's seafarer A1", "B's seafarer B1"}
)

// tenancyRoutes lists every /v1 route. TestTenancy fails when server.go
// registers a /v1 route that is missing here.
func tenancyRoutes() []tenancyRoute {
	const ok, created, accepted = http.StatusOK, http.StatusCreated, http.StatusAccepted
	staffOnCompany := func(status int) routeAccess {
		return routeAccess{union: everyTenant(status), company: ownTenantOnly(status), seafarer: denied, carrier: denied}
	}
	personOnSeafarer := routeAccess{union: everyTenant(ok), company: ownTenantOnly(ok), seafarer: ownTenantOnly(ok), carrier: denied}
	unionOnly := func(status int) routeAccess {
		return routeAccess{union: everyTenant(status), company: denied, seafarer: denied, carrier: denied}
	}
	return []tenancyRoute{
		{
			method: "POST", route: "/v1/companies", action: "creates a company",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/companies" },
			body: jsonBody(func(f *apiFixture, _ tenant) any {
				return map[string]string{"name": "Gamma Lines", "registration_no": fmt.Sprintf("REG-G%d", f.next())}
			}),
			want: unionOnly(created),
		},
		{
			method: "GET", route: "/v1/companies/:id", action: "reads %s", resource: companyLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string { return "/v1/companies/" + f.company(tn).ID },
			want: staffOnCompany(ok),
		},
		{
			method: "POST", route: "/v1/companies/:id/seafarers", action: "enrols a seafarer in %s", resource: companyLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/companies/" + f.company(tn).ID + "/seafarers"
			},
			body: jsonBody(func(f *apiFixture, _ tenant) any { return f.newEnrolment() }),
			want: staffOnCompany(created),
		},
		{
			method: "POST", route: `/v1/companies/:id/seafarers\:bulk`, action: "bulk-enrols into %s", resource: companyLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/companies/" + f.company(tn).ID + "/seafarers:bulk"
			},
			body: jsonBody(func(f *apiFixture, _ tenant) any { return []crew.Enrolment{f.newEnrolment()} }),
			want: staffOnCompany(ok),
		},
		{
			method: "GET", route: "/v1/companies/:id/seafarers", action: "lists %s", resource: crewLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/companies/" + f.company(tn).ID + "/seafarers"
			},
			want: staffOnCompany(ok),
		},
		{
			method: "GET", route: "/v1/seafarers/:id", action: "reads %s", resource: seafarerLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string { return "/v1/seafarers/" + f.seafarer(tn).ID },
			want: personOnSeafarer,
		},
		{
			method: "PATCH", route: "/v1/seafarers/:id", action: "updates %s", resource: seafarerLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string { return "/v1/seafarers/" + f.seafarer(tn).ID },
			body: jsonBody(func(f *apiFixture, _ tenant) any {
				return map[string]string{"vessel_name": fmt.Sprintf("MV Dong Fang %d", f.next())}
			}),
			// A seafarer may PATCH their own record, but only its lang:
			// the vessel is refused (403), another seafarer is not found.
			want: func() routeAccess {
				a := staffOnCompany(ok)
				a.seafarer = [2]int{http.StatusForbidden, http.StatusNotFound}
				return a
			}(),
		},
		{
			method: "PATCH", route: "/v1/me", action: "sets my lang",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/me" },
			body: jsonBody(func(*apiFixture, tenant) any { return map[string]string{"lang": "en"} }),
			want: routeAccess{union: denied, company: denied, seafarer: everyTenant(ok), carrier: denied},
		},
		{
			// A's and B's crews share the vessel: each signs off only its own.
			method: "POST", route: `/v1/companies/:id/vessels/:imo\:sign-off`, action: "signs off %s on vessel 9074729", resource: crewLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/companies/" + f.company(tn).ID + "/vessels/9074729:sign-off"
			},
			body: jsonBody(func(*apiFixture, tenant) any { return map[string]string{"date": "2026-02-01"} }),
			want: staffOnCompany(ok),
		},
		{
			// Signs back on the crews the case before signed off.
			method: "POST", route: `/v1/companies/:id/vessels/:imo\:sign-on`, action: "signs on %s on vessel 9074729", resource: crewLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/companies/" + f.company(tn).ID + "/vessels/9074729:sign-on"
			},
			body: jsonBody(func(*apiFixture, tenant) any { return map[string]string{"date": "2026-02-02"} }),
			want: staffOnCompany(ok),
		},
		{
			method: "GET", route: "/v1/seafarers/:id/allowance", action: "reads the allowance of %s", resource: seafarerLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/seafarers/" + f.seafarer(tn).ID + "/allowance"
			},
			want: personOnSeafarer,
		},
		{
			method: "GET", route: "/v1/seafarers/:id/usage", action: "reads the usage of %s", resource: seafarerLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/seafarers/" + f.seafarer(tn).ID + "/usage"
			},
			want: personOnSeafarer,
			check: func(t *testing.T, role string, _ tenant, body []byte) {
				// A company never sees the numbers its crew called.
				want := calledNumber
				if role == token.RoleCompany {
					want = MaskNumber(calledNumber)
					require.Equal(t, "*********5678", want, "masked to the last 4 digits")
					require.NotContains(t, string(body), calledNumber)
				}
				var page struct {
					Items []quota.LedgerEntry `json:"items"`
				}
				require.NoError(t, json.Unmarshal(body, &page))
				var called []string
				for _, e := range page.Items {
					if e.Kind == quota.KindDebit {
						called = append(called, e.CalledNumber)
					}
				}
				require.Equal(t, []string{want}, called, "called numbers of the debits")
			},
		},
		{
			method: "GET", route: "/v1/me/allowance", action: "asks for my allowance",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/me/allowance" },
			want: routeAccess{union: denied, company: denied, seafarer: everyTenant(ok), carrier: denied},
			check: func(t *testing.T, _ string, _ tenant, body []byte) {
				var a quota.Allowance
				require.NoError(t, json.Unmarshal(body, &a))
				require.NotEmpty(t, a.Grants)
			},
		},
		{
			method: "POST", route: "/v1/programmes", action: "creates a programme",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/programmes" },
			body: jsonBody(func(*apiFixture, tenant) any {
				now := time.Now().UTC()
				return quota.ProgrammeInput{Name: "Spring Festival", PackSeconds: 1800, ValidDays: 30, Priority: 2,
					StartsAt: now, EndsAt: now.Add(60 * 24 * time.Hour)}
			}),
			want: unionOnly(created),
		},
		{
			method: "GET", route: "/v1/programmes/:id", action: "reads a programme",
			path: func(_ testing.TB, f *apiFixture, _ tenant) string { return "/v1/programmes/" + f.programme.ID },
			want: unionOnly(ok),
		},
		{
			method: "POST", route: "/v1/programmes/:id/issuances", action: "issues packs to %s", resource: crewLabels,
			path: func(_ testing.TB, f *apiFixture, _ tenant) string {
				return "/v1/programmes/" + f.programme.ID + "/issuances"
			},
			body: jsonBody(func(f *apiFixture, tn tenant) any { return map[string]string{"company_id": f.company(tn).ID} }),
			header: func(f *apiFixture, _ tenant) map[string]string {
				return map[string]string{"Idempotency-Key": fmt.Sprintf("tenancy-%d", f.next())}
			},
			want: unionOnly(accepted),
		},
		{
			method: "GET", route: "/v1/issuances/:id", action: "reads the issuance to %s", resource: crewLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				if tn == tenantA {
					return "/v1/issuances/" + f.issuanceA.ID
				}
				return "/v1/issuances/" + f.issuanceB.ID
			},
			want: unionOnly(ok),
		},
		{
			method: "POST", route: `/v1/seafarers/:id/grants/:grant_id\:void`, action: "voids a grant of %s", resource: seafarerLabels,
			path: func(tb testing.TB, f *apiFixture, tn tenant) string {
				// A grant of its own for every request, issued as staff
				// issue packs, so voids do not collide and the seeded
				// balances stay as they are.
				sf := f.seafarer(tn)
				iss, _, err := f.issuer.StartAndRun(context.Background(), f.programme.ID, fmt.Sprintf("tenancy-void-%d", f.next()),
					quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}}, 100)
				require.NoError(tb, err)
				require.EqualValues(tb, 1, iss.Issued)
				return "/v1/seafarers/" + sf.ID + "/grants/" + quota.IssuanceGrantID(iss.ID, sf.ID) + ":void"
			},
			want: unionOnly(ok),
		},
		{
			method: "GET", route: "/v1/carrier/subscribers/:msisdn/allowance", action: "reads the balance of the MSISDN of %s", resource: seafarerLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/carrier/subscribers/" + msisdnPath(f.seafarer(tn).MSISDN) + "/allowance"
			},
			// The carrier asks for any registered MSISDN; union staff may do
			// everything (CONTRACT §2); nobody else reaches /v1/carrier/*.
			want: routeAccess{union: everyTenant(ok), company: denied, seafarer: denied, carrier: everyTenant(ok)},
			check: func(t *testing.T, _ string, _ tenant, body []byte) {
				var out map[string]any
				require.NoError(t, json.Unmarshal(body, &out))
				require.ElementsMatch(t, []string{"msisdn", "remaining_seconds", "remaining_minutes", "expires_at"}, keysOf(out),
					"the carrier sees the balance and nothing else")
			},
		},
		{
			method: "GET", route: "/v1/statements", action: "reads the statement of %s", resource: companyLabels,
			path: func(_ testing.TB, f *apiFixture, tn tenant) string {
				return "/v1/statements?period=" + billing.PeriodOf(time.Now()) + "&payer=company:" + f.company(tn).ID
			},
			want: staffOnCompany(ok),
		},
		{
			method: "POST", route: `/v1/periods/:period\:close`, action: "closes a past period",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/periods/2020-01:close" },
			want: unionOnly(ok),
		},
		{
			method: "POST", route: "/v1/reconciliations", action: "reconciles the carrier's settlement",
			path: func(testing.TB, *apiFixture, tenant) string {
				return "/v1/reconciliations?period=" + billing.PeriodOf(time.Now())
			},
			body: func(_ testing.TB, f *apiFixture, _ tenant) (string, []byte) {
				return "text/csv", []byte("msisdn,calls,billable_seconds,covered_seconds\n" + f.a1.MSISDN + ",1,180,180\n")
			},
			want: unionOnly(ok),
		},
		{
			method: "GET", route: "/v1/ops/ledger-audit", action: "audits every balance against the ledger",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/ops/ledger-audit" },
			want: unionOnly(ok),
		},
		{
			// A company reads only what its own tokens did (audit_test.go).
			method: "GET", route: "/v1/audit", action: "reads the staff audit trail",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/audit" },
			want: routeAccess{union: everyTenant(ok), company: everyTenant(ok), seafarer: denied, carrier: denied},
		},
		{
			method: "GET", route: "/v1/ops/overview", action: "reads this month's overview",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/ops/overview" },
			want: unionOnly(ok),
		},
		{
			method: "GET", route: "/v1/companies", action: "lists the companies",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/companies?q=alpha" },
			want: unionOnly(ok),
		},
		{
			method: "GET", route: "/v1/programmes", action: "lists the programmes",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/programmes" },
			want: unionOnly(ok),
		},
		// Real-time sessions (CONTRACT §7.3) are the carrier's: union staff
		// may do everything, nobody else reaches /v1/carrier/*. They are
		// A2's calls, so A1's seeded usage stays as the usage case reads it.
		{
			method: "POST", route: "/v1/carrier/sessions", action: "opens a session for a call",
			path: func(testing.TB, *apiFixture, tenant) string { return "/v1/carrier/sessions" },
			body: jsonBody(func(f *apiFixture, _ tenant) any { return f.sessionOpen(fmt.Sprintf("tenancy-%d", f.next())) }),
			want: carrierRoute(created),
		},
		{
			method: "POST", route: `/v1/carrier/sessions/:id\:update`, action: "updates a session",
			path: func(tb testing.TB, f *apiFixture, _ tenant) string {
				return "/v1/carrier/sessions/" + f.mustOpenSession(tb) + ":update"
			},
			body: jsonBody(func(*apiFixture, tenant) any { return map[string]int64{"used": 30, "requested": 60} }),
			want: carrierRoute(ok),
		},
		{
			method: "POST", route: `/v1/carrier/sessions/:id\:terminate`, action: "terminates a session",
			path: func(tb testing.TB, f *apiFixture, _ tenant) string {
				return "/v1/carrier/sessions/" + f.mustOpenSession(tb) + ":terminate"
			},
			body: jsonBody(func(*apiFixture, tenant) any { return map[string]int64{"used": 30} }),
			want: carrierRoute(ok),
		},
	}
}

// carrierRoute is the access of the carrier's routes: the carrier and union
// staff, nobody else.
func carrierRoute(status int) routeAccess {
	return routeAccess{union: everyTenant(status), company: denied, seafarer: denied, carrier: everyTenant(status)}
}

// sessionOpen is the body opening session id for a 60-second voice call of
// A's seafarer A2 abroad.
func (f *apiFixture) sessionOpen(id string) map[string]any {
	return map[string]any{"session_id": id, "msisdn": f.a2.MSISDN, "requested": 60, "visited_country": "SG", "called_number": "+6561234567"}
}

// mustOpenSession opens a new session for A2 through the server's sessions
// service and returns its id.
func (f *apiFixture) mustOpenSession(tb testing.TB) string {
	tb.Helper()
	id := fmt.Sprintf("tenancy-open-%d", f.next())
	_, err := f.server.cfg.Sessions.Open(context.Background(), carrier.SessionRequest{
		SessionID: id, MSISDN: f.a2.MSISDN, Unit: billing.UnitSeconds, Requested: 60,
		CallTime: time.Now().UTC(), VisitedCountry: "SG", CalledNumber: "+6561234567",
	})
	require.NoError(tb, err)
	return id
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// v1Routes returns "METHOD path" of every /v1 route the server registers.
func v1Routes(s *Server) []string {
	var out []string
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || !strings.HasPrefix(r.Path, "/v1/") {
			continue // fiber adds HEAD to every GET
		}
		if strings.HasPrefix(r.Path, "/v1/auth/") {
			continue // sign-in takes no token and names no tenant: signin_test.go
		}
		out = append(out, r.Method+" "+r.Path)
	}
	sort.Strings(out)
	return out
}

func TestTenancy(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	routes := tenancyRoutes()

	t.Run("every /v1 route has a case", func(t *testing.T) {
		covered := map[string]bool{}
		for _, rc := range routes {
			covered[rc.method+" "+rc.route] = true
		}
		registered := v1Routes(f.server)
		require.NotEmpty(t, registered)
		for _, r := range registered {
			if !covered[r] {
				t.Errorf("server.go registers %s but tenancyRoutes has no case for it: add one", r)
			}
			delete(covered, r)
		}
		for r := range covered {
			t.Errorf("tenancyRoutes has a case for %s, which server.go does not register", r)
		}
	})

	roles := []struct {
		name, role, token string
		want              func(routeAccess) [2]int
	}{
		{"union", token.RoleUnion, f.union, func(g routeAccess) [2]int { return g.union }},
		{"company A", token.RoleCompany, f.companyAToken, func(g routeAccess) [2]int { return g.company }},
		{"seafarer A1", token.RoleSeafarer, f.seafarerA1, func(g routeAccess) [2]int { return g.seafarer }},
		{"carrier", token.RoleCarrier, f.carrierToken, func(g routeAccess) [2]int { return g.carrier }},
	}
	for _, rc := range routes {
		tenants := []tenant{tenantA, tenantB}
		if rc.resource[tenantA] == "" {
			tenants = tenants[:1]
		}
		for _, role := range roles {
			for _, tn := range tenants {
				want := role.want(rc.want)[tn]
				action := rc.action
				if strings.Contains(action, "%s") {
					action = fmt.Sprintf(action, rc.resource[tn])
				}
				t.Run(fmt.Sprintf("%s %s → %d", role.name, action, want), func(t *testing.T) {
					status, header, body := f.do(t, rc.request(t, f, tn, role.token))
					require.Equal(t, want, status, "%s %s: %s", rc.method, rc.route, body)
					if status >= 300 {
						require.Equal(t, "application/problem+json", header.Get(fiber.HeaderContentType), "%s", body)
						return
					}
					if rc.check != nil {
						rc.check(t, role.role, tn, body)
					}
				})
			}
		}
		t.Run(fmt.Sprintf("no token: %s %s → 401", rc.method, rc.route), func(t *testing.T) {
			status, header, body := f.do(t, rc.request(t, f, tenantA, ""))
			require.Equal(t, http.StatusUnauthorized, status, "%s", body)
			require.Equal(t, `Bearer realm="wuyou"`, header.Get(fiber.HeaderWWWAuthenticate))
		})
	}

	// What the route table cannot say: a seafarer's colleague is another
	// tenant too, the carrier's unknown MSISDN, and tokens of B.
	seafarerA2 := "/v1/seafarers/" + f.a2.ID
	companyBToken := f.token(t, token.RoleCompany, "crew-manager-b", f.companyB.ID)
	seafarerB1 := f.token(t, token.RoleSeafarer, f.b1.ID, "")
	for _, tc := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"seafarer A1 reads colleague A2 → 404", "GET", seafarerA2, f.seafarerA1, http.StatusNotFound},
		{"seafarer A1 reads the allowance of colleague A2 → 404", "GET", seafarerA2 + "/allowance", f.seafarerA1, http.StatusNotFound},
		{"seafarer A1 reads the usage of colleague A2 → 404", "GET", seafarerA2 + "/usage", f.seafarerA1, http.StatusNotFound},
		{"company A reads its seafarer A2 → 200", "GET", seafarerA2, f.companyAToken, http.StatusOK},
		{"company A reads B's seafarer B2 → 404", "GET", "/v1/seafarers/" + f.b2.ID, f.companyAToken, http.StatusNotFound},
		{"company A reads a company that does not exist → 404", "GET", "/v1/companies/co_nosuchcompany", f.companyAToken, http.StatusNotFound},
		{"company B reads company A → 404", "GET", "/v1/companies/" + f.companyA.ID, companyBToken, http.StatusNotFound},
		{"company B reads A's seafarer A1 → 404", "GET", "/v1/seafarers/" + f.a1.ID, companyBToken, http.StatusNotFound},
		{"company B reads the usage of A's seafarer A1 → 404", "GET", "/v1/seafarers/" + f.a1.ID + "/usage", companyBToken, http.StatusNotFound},
		{"seafarer B1 reads A's seafarer A1 → 404", "GET", "/v1/seafarers/" + f.a1.ID, seafarerB1, http.StatusNotFound},
		{"seafarer B1 reads their own allowance → 200", "GET", "/v1/me/allowance", seafarerB1, http.StatusOK},
		{"carrier reads the balance of A's seafarer A2 → 200", "GET", "/v1/carrier/subscribers/" + msisdnPath(f.a2.MSISDN) + "/allowance", f.carrierToken, http.StatusOK},
		{"carrier reads the balance of an unregistered MSISDN → 404", "GET", "/v1/carrier/subscribers/%2B8613700000000/allowance", f.carrierToken, http.StatusNotFound},
		{"union reads a seafarer that does not exist → 404", "GET", "/v1/seafarers/sf_nosuchseafarer", f.union, http.StatusNotFound},
		{"company A reads the statement of A's seafarer A1 → 403", "GET", "/v1/statements?period=" + billing.PeriodOf(time.Now()) + "&payer=seafarer:" + f.a1.ID, f.companyAToken, http.StatusForbidden},
		{"company A reads the statement of a programme → 403", "GET", "/v1/statements?period=" + billing.PeriodOf(time.Now()) + "&payer=programme:" + f.programme.ID, f.companyAToken, http.StatusForbidden},
		{"union reads the statement of A's seafarer A1 → 200", "GET", "/v1/statements?period=" + billing.PeriodOf(time.Now()) + "&payer=seafarer:" + f.a1.ID, f.union, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: tc.method, path: tc.path, token: tc.token})
			require.Equal(t, tc.want, status, "%s", body)
			if status >= 300 {
				require.Equal(t, "application/problem+json", header.Get(fiber.HeaderContentType))
			}
		})
	}

	t.Run("a 404 for another tenant's seafarer reads like one for no seafarer", func(t *testing.T) {
		_, _, other := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/" + f.b1.ID, token: f.companyAToken})
		_, _, none := f.do(t, apiRequest{method: "GET", path: "/v1/seafarers/sf_nosuchseafarer", token: f.companyAToken})
		var p1, p2 problem
		require.NoError(t, json.Unmarshal(other, &p1))
		require.NoError(t, json.Unmarshal(none, &p2))
		require.Equal(t, p2.Type, p1.Type)
		require.Equal(t, p2.Title, p1.Title)
		require.Equal(t, strings.Replace(p2.Detail, "sf_nosuchseafarer", f.b1.ID, 1), p1.Detail)
	})
}

// request builds the route's request for tenant tn, sent with token.
func (rc tenancyRoute) request(tb testing.TB, f *apiFixture, tn tenant, token string) apiRequest {
	r := apiRequest{method: rc.method, path: rc.path(tb, f, tn), token: token}
	if rc.body != nil {
		r.contentType, r.body = rc.body(tb, f, tn)
	}
	if rc.header != nil {
		r.header = rc.header(f, tn)
	}
	return r
}
