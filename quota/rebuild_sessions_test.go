package quota

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A session terminated before Redis lost everything is written back by the
// rebuild: its carrier record, coming after the loss, settles it with an
// adjust of the difference instead of charging the call a second time, and
// a repeat of its terminate answers the charge. An open session is not
// written back: what it held is free again.
func TestRebuildKeepsTerminatedSessionsSoTheirRecordIsNotChargedTwice(t *testing.T) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{})
	l.grant(t, GrantInput{ID: "gr_1", SeafarerID: "sf_1", ProgrammeID: "pr_a", Seconds: 600,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(30 * meterDay), Priority: 1})
	openCall(t, l.s, "sf_1", "call-a", 300)
	r, ch := terminate(t, l.s, "sf_1", "call-a", 240)
	require.Equal(t, &SessionCharge{Charged: 240, Covered: 240}, ch)
	l.record(t, []SeafarerEntry{{SeafarerID: "sf_1", Entry: r.Entry}})
	openCall(t, l.s, "sf_1", "call-open", 300)

	l.lose(t)
	_, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Zero(t, reservedSeconds(t, l.s, "sf_1"), "the open session's hold is gone with Redis")

	rs := l.settle(t, []Usage{func() Usage { u := sessionUsage("sf_1", "call-a", 300); u.EventID = "cdr-a"; return u }()})
	e := rs[0].Entry
	require.Equal(t, KindAdjust, e.Kind, "the record settles the restored session")
	require.Equal(t, [3]int64{60, 60, 0}, [3]int64{e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds})
	require.Equal(t, map[string]int64{"gr_1": 300}, remainingByGrant(t, l.s, "sf_1"), "600 less the record's 300, once")

	_, again := terminate(t, l.s, "sf_1", "call-a", 240)
	require.Equal(t, &SessionCharge{Charged: 300, Covered: 300}, again)

	// The rebuild after it all gives the same balance.
	l.lose(t)
	_, err = RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"gr_1": 300}, remainingByGrant(t, l.s, "sf_1"))
}

// A session the carrier's record settled before Redis was lost is written
// back settled (done), as Redis had it: a repeat of its terminate answers
// the settled charge, and a second record of the same call (another event
// of the carrier's with the same call_id) is charged as a call of its own
// instead of settling the session a second time. Both are checked against
// the same story told to a store that lost nothing.
func TestRebuildKeepsASessionTheCarriersRecordSettledSettled(t *testing.T) {
	type outcome struct {
		Repeat                  SessionCharge
		Kind                    string
		Billable, Covered, Over int64
		Remaining               map[string]int64
	}
	story := func(t *testing.T, lose bool) outcome {
		ctx := context.Background()
		l := newRebuildLab(t, Options{})
		adjustedSession(t, l) // call-b: terminated at 240 s, settled by its record at 180 s
		var callID string
		require.NoError(t, l.pool.QueryRow(ctx, `SELECT call_id FROM ledger_entries WHERE kind = 'adjust'`).Scan(&callID))
		require.Equal(t, "call-b", callID, "the adjust names the session's call")
		if lose {
			l.lose(t)
			_, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
			require.NoError(t, err)
		}
		_, repeat := terminate(t, l.s, "sf_1", "call-b", 240)
		second := sessionUsage("sf_1", "call-b", 120)
		second.EventID = "cdr-b-2"
		e := l.settle(t, []Usage{second})[0].Entry
		return outcome{Repeat: *repeat, Kind: e.Kind, Billable: e.BillableSeconds, Covered: e.CoveredSeconds, Over: e.OverageSeconds,
			Remaining: remainingByGrant(t, l.s, "sf_1")}
	}
	kept := story(t, false)
	require.Equal(t, outcome{Repeat: SessionCharge{Charged: 180, Covered: 180}, Kind: KindDebit, Billable: 120, Covered: 120,
		Remaining: map[string]int64{"gr_1": 300}}, kept, "the story without a loss")
	require.Equal(t, kept, story(t, true), "after a loss and a rebuild")
}
