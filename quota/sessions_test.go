package quota

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// openCall opens a voice session of sf for requested seconds.
func openCall(t *testing.T, s *RedisStore, sf, id string, requested int64) *SessionGrant {
	t.Helper()
	g, err := s.OpenSession(context.Background(), SessionOpen{SessionID: id, SeafarerID: sf, Requested: requested,
		Call: SessionCall{MSISDN: "+8613800000001", Type: billing.TypeVoice, Unit: billing.UnitSeconds, CallTime: meterNow,
			VisitedCountry: "SG", CalledNumber: "+861012345678"}})
	require.NoError(t, err)
	return g
}

// sessionUsage is a session's terminate (or, with a carrier source, the
// carrier's record of the call) for seconds billable.
func sessionUsage(sf, sessionID string, seconds int64) Usage {
	u := voiceCall(sf, "", meterNow, seconds)
	u.CallID = sessionID
	return u
}

func terminate(t *testing.T, s *RedisStore, sf, id string, seconds int64) (*DebitResult, *SessionCharge) {
	t.Helper()
	r, ch, err := s.TerminateSession(context.Background(), sessionUsage(sf, id, seconds))
	require.NoError(t, err)
	return r, ch
}

// cdr applies the carrier's record of a session's call.
func cdr(t *testing.T, s *RedisStore, sf, sessionID, eventID string, seconds int64) *DebitResult {
	t.Helper()
	u := sessionUsage(sf, sessionID, seconds)
	u.EventID = eventID
	return MustDebit(t, s, u)
}

func reservedSeconds(t *testing.T, s *RedisStore, sf string) int64 {
	t.Helper()
	a, err := s.Allowance(context.Background(), sf)
	require.NoError(t, err)
	for _, b := range a.Balances {
		if b.Unit == billing.UnitSeconds {
			return b.Reserved
		}
	}
	return 0
}

// Granted units are not available to another call: a second session gets
// only what the first left, a CDR of another call drawing while a session
// holds the rest goes to overage, and the answers say final when nothing is
// left beyond the grant.
func TestSessionsReserveWhatNoOtherCallMayTake(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 600))

	a := openCall(t, s, "sf_1", "call-a", 400)
	require.Equal(t, &SessionGrant{SessionID: "call-a", Granted: 400, ValiditySeconds: 300, FinalAction: FinalContinueAsOverage}, a)
	b := openCall(t, s, "sf_1", "call-b", 400)
	require.Equal(t, int64(200), b.Granted, "only what call-a left")
	require.True(t, b.Final, "nothing is left beyond it")
	require.Equal(t, int64(600), reservedSeconds(t, s, "sf_1"))

	// A CDR of a call without a session finds nothing it may draw.
	r := MustDebit(t, s, voiceCall("sf_1", "cdr-other", meterNow, 120))
	require.Zero(t, r.Entry.CoveredSeconds, "every second is reserved")
	require.Equal(t, int64(120), r.Entry.OverageSeconds)
	require.Equal(t, map[string]int64{"gr_1": 600}, remainingByGrant(t, s, "sf_1"))

	// Opening again answers as the first time, reserving nothing more.
	again := openCall(t, s, "sf_1", "call-a", 10)
	require.Equal(t, a, again)
	require.Equal(t, int64(600), reservedSeconds(t, s, "sf_1"))
}

// A reservation nobody renews lapses: a crashed switch does not lock
// minutes. An update renews it.
func TestAnAbandonedReservationIsReleasedWhenItsValidityRunsOut(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 600))
	openCall(t, s, "sf_1", "call-a", 600)
	openCall(t, s, "sf_1", "call-kept", 0)
	require.Equal(t, int64(0), openCall(t, s, "sf_1", "call-b", 60).Granted)

	clock.Advance(301 * time.Second)
	require.Zero(t, reservedSeconds(t, s, "sf_1"), "call-a lapsed")
	require.Equal(t, int64(60), openCall(t, s, "sf_1", "call-c", 60).Granted)

	// An update keeps a session alive: call-c reports 30 s and asks 60 more.
	g, err := s.UpdateSession(context.Background(), "call-c", 30, 60, 0)
	require.NoError(t, err)
	require.Equal(t, int64(60), g.Granted)
	clock.Advance(200 * time.Second)
	require.Equal(t, int64(90), reservedSeconds(t, s, "sf_1"), "30 used and 60 granted, renewed 200 s ago")
}

