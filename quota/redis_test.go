package quota

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/redistest"
)

// meterNow is where the metering tests' clock starts.
var meterNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

const (
	meterDay    = 24 * time.Hour
	roamingCDRs = "urn:carrier:cmcc:roaming"
)

// meterClock is a clock the metering tests set and advance.
type meterClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *meterClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *meterClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// MustMeterStore returns a store on the test Redis under a fresh prefix, its
// clock (starting at meterNow) and the client, for looking at keys directly.
func MustMeterStore(tb testing.TB, opts Options) (*RedisStore, *meterClock, redis.UniversalClient) {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	clock := &meterClock{t: meterNow}
	return NewRedisStore(rdb, prefix, clock.Now, opts), clock, rdb
}

// MustAddGrant adds a new grant or fails the test, and returns its entry.
func MustAddGrant(tb testing.TB, s *RedisStore, in GrantInput) *LedgerEntry {
	tb.Helper()
	if in.ProgrammeID == "" {
		in.ProgrammeID = "pr_test"
	}
	added, e, err := s.AddGrant(context.Background(), in)
	require.NoError(tb, err)
	require.True(tb, added, "grant %s added", in.ID)
	return e
}

// mustRecord stores entries in a system of record and forgets their
// pending records, as the consumer does at the end of a batch.
func mustRecord(tb testing.TB, s *RedisStore, l *PGLedger, seafarerID string, entries ...*LedgerEntry) {
	tb.Helper()
	batch := make([]SeafarerEntry, 0, len(entries))
	for _, e := range entries {
		if e != nil {
			batch = append(batch, SeafarerEntry{SeafarerID: seafarerID, Entry: e})
		}
	}
	require.NoError(tb, l.Append(context.Background(), batch))
	require.NoError(tb, s.Recorded(context.Background(), batch))
}

// activeGrant is a grant of seconds, effective a meterDay ago and valid for 30 days.
func activeGrant(seafarerID, id string, seconds int64) GrantInput {
	return GrantInput{ID: id, SeafarerID: seafarerID, ProgrammeID: "pr_test", Seconds: seconds,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(30 * meterDay), Priority: 1}
}

// MustDebit applies a call or fails the test.
func MustDebit(tb testing.TB, s *RedisStore, u Usage) *DebitResult {
	tb.Helper()
	r, err := s.Debit(context.Background(), u)
	require.NoError(tb, err)
	require.NotNil(tb, r.Entry)
	return r
}

// voiceCall is a roaming call with the default tariff's overage price.
func voiceCall(seafarerID, eventID string, callTime time.Time, billableSeconds int64) Usage {
	return Usage{
		SeafarerID: seafarerID, MSISDN: "+8613800000001", Source: roamingCDRs, EventID: eventID,
		Type: "carrier.usage.voice", CallTime: callTime, DurationSeconds: billableSeconds, BillableSeconds: billableSeconds,
		CalledNumber: "+861012345678", VisitedCountry: "SG",
		OveragePrice: billing.Money{Minor: 150, Currency: "CNY"}, Increment: 60,
	}
}

// drawn is the draws of an entry as grant id -> seconds, in order.
func drawsOf(e *LedgerEntry) [][2]any {
	out := [][2]any{}
	for _, d := range e.Draws {
		out = append(out, [2]any{d.GrantID, d.Seconds})
	}
	return out
}

// remainingByGrant reads every grant's remaining seconds.
func remainingByGrant(tb testing.TB, s *RedisStore, seafarerID string) map[string]int64 {
	tb.Helper()
	gs, err := s.Grants(context.Background(), seafarerID)
	require.NoError(tb, err)
	out := map[string]int64{}
	for _, g := range gs {
		out[g.ID] = g.RemainingSeconds
	}
	return out
}

func TestDebitDrawsLowestPriorityNumberFirst(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-priority"
	// The priority-2 grant expires first: priority still decides.
	for _, g := range []struct {
		id       string
		priority int
		seconds  int64
		expires  time.Duration
	}{{"gr_p2", 2, 600, 1 * meterDay}, {"gr_p0", 0, 300, 30 * meterDay}, {"gr_p1", 1, 300, 10 * meterDay}} {
		MustAddGrant(t, s, GrantInput{ID: g.id, SeafarerID: sf, Seconds: g.seconds, Priority: g.priority,
			EffectiveAt: meterNow.Add(-time.Hour), ExpiresAt: meterNow.Add(g.expires)})
	}

	r := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 480))
	require.Equal(t, [][2]any{{"gr_p0", int64(300)}, {"gr_p1", int64(180)}}, drawsOf(r.Entry))
	r = MustDebit(t, s, voiceCall(sf, "cdr-2", meterNow.Add(-time.Minute), 300))
	require.Equal(t, [][2]any{{"gr_p1", int64(120)}, {"gr_p2", int64(180)}}, drawsOf(r.Entry))
	require.Equal(t, map[string]int64{"gr_p0": 0, "gr_p1": 0, "gr_p2": 420}, remainingByGrant(t, s, sf))
}

