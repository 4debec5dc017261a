package crew

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/redistest"
)

// roundTrips is a go-redis hook counting what a client sends: pipelines and
// single commands.
type roundTrips struct{ pipelines, commands, pipelined atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.pipelined.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *roundTrips) reset() {
	h.pipelines.Store(0)
	h.commands.Store(0)
	h.pipelined.Store(0)
}

// MustAttribute resolves calls with SeafarerIDsAt and checks each against
// want (seafarer ids, "" for nobody).
func MustAttribute(tb testing.TB, s registry, calls []MSISDNAt, want []string) {
	tb.Helper()
	got, err := s.SeafarerIDsAt(context.Background(), calls)
	if err != nil {
		tb.Fatalf("SeafarerIDsAt: %v", err)
	}
	if len(got) != len(calls) {
		tb.Fatalf("SeafarerIDsAt returned %d ids for %d calls", len(got), len(calls))
	}
	for i := range calls {
		if got[i] != want[i] {
			tb.Errorf("call from %s at %s attributed to %q, want %q", calls[i].MSISDN, calls[i].At.Format(time.RFC3339), got[i], want[i])
		}
	}
}

func MustChangeMSISDN(tb testing.TB, s registry, id, msisdn string) {
	tb.Helper()
	if _, err := s.UpdateSeafarer(context.Background(), id, SeafarerUpdate{MSISDN: &msisdn}); err != nil {
		tb.Fatalf("change MSISDN of %s to %s: %v", id, msisdn, err)
	}
}

func TestACallMadeBeforeANumberChangeGoesToTheOldHolder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s registry, clock *testClock) {
		co := MustCompany(t, s, "AT1")
		a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1))) // Monday 10:00
		clock.Advance(24 * time.Hour)
		MustChangeMSISDN(t, s, a.ID, msisdn(2)) // Tuesday 10:00
		clock.Advance(48 * time.Hour)           // the Monday call arrives on Thursday

		MustAttribute(t, s,
			[]MSISDNAt{{msisdn(1), epoch.Add(time.Hour)}, {msisdn(1), epoch.Add(24*time.Hour - time.Nanosecond)}},
			[]string{a.ID, a.ID})
	})
}

func TestACallMadeAfterANumberChangeGoesToTheNewNumbersHolder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s registry, clock *testClock) {
		co := MustCompany(t, s, "AT2")
		a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
		clock.Advance(24 * time.Hour)
		MustChangeMSISDN(t, s, a.ID, msisdn(2))
		clock.Advance(24 * time.Hour)

		MustAttribute(t, s,
			[]MSISDNAt{{msisdn(2), epoch.Add(24 * time.Hour)}, {msisdn(2), epoch.Add(30 * time.Hour)}, {msisdn(1), epoch.Add(30 * time.Hour)}},
			[]string{a.ID, a.ID, ""})
	})
}

func TestACallFromANumberReassignedToAnotherSeafarerIsAttributedByCallTime(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s registry, clock *testClock) {
		co := MustCompany(t, s, "AT3")
		a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1))) // Monday
		clock.Advance(24 * time.Hour)
		MustChangeMSISDN(t, s, a.ID, msisdn(2)) // Tuesday: A gives up msisdn(1)
		clock.Advance(24 * time.Hour)
		b := MustEnrol(t, s, co.ID, enrolment("B1", msisdn(1))) // Wednesday: B takes it
		clock.Advance(24 * time.Hour)

		MustAttribute(t, s,
			[]MSISDNAt{
				{msisdn(1), epoch.Add(2 * time.Hour)},  // Monday: A's
				{msisdn(1), epoch.Add(30 * time.Hour)}, // Tuesday: nobody's
				{msisdn(1), epoch.Add(50 * time.Hour)}, // Wednesday: B's
				{msisdn(2), epoch.Add(50 * time.Hour)}, // A's new number
			},
			[]string{a.ID, "", b.ID, a.ID})
	})
}

func TestACallBeforeTheFirstEnrolmentOfANumberGoesToItsFirstHolder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s registry, clock *testClock) {
		co := MustCompany(t, s, "AT4")
		a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
		clock.Advance(24 * time.Hour)
		MustChangeMSISDN(t, s, a.ID, msisdn(2))
		clock.Advance(24 * time.Hour)
		b := MustEnrol(t, s, co.ID, enrolment("B1", msisdn(1)))
		clock.Advance(time.Hour)
		c := MustEnrol(t, s, co.ID, enrolment("C1", msisdn(3)))

		// Held as unregistered until the number was first enrolled, then
		// applied to its first holder, even after the number moved on to B;
		// the first holder is per number (A took msisdn(2) only on day two).
		MustAttribute(t, s,
			[]MSISDNAt{{msisdn(1), epoch.Add(-72 * time.Hour)}, {msisdn(1), clock.Now()}, {msisdn(2), epoch}, {msisdn(3), epoch}},
			[]string{a.ID, b.ID, a.ID, c.ID})
	})
}

