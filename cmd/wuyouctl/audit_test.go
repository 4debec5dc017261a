package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/crew"
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
		{Kind: quota.AuditRemaining, GrantID: "gr_1", Expected: 480, Actual: 600, Detail: "granted 600 − drawn 120 − voided 0 ≠ remaining"},
		{Kind: quota.AuditDebitMissing, Identity: "ab12", Expected: 1, Actual: 0, Detail: "no debit entry"},
	}
	srv := auditAPI(t, []quota.AuditReport{cleanReport("sf_1")}, []quota.AuditReport{bad})
	res := runCLI(srv, "audit")
	require.EqualError(t, res.err, "ledger audit: 2 differences in 1 of 2 seafarers")
	require.Equal(t, 1, exitCode(res.err))
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	require.Len(t, lines, 5, res.stdout)
	require.Regexp(t, `^SEAFARER\s+GRANT\s+KIND\s+EXPECTED\s+ACTUAL\s+DETAIL$`, lines[0])
	require.Regexp(t, `^sf_2\s+gr_1\s+remaining\s+480\s+600\s+granted 600 − drawn 120 − voided 0 ≠ remaining$`, lines[1])
	require.Regexp(t, `^sf_2\s+event ab12\s+debit_entry_missing\s+1\s+0\s+no debit entry$`, lines[2])
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

// TestAudit_AgainstTheRealServerFindsAGrantChangedOutsideTheLedger runs the
// command against wuyoud's API over the test Redis.
func TestAudit_AgainstTheRealServerFindsAGrantChangedOutsideTheLedger(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	q := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{})
	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	require.NoError(t, err)
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	const issuer = "https://issuer.audit.test"
	verifier, err := api.NewVerifierFromJWKS(jwks, issuer, "wuyou", nil)
	require.NoError(t, err)
	srv := api.New(api.Config{Crew: crew.NewRedisStore(rdb, prefix, wuyou.SystemClock), Quota: q, Verifier: verifier,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	addr, err := srv.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	token, err := key.Mint(token.Claims{Issuer: issuer, Audience: "wuyou", Subject: "staff-1", Role: token.RoleUnion, TTL: time.Hour}, time.Now())
	require.NoError(t, err)

	ctx := context.Background()
	now := time.Now()
	for _, sf := range []string{"sf_1", "sf_2"} {
		_, _, err := q.AddGrant(ctx, quota.GrantInput{ID: "gr_1", SeafarerID: sf, ProgrammeID: "pr_1", Seconds: 600,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour), Priority: 1})
		require.NoError(t, err)
	}
	audit := func() cliResult {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"audit", "--server", "http://" + addr.String(), "--token", token}, &stdout, &stderr)
		return cliResult{stdout.String(), stderr.String(), err}
	}
	res := audit()
	require.NoError(t, res.err, res.stdout)
	require.Contains(t, res.stdout, "audited 2 seafarers: 2 grants and 0 event identities checked")

	grants := crew.SeafarerTag(prefix, "sf_2") + ":g"
	v, err := rdb.HGet(ctx, grants, "gr_1").Result()
	require.NoError(t, err)
	f := strings.Split(v, ":")
	f[1] = "540" // a minute gone without a ledger entry
	require.NoError(t, rdb.HSet(ctx, grants, "gr_1", strings.Join(f, ":")).Err())
	res = audit()
	require.EqualError(t, res.err, "ledger audit: 1 differences in 1 of 2 seafarers")
	require.Regexp(t, `(?m)^sf_2\s+gr_1\s+remaining\s+600\s+540\s`, res.stdout)
}