func TestDebitTiesBrokenByEarliestExpiryThenEarliestIssued(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	const sf = "sf-ties"
	eff := meterNow.Add(-time.Hour)
	add := func(id string, expires time.Duration) {
		MustAddGrant(t, s, GrantInput{ID: id, SeafarerID: sf, Seconds: 60, Priority: 1, EffectiveAt: eff, ExpiresAt: meterNow.Add(expires)})
	}
	add("gr_late", 20*meterDay) // issued first, but expires last
	clock.Advance(time.Millisecond)
	add("gr_soon", 5*meterDay)
	clock.Advance(time.Millisecond)
	add("gr_z", 10*meterDay) // same expiry as gr_a, issued a millisecond earlier
	clock.Advance(time.Millisecond)
	add("gr_a", 10*meterDay)
	add("gr_m", 15*meterDay) // same expiry and same issue time as gr_b: the id decides
	add("gr_b", 15*meterDay)

	gs, err := s.Grants(context.Background(), sf)
	require.NoError(t, err)
	var order []string
	for _, g := range gs {
		order = append(order, g.ID)
	}
	want := []string{"gr_soon", "gr_z", "gr_a", "gr_b", "gr_m", "gr_late"}
	require.Equal(t, want, order, "Grants lists grants in drawing order")

	r := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow, 6*60))
	var drawnFrom []string
	for _, d := range r.Entry.Draws {
		require.Equal(t, int64(60), d.Seconds)
		drawnFrom = append(drawnFrom, d.GrantID)
	}
	require.Equal(t, want, drawnFrom)
}

func TestCallBeforeGrantEffectiveIsOverage(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-early"
	effective := meterNow.Add(-2 * time.Hour)
	MustAddGrant(t, s, GrantInput{ID: "gr_1", SeafarerID: sf, Seconds: 600, Priority: 0, EffectiveAt: effective, ExpiresAt: effective.Add(30 * meterDay)})

	r := MustDebit(t, s, voiceCall(sf, "cdr-before", effective.Add(-time.Second), 120))
	require.Equal(t, int64(0), r.Entry.CoveredSeconds)
	require.Equal(t, int64(120), r.Entry.OverageSeconds)
	require.Empty(t, r.Entry.Draws)
	require.Equal(t, int64(600), r.RemainingNow, "the grant is untouched")

	r = MustDebit(t, s, voiceCall(sf, "cdr-at", effective, 120))
	require.Equal(t, int64(120), r.Entry.CoveredSeconds, "a grant is effective from its effective time on")
	require.Equal(t, int64(0), r.Entry.OverageSeconds)
}

func TestCallAfterExpiryIsOverage(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	const sf = "sf-expired"
	expires := meterNow.Add(time.Hour)
	MustAddGrant(t, s, GrantInput{ID: "gr_1", SeafarerID: sf, Seconds: 600, Priority: 0, EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: expires})
	clock.Advance(3 * time.Hour)

	for name, callTime := range map[string]time.Time{"at expiry": expires, "after expiry": expires.Add(time.Hour)} {
		r := MustDebit(t, s, voiceCall(sf, "cdr-"+name, callTime, 120))
		require.Equal(t, int64(0), r.Entry.CoveredSeconds, name)
		require.Equal(t, int64(120), r.Entry.OverageSeconds, name)
		require.Equal(t, billing.Money{Minor: 300, Currency: "CNY"}, r.Entry.OverageAmount, name)
	}
	require.Equal(t, map[string]int64{"gr_1": 600}, remainingByGrant(t, s, sf))

	r := MustDebit(t, s, voiceCall(sf, "cdr-last-second", expires.Add(-time.Second), 120))
	require.Equal(t, int64(120), r.Entry.CoveredSeconds, "the last second before expiry is still covered")
}