// Updates: used is the usage so far; the session holds it (up to what there
// is) and a new grant; a repeat answers the same; used going back is
// refused; an unknown session is not found; after the terminate, 409.
func TestSessionUpdates(t *testing.T) {
	ctx := context.Background()
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 300))
	openCall(t, s, "sf_1", "call-a", 120)

	g, err := s.UpdateSession(ctx, "call-a", 120, 120, 0)
	require.NoError(t, err)
	require.Equal(t, int64(120), g.Granted)
	require.False(t, g.Final)
	g, err = s.UpdateSession(ctx, "call-a", 240, 120, 0)
	require.NoError(t, err)
	require.Equal(t, int64(60), g.Granted, "240 used of 300: 60 left")
	require.True(t, g.Final)
	again, err := s.UpdateSession(ctx, "call-a", 240, 120, 0)
	require.NoError(t, err)
	require.Equal(t, g, again, "a retried update gets the same answer")

	_, err = s.UpdateSession(ctx, "call-a", 100, 60, 0)
	require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "used never goes back: %v", err)
	_, err = s.UpdateSession(ctx, "call-nobody-opened", 1, 1, 0)
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))

	_, ch := terminate(t, s, "sf_1", "call-a", 300)
	require.Equal(t, &SessionCharge{Charged: 300, Covered: 300}, ch)
	_, err = s.UpdateSession(ctx, "call-a", 400, 60, 0)
	require.Equal(t, wuyou.ECONFLICT, wuyou.ErrorCode(err), "update after terminate: %v", err)
}

// A terminate charges the call once, draws from the grants and releases
// the reservation; used beyond the grants is overage; terminating again
// charges nothing and answers the same.
func TestTerminateChargesOnce(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 300))
	openCall(t, s, "sf_1", "call-a", 300)

	r, ch := terminate(t, s, "sf_1", "call-a", 420)
	require.Equal(t, &SessionCharge{Charged: 420, Covered: 300, Overage: 120}, ch)
	require.NotNil(t, r.Entry)
	require.Equal(t, KindDebit, r.Entry.Kind)
	require.Equal(t, DebitEntryID(SessionSource, "call-a"), r.Entry.ID)
	require.Equal(t, [][2]any{{"gr_1", int64(300)}}, drawsOf(r.Entry))
	require.Equal(t, int64(300), r.Entry.OverageAmount.Minor, "two started minutes at 150")
	require.Zero(t, reservedSeconds(t, s, "sf_1"))

	r2, ch2 := terminate(t, s, "sf_1", "call-a", 999)
	require.True(t, r2.Duplicate)
	require.Equal(t, ch, ch2, "a repeat, whatever it reports, answers the first charge")
	require.Equal(t, map[string]int64{"gr_1": 0}, remainingByGrant(t, s, "sf_1"))

	_, _, err := s.TerminateSession(context.Background(), sessionUsage("sf_1", "call-never", 60))
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))
}

// The carrier's record of a terminated session's call settles it: the same
// amount is an adjust of zero, a longer one draws the difference, a shorter
// one gives covered time back, overage first. None charges the call twice,
// and a redelivered record changes nothing.
func TestTheCarriersRecordAfterTerminateSettlesTheDifference(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		cdrSeconds                 int64
		billable, covered, overage int64
		remaining                  int64
	}{
		{"same", 240, 0, 0, 0, 60},
		{"longer", 360, 120, 60, 60, 0},
		{"shorter, overage first", 120, -120, -120, 0, 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := MustMeterStore(t, Options{})
			MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 300))
			openCall(t, s, "sf_1", "call-a", 300)
			_, ch := terminate(t, s, "sf_1", "call-a", 240)
			require.Equal(t, &SessionCharge{Charged: 240, Covered: 240}, ch)

			r := cdr(t, s, "sf_1", "call-a", "cdr-1", tc.cdrSeconds)
			e := r.Entry
			require.Equal(t, KindAdjust, e.Kind)
			require.Equal(t, "a_"+DebitEntryID(roamingCDRs, "cdr-1")[2:], e.ID)
			require.Equal(t, [3]int64{tc.billable, tc.covered, tc.overage}, [3]int64{e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds})
			require.Equal(t, map[string]int64{"gr_1": tc.remaining}, remainingByGrant(t, s, "sf_1"))

			again := MustDebit(t, s, func() Usage { u := sessionUsage("sf_1", "call-a", tc.cdrSeconds); u.EventID = "cdr-1"; return u }())
			require.True(t, again.Duplicate)
			require.Equal(t, map[string]int64{"gr_1": tc.remaining}, remainingByGrant(t, s, "sf_1"))

			// The terminate, repeated, answers the call's charge as settled.
			_, ch = terminate(t, s, "sf_1", "call-a", 240)
			require.Equal(t, tc.cdrSeconds, ch.Charged)
			require.Equal(t, 240+tc.covered, ch.Covered)
		})
	}
}

