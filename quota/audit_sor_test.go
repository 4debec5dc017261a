package quota

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The ledger audit finds an entry Redis holds that PostgreSQL does not (a
// lost write to the system of record), and nothing once it is there.
func TestAuditFindsAnEntryMissingFromTheSystemOfRecord(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	pg, _ := MustPGLedger(t)
	ctx := context.Background()
	clock.t = time.Now().UTC().Truncate(time.Second)
	const sf = "sf-sor"
	MustAddGrant(t, s, GrantInput{ID: "gr-sor", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 600,
		EffectiveAt: clock.t.Add(-time.Hour), ExpiresAt: clock.t.Add(24 * time.Hour), Priority: 1})
	d := MustDebit(t, s, voiceCall(sf, "cdr-sor-1", clock.t.Add(-time.Minute), 120))
	require.NoError(t, pg.Append(ctx, []SeafarerEntry{{SeafarerID: sf, Entry: d.Entry}})) // the grant's entry is lost

	r := &AuditReport{SeafarerID: sf, OK: true}
	require.NoError(t, s.AuditSystemOfRecord(ctx, r, pg))
	require.False(t, r.OK)
	require.Len(t, r.Differences, 1)
	require.Equal(t, AuditMissingInSystemOfRecord, r.Differences[0].Kind)
	require.Equal(t, "g_gr-sor", r.Differences[0].Identity)

	_, _, err := s.CopyLedger(ctx, pg, nil)
	require.NoError(t, err)
	r = &AuditReport{SeafarerID: sf, OK: true}
	require.NoError(t, s.AuditSystemOfRecord(ctx, r, pg))
	require.True(t, r.OK, "%v", r.Differences)

	// Redis loses a write it had acknowledged (its copy of the ledger rolls
	// back): the entry PostgreSQL holds is reported.
	lost := &LedgerEntry{ID: "d_lost0000000000000000", Kind: KindDebit, At: clock.t, EventID: "cdr-sor-lost",
		CallTime: &clock.t, BillableSeconds: 60, CoveredSeconds: 60, Draws: []Draw{{GrantID: "gr-sor", Seconds: 60}}}
	require.NoError(t, pg.Append(ctx, []SeafarerEntry{{SeafarerID: sf, Entry: lost}}))
	r = &AuditReport{SeafarerID: sf, OK: true}
	require.NoError(t, s.AuditSystemOfRecord(ctx, r, pg))
	require.False(t, r.OK)
	require.Len(t, r.Differences, 1)
	require.Equal(t, AuditMissingInHotState, r.Differences[0].Kind)
}