func TestLateEventDrawsFromGrantsActiveAtItsCallTime(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-late"
	// The old grant expired yesterday; the new one (a lower priority number)
	// started yesterday. A call made two days ago arrives only now.
	MustAddGrant(t, s, GrantInput{ID: "gr_old", SeafarerID: sf, Seconds: 600, Priority: 1, EffectiveAt: meterNow.Add(-10 * meterDay), ExpiresAt: meterNow.Add(-meterDay)})
	MustAddGrant(t, s, GrantInput{ID: "gr_new", SeafarerID: sf, Seconds: 600, Priority: 0, EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(29 * meterDay)})

	r := MustDebit(t, s, voiceCall(sf, "cdr-late", meterNow.Add(-2*meterDay), 180))
	require.Equal(t, [][2]any{{"gr_old", int64(180)}}, drawsOf(r.Entry), "the grant that expired since the call pays for it")
	require.Equal(t, int64(0), r.Entry.OverageSeconds)
	require.Equal(t, int64(600), r.RemainingNow, "only the grant active now counts as remaining")
	require.Equal(t, int64(600), r.GrantedNow)

	a, err := s.Allowance(context.Background(), sf)
	require.NoError(t, err)
	require.Equal(t, int64(600), a.RemainingSeconds)
	for _, g := range a.Grants {
		if g.ID == "gr_old" {
			require.Equal(t, GrantExpired, g.Status)
			require.Equal(t, int64(420), g.RemainingSeconds)
		}
	}
}

func TestDuplicateEventIsAppliedOnce(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const sf = "sf-dup"
	l, _ := MustPGLedger(t)
	granted := MustAddGrant(t, s, activeGrant(sf, "gr_1", 600))

	first := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 120))
	require.False(t, first.Duplicate)

	// Delivered again as it was: the first application stands.
	r := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 120))
	require.True(t, r.Duplicate)
	require.Equal(t, first.Entry, r.Entry, "a duplicate returns the stored entry")

	// The same identity with other content is another call claiming it:
	// conflicting, and nothing changes.
	rs, err := s.DebitBatch(ctx, []Usage{voiceCall(sf, "cdr-1", meterNow.Add(-time.Hour), 600)})
	require.NoError(t, err)
	require.True(t, rs[0].Conflicting)
	require.Nil(t, rs[0].Entry)
	require.Equal(t, map[string]int64{"gr_1": 480}, remainingByGrant(t, s, sf))

	// So is the same identity sent for another seafarer's MSISDN: one
	// identity is applied once across all seafarers.
	elsewhere := voiceCall("sf-dup-other", "cdr-1", meterNow.Add(-time.Minute), 120)
	elsewhere.MSISDN = "+8613800000002"
	rs, err = s.DebitBatch(ctx, []Usage{elsewhere})
	require.NoError(t, err)
	require.True(t, rs[0].Conflicting, "an identity already applied to one seafarer is not applied to another")
	require.Empty(t, remainingByGrant(t, s, "sf-dup-other"))

	// The same id from another source is another event.
	other := voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 120)
	other.Source = "urn:carrier:cmcc:maritime"
	r = MustDebit(t, s, other)
	require.False(t, r.Duplicate)
	require.NotEqual(t, first.Entry.ID, r.Entry.ID)

	// Twice in one batch, and once more in the next batch.
	twice := voiceCall(sf, "cdr-2", meterNow.Add(-time.Minute), 60)
	rs, err = s.DebitBatch(ctx, []Usage{twice, twice})
	require.NoError(t, err)
	require.False(t, rs[0].Duplicate)
	require.True(t, rs[1].Duplicate)
	require.Equal(t, rs[0].Entry, rs[1].Entry)
	rs, err = s.DebitBatch(ctx, []Usage{twice})
	require.NoError(t, err)
	require.True(t, rs[0].Duplicate)

	require.Equal(t, map[string]int64{"gr_1": 300}, remainingByGrant(t, s, sf), "600 - 120 - 120 - 60")
	// Every entry returned, repeats included, recorded as the consumer
	// records them: one copy of each.
	mustRecord(t, s, l, sf, granted, first.Entry, r.Entry, rs[0].Entry)
	entries := readWholeLedger(t, l, sf, 50)
	require.Len(t, entries, 4, "one grant and three calls")
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	require.ElementsMatch(t, []string{"g_gr_1", first.Entry.ID, r.Entry.ID, rs[0].Entry.ID}, ids)

	// Once recorded, a repeat has nothing to finish: no entry, no change.
	rs, err = s.DebitBatch(ctx, []Usage{twice})
	require.NoError(t, err)
	require.True(t, rs[0].Duplicate)
	require.Nil(t, rs[0].Entry, "a repeat of a recorded event")
	require.Equal(t, map[string]int64{"gr_1": 300}, remainingByGrant(t, s, sf))
}