// A shorter record after a terminate that went into overage takes the
// overage back before any covered time.
func TestAShorterRecordTakesOverageBackFirst(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 120))
	openCall(t, s, "sf_1", "call-a", 120)
	_, ch := terminate(t, s, "sf_1", "call-a", 300)
	require.Equal(t, &SessionCharge{Charged: 300, Covered: 120, Overage: 180}, ch)

	e := cdr(t, s, "sf_1", "call-a", "cdr-1", 60).Entry
	require.Equal(t, [3]int64{-240, -60, -180}, [3]int64{e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds})
	require.Equal(t, [][2]any{{"gr_1", int64(-60)}}, drawsOf(e))
	require.Equal(t, int64(-450), e.OverageAmount.Minor, "three started minutes of overage at 150 fewer")
	require.Equal(t, map[string]int64{"gr_1": 60}, remainingByGrant(t, s, "sf_1"))
}

// The carrier's record before the terminate charges the call as any call
// and closes the session; the terminate then charges nothing more and
// answers the record's charge; the reservation is released.
func TestTheCarriersRecordBeforeTerminateChargesTheCall(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 300))
	openCall(t, s, "sf_1", "call-a", 300)

	e := cdr(t, s, "sf_1", "call-a", "cdr-1", 180).Entry
	require.Equal(t, KindDebit, e.Kind)
	require.Equal(t, int64(180), e.CoveredSeconds, "its own reservation does not hold against it")
	require.Zero(t, reservedSeconds(t, s, "sf_1"))

	r, ch := terminate(t, s, "sf_1", "call-a", 240)
	require.Nil(t, r.Entry, "nothing more is charged")
	require.Equal(t, &SessionCharge{Charged: 180, Covered: 180}, ch)
	require.Equal(t, map[string]int64{"gr_1": 120}, remainingByGrant(t, s, "sf_1"))
}

// Many calls of one seafarer open sessions at once: together they are never
// granted more than the balance.
func TestConcurrentSessionsNeverGrantMoreThanTheBalance(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 1000))
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := s.OpenSession(context.Background(), SessionOpen{SessionID: fmt.Sprintf("call-%d", i), SeafarerID: "sf_1",
				Requested: 60, Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
			if !assertNoError(t, err) {
				return
			}
			mu.Lock()
			total += g.Granted
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, int64(1000), total, "64 calls asked 3,840 s of 1,000")
	require.Equal(t, int64(1000), reservedSeconds(t, s, "sf_1"))
}

func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// A session id opened for one seafarer cannot be opened for another.
func TestASessionIDBelongsToOneSeafarer(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	openCall(t, s, "sf_1", "call-a", 60)
	_, err := s.OpenSession(context.Background(), SessionOpen{SessionID: "call-a", SeafarerID: "sf_2", Requested: 60,
		Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
	require.Equal(t, wuyou.ECONFLICT, wuyou.ErrorCode(err))
}

// A call that draws nothing (at home) is granted what it asks and holds
// nothing.
func TestAFreeSessionHoldsNothing(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 60))
	g, err := s.OpenSession(context.Background(), SessionOpen{SessionID: "home", SeafarerID: "sf_1", Requested: 600, Free: true,
		Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
	require.NoError(t, err)
	require.Equal(t, int64(600), g.Granted)
	require.False(t, g.Final)
	require.Zero(t, reservedSeconds(t, s, "sf_1"))
}

// The sessions hash does not grow with every call: a session the carrier's
// record settled goes an hour later, an abandoned one a day after it
// lapsed, each when another session is opened; a terminated one waiting
// for its record stays.
func TestSettledAndAbandonedSessionsArePruned(t *testing.T) {
	s, clock, rdb := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 3000))
	openCall(t, s, "sf_1", "settled", 60)
	terminate(t, s, "sf_1", "settled", 60)
	cdr(t, s, "sf_1", "settled", "cdr-1", 60)
	openCall(t, s, "sf_1", "waiting", 60)
	terminate(t, s, "sf_1", "waiting", 60)
	openCall(t, s, "sf_1", "abandoned", 60)
	sessions := func() []string {
		ks, err := rdb.HKeys(context.Background(), s.keys("sf_1").sessions).Result()
		require.NoError(t, err)
		return ks
	}

	clock.Advance(2 * time.Hour)
	openCall(t, s, "sf_1", "next", 60)
	require.ElementsMatch(t, []string{"waiting", "abandoned", "next"}, sessions(), "the settled one went")

	clock.Advance(25 * time.Hour)
	openCall(t, s, "sf_1", "last", 60)
	require.ElementsMatch(t, []string{"waiting", "last"}, sessions(), "lapsed a day ago: gone; waiting for its record: kept")
	ttl, err := rdb.TTL(context.Background(), s.keys("sf_1").sessions).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 720*time.Hour, "kept as long as its record could still come")
}

