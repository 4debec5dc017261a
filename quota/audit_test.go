package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// auditLab is a rebuildLab with two seafarers who hold grants and made
// calls, every entry recorded as the consumer records them.
func auditLab(t *testing.T) (*rebuildLab, *Auditor) {
	l := newRebuildLab(t, Options{})
	now := l.clock.Now()
	for _, sf := range []string{"sf-a1", "sf-a2"} {
		l.grant(t, GrantInput{ID: "g-" + sf, SeafarerID: sf, ProgrammeID: "pr_a", Seconds: 600,
			EffectiveAt: now.Add(-meterDay), ExpiresAt: now.Add(30 * meterDay), Priority: 1})
		l.settle(t, []Usage{voiceCall(sf, "cdr-1-"+sf, now.Add(-2*time.Hour), 120), voiceCall(sf, "cdr-2-"+sf, now.Add(-time.Hour), 60)})
	}
	l.void(t, "sf-a2", "g-sf-a2")
	return l, &Auditor{Pool: l.pool, Store: l.s}
}

func mustAudit(t *testing.T, a *Auditor, sf string) *AuditReport {
	r, err := a.Audit(context.Background(), sf)
	require.NoError(t, err)
	return r
}

func kinds(r *AuditReport) []string {
	out := []string{}
	for _, d := range r.Differences {
		out = append(out, d.Kind+" "+d.GrantID+d.Identity)
	}
	return out
}

// Balances written only through metering, grants and voids are explained
// by the system of record.
func TestAuditPassesWhenEveryBalanceIsExplainedByTheLedger(t *testing.T) {
	_, a := auditLab(t)
	for _, sf := range []string{"sf-a1", "sf-a2"} {
		r := mustAudit(t, a, sf)
		require.True(t, r.OK, "%s: %v", sf, r.Differences)
		require.Equal(t, 1, r.GrantsChecked)
		require.Equal(t, 2, r.IdentitiesChecked)
	}
	r := mustAudit(t, a, "sf-nobody")
	require.True(t, r.OK)
	require.Zero(t, r.GrantsChecked)
}

// A debit applied in Redis whose entry is not recorded yet is in flight,
// not a difference; once the write to the system of record is known to be
// lost (its pending record gone too), it is.
func TestAuditCountsADebitInFlightAndReportsALostOne(t *testing.T) {
	l, a := auditLab(t)
	ctx := context.Background()
	u := voiceCall("sf-a1", "cdr-inflight", l.clock.Now().Add(-time.Minute), 60)
	rs, err := l.s.Settle(ctx, []Usage{u})
	require.NoError(t, err)
	require.NotNil(t, rs[0].Entry)
	r := mustAudit(t, a, "sf-a1")
	require.True(t, r.OK, "a debit in flight: %v", r.Differences)

	// The record is forgotten without being stored: a lost write.
	require.NoError(t, l.s.Recorded(ctx, []SeafarerEntry{{SeafarerID: "sf-a1", Entry: rs[0].Entry}}))
	r = mustAudit(t, a, "sf-a1")
	require.False(t, r.OK)
	identity := rs[0].Entry.ID[2:]
	require.ElementsMatch(t, []string{AuditDebitMissing + " " + identity, AuditRemaining + " g-sf-a1"}, kinds(r))

	// Once stored, everything agrees again.
	require.NoError(t, l.ledger.Append(ctx, []SeafarerEntry{{SeafarerID: "sf-a1", Entry: rs[0].Entry}}))
	require.True(t, mustAudit(t, a, "sf-a1").OK)
}

// Changes made to Redis behind metering's back are each reported: a
// remaining amount changed, a grant lost, a grant nobody issued, a recorded
// event Redis forgot.
func TestAuditReportsEveryWayRedisDisagreesWithTheSystemOfRecord(t *testing.T) {
	l, a := auditLab(t)
	ctx := context.Background()
	k := l.s.keys("sf-a1")
	v, err := l.rdb.HGet(ctx, k.grants, "g-sf-a1").Result()
	require.NoError(t, err)
	g, err := parseGrant("g-sf-a1", v)
	require.NoError(t, err)
	g.RemainingSeconds += 60
	require.NoError(t, l.rdb.HSet(ctx, k.grants, "g-sf-a1", encodeGrant(g)).Err())
	stray := *g
	stray.ID = "g-stray"
	require.NoError(t, l.rdb.HSet(ctx, k.grants, "g-stray", encodeGrant(&stray)).Err())
	forgotten := DebitEntryID(roamingCDRs, "cdr-1-sf-a1")[2:]
	require.NoError(t, l.rdb.ZRem(ctx, k.seen, forgotten).Err())

	r := mustAudit(t, a, "sf-a1")
	require.False(t, r.OK)
	require.ElementsMatch(t, []string{
		AuditRemaining + " g-sf-a1", AuditUnknownGrant + " g-stray", AuditMissingInHotState + " " + forgotten,
	}, kinds(r))
	for _, d := range r.Differences {
		if d.Kind == AuditRemaining {
			require.Equal(t, int64(600-180), d.Expected)
			require.Equal(t, int64(600-180+60), d.Actual)
		}
	}

	require.NoError(t, l.rdb.HDel(ctx, l.s.keys("sf-a2").grants, "g-sf-a2").Err())
	require.Equal(t, []string{AuditGrantMissing + " g-sf-a2"}, kinds(mustAudit(t, a, "sf-a2")))

	// The rebuild repairs all of it.
	_, err = RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	for _, sf := range []string{"sf-a1", "sf-a2"} {
		require.True(t, mustAudit(t, a, sf).OK, sf)
	}
}

// Pages list every seafarer with state once, in id order, and a
// malformed cursor is refused.
func TestAuditPageListsEverySeafarerOnce(t *testing.T) {
	l, a := auditLab(t)
	now := l.clock.Now()
	for i := 0; i < 5; i++ {
		sf := fmt.Sprintf("sf-p%d", i)
		l.grant(t, GrantInput{ID: "g-" + sf, SeafarerID: sf, ProgrammeID: "pr_b", Seconds: 60,
			EffectiveAt: now.Add(-meterDay), ExpiresAt: now.Add(meterDay), Priority: 1})
	}
	ctx := context.Background()
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		rs, next, err := a.AuditPage(ctx, cursor, 3)
		require.NoError(t, err)
		for _, r := range rs {
			require.True(t, r.OK, "%s: %v", r.SeafarerID, r.Differences)
			got = append(got, r.SeafarerID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{"sf-a1", "sf-a2", "sf-p0", "sf-p1", "sf-p2", "sf-p3", "sf-p4"}, got)

	_, _, err := a.AuditPage(ctx, string(make([]byte, 300)), 3)
	require.Error(t, err)
}