// A grant the script cannot read (a hand-edited or damaged value) fails
// that seafarer's call alone, before anything is written: the identity is
// not remembered, so once the grant is repaired the same event is applied;
// other seafarers' calls in the batch are applied meanwhile.
func TestUnreadableGrantFailsItsCallAndWritesNothing(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	ctx := context.Background()
	MustAddGrant(t, s, activeGrant("sf-damaged", "gr_1", 600))
	MustAddGrant(t, s, activeGrant("sf-fine", "gr_2", 600))
	good, err := rdb.HGet(ctx, s.keys("sf-damaged").grants, "gr_1").Result()
	require.NoError(t, err)
	require.NoError(t, rdb.HSet(ctx, s.keys("sf-damaged").grants, "gr_1", "600:lots:0:0").Err())
	seenBefore, err := rdb.ZCard(ctx, s.keys("sf-damaged").seen).Result()
	require.NoError(t, err)

	call := voiceCall("sf-damaged", "cdr-1", meterNow.Add(-time.Minute), 120)
	rs, err := s.DebitBatch(ctx, []Usage{call, voiceCall("sf-fine", "cdr-2", meterNow.Add(-time.Minute), 120)})
	require.NoError(t, err, "one seafarer's damaged grant is not an outage")
	var failed *wuyou.Error
	require.ErrorAs(t, rs[0].Err, &failed)
	require.Equal(t, "apply_failed", failed.Reason, "%v", rs[0].Err)
	require.ErrorContains(t, rs[0].Err, "gr_1")
	require.NoError(t, rs[1].Err)
	require.Equal(t, map[string]int64{"gr_2": 480}, remainingByGrant(t, s, "sf-fine"))
	seenAfter, err := rdb.ZCard(ctx, s.keys("sf-damaged").seen).Result()
	require.NoError(t, err)
	require.Equal(t, seenBefore, seenAfter, "the failed call's identity is not remembered")
	pending, err := rdb.Exists(ctx, s.keys("sf-damaged").pending).Result()
	require.NoError(t, err)
	require.Zero(t, pending, "no record is kept for a call that was not applied")

	require.NoError(t, rdb.HSet(ctx, s.keys("sf-damaged").grants, "gr_1", good).Err())
	r := MustDebit(t, s, call)
	require.False(t, r.Duplicate, "the repaired grant's call is applied then, once")
	require.Equal(t, map[string]int64{"gr_1": 480}, remainingByGrant(t, s, "sf-damaged"))
}

func TestDebitRejectsUsageWithoutAnIdentityOrWithNegativeSeconds(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	cases := map[string]func(*Usage){
		"no seafarer":       func(u *Usage) { u.SeafarerID = "" },
		"no source":         func(u *Usage) { u.Source = "" },
		"no event id":       func(u *Usage) { u.EventID = "" },
		"negative billable": func(u *Usage) { u.BillableSeconds = -60 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			u := voiceCall("sf-bad", "cdr-1", meterNow, 60)
			mutate(&u)
			_, err := s.Debit(context.Background(), u)
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "%v", err)
		})
	}
}

func TestVoidZeroesRemainingAndWritesLedgerEntry(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const sf = "sf-void"
	l, _ := MustPGLedger(t)
	g1 := MustAddGrant(t, s, activeGrant(sf, "gr_1", 600))
	g2 := MustAddGrant(t, s, activeGrant(sf, "gr_2", 300))
	d1 := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 120))
	clock.Advance(time.Minute)

	e, err := s.VoidGrant(ctx, sf, "gr_1")
	require.NoError(t, err)
	require.Equal(t, "v_gr_1", e.ID)
	require.Equal(t, KindVoid, e.Kind)
	require.Equal(t, "gr_1", e.GrantID)
	require.Equal(t, int64(480), e.Seconds, "the void removes what was left")
	require.Equal(t, meterNow.Add(time.Minute), e.At)

	a, err := s.Allowance(ctx, sf)
	require.NoError(t, err)
	require.Equal(t, int64(300), a.RemainingSeconds)
	for _, g := range a.Grants {
		if g.ID == "gr_1" {
			require.Equal(t, GrantVoided, g.Status)
			require.Equal(t, int64(0), g.RemainingSeconds)
		}
	}

	stored, err := s.StoredVoid(ctx, sf, "gr_1")
	require.NoError(t, err)
	require.Equal(t, e, stored, "the void's entry is kept until it is recorded")
	mustRecord(t, s, l, sf, g1, g2, d1.Entry, e)
	stored, err = s.StoredVoid(ctx, sf, "gr_1")
	require.NoError(t, err)
	require.Nil(t, stored, "recorded: nothing left to finish")
	entries := readWholeLedger(t, l, sf, 50)
	require.Equal(t, "v_gr_1", entries[0].ID, "the void is the newest entry")
	require.Equal(t, int64(480), entries[0].Seconds)
	require.Empty(t, entries[0].Draws)

	_, err = s.VoidGrant(ctx, sf, "gr_1")
	require.Equal(t, wuyou.ECONFLICT, wuyou.ErrorCode(err), "voiding twice: %v", err)
	_, err = s.VoidGrant(ctx, sf, "gr_unknown")
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err), "%v", err)
	_, err = s.VoidGrant(ctx, "sf-someone-else", "gr_2")
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err), "another seafarer's grant: %v", err)

	// A call made before the void, arriving after it, cannot draw from it.
	r := MustDebit(t, s, voiceCall(sf, "cdr-2", meterNow.Add(-time.Hour), 420))
	require.Equal(t, [][2]any{{"gr_2", int64(300)}}, drawsOf(r.Entry))
	require.Equal(t, int64(120), r.Entry.OverageSeconds)
	mustRecord(t, s, l, sf, r.Entry)
	requireLedgerExplainsEveryBalance(t, s, l, sf, 2)
}

