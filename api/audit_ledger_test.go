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

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
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
	// A cursor is the last seafarer id of a page: one longer than any id is malformed.
	for _, q := range []string{"limit=0", "limit=501", "cursor=" + strings.Repeat("x", 201)} {
		status, h, body := f.do(t, apiRequest{method: http.MethodGet, path: "/v1/ops/ledger-audit?" + q, token: f.union})
		require.Equal(t, http.StatusBadRequest, status, q)
		require.True(t, strings.HasPrefix(h.Get("Content-Type"), "application/problem+json"), string(body))
	}
}

// The audit compares Redis's hot state with the system of record: a grant's
// remaining seconds changed in Redis behind metering's back (a call of A1's
// given back without a ledger entry) is reported for A1 alone, with what
// the grants and the ledger leave of it.
func TestLedgerAuditReportsARemainingAmountTheLedgerDoesNotExplain(t *testing.T) {
	f := MustAPIFixture(t)
	ctx := context.Background()
	f.meter(t, quota.Usage{
		SeafarerID: f.a1.ID, MSISDN: f.a1.MSISDN, Source: "urn:carrier:test", EventID: "cdr-audit-a1",
		Type: "carrier.usage.voice", CallTime: time.Now().UTC(), DurationSeconds: 150, BillableSeconds: 180,
		CalledNumber: calledNumber, VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
	})
	grants, err := f.quota.Grants(ctx, f.a1.ID)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	grant := grants[0]
	require.EqualValues(t, 3600-180, grant.RemainingSeconds, "the call drew 180 seconds")

	key := crew.SeafarerTag(f.prefix, f.a1.ID) + ":g"
	v, err := f.rdb.HGet(ctx, key, grant.ID).Result()
	require.NoError(t, err)
	fields := strings.Split(v, ":")
	require.Equal(t, "3420", fields[1], "the grant record's second field is its remaining seconds")
	fields[1] = "3600" // the call's 180 seconds given back without a ledger entry
	require.NoError(t, f.rdb.HSet(ctx, key, grant.ID, strings.Join(fields, ":")).Err())

	reports := mustAuditAll(t, f, "50")
	require.Len(t, reports, 4)
	for _, r := range reports {
		if r.SeafarerID != f.a1.ID {
			require.True(t, r.OK, "%s: %+v", r.SeafarerID, r.Differences)
			continue
		}
		require.False(t, r.OK)
		require.Len(t, r.Differences, 1)
		d := r.Differences[0]
		require.Equal(t, quota.AuditRemaining, d.Kind)
		require.Equal(t, grant.ID, d.GrantID)
		require.EqualValues(t, 3600-180, d.Expected, "granted − drawn, from the system of record")
		require.EqualValues(t, 3600, d.Actual, "what Redis holds")
	}
}
