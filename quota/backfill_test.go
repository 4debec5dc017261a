package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readAll pages through a ledger.
func readAll(t *testing.T, read func(LedgerFilter) ([]*LedgerEntry, string, error)) []*LedgerEntry {
	t.Helper()
	var out []*LedgerEntry
	f := LedgerFilter{Limit: 7}
	for range 1000 {
		page, next, err := read(f)
		require.NoError(t, err)
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
	t.Fatal("paging does not end")
	return nil
}

// Copying the Redis ledger to PostgreSQL (the upgrade from a Redis-only
// ledger) gives every seafarer the same entries in PostgreSQL as in Redis —
// grants, debits with their draws, voids — and copying again changes
// nothing.
func TestCopyLedgerGivesPostgreSQLEveryEntryRedisHoldsAndRepeatsNothing(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	pg, _ := MustPGLedger(t)
	ctx := context.Background()
	clock.t = time.Now().UTC().Truncate(time.Second) // PostgreSQL's partitions are made around now
	now := clock.t
	seafarers := []string{"sf-copy-1", "sf-copy-2", "sf-copy-3"}
	for i, sf := range seafarers {
		MustAddGrant(t, s, GrantInput{ID: "gr-" + sf, SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 600,
			EffectiveAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), Priority: 1})
		for j := range 3 + i {
			MustDebit(t, s, voiceCall(sf, fmt.Sprintf("cdr-copy-%s-%d", sf, j), now.Add(-time.Duration(j+1)*time.Hour), 120))
		}
	}
	_, err := s.VoidGrant(ctx, "sf-copy-3", "gr-sf-copy-3")
	require.NoError(t, err)

	n, entries, err := s.CopyLedger(ctx, pg, nil)
	require.NoError(t, err)
	require.Equal(t, len(seafarers), n)
	require.Equal(t, 3+(3+4+5)+1, entries, "a grant each, every debit, the void")
	for _, sf := range seafarers {
		want := readAll(t, func(f LedgerFilter) ([]*LedgerEntry, string, error) { return s.Ledger(ctx, sf, f) })
		got := readAll(t, func(f LedgerFilter) ([]*LedgerEntry, string, error) { return pg.Ledger(ctx, sf, f) })
		require.Equal(t, len(want), len(got), sf)
		for i := range want {
			require.Equal(t, want[i].ID, got[i].ID, "%s entry %d", sf, i)
			require.Equal(t, want[i].Kind, got[i].Kind)
			require.Equal(t, want[i].CoveredSeconds, got[i].CoveredSeconds)
			require.Equal(t, want[i].Seconds, got[i].Seconds)
			require.Equal(t, want[i].Draws, got[i].Draws)
		}
	}
	_, again, err := s.CopyLedger(ctx, pg, nil)
	require.NoError(t, err)
	require.Equal(t, entries, again, "every entry is offered again")
	got := readAll(t, func(f LedgerFilter) ([]*LedgerEntry, string, error) { return pg.Ledger(ctx, "sf-copy-2", f) })
	require.Len(t, got, 1+4, "and stored once")
}