func TestOverageAmountPricedPerStartedIncrement(t *testing.T) {
	cases := []struct {
		name                string
		granted, billable   int64
		price, increment    int64
		wantOverage, amount int64
	}{
		{"no grant, one minute", 0, 60, 100, 60, 60, 100},
		{"one second into the second minute", 59, 120, 100, 60, 61, 200},
		{"whole minutes", 0, 180, 100, 60, 180, 300},
		{"half-minute increments", 100, 180, 40, 30, 80, 120},
		{"per-second increments", 100, 180, 2, 1, 80, 160},
		{"increment unset means a minute", 59, 120, 100, 0, 61, 200},
		{"fully covered costs nothing", 600, 120, 100, 60, 0, 0},
		{"no billable seconds cost nothing", 0, 0, 100, 60, 0, 0},
	}
	s, _, _ := MustMeterStore(t, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sf := "sf-" + c.name
			if c.granted > 0 {
				MustAddGrant(t, s, activeGrant(sf, "gr_1", c.granted))
			}
			u := voiceCall(sf, "cdr-"+c.name, meterNow, c.billable)
			u.OveragePrice = billing.Money{Minor: c.price, Currency: "USD"}
			u.Increment = c.increment
			r := MustDebit(t, s, u)
			require.Equal(t, c.wantOverage, r.Entry.OverageSeconds)
			require.Equal(t, c.billable, r.Entry.CoveredSeconds+r.Entry.OverageSeconds)
			require.Equal(t, billing.Money{Minor: c.amount, Currency: "USD"}, r.Entry.OverageAmount)
		})
	}
}

func TestDedupeIdentitiesForgottenAfterWindowByCallTime(t *testing.T) {
	s, clock, rdb := MustMeterStore(t, Options{DedupeWindow: meterDay})
	ctx := context.Background()
	const sf = "sf-window"
	MustAddGrant(t, s, activeGrant(sf, "gr_1", 6000))
	// Both arrive now; one was made 23 hours ago, the other an hour ago.
	oldCall := voiceCall(sf, "cdr-made-long-ago", meterNow.Add(-23*time.Hour), 60)
	newCall := voiceCall(sf, "cdr-made-recently", meterNow.Add(-time.Hour), 60)
	MustDebit(t, s, oldCall)
	MustDebit(t, s, newCall)

	clock.Advance(2 * time.Hour) // the old call is now 25 hours old
	MustDebit(t, s, voiceCall(sf, "cdr-next", clock.Now(), 60))

	k := s.keys(sf)
	oldIdentity := DebitEntryID(oldCall.Source, oldCall.EventID)[2:]
	require.Equal(t, redis.Nil, rdb.ZScore(ctx, k.seen, oldIdentity).Err(), "the old call's identity is forgotten by its call time, not its arrival")
	require.True(t, MustDebit(t, s, newCall).Duplicate, "the recent call is still remembered")
	// This is why the consumer sends events older than the window to the
	// late topic instead of applying them: the store no longer knows them.
	require.False(t, MustDebit(t, s, oldCall).Duplicate)
}

