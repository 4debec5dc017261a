package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// auditAPI answers GET /v1/ops/ledger-audit with pages, following its own
// cursors ("", "p1", "p2", …).
func auditAPI(t *testing.T, pages ...[]quota.AuditReport) *httptest.Server {
	return fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/ops/ledger-audit", r.URL.Path)
		require.Equal(t, "500", r.URL.Query().Get("limit"))
		i := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			i = int(c[1] - '0')
		}
		next := ""
		if i+1 < len(pages) {
			next = "p" + string(rune('0'+i+1))
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": pages[i], "next_cursor": next})
	})
}

func cleanReport(sf string) quota.AuditReport {
	return quota.AuditReport{SeafarerID: sf, OK: true, Differences: []quota.AuditDifference{}, GrantsChecked: 2, IdentitiesChecked: 3, Unverifiable: []string{}}
}

func TestAudit_CleanLedgerExitsZeroWithOneLineSummary(t *testing.T) {
	old := cleanReport("sf_3")
	old.Unverifiable = []string{"gr_old"}
	srv := auditAPI(t, []quota.AuditReport{cleanReport("sf_1"), cleanReport("sf_2")}, []quota.AuditReport{old})
	res := runCLI(srv, "audit")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, "audited 3 seafarers: 6 grants and 9 event identities checked, 1 grants unverifiable (past the ledger horizon), 0 differences\n", res.stdout)
}

func TestAudit_DifferencesAreListedAndExitNonZero(t *testing.T) {
	bad := cleanReport("sf_2")
	bad.OK = false
	bad.Differences = []quota.AuditDifference{
		{Kind: quota.AuditRemaining, GrantID: "gr_1", Expected: 480, Actual: 600, Detail: "granted − drawn differs from the remaining seconds Redis holds"},
		{Kind: quota.AuditDebitMissing, Identity: "ab12", Expected: 1, Actual: 0, Detail: "no debit entry"},
	}
	srv := auditAPI(t, []quota.AuditReport{cleanReport("sf_1")}, []quota.AuditReport{bad})
	res := runCLI(srv, "audit")
	require.EqualError(t, res.err, "ledger audit: 2 differences in 1 of 2 seafarers")
	require.Equal(t, 1, exitCode(res.err))
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	require.Len(t, lines, 5, res.stdout)
	require.Regexp(t, `^SEAFARER\s+GRANT\s+KIND\s+EXPECTED\s+ACTUAL\s+DETAIL$`, lines[0])
	require.Regexp(t, `^sf_2\s+gr_1\s+remaining\s+480\s+600\s+granted − drawn differs from the remaining seconds Redis holds$`, lines[1])
	require.Regexp(t, `^sf_2\s+event ab12\s+missing_in_system_of_record\s+1\s+0\s+no debit entry$`, lines[2])
	require.Equal(t, "", lines[3])
	require.Contains(t, lines[4], "2 differences")
}

func TestAudit_ShowsTheServersProblem(t *testing.T) {
	srv := fakeAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusForbidden, "role company may not do this")
	})
	res := runCLI(srv, "audit")
	require.EqualError(t, res.err, "403 Forbidden: role company may not do this")
}

// TestAudit_AgainstTheRealServerFindsAGrantChangedOutsideTheLedger runs
// the command against wuyoud's API over the test PostgreSQL (the system of
// record: registry, programmes, grants, ledger) and the test Redis (the hot
// metering state the audit compares with it).
func TestAudit_AgainstTheRealServerFindsAGrantChangedOutsideTheLedger(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.MustPool(t)
	rdb, prefix := redistest.MustClient(t)
	registry := crew.NewPGStore(pool, wuyou.SystemClock)
	q := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{})
	programmes := quota.NewPGProgrammes(pool, wuyou.SystemClock, quota.NewPGStatements(pool, wuyou.SystemClock))
	issuer := quota.NewIssuer(programmes, q, registry, wuyou.SystemClock)
	t.Cleanup(func() { _ = issuer.Close(context.Background()) })

	// Two seafarers, each holding one 600-second pack.
	co, err := registry.CreateCompany(ctx, "Audit Shipping", "REG-AUDIT")
	require.NoError(t, err)
	var seafarers []string
	for i, msisdn := range []string{"+8613800000001", "+8613800000002"} {
		sf, _, err := registry.Enrol(ctx, co.ID, crew.Enrolment{BookNo: fmt.Sprintf("AU-%d", i), Name: "Audit Crew", MSISDN: msisdn})
		require.NoError(t, err)
		seafarers = append(seafarers, sf.ID)
	}
	now := time.Now().UTC()
	p, err := programmes.CreateProgramme(ctx, quota.ProgrammeInput{Name: "Audit packs", PackSeconds: 600, ValidDays: 30, Priority: 1,
		StartsAt: now.Add(-time.Hour), EndsAt: now.Add(24 * time.Hour)})
	require.NoError(t, err)
	iss, _, err := issuer.StartAndRun(ctx, p.ID, "audit", quota.IssuanceTarget{CompanyID: co.ID}, 100)
	require.NoError(t, err)
	require.EqualValues(t, 2, iss.Issued)

	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	require.NoError(t, err)
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	const tokenIssuer = "https://issuer.audit.test"
	verifier, err := api.NewVerifierFromJWKS(jwks, tokenIssuer, "wuyou", nil)
	require.NoError(t, err)
	srv := api.New(api.Config{Crew: registry, Quota: q, Auditor: &quota.Auditor{Pool: pool, Store: q}, Verifier: verifier,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	addr, err := srv.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	token, err := key.Mint(token.Claims{Issuer: tokenIssuer, Audience: "wuyou", Subject: "staff-1", Role: token.RoleUnion, TTL: time.Hour}, time.Now())
	require.NoError(t, err)

	audit := func() cliResult {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"audit", "--server", "http://" + addr.String(), "--token", token}, &stdout, &stderr)
		return cliResult{stdout.String(), stderr.String(), err}
	}
	res := audit()
	require.NoError(t, res.err, res.stdout)
	require.Contains(t, res.stdout, "audited 2 seafarers: 2 grants and 0 event identities checked")

	changed := seafarers[1]
	held, err := q.Grants(ctx, changed)
	require.NoError(t, err)
	require.Len(t, held, 1)
	grants := crew.SeafarerTag(prefix, changed) + ":g"
	v, err := rdb.HGet(ctx, grants, held[0].ID).Result()
	require.NoError(t, err)
	f := strings.Split(v, ":")
	require.Equal(t, "600", f[1], "the grant record's second field is its remaining seconds")
	f[1] = "540" // a minute gone without a ledger entry
	require.NoError(t, rdb.HSet(ctx, grants, held[0].ID, strings.Join(f, ":")).Err())
	res = audit()
	require.EqualError(t, res.err, "ledger audit: 1 differences in 1 of 2 seafarers")
	require.Regexp(t, `(?m)^`+regexp.QuoteMeta(changed)+`\s+`+regexp.QuoteMeta(held[0].ID)+`\s+remaining\s+600\s+540\s`, res.stdout)
}