func TestACallInAGapAfterANumberWasGivenUpGoesToNobody(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s registry, clock *testClock) {
		co := MustCompany(t, s, "AT5")
		a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
		clock.Advance(24 * time.Hour)
		MustChangeMSISDN(t, s, a.ID, msisdn(2))
		released := clock.Now()
		clock.Advance(24 * time.Hour)
		b := MustEnrol(t, s, co.ID, enrolment("B1", msisdn(1)))

		MustAttribute(t, s,
			[]MSISDNAt{
				{msisdn(1), released},                          // the period is [from, to): to is the next holder's or nobody's
				{msisdn(1), released.Add(12 * time.Hour)},      // between A and B
				{msisdn(1), b.CreatedAt.Add(-time.Nanosecond)}, // just before B
				{msisdn(1), b.CreatedAt},                       // B from the instant of enrolment
				{msisdn(4), epoch},                             // never enrolled
				{"not-a-number", epoch},                        // not an MSISDN
			},
			[]string{"", "", "", b.ID, "", ""})

		// After the last holder gives the number up, too.
		clock.Advance(time.Hour)
		MustChangeMSISDN(t, s, b.ID, msisdn(3))
		MustAttribute(t, s, []MSISDNAt{{msisdn(1), clock.Now().Add(time.Minute)}}, []string{""})
	})
}

func TestABatchOfManyMSISDNsResolvesInOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.MustClient(t)
	clock := &testClock{t: epoch}
	s := NewRedisStore(rdb, prefix, clock.Now)
	co := MustCompany(t, s, "AT6")

	const crew = 40
	ids := make([]string, crew)
	for i := range crew {
		ids[i] = MustEnrol(t, s, co.ID, enrolment(fmt.Sprintf("BK%d", i), msisdn(i))).ID
		clock.Advance(time.Minute)
	}
	changed := clock.Now()
	for i := 0; i < crew; i += 2 { // every other seafarer moves to a new number
		MustChangeMSISDN(t, s, ids[i], msisdn(1000+i))
	}
	clock.Advance(time.Hour)

	var calls []MSISDNAt
	var want []string
	for k := 0; len(calls) < MaxListLimit; k++ {
		i := k % crew
		before, after := changed.Add(-time.Second), changed.Add(time.Minute)
		calls = append(calls, MSISDNAt{msisdn(i), before}, MSISDNAt{msisdn(1000 + i), after})
		want = append(want, ids[i], "")
		if i%2 == 0 { // moved: the new number is theirs
			want[len(want)-1] = ids[i]
		}
	}

	counter := &roundTrips{}
	rdb.AddHook(counter)
	MustAttribute(t, s, calls, want)
	if p, c := counter.pipelines.Load(), counter.commands.Load(); p != 1 || c != 0 {
		t.Fatalf("%d calls took %d pipelines and %d single commands, want one pipeline", len(calls), p, c)
	}
	// Each MSISDN is read once, however many calls it made.
	if n, distinct := counter.pipelined.Load(), int64(2*crew); n > 2*distinct {
		t.Fatalf("read %d commands for %d MSISDNs, want at most 2 each", n, distinct)
	}
}

func TestANumberChangeCutShortBeforeTheIndexWasConfirmedStillAttributesByCallTime(t *testing.T) {
	t.Parallel()
	s, clock, rdb := MustStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "AT7")
	a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
	clock.Advance(24 * time.Hour)
	MustChangeMSISDN(t, s, a.ID, msisdn(2))
	moved := clock.Now()
	clock.Advance(time.Hour)

	// The request died after the profile script, before confirming: both
	// entries are left as the marks made before it.
	rdb.HSet(ctx, s.holdersKey(msisdn(1)), holdingField(a.ID, epoch), "?"+formatTime(moved))
	rdb.HSet(ctx, s.holdersKey(msisdn(2)), holdingField(a.ID, moved), "?")
	MustAttribute(t, s,
		[]MSISDNAt{{msisdn(1), moved.Add(-time.Minute)}, {msisdn(1), moved.Add(time.Minute)}, {msisdn(2), moved.Add(time.Minute)}},
		[]string{a.ID, "", a.ID})

	// A change that died after its marks and before the profile script
	// changed nothing: the seafarer still holds the number it had.
	clock.Advance(time.Hour)
	never := clock.Now()
	change, err := s.startNumberChange(ctx, a.ID, msisdn(2), msisdn(3), never)
	if err != nil {
		t.Fatal(err)
	}
	if err := change.begin(ctx, s); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, s.msisdnKey(msisdn(3)), a.ID+" 1700000000000", 0) // its claim, too
	MustAttribute(t, s,
		[]MSISDNAt{{msisdn(2), never.Add(time.Minute)}, {msisdn(3), never.Add(time.Minute)}, {msisdn(3), never.Add(-time.Minute)}},
		[]string{a.ID, "", ""})
}