func TestAllowanceCountsOnlyGrantsActiveNow(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const sf = "sf-allowance"
	past, future := meterNow.Add(-meterDay), meterNow.Add(30*meterDay)
	for _, g := range []GrantInput{
		{ID: "gr_active", Seconds: 600, Priority: 1, EffectiveAt: past, ExpiresAt: future},
		{ID: "gr_drawn", Seconds: 300, Priority: 1, EffectiveAt: past, ExpiresAt: meterNow.Add(5 * meterDay)},
		{ID: "gr_exhausted", Seconds: 60, Priority: 0, EffectiveAt: past, ExpiresAt: meterNow.Add(2 * meterDay)},
		{ID: "gr_pending", Seconds: 1000, Priority: 0, EffectiveAt: meterNow.Add(meterDay), ExpiresAt: future},
		{ID: "gr_expired", Seconds: 500, Priority: 0, EffectiveAt: meterNow.Add(-10 * meterDay), ExpiresAt: meterNow.Add(-time.Hour)},
		{ID: "gr_voided", Seconds: 400, Priority: 0, EffectiveAt: past, ExpiresAt: future},
	} {
		g.SeafarerID = sf
		MustAddGrant(t, s, g)
	}
	_, err := s.VoidGrant(ctx, sf, "gr_voided")
	require.NoError(t, err)
	MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow.Add(-time.Minute), 120)) // 60 from gr_exhausted, 60 from gr_drawn

	a, err := s.Allowance(ctx, sf)
	require.NoError(t, err)
	status := map[string]string{}
	remaining := map[string]int64{}
	for _, g := range a.Grants {
		status[g.ID] = g.Status
		remaining[g.ID] = g.RemainingSeconds
	}
	require.Equal(t, map[string]string{
		"gr_active": GrantActive, "gr_drawn": GrantActive, "gr_exhausted": GrantExhausted,
		"gr_pending": GrantPending, "gr_expired": GrantExpired, "gr_voided": GrantVoided,
	}, status)
	require.Equal(t, map[string]int64{
		"gr_active": 600, "gr_drawn": 240, "gr_exhausted": 0, "gr_pending": 1000, "gr_expired": 500, "gr_voided": 0,
	}, remaining)
	require.Equal(t, int64(840), a.RemainingSeconds, "only gr_active and gr_drawn count")
	require.Equal(t, int64(14), a.RemainingMinutes)
	require.Equal(t, "2026-11", a.Period)
	require.Equal(t, int64(120), a.UsedSeconds)
	require.Equal(t, int64(0), a.OverageSeconds)
	require.Equal(t, meterNow, a.AsOf)
	require.Equal(t, meterNow.Add(5*meterDay), a.EarliestExpiry(), "the earliest expiry among active grants")

	empty, err := s.Allowance(ctx, "sf-nobody")
	require.NoError(t, err)
	require.Equal(t, int64(0), empty.RemainingSeconds)
	require.Empty(t, empty.Grants)
}

