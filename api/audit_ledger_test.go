package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
)

// auditPage is GET /v1/ops/ledger-audit's answer.
type auditPage struct {
	Items      []quota.AuditReport `json:"items"`
	NextCursor string              `json:"next_cursor"`
}

// mustAuditAll follows the cursor through every page of the ledger audit.
func mustAuditAll(tb testing.TB, f *apiFixture, limit string) []quota.AuditReport {
	tb.Helper()
	var all []quota.AuditReport
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(tb, pages, 100, "paging does not end")
		path := "/v1/ops/ledger-audit?limit=" + limit
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, _, body := f.do(tb, apiRequest{method: http.MethodGet, path: path, token: f.union})
		require.Equal(tb, http.StatusOK, status, string(body))
		var p auditPage
		require.NoError(tb, json.Unmarshal(body, &p))
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	sort.Slice(all, func(i, j int) bool { return all[i].SeafarerID < all[j].SeafarerID })
	return all
}

func TestLedgerAuditListsEverySeafarerWithGrantsAsExplainedByTheLedger(t *testing.T) {
	f := MustAPIFixture(t)
	reports := mustAuditAll(t, f, "1")
	want := []string{f.a1.ID, f.a2.ID, f.b1.ID, f.b2.ID}
	sort.Strings(want)
	got := make([]string, len(reports))
	for i, r := range reports {
		got[i] = r.SeafarerID
		require.True(t, r.OK, "%s: %+v", r.SeafarerID, r.Differences)
		require.Equal(t, 1, r.GrantsChecked, r.SeafarerID)
	}
	require.Equal(t, want, got)
}

func TestLedgerAuditIsForUnionStaffOnly(t *testing.T) {
	f := MustAPIFixture(t)
	for name, tok := range map[string]string{"company": f.companyAToken, "seafarer": f.seafarerA1, "carrier": f.carrierToken} {
		t.Run(name, func(t *testing.T) {
			status, _, body := f.do(t, apiRequest{method: http.MethodGet, path: "/v1/ops/ledger-audit", token: tok})
			require.Equal(t, http.StatusForbidden, status, string(body))
		})
	}
	status, _, _ := f.do(t, apiRequest{method: http.MethodGet, path: "/v1/ops/ledger-audit"})
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestLedgerAuditRefusesABadLimitOrCursor(t *testing.T) {
	f := MustAPIServer(t)
	for _, q := range []string{"limit=0", "limit=501", "cursor=nonsense"} {
		status, h, body := f.do(t, apiRequest{method: http.MethodGet, path: "/v1/ops/ledger-audit?" + q, token: f.union})
		require.Equal(t, http.StatusBadRequest, status, q)
		require.True(t, strings.HasPrefix(h.Get("Content-Type"), "application/problem+json"), string(body))
	}
}

func TestLedgerAuditReportsARemainingAmountTheLedgerDoesNotExplain(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	f := MustAPIServer(t)
	// A server of its own over a prefix this test can reach into.
	q := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{})
	f.quota = q
	f.server = New(Config{Crew: crew.NewRedisStore(rdb, prefix, wuyou.SystemClock), Quota: q, Verifier: f.server.cfg.Verifier})
	f.app = f.server.App()

	ctx := context.Background()
	now := time.Now()
	for _, sf := range []string{"sf_clean", "sf_tampered"} {
		_, _, err := q.AddGrant(ctx, quota.GrantInput{ID: "gr_1", SeafarerID: sf, ProgrammeID: "pr_1", Seconds: 600,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour), Priority: 1})
		require.NoError(t, err)
		_, err = q.Debit(ctx, quota.Usage{SeafarerID: sf, MSISDN: "+8613800000001", Source: "urn:carrier:test", EventID: "cdr-" + sf,
			Type: "carrier.usage.voice", CallTime: now.Add(-time.Minute), DurationSeconds: 100, BillableSeconds: 120,
			CalledNumber: calledNumber, VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60})
		require.NoError(t, err)
	}
	key := crew.SeafarerTag(prefix, "sf_tampered") + ":g"
	v, err := rdb.HGet(ctx, key, "gr_1").Result()
	require.NoError(t, err)
	fields := strings.Split(v, ":")
	require.Equal(t, "480", fields[1])
	fields[1] = "600" // the call's 120 seconds given back without a ledger entry
	require.NoError(t, rdb.HSet(ctx, key, "gr_1", strings.Join(fields, ":")).Err())

	reports := mustAuditAll(t, f, "50")
	require.Len(t, reports, 2)
	require.Equal(t, "sf_clean", reports[0].SeafarerID)
	require.True(t, reports[0].OK)
	require.Equal(t, "sf_tampered", reports[1].SeafarerID)
	require.False(t, reports[1].OK)
	require.Equal(t, []quota.AuditDifference{{Kind: quota.AuditRemaining, GrantID: "gr_1", Expected: 480, Actual: 600,
		Detail: "granted 600 − drawn 120 − voided 0 ≠ remaining"}}, reports[1].Differences)
}
