package quota

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// MustAudit audits one seafarer or fails the test.
func MustAudit(tb testing.TB, s *RedisStore, seafarerID string) *AuditReport {
	tb.Helper()
	r, err := s.Audit(context.Background(), seafarerID)
	require.NoError(tb, err)
	return r
}

// mustMeterSomeCalls gives a seafarer two grants, three calls (one repeated)
// and a void: every kind of ledger entry.
func mustMeterSomeCalls(tb testing.TB, s *RedisStore, sf string) {
	tb.Helper()
	MustAddGrant(tb, s, activeGrant(sf, "gr_a", 600))
	MustAddGrant(tb, s, activeGrant(sf, "gr_b", 300))
	MustDebit(tb, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Hour), 480))
	MustDebit(tb, s, voiceCall(sf, "cdr-2", meterNow.Add(-30*time.Minute), 180))
	MustDebit(tb, s, voiceCall(sf, "cdr-2", meterNow.Add(-30*time.Minute), 180)) // a repeat changes nothing
	MustDebit(tb, s, voiceCall(sf, "cdr-3", meterNow.Add(-10*time.Minute), 0))   // not eligible: no draw
	_, err := s.VoidGrant(context.Background(), sf, "gr_b")
	require.NoError(tb, err)
}

func TestAuditPassesWhenEveryBalanceIsExplainedByTheLedger(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-audit-clean"
	mustMeterSomeCalls(t, s, sf)

	r := MustAudit(t, s, sf)
	require.True(t, r.OK, "differences: %+v", r.Differences)
	require.Empty(t, r.Differences)
	require.Equal(t, 2, r.GrantsChecked)
	require.Equal(t, 3, r.IdentitiesChecked)
	require.Empty(t, r.Unverifiable)
}

func TestAuditOfASeafarerWithoutStateIsClean(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	r := MustAudit(t, s, "sf-nobody")
	require.True(t, r.OK)
	require.Zero(t, r.GrantsChecked+r.IdentitiesChecked)
}

func TestAuditReportsAGrantWhoseRemainingWasChangedOutsideTheLedger(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	const sf = "sf-audit-tampered"
	mustMeterSomeCalls(t, s, sf)
	// gr_a: 600 granted, 480 + 120 drawn → 0 left. Give it 90 seconds back.
	ctx := context.Background()
	key := s.keys(sf).grants
	v, err := rdb.HGet(ctx, key, "gr_a").Result()
	require.NoError(t, err)
	f := strings.Split(v, ":")
	require.Equal(t, "0", f[1])
	f[1] = "90"
	require.NoError(t, rdb.HSet(ctx, key, "gr_a", strings.Join(f, ":")).Err())

	r := MustAudit(t, s, sf)
	require.False(t, r.OK)
	require.Len(t, r.Differences, 1)
	d := r.Differences[0]
	require.Equal(t, AuditRemaining, d.Kind)
	require.Equal(t, "gr_a", d.GrantID)
	require.Equal(t, int64(0), d.Expected)
	require.Equal(t, int64(90), d.Actual)
}

func TestAuditReportsARememberedIdentityWithoutItsDebitEntry(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	const sf = "sf-audit-orphan"
	mustMeterSomeCalls(t, s, sf)
	// An identity remembered, as if its debit had been written without its record.
	identity := DebitEntryID(roamingCDRs, "cdr-ghost")[2:]
	require.NoError(t, rdb.ZAdd(context.Background(), s.keys(sf).seen,
		redis.Z{Score: float64(meterNow.Add(-5 * time.Minute).Unix()), Member: identity}).Err())

	r := MustAudit(t, s, sf)
	require.False(t, r.OK)
	require.Len(t, r.Differences, 1)
	require.Equal(t, AuditDebitMissing, r.Differences[0].Kind)
	require.Equal(t, identity, r.Differences[0].Identity)
}

func TestAuditReportsAGrantWithoutItsGrantEntry(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	const sf = "sf-audit-nogrant"
	MustAddGrant(t, s, activeGrant(sf, "gr_a", 600))
	// A grant written straight into the hash, bypassing the ledger.
	v, err := rdb.HGet(context.Background(), s.keys(sf).grants, "gr_a").Result()
	require.NoError(t, err)
	require.NoError(t, rdb.HSet(context.Background(), s.keys(sf).grants, "gr_sneaked", v).Err())

	r := MustAudit(t, s, sf)
	require.False(t, r.OK)
	require.Equal(t, []AuditDifference{{Kind: AuditGrantEntryMissing, GrantID: "gr_sneaked", Expected: 600,
		Detail: "the grant has no grant entry in the ledger"}}, r.Differences)
}

func TestAuditCallsGrantsOlderThanTheLedgerHorizonUnverifiableNotDifferent(t *testing.T) {
	s, clock, rdb := MustMeterStore(t, Options{DedupeWindow: 48 * time.Hour, LedgerHorizon: 48 * time.Hour})
	const sf = "sf-audit-old"
	mustMeterSomeCalls(t, s, sf)
	// Weeks later every bucket of those entries has expired.
	clock.Advance(60 * meterDay)
	ctx := context.Background()
	for _, k := range LedgerKeys(s.prefix, sf, meterNow.Add(-14*meterDay), meterNow.Add(14*meterDay)) {
		require.NoError(t, rdb.Del(ctx, k).Err())
	}

	r := MustAudit(t, s, sf)
	require.True(t, r.OK, "differences: %+v", r.Differences)
	sort.Strings(r.Unverifiable)
	require.Equal(t, []string{"gr_a", "gr_b"}, r.Unverifiable)
	require.Equal(t, 3, r.UnverifiableIdentities)
	require.Zero(t, r.GrantsChecked+r.IdentitiesChecked)
}

func TestAuditPageListsEverySeafarerHoldingQuotaStateOnce(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	want := []string{}
	for _, sf := range []string{"sf-p1", "sf-p2", "sf-p3", "sf-p4", "sf-p5"} {
		MustAddGrant(t, s, activeGrant(sf, "gr_1", 600))
		MustDebit(t, s, voiceCall(sf, "cdr-"+sf, meterNow.Add(-time.Hour), 60))
		want = append(want, sf)
	}
	// Calls but no grants: listed through its remembered identities.
	MustDebit(t, s, voiceCall("sf-p6", "cdr-sf-p6", meterNow.Add(-time.Hour), 60))
	want = append(want, "sf-p6")

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "paging does not end")
		reports, next, err := s.AuditPage(context.Background(), cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(reports), 2)
		for _, r := range reports {
			require.True(t, r.OK, "%s: %+v", r.SeafarerID, r.Differences)
			got = append(got, r.SeafarerID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	sort.Strings(got)
	require.Equal(t, want, got)
}

func TestAuditPageRefusesAMalformedCursor(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	for _, c := range []string{"x", "1.2", "0.a.0", "-1.0.0", "9.0.0"} {
		_, _, err := s.AuditPage(context.Background(), c, 10)
		require.Error(t, err, c)
		require.Contains(t, err.Error(), "cursor", c)
	}
}