func TestAHoldersIndexMissingFallsBackToTheClaimAndTheHistoryAndReEnrolmentRepairsIt(t *testing.T) {
	t.Parallel()
	s, clock, rdb := MustStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "AT8")
	a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
	clock.Advance(24 * time.Hour)
	MustChangeMSISDN(t, s, a.ID, msisdn(2))
	moved := clock.Now()
	clock.Advance(time.Hour)

	// As for a seafarer enrolled before the index existed.
	rdb.Del(ctx, s.holdersKey(msisdn(1)), s.holdersKey(msisdn(2)))
	calls := []MSISDNAt{{msisdn(2), moved.Add(time.Minute)}, {msisdn(2), moved.Add(-time.Minute)}}
	MustAttribute(t, s, calls, []string{a.ID, a.ID})

	if _, created, err := s.Enrol(ctx, co.ID, enrolment("A1", msisdn(2))); err != nil || created {
		t.Fatalf("re-enrol: created %v, %v", created, err)
	}
	// The period of the number A gave up is back, with no claim to find it by.
	MustAttribute(t, s,
		[]MSISDNAt{{msisdn(1), moved.Add(-time.Minute)}, {msisdn(1), moved.Add(time.Minute)}},
		[]string{a.ID, ""})
	if n := rdb.HLen(ctx, s.holdersKey(msisdn(1))).Val(); n != 1 {
		t.Fatalf("holders of %s: %d entries after re-enrolment, want 1", msisdn(1), n)
	}
}

func TestAnEnrolmentRefusedAfterItsMarkLeavesNoHolder(t *testing.T) {
	t.Parallel()
	s, _, rdb := MustStore(t)
	ctx := context.Background()
	// An opening mark whose seafarer was never stored: settled to nobody.
	rdb.HSet(ctx, s.holdersKey(msisdn(1)), holdingField("sf_01JGHOST00000000000000000", epoch), "?")
	MustAttribute(t, s, []MSISDNAt{{msisdn(1), epoch.Add(time.Hour)}, {msisdn(1), epoch.Add(-time.Hour)}}, []string{"", ""})
}

// heldPeriod is the model's record of one holding: who, from, until (zero
// while held).
type heldPeriod struct {
	id       string
	from, to time.Time
}

// holdingsModel is what the registry should remember of who held which
// number when.
type holdingsModel struct {
	periods map[string][]heldPeriod // MSISDN → periods in the order they began
	number  map[string]string       // book number → current MSISDN
	id      map[string]string       // book number → seafarer id
}

func (m *holdingsModel) holder(msisdn string) string {
	for _, p := range m.periods[msisdn] {
		if p.to.IsZero() {
			return p.id
		}
	}
	return ""
}

func (m *holdingsModel) move(book, msisdn string, at time.Time) {
	if old, ok := m.number[book]; ok {
		ps := m.periods[old]
		for i := range ps {
			if ps[i].id == m.id[book] && ps[i].to.IsZero() {
				ps[i].to = at
			}
		}
	}
	m.number[book] = msisdn
	m.periods[msisdn] = append(m.periods[msisdn], heldPeriod{id: m.id[book], from: at})
}

// owner: who held msisdn at t; before anyone did, its first holder; else nobody.
func (m *holdingsModel) owner(msisdn string, t time.Time) string {
	ps := m.periods[msisdn]
	for _, p := range ps {
		if !t.Before(p.from) && (p.to.IsZero() || t.Before(p.to)) {
			return p.id
		}
	}
	if len(ps) > 0 && t.Before(ps[0].from) {
		return ps[0].id
	}
	return ""
}

// modelWorld is one store the model test drives: a new registry for each
// rapid run (with the run's clock) and a count of its round trips.
type modelWorld struct {
	store func(run int, clock *testClock) registry
	trips interface {
		reset()
		one() error // nil when exactly one round trip was made since reset
	}
}

