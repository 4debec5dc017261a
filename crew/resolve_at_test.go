package crew

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
)

// MustAttribute resolves calls with SeafarerIDsAt and checks each against
// want (seafarer ids, "" for nobody).
func MustAttribute(tb testing.TB, s *PGStore, calls []MSISDNAt, want []string) {
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

func MustChangeMSISDN(tb testing.TB, s *PGStore, id, msisdn string) {
	tb.Helper()
	if _, err := s.UpdateSeafarer(context.Background(), id, SeafarerUpdate{MSISDN: &msisdn}); err != nil {
		tb.Fatalf("change MSISDN of %s to %s: %v", id, msisdn, err)
	}
}

func TestACallMadeBeforeANumberChangeGoesToTheOldHolder(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	co := MustCompany(t, s, "AT1")
	a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1))) // Monday 10:00
	clock.Advance(24 * time.Hour)
	MustChangeMSISDN(t, s, a.ID, msisdn(2)) // Tuesday 10:00
	clock.Advance(48 * time.Hour)           // the Monday call arrives on Thursday

	MustAttribute(t, s,
		[]MSISDNAt{{msisdn(1), epoch.Add(time.Hour)}, {msisdn(1), epoch.Add(24*time.Hour - time.Nanosecond)}},
		[]string{a.ID, a.ID})
}

func TestACallMadeAfterANumberChangeGoesToTheNewNumbersHolder(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	co := MustCompany(t, s, "AT2")
	a := MustEnrol(t, s, co.ID, enrolment("A1", msisdn(1)))
	clock.Advance(24 * time.Hour)
	MustChangeMSISDN(t, s, a.ID, msisdn(2))
	clock.Advance(24 * time.Hour)

	MustAttribute(t, s,
		[]MSISDNAt{{msisdn(2), epoch.Add(24 * time.Hour)}, {msisdn(2), epoch.Add(30 * time.Hour)}, {msisdn(1), epoch.Add(30 * time.Hour)}},
		[]string{a.ID, a.ID, ""})
}

func TestACallFromANumberReassignedToAnotherSeafarerIsAttributedByCallTime(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
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
}

func TestACallBeforeTheFirstEnrolmentOfANumberGoesToItsFirstHolder(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
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
}

func TestACallInAGapAfterANumberWasGivenUpGoesToNobody(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
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

func TestAttributionByCallTimeMatchesAModelOfHoldingPeriods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One database for every run: each run's book numbers, MSISDNs and
	// registration number are its own.
	pool, counter := MustCountedPool(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		books := []string{fmt.Sprintf("P1-%d", run), fmt.Sprintf("P2-%d", run), fmt.Sprintf("P3-%d", run)}
		numbers := []string{msisdn(10*run + 1), msisdn(10*run + 2), msisdn(10*run + 3), msisdn(10*run + 4)}
		never := msisdn(10*run + 5)
		clock := &testClock{t: epoch}
		s := NewPGStore(pool, clock.Now)
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

		counter.reset()
		got, err := s.SeafarerIDsAt(ctx, calls)
		if err != nil {
			rt.Fatal(err)
		}
		if err := counter.one(); err != nil {
			rt.Fatal(err)
		}
		for i, c := range calls {
			if want := m.owner(c.MSISDN, c.At); got[i] != want {
				rt.Fatalf("call from %s at %s attributed to %q, want %q (periods %+v)", c.MSISDN, c.At.Format(time.RFC3339Nano), got[i], want, m.periods[c.MSISDN])
			}
		}
	})
}
