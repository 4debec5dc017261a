package quota

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With claims kept in PostgreSQL, one identity is applied once across all
// seafarers: a repeat for the same seafarer is a duplicate, the same
// identity sent for another seafarer or with other content is refused as
// conflicting, and Redis holds no claim at all.
func TestClaimsInPostgreSQLApplyAnIdentityOnceAcrossSeafarers(t *testing.T) {
	ctx := context.Background()
	_, pool := MustPGLedger(t)
	s, _, rdb := MustMeterStore(t, Options{Claims: NewPGClaims(pool)})
	MustAddGrant(t, s, activeGrant("sf-c1", "gr_c1", 600))
	MustAddGrant(t, s, activeGrant("sf-c2", "gr_c2", 600))

	first := voiceCall("sf-c1", "cdr-c", meterNow.Add(-time.Minute), 120)
	elsewhere := first
	elsewhere.SeafarerID, elsewhere.MSISDN = "sf-c2", "+8613800000002"
	changed := first
	changed.BillableSeconds = 180
	rs, err := s.DebitBatch(ctx, []Usage{first, elsewhere, first, changed})
	require.NoError(t, err)
	require.False(t, rs[0].Duplicate)
	require.True(t, rs[1].Conflicting, "the same identity for another seafarer")
	require.Equal(t, "sf-c1", rs[1].SeafarerID, "charged to the seafarer who claimed it")
	require.True(t, rs[2].Duplicate)
	require.True(t, rs[3].Conflicting, "the same identity with other content")
	require.Equal(t, map[string]int64{"gr_c1": 480}, remainingByGrant(t, s, "sf-c1"))
	require.Equal(t, map[string]int64{"gr_c2": 600}, remainingByGrant(t, s, "sf-c2"))

	rs, err = s.DebitBatch(ctx, []Usage{elsewhere})
	require.NoError(t, err)
	require.True(t, rs[0].Conflicting, "in a later batch too")

	keys, err := rdb.Keys(ctx, s.prefix+":{id:*").Result()
	require.NoError(t, err)
	require.Empty(t, keys, "no identity claims in Redis")
}

// Many writers claiming the same identities at once (replicas consuming
// different partitions) all see the same single winner for each.
func TestConcurrentClaimsOfOneIdentityHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	_, pool := MustPGLedger(t)
	c := NewPGClaims(pool)
	const writers, identities = 8, 50
	got := make([][]Claim, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]Claim, identities)
			for i := range batch {
				batch[i] = Claim{Identity: fmt.Sprintf("id%03d", (i+w*7)%identities), SeafarerID: fmt.Sprintf("sf-%d", w),
					Fingerprint: fmt.Sprintf("fp%d", w), CallTime: meterNow}
			}
			held, err := c.ClaimIdentities(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			got[w] = held
		}()
	}
	wg.Wait()
	winner := map[string]string{}
	for w := range writers {
		require.Len(t, got[w], identities)
		for _, h := range got[w] {
			require.Equal(t, "fp"+h.SeafarerID[len("sf-"):], h.Fingerprint, "a claim is one writer's, whole")
			if prev, ok := winner[h.Identity]; ok {
				require.Equal(t, prev, h.SeafarerID, "every writer sees the same winner of %s", h.Identity)
			}
			winner[h.Identity] = h.SeafarerID
		}
	}
	require.Len(t, winner, identities)
}

// Claims of calls older than the window are forgotten in bounded steps;
// newer ones stay.
func TestOldClaimsAreForgotten(t *testing.T) {
	ctx := context.Background()
	_, pool := MustPGLedger(t)
	c := NewPGClaims(pool)
	var batch []Claim
	for i := range 25 {
		at := meterNow.Add(-time.Duration(i) * meterDay)
		batch = append(batch, Claim{Identity: fmt.Sprintf("id%02d", i), SeafarerID: "sf-1", Fingerprint: "fp", CallTime: at})
	}
	_, err := c.ClaimIdentities(ctx, batch)
	require.NoError(t, err)
	cutoff := meterNow.Add(-10*meterDay + time.Second) // days 10..24 are older
	var total int64
	for {
		n, err := c.Forget(ctx, cutoff, 4)
		require.NoError(t, err)
		total += n
		if n < 4 {
			break
		}
	}
	require.EqualValues(t, 15, total)
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM event_claims`).Scan(&left))
	require.Equal(t, 10, left)
}