func (h *roundTrips) one() error {
	if p, c := h.pipelines.Load(), h.commands.Load(); p != 1 || c != 0 {
		return fmt.Errorf("took %d pipelines and %d single commands, want one pipeline: an index entry was left unconfirmed", p, c)
	}
	return nil
}

func TestAttributionByCallTimeMatchesAModelOfHoldingPeriods(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rdb, prefix := redistest.MustClient(t)
		counter := &roundTrips{}
		rdb.AddHook(counter)
		checkAttributionAgainstModel(t, modelWorld{
			store: func(run int, clock *testClock) registry {
				return NewRedisStore(rdb, fmt.Sprintf("%s:%d", prefix, run), clock.Now)
			},
			trips: counter,
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pool, counter := MustCountedPool(t)
		checkAttributionAgainstModel(t, modelWorld{
			// One database for every run: each run's book numbers,
			// MSISDNs and registration number are its own.
			store: func(_ int, clock *testClock) registry { return NewPGStore(pool, clock.Now) },
			trips: counter,
		})
	})
}

func checkAttributionAgainstModel(t *testing.T, w modelWorld) {
	ctx := context.Background()
	run := 0

	rapid.Check(t, func(rt *rapid.T) {
		run++
		books := []string{fmt.Sprintf("P1-%d", run), fmt.Sprintf("P2-%d", run), fmt.Sprintf("P3-%d", run)}
		numbers := []string{msisdn(10*run + 1), msisdn(10*run + 2), msisdn(10*run + 3), msisdn(10*run + 4)}
		never := msisdn(10*run + 5)
		clock := &testClock{t: epoch}
		s := w.store(run, clock)
		co, err := s.CreateCompany(ctx, "Model Lines", fmt.Sprintf("REG-M-%d", run))
		if err != nil {
			rt.Fatal(err)
		}
		m := &holdingsModel{periods: map[string][]heldPeriod{}, number: map[string]string{}, id: map[string]string{}}

		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for range steps {
			clock.Advance(time.Duration(rapid.IntRange(1, 48*60).Draw(rt, "minutes")) * time.Minute)
			book := rapid.SampledFrom(books).Draw(rt, "book")
			number := rapid.SampledFrom(numbers).Draw(rt, "number")
			_, enrolled := m.id[book]
			patch := enrolled && rapid.Bool().Draw(rt, "patch")
			taken := m.holder(number) != "" && m.holder(number) != m.id[book]

			var sf *Seafarer
			if patch {
				sf, err = s.UpdateSeafarer(ctx, m.id[book], SeafarerUpdate{MSISDN: &number})
			} else {
				sf, _, err = s.Enrol(ctx, co.ID, enrolment(book, number))
			}
			if taken {
				if wuyou.ErrorCode(err) != wuyou.ECONFLICT {
					rt.Fatalf("%s taking %s held by %s: %v, want a conflict", book, number, m.holder(number), err)
				}
				continue
			}
			if err != nil {
				rt.Fatalf("%s taking %s: %v", book, number, err)
			}
			m.id[book] = sf.ID
			if m.number[book] != number {
				m.move(book, number, clock.Now())
			}
		}

		// Calls at random times, and at every period's edges.
		var calls []MSISDNAt
		for _, number := range append(numbers, never) {
			for _, p := range m.periods[number] {
				for _, at := range []time.Time{p.from, p.to} {
					if !at.IsZero() {
						calls = append(calls, MSISDNAt{number, at}, MSISDNAt{number, at.Add(-time.Nanosecond)})
					}
				}
			}
		}
		end := clock.Now().Add(time.Hour)
		for range rapid.IntRange(1, 40).Draw(rt, "calls") {
			minutes := rapid.IntRange(-120, int(end.Sub(epoch)/time.Minute)).Draw(rt, "call minute")
			calls = append(calls, MSISDNAt{rapid.SampledFrom(numbers).Draw(rt, "call number"), epoch.Add(time.Duration(minutes) * time.Minute)})
		}

		w.trips.reset()
		got, err := s.SeafarerIDsAt(ctx, calls)
		if err != nil {
			rt.Fatal(err)
		}
		if err := w.trips.one(); err != nil {
			rt.Fatal(err)
		}
		for i, c := range calls {
			if want := m.owner(c.MSISDN, c.At); got[i] != want {
				rt.Fatalf("call from %s at %s attributed to %q, want %q (periods %+v)", c.MSISDN, c.At.Format(time.RFC3339Nano), got[i], want, m.periods[c.MSISDN])
			}
		}
	})
}
