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

// A batch large enough to be debited in two lanes at once (debitLanes):
// each seafarer's calls are drawn in the order given, whichever lane they
// fall in, every result is in the place of its usage, and a repeat in the
// same batch is a duplicate.
func TestALargeBatchDrawsEachSeafarersCallsInOrderAndAnswersInPlace(t *testing.T) {
	ctx := context.Background()
	_, pool := MustPGLedger(t)
	s, _, _ := MustMeterStore(t, Options{Claims: NewPGClaims(pool)})
	const seafarers, calls = 16, 12 // 192 usages and the repeats: past laneMin
	lanes := map[int]bool{}
	for i := range seafarers {
		sf := fmt.Sprintf("sf-lane-%02d", i)
		lanes[laneOf(sf)] = true
		MustAddGrant(t, s, activeGrant(sf, "gr-"+sf, 330)) // five calls and half of the sixth
	}
	require.Len(t, lanes, 2, "the seafarers fall in both lanes")
	var us []Usage
	for c := range calls { // interleaved: call c of every seafarer, then call c+1
		for i := range seafarers {
			u := voiceCall(fmt.Sprintf("sf-lane-%02d", i), fmt.Sprintf("cdr-%02d-%02d", i, c), meterNow.Add(-time.Hour+time.Duration(c)*time.Minute), 60)
			us = append(us, u)
			if c == 3 {
				us = append(us, voiceCall(u.SeafarerID, fmt.Sprintf("cdr-%02d-%02d", i, 1), meterNow.Add(-time.Hour+time.Minute), 60))
			}
		}
	}
	require.GreaterOrEqual(t, len(us), laneMin)
	rs, err := s.DebitBatch(ctx, us)
	require.NoError(t, err)
	require.Len(t, rs, len(us))
	duplicates := 0
	for j, u := range us {
		r := rs[j]
		require.NoError(t, r.Err)
		require.Equal(t, u.SeafarerID, r.SeafarerID, "result %d answers usage %d", j, j)
		require.Equal(t, u.EventID, r.Entry.EventID, "result %d answers usage %d", j, j)
		var c, i int
		_, err := fmt.Sscanf(u.EventID, "cdr-%02d-%02d", &i, &c)
		require.NoError(t, err)
		if r.Duplicate {
			require.Equal(t, 1, c, "only the repeats of call 1 are duplicates")
			duplicates++
			continue
		}
		want := int64(60)
		switch {
		case c == 5:
			want = 30
		case c > 5:
			want = 0
		}
		require.Equal(t, want, r.Entry.CoveredSeconds, "%s: drawn in the order given", u.EventID)
	}
	require.Equal(t, seafarers, duplicates, "each seafarer's repeat, and only it")
	for i := range seafarers {
		sf := fmt.Sprintf("sf-lane-%02d", i)
		require.Equal(t, map[string]int64{"gr-" + sf: 0}, remainingByGrant(t, s, sf))
	}
}

// Redis that lost its scripts (a restart; here SCRIPT FLUSH) while a batch
// is debited in two lanes: the lane that finds the script missing loads
// it, and the other lane's calls sent after that are applied. Each call
// refused is sent again, and only those: none comes back as a repeat of
// itself, and every grant is drawn once per call.
func TestALostScriptCacheRepeatsOnlyTheCallsItRefused(t *testing.T) {
	ctx := context.Background()
	_, pool := MustPGLedger(t)
	s, _, rdb := MustMeterStore(t, Options{Claims: NewPGClaims(pool)})
	const seafarers, rounds = 64, 40
	for i := range seafarers {
		sf := fmt.Sprintf("sf-noscript-%02d", i)
		MustAddGrant(t, s, activeGrant(sf, "gr-"+sf, 100_000))
	}
	for round := range rounds {
		require.NoError(t, rdb.ScriptFlush(ctx).Err())
		var us []Usage
		for c := range 4 {
			for i := range seafarers {
				us = append(us, voiceCall(fmt.Sprintf("sf-noscript-%02d", i), fmt.Sprintf("cdr-%d-%d-%d", round, i, c),
					meterNow.Add(-time.Hour+time.Duration(round*4+c)*time.Second), 60))
			}
		}
		rs, err := s.DebitBatch(ctx, us)
		require.NoError(t, err)
		for j, r := range rs {
			require.NoError(t, r.Err)
			require.False(t, r.Duplicate, "round %d: %s came back as a repeat of itself", round, us[j].EventID)
		}
	}
	for i := range seafarers {
		sf := fmt.Sprintf("sf-noscript-%02d", i)
		require.Equal(t, map[string]int64{"gr-" + sf: 100_000 - rounds*4*60}, remainingByGrant(t, s, sf))
	}
}