func TestRemainingNowForManySeafarers(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	want := map[string]int64{}
	var ids []string
	for i := range 300 {
		id := "sf-many-" + strconv.Itoa(i)
		ids = append(ids, id)
		want[id] = int64(i%7) * 60
		if i%7 > 0 {
			MustAddGrant(t, s, activeGrant(id, "gr_now", int64(i%7)*60))
		}
		if i%3 == 0 { // an expired and a pending grant never count
			MustAddGrant(t, s, GrantInput{ID: "gr_old", SeafarerID: id, Seconds: 999, EffectiveAt: meterNow.Add(-9 * meterDay), ExpiresAt: meterNow.Add(-meterDay)})
			MustAddGrant(t, s, GrantInput{ID: "gr_next", SeafarerID: id, Seconds: 999, EffectiveAt: meterNow.Add(meterDay), ExpiresAt: meterNow.Add(9 * meterDay)})
		}
	}
	ids = append(ids, "sf-never-enrolled")
	want["sf-never-enrolled"] = 0

	got, err := s.RemainingNow(context.Background(), ids)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestGrantWithoutProgrammeIsDrawnAndVoidedLikeAnyOther(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const sf = "sf-no-programme"
	l, _ := MustPGLedger(t)
	first := MustAddGrant(t, s, GrantInput{ID: "gr_first", SeafarerID: sf, ProgrammeID: "pr_x", Seconds: 60, Priority: 0, EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(meterDay)})
	bare := activeGrant(sf, "gr_bare", 600)
	bare.ProgrammeID = ""
	added, second, err := s.AddGrant(ctx, bare)
	require.NoError(t, err)
	require.True(t, added)

	r := MustDebit(t, s, voiceCall(sf, "cdr-1", meterNow, 120))
	require.Equal(t, []Draw{{GrantID: "gr_first", ProgrammeID: "pr_x", Seconds: 60}, {GrantID: "gr_bare", Seconds: 60}}, r.Entry.Draws)
	e, err := s.VoidGrant(ctx, sf, "gr_bare")
	require.NoError(t, err)
	require.Equal(t, int64(540), e.Seconds)
	mustRecord(t, s, l, sf, first, second, r.Entry, e)
	requireLedgerExplainsEveryBalance(t, s, l, sf, 2)
}

func TestEventAtTheEdgeOfTheWindowIsAppliedOnceWithinItsBatch(t *testing.T) {
	// The consumer sends events older than the window to the late topic by
	// its own clock, read before the batch; the store's clock reads later. An
	// event that passes the consumer's check by less than that gap, delivered
	// twice in one batch, must still be applied once.
	s, _, _ := MustMeterStore(t, Options{DedupeWindow: meterDay}) // the ledger horizon is the same day
	const sf = "sf-edge"
	MustAddGrant(t, s, GrantInput{ID: "gr_1", SeafarerID: sf, ProgrammeID: "pr_x", Seconds: 600, EffectiveAt: meterNow.Add(-9 * meterDay), ExpiresAt: meterNow.Add(meterDay)})
	edge := voiceCall(sf, "cdr-edge", meterNow.Add(-meterDay-time.Second), 120)
	rs, err := s.DebitBatch(context.Background(), []Usage{edge, edge})
	require.NoError(t, err)
	require.False(t, rs[0].Duplicate)
	require.True(t, rs[1].Duplicate, "the repeat within the batch is a duplicate")
	require.Equal(t, rs[0].Entry, rs[1].Entry, "answered with the stored entry, so a retried batch can republish it")
	require.Equal(t, map[string]int64{"gr_1": 480}, remainingByGrant(t, s, sf))
}

func TestGrantRejectsWhatCouldNeverBeDrawnOrStored(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	cases := map[string]func(*GrantInput){
		"no seconds":             func(g *GrantInput) { g.Seconds = 0 },
		"negative priority":      func(g *GrantInput) { g.Priority = -1 },
		"expires when effective": func(g *GrantInput) { g.ExpiresAt = g.EffectiveAt },
		"expires within the same second": func(g *GrantInput) {
			g.EffectiveAt = meterNow.Add(100 * time.Millisecond)
			g.ExpiresAt = meterNow.Add(900 * time.Millisecond)
		},
		"no id":                      func(g *GrantInput) { g.ID = "" },
		"quote in the id":            func(g *GrantInput) { g.ID = `gr_"1` },
		"colon in the programme":     func(g *GrantInput) { g.ProgrammeID = "pr:1" },
		"backslash in the programme": func(g *GrantInput) { g.ProgrammeID = `pr\1` },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			g := activeGrant("sf-bad-grant", "gr_1", 600)
			mutate(&g)
			_, _, err := s.AddGrant(context.Background(), g)
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "%v", err)
		})
	}
	gs, err := s.Grants(context.Background(), "sf-bad-grant")
	require.NoError(t, err)
	require.Empty(t, gs)
}

// Allowance reads made at once share pipelines; each caller still gets its
// own seafarer's balance, whatever else was in the round trip.
func TestConcurrentAllowanceReadsEachGetTheirOwnBalance(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const seafarers = 40
	for i := range seafarers {
		MustAddGrant(t, s, activeGrant(fmt.Sprintf("sf-%d", i), "gr_1", int64(60*(i+1))))
	}
	var g errgroup.Group
	for round := range 10 {
		for i := range seafarers {
			g.Go(func() error {
				sf := fmt.Sprintf("sf-%d", i)
				a, err := s.Allowance(ctx, sf)
				if err != nil {
					return err
				}
				if a.SeafarerID != sf || a.RemainingSeconds != int64(60*(i+1)) || len(a.Grants) != 1 {
					return fmt.Errorf("round %d: %s got %+v", round, sf, a)
				}
				return nil
			})
		}
	}
	require.NoError(t, g.Wait())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Allowance(cancelled, "sf-0")
	require.ErrorIs(t, err, context.Canceled, "a caller that gives up is answered at once")
}

