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
