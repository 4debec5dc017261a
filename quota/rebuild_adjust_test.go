package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// adjustedSession is a seafarer (sf_1) holding 600 s in gr_1 whose session
// was terminated at 240 s and whose carrier record then said 180 s: a
// debit of 240 and an adjust giving 60 s back to gr_1, both recorded as
// the consumer records them. It returns the carrier record's usage.
func adjustedSession(t *testing.T, l *rebuildLab) Usage {
	t.Helper()
	l.grant(t, GrantInput{ID: "gr_1", SeafarerID: "sf_1", ProgrammeID: "pr_a", Seconds: 600,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(30 * meterDay), Priority: 1})
	openCall(t, l.s, "sf_1", "call-b", 300)
	r, _ := terminate(t, l.s, "sf_1", "call-b", 240)
	l.record(t, []SeafarerEntry{{SeafarerID: "sf_1", Entry: r.Entry}})
	record := sessionUsage("sf_1", "call-b", 180)
	record.EventID = "cdr-b"
	rs := l.settle(t, []Usage{record})
	a := rs[0].Entry
	require.Equal(t, KindAdjust, a.Kind)
	require.Equal(t, [3]int64{-60, -60, 0}, [3]int64{a.BillableSeconds, a.CoveredSeconds, a.OverageSeconds})
	require.Equal(t, []Draw{{GrantID: "gr_1", ProgrammeID: "pr_a", Seconds: -60}}, dropWelfare(a.Draws))
	require.Equal(t, map[string]int64{"gr_1": 420}, remainingByGrant(t, l.s, "sf_1"))
	return record
}

func dropWelfare(ds []Draw) []Draw {
	out := make([]Draw, len(ds))
	for i, d := range ds {
		d.WelfareMinor = 0
		out[i] = d
	}
	return out
}

// After a loss, the rebuild gives the grant back what a negative adjust
// gave back (600 − 240 + 60), adds the adjust to this month's figures and
// remembers the carrier record's identity: redelivered, the record is a
// duplicate, charged nothing, with identity claims in Redis or in
// PostgreSQL.
func TestRebuildGivesANegativeAdjustsSecondsBackAndRemembersItsIdentity(t *testing.T) {
	for _, claims := range []string{"redis", "postgres"} {
		t.Run("claims="+claims, func(t *testing.T) {
			ctx := context.Background()
			l := newRebuildLab(t, Options{})
			if claims == "postgres" {
				l.s.opts.Claims = NewPGClaims(l.pool)
			}
			record := adjustedSession(t, l)
			before := l.view(t, "sf_1")
			require.EqualValues(t, 180, before.Used, "this month: 240 charged, 60 given back")
			require.Contains(t, before.Seen, fmt.Sprintf("%s@%d", DebitEntryID(record.Source, record.EventID)[2:], record.CallTime.Unix()))

			l.lose(t)
			_, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
			require.NoError(t, err)
			after := l.view(t, "sf_1")
			require.Equal(t, before, after, "the rebuilt balance, figures and identities are those before the loss")
			require.Equal(t, map[string]int64{"gr_1": 420}, remainingByGrant(t, l.s, "sf_1"))

			rs, err := l.s.Settle(ctx, []Usage{record})
			require.NoError(t, err)
			require.NoError(t, rs[0].Err)
			require.True(t, rs[0].Duplicate, "the carrier's record, redelivered, is a duplicate (conflicting: %t)", rs[0].Conflicting)
			require.Equal(t, map[string]int64{"gr_1": 420}, remainingByGrant(t, l.s, "sf_1"), "charged nothing again")
		})
	}
}

// A seafarer whose only entry inside the dedupe window is an adjust (the
// grant it moved expired since) is still rebuilt: its identity is
// remembered.
func TestRebuildRemembersTheIdentityOfASeafarerWhoseOnlyRecentEntryIsAnAdjust(t *testing.T) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{})
	call := meterNow.Add(-2 * time.Hour)
	adjust := pgAdjust("sf_9", "cdr-9", call, meterNow.Add(-time.Hour), 0, 45)
	l.record(t, []SeafarerEntry{adjust})
	l.lose(t)
	rep, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Seafarers)
	require.Equal(t, []string{fmt.Sprintf("%s@%d", adjust.Entry.ID[2:], call.Unix())}, l.view(t, "sf_9").Seen)

	reports, _, err := (&Auditor{Pool: l.pool, Store: l.s}).AuditPage(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, reports, 1, "the audit lists the seafarer too")
	require.Equal(t, "sf_9", reports[0].SeafarerID)
	require.True(t, reports[0].OK, "%v", reports[0].Differences)
	require.Equal(t, 1, reports[0].IdentitiesChecked)
}

// The ledger audit counts an adjust's signed draws and its identity: the
// balance a session's charge and its carrier record's adjust left in Redis
// is explained, and an adjust Redis applied but the system of record lacks
// is reported.
func TestAuditCountsAnAdjustsSignedDrawsAndItsIdentity(t *testing.T) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{})
	a := &Auditor{Pool: l.pool, Store: l.s}
	record := adjustedSession(t, l)
	r := mustAudit(t, a, "sf_1")
	require.True(t, r.OK, "%v", r.Differences)
	require.Equal(t, 2, r.IdentitiesChecked, "the terminate's and the carrier record's")

	identity := DebitEntryID(record.Source, record.EventID)[2:]
	_, err := l.pool.Exec(ctx, "DELETE FROM ledger_entries WHERE id = $1", "a_"+identity)
	require.NoError(t, err)
	r = mustAudit(t, a, "sf_1")
	require.ElementsMatch(t, []string{AuditDebitMissing + " " + identity, AuditRemaining + " gr_1"}, kinds(r),
		"without its adjust, Redis's 420 is not explained")
	require.Equal(t, AuditDifference{Kind: AuditRemaining, GrantID: "gr_1", Expected: 360, Actual: 420,
		Detail: "granted − drawn (recorded and in flight) differs from the remaining seconds Redis holds"}, r.Differences[slicesIndexKind(r, AuditRemaining)])
}

func slicesIndexKind(r *AuditReport, kind string) int {
	for i, d := range r.Differences {
		if d.Kind == kind {
			return i
		}
	}
	return -1
}