// The debit script prices overage and covered time in Lua; the rule's one
// home is billing.PricePerStartedIncrement, and the two must agree.
func TestDebitScriptPricesPerStartedIncrementAsBillingDoes(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	cny := func(minor int64) billing.Money { return billing.Money{Minor: minor, Currency: "CNY"} }
	for i, tc := range []struct {
		name             string
		granted          int64 // seconds of quota held; the rest of billable is overage
		billable         int64
		increment        int64 // 0: the usage carries none
		overage, welfare billing.Money
	}{
		{"all covered, whole increments", 600, 120, 60, cny(150), cny(30)},
		{"all covered, a started increment", 600, 121, 60, cny(150), cny(30)},
		{"all overage, one second", 0, 1, 60, cny(150), cny(30)},
		{"split inside an increment", 90, 150, 60, cny(150), cny(30)},
		{"split on an increment's edge", 60, 180, 60, cny(499), cny(300)},
		{"six-second increments", 100, 245, 6, cny(15), cny(3)},
		{"one-second increments", 7, 11, 1, cny(2), cny(1)},
		{"an hour's increment", 3599, 7201, 3600, cny(9000), cny(4000)},
		{"no increment given: the default", 30, 95, 0, cny(150), cny(30)},
		{"nothing billable", 600, 0, 60, cny(150), cny(30)},
		{"free overage", 0, 61, 60, cny(0), cny(30)},
	} {
		sf := "sf-price-" + strconv.Itoa(i)
		t.Run(tc.name, func(t *testing.T) {
			if tc.granted > 0 {
				MustAddGrant(t, s, activeGrant(sf, "gr_"+sf, tc.granted))
			}
			u := voiceCall(sf, "call-"+sf, meterNow.Add(-time.Minute), tc.billable)
			u.Increment, u.OveragePrice, u.WholesalePrice = tc.increment, tc.overage, tc.welfare
			e := MustDebit(t, s, u).Entry

			incr := tc.increment
			if incr == 0 {
				incr = billing.DefaultIncrement
			}
			covered := min(tc.granted, tc.billable)
			require.Equal(t, covered, e.CoveredSeconds)
			require.Equal(t, tc.billable-covered, e.OverageSeconds)
			require.Equal(t, billing.PricePerStartedIncrement(tc.billable-covered, incr, tc.overage), e.OverageAmount, "overage amount")
			require.NotNil(t, e.WelfareCost)
			require.Equal(t, billing.PricePerStartedIncrement(covered, incr, tc.welfare), *e.WelfareCost, "welfare cost")
		})
	}
}

// Each draw of a debit carries its share of the welfare cost, at the
// increment the call was rated with: every started increment of covered
// time is charged to the draw it starts in, so the shares add up to the
// cost, and a repeat answered from the pending record carries the same.
func TestEachDrawCarriesItsShareOfTheWelfareCostAtTheCallsIncrement(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{DedupeWindow: meterDay})
	cny := func(minor int64) billing.Money { return billing.Money{Minor: minor, Currency: "CNY"} }
	for i, tc := range []struct {
		name      string
		increment int64 // 0: the usage carries none
		wholesale int64
		want      []int64 // per draw: 40 s of pr_a, then 50 s of pr_b
	}{
		{"a minute's increment", 60, 30, []int64{30, 30}},
		{"half a minute's increment", 30, 30, []int64{60, 30}},
		{"one-second increments", 1, 2, []int64{80, 100}},
		{"no increment given: the default", 0, 30, []int64{30, 30}},
		{"no wholesale price", 60, 0, []int64{0, 0}},
	} {
		sf := "sf-welfare-" + strconv.Itoa(i)
		t.Run(tc.name, func(t *testing.T) {
			first := activeGrant(sf, "gr_a", 40)
			first.ProgrammeID, first.Priority = "pr_a", 0
			second := activeGrant(sf, "gr_b", 600)
			second.ProgrammeID = "pr_b"
			MustAddGrant(t, s, first)
			MustAddGrant(t, s, second)
			u := voiceCall(sf, "call-"+sf, meterNow.Add(-time.Minute), 90)
			u.Increment, u.WholesalePrice = tc.increment, cny(tc.wholesale)
			for _, r := range []*DebitResult{MustDebit(t, s, u), MustDebit(t, s, u)} {
				e := r.Entry
				require.Len(t, e.Draws, 2)
				require.Equal(t, []Draw{
					{GrantID: "gr_a", ProgrammeID: "pr_a", Seconds: 40, WelfareMinor: tc.want[0]},
					{GrantID: "gr_b", ProgrammeID: "pr_b", Seconds: 50, WelfareMinor: tc.want[1]},
				}, e.Draws, "duplicate %t", r.Duplicate)
				require.Equal(t, e.WelfareCost.Minor, tc.want[0]+tc.want[1], "the shares add up to the welfare cost")
			}
		})
	}
}