// A session reserves from the grants its call's time falls in, as its
// terminate draws them: a call timed before a pack took effect is granted
// nothing from it (it would be overage at the terminate).
func TestASessionReservesFromTheGrantsActiveAtItsCallTime(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	later := activeGrant("sf_1", "gr_later", 600)
	later.EffectiveAt = meterNow.Add(time.Hour)
	MustAddGrant(t, s, later)
	g, err := s.OpenSession(context.Background(), SessionOpen{SessionID: "early", SeafarerID: "sf_1", Requested: 120,
		Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow.Add(2 * time.Hour)}})
	require.NoError(t, err)
	require.Equal(t, int64(120), g.Granted, "the call's time is inside the pack")
	g, err = s.OpenSession(context.Background(), SessionOpen{SessionID: "before", SeafarerID: "sf_1", Requested: 120,
		Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
	require.NoError(t, err)
	require.Zero(t, g.Granted, "the pack takes effect an hour after the call")
	require.True(t, g.Final)
	u, err := s.UpdateSession(context.Background(), "before", 60, 60, 0)
	require.NoError(t, err)
	require.Zero(t, u.Granted, "an update goes by the call's time too")
}

// A session id is part of the session's paths: one with a slash, a
// question mark, a hash or a space could never be updated or terminated,
// so it is refused at the open, naming the field.
func TestASessionIDThePathsCannotNameIsRefused(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	for _, id := range []string{"a/b", "a?b", "a#b", "a b", "", "a\x00b"} {
		_, err := s.OpenSession(context.Background(), SessionOpen{SessionID: id, SeafarerID: "sf_1", Requested: 60,
			Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
		var we *wuyou.Error
		require.ErrorAs(t, err, &we, "%q", id)
		require.Equal(t, wuyou.EINVALID, we.Code)
		require.Equal(t, "session_id", we.Fields[0].Field)
	}
}

// A programme may name its own final action: it is stored, read back and
// given for the grant a final session grant ends on, the one drawn last
// (the highest priority number). Anything but the two actions is refused.
func TestAProgrammesFinalActionIsTheOneOfTheGrantDrawnLast(t *testing.T) {
	ctx := context.Background()
	env := MustProgrammeStore(t)
	in := validProgrammeInput()
	in.FinalAction = billing.FinalTerminate
	p, err := env.CreateProgramme(ctx, in)
	require.NoError(t, err)
	require.Equal(t, billing.FinalTerminate, p.FinalAction)
	got, err := env.Programme(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, billing.FinalTerminate, got.FinalAction)
	a, err := env.FinalAction(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, billing.FinalTerminate, a)
	plain := MustProgramme(t, env, 0)
	a, err = env.FinalAction(ctx, plain.ID)
	require.NoError(t, err)
	require.Empty(t, a, "left to the tariff")
	in.FinalAction = "hang_up"
	_, err = env.CreateProgramme(ctx, in)
	require.Equal(t, []string{"final_action"}, fieldsOf(t, err))

	s, _, _ := MustMeterStore(t, Options{})
	first := activeGrant("sf_1", "gr_first", 60)
	first.ProgrammeID = plain.ID
	last := activeGrant("sf_1", "gr_last", 60)
	last.ProgrammeID, last.Priority = p.ID, 5
	MustAddGrant(t, s, first)
	MustAddGrant(t, s, last)
	g := openCall(t, s, "sf_1", "call-a", 60)
	require.False(t, g.Final)
	require.Empty(t, g.FinalProgramme)
	g = openCall(t, s, "sf_1", "call-b", 600)
	require.True(t, g.Final)
	require.Equal(t, p.ID, g.FinalProgramme, "the call ends on the grant drawn last")
}

// A guarded store whose Redis lacks the hot state (lost, being rebuilt)
// reserves and charges nothing: what it would read is not the balance.
func TestSessionsWaitForTheHotState(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{HotStateGuard: true})
	_, err := s.OpenSession(context.Background(), SessionOpen{SessionID: "call-a", SeafarerID: "sf_1", Requested: 60,
		Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow}})
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err), "open: %v", err)
	_, _, err = s.TerminateSession(context.Background(), sessionUsage("sf_1", "call-a", 60))
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err), "terminate: %v", err)

	require.NoError(t, s.MarkHotState(context.Background(), HotMark{RebuiltAt: meterNow, By: "empty"}))
	MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 600))
	g := openCall(t, s, "sf_1", "call-a", 60)
	require.Equal(t, int64(60), g.Granted, "the same session id opens once the state is there")
}
