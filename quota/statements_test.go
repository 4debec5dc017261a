package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/redistest"
)

// statementRegistry is billing.Registry over fixed companies; every
// programme and seafarer exists.
type statementRegistry struct{ crews map[string][]string }

func (statementRegistry) ProgrammeExists(context.Context, string) error { return nil }
func (statementRegistry) SeafarerExists(context.Context, string) error  { return nil }
func (r statementRegistry) CompanyCrew(_ context.Context, companyID string, fn func(string) error) error {
	crew, ok := r.crews[companyID]
	if !ok {
		return wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", companyID)
	}
	ids := append([]string(nil), crew...)
	sort.Strings(ids)
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// statementFixture is a store on a fresh prefix with its clock, the
// statements built over it and one company whose crew is listed.
type statementFixture struct {
	store      *RedisStore
	clock      *meterClock
	rdb        redis.UniversalClient
	prefix     string
	statements *billing.Statements
}

var (
	oct = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	nov = oct.AddDate(0, 1, 0)
	dec = oct.AddDate(0, 2, 0)
)

const statementCompany = "co_alpha"

func newStatementFixture(rdb redis.UniversalClient, prefix string, start time.Time, crew []string) *statementFixture {
	clock := &meterClock{t: start}
	// Nothing is trimmed from the ledger while a test runs: tests compare with it.
	opts := Options{DedupeWindow: 90 * meterDay, LedgerHorizon: 365 * meterDay}
	s := NewRedisStore(rdb, prefix, clock.Now, opts)
	return &statementFixture{store: s, clock: clock, rdb: rdb, prefix: prefix, statements: &billing.Statements{
		Store: s, Registry: statementRegistry{crews: map[string][]string{statementCompany: crew}}, Now: clock.Now, Currency: "CNY",
	}}
}

func MustStatementFixture(tb testing.TB, start time.Time, crew ...string) *statementFixture {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	return newStatementFixture(rdb, prefix, start, crew)
}

// otherReplica is a second store on the same data, as another wuyoud
// replica has: its own cache of closed periods.
func (f *statementFixture) otherReplica() *RedisStore {
	return NewRedisStore(f.rdb, f.prefix, f.clock.Now, f.store.opts)
}

// keepStale makes s keep the list of closed periods it has now.
func keepStale(s *RedisStore) { s.periods.at = time.Now().Add(24 * time.Hour) }

// meter applies calls the way the consumer does: debit, then index.
func meter(tb require.TestingT, s *RedisStore, us ...Usage) []*DebitResult {
	ctx := context.Background()
	rs, err := s.DebitBatch(ctx, us)
	require.NoError(tb, err)
	ds := make([]StatementDebit, len(rs))
	for i, r := range rs {
		ds[i] = StatementDebit{SeafarerID: us[i].SeafarerID, Entry: r.Entry}
	}
	require.NoError(tb, s.IndexStatements(ctx, ds))
	return rs
}

// call is a roaming voice call priced like the default tariff's Asia zone.
func call(seafarerID, eventID string, at time.Time, billable int64) Usage {
	u := voiceCall(seafarerID, eventID, at, billable)
	u.MSISDN = msisdnOf(seafarerID)
	u.OveragePrice = billing.Money{Minor: 99, Currency: "CNY"}
	u.WholesalePrice = billing.Money{Minor: 45, Currency: "CNY"}
	return u
}

func msisdnOf(seafarerID string) string {
	n := 0
	for _, c := range seafarerID {
		n = n*31 + int(c)
	}
	return fmt.Sprintf("+86138%08d", n%100_000_000)
}

func grantFrom(seafarerID, id, programmeID string, seconds int64, priority int) GrantInput {
	return GrantInput{ID: id, SeafarerID: seafarerID, ProgrammeID: programmeID, Seconds: seconds,
		EffectiveAt: oct.Add(-meterDay), ExpiresAt: oct.AddDate(1, 0, 0), Priority: priority}
}

func mustStatement(tb require.TestingT, f *statementFixture, period, payer string) *billing.Statement {
	p, err := billing.ParsePayer(payer)
	require.NoError(tb, err)
	st, err := f.statements.Statement(context.Background(), period, p)
	require.NoError(tb, err)
	return st
}

func mustStatementJSON(tb require.TestingT, f *statementFixture, period, payer string) string {
	b, err := json.Marshal(mustStatement(tb, f, period, payer))
	require.NoError(tb, err)
	return string(b)
}

func mustClose(tb require.TestingT, f *statementFixture, period string) {
	st, err := f.statements.ClosePeriod(context.Background(), period)
	require.NoError(tb, err)
	require.Equal(tb, billing.PeriodClosed, st.Status)
}

// adjustment finds the line of a seafarer adjusting period, or fails.
func adjustment(tb testing.TB, st *billing.Statement, seafarerID, period string) billing.Line {
	tb.Helper()
	for _, l := range st.Lines {
		if l.SeafarerID == seafarerID && l.AdjustsPeriod == period {
			return l
		}
	}
	tb.Fatalf("%s of %s has no line of %s adjusting %s: %+v", st.Payer, st.Period, seafarerID, period, st.Lines)
	return billing.Line{}
}

func TestClosedStatementIsByteForByteIdenticalAfterLateCallsArriveAndTheyAdjustTheNextPeriod(t *testing.T) {
	f := MustStatementFixture(t, oct.Add(10*meterDay), "sf_1", "sf_2", "sf_3", "sf_4")
	const programme = "pg_welfare"
	for i, sf := range []string{"sf_1", "sf_2", "sf_3", "sf_4"} {
		MustAddGrant(t, f.store, grantFrom(sf, fmt.Sprintf("gr_%d", i), programme, 600, 1))
	}
	meter(t, f.store,
		call("sf_1", "cdr-oct-1", oct.Add(2*meterDay), 120),
		call("sf_1", "cdr-oct-2", oct.Add(3*meterDay), 180),
		call("sf_2", "cdr-oct-3", oct.Add(4*meterDay), 60))

	// Another replica read the period list before the close: its calls are
	// in flight while the close runs.
	inFlight := f.otherReplica()
	meter(t, inFlight, call("sf_2", "cdr-nov-warm", nov.Add(meterDay), 60))
	keepStale(inFlight)

	f.clock.Advance(25 * meterDay) // 5 November
	mustClose(t, f, "2026-10")
	payers := []string{"programme:" + programme, "company:" + statementCompany, "seafarer:sf_1", "seafarer:sf_2", "seafarer:sf_3", "seafarer:sf_4"}
	closed := map[string]string{}
	for _, p := range payers {
		closed[p] = mustStatementJSON(t, f, "2026-10", p)
	}
	st := mustStatement(t, f, "2026-10", "company:"+statementCompany)
	require.EqualValues(t, 3, st.Calls)
	require.EqualValues(t, 360, st.CoveredSeconds)
	require.Equal(t, billing.Money{Minor: 6 * 45, Currency: "CNY"}, st.WelfareCost)

	late := []Usage{
		call("sf_1", "cdr-late-1", oct.Add(30*meterDay), 240), // frozen by the close
		call("sf_3", "cdr-late-3", oct.Add(29*meterDay), 60),  // no October calls before
	}
	meter(t, f.store, late...)
	// The replica still believes October open: sf_2 is frozen, so the script
	// itself moves the call; sf_4 is not, so indexing moves its figures.
	rs := meter(t, inFlight, call("sf_2", "cdr-late-2", oct.Add(30*meterDay), 120), call("sf_4", "cdr-late-4", oct.Add(31*meterDay-time.Second), 600+60))
	require.Equal(t, "2026-11", rs[0].Entry.StatementPeriod, "the debit saw sf_2's October figures frozen")
	require.Equal(t, "2026-10", rs[1].Entry.StatementPeriod, "the debit wrote October: indexing moved it")

	for _, p := range payers {
		require.Equal(t, closed[p], mustStatementJSON(t, f, "2026-10", p), "closed statement of %s changed", p)
	}

	company := mustStatement(t, f, "2026-11", "company:"+statementCompany)
	for sf, want := range map[string]billing.Figures{
		"sf_1": {Calls: 1, BillableSeconds: 240, CoveredSeconds: 240, WelfareCost: billing.Money{Minor: 4 * 45, Currency: "CNY"}, OverageAmount: billing.Money{Currency: "CNY"}},
		"sf_2": {Calls: 1, BillableSeconds: 120, CoveredSeconds: 120, WelfareCost: billing.Money{Minor: 2 * 45, Currency: "CNY"}, OverageAmount: billing.Money{Currency: "CNY"}},
		"sf_3": {Calls: 1, BillableSeconds: 60, CoveredSeconds: 60, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}, OverageAmount: billing.Money{Currency: "CNY"}},
		"sf_4": {Calls: 1, BillableSeconds: 660, CoveredSeconds: 600, OverageSeconds: 60,
			WelfareCost: billing.Money{Minor: 10 * 45, Currency: "CNY"}, OverageAmount: billing.Money{Minor: 99, Currency: "CNY"}},
	} {
		require.Equal(t, want, adjustment(t, company, sf, "2026-10").Figures, "November adjustment of %s", sf)
	}
	// sf_2's own November call is a line of its own.
	require.Len(t, company.Lines, 5)

	seafarer4 := mustStatement(t, f, "2026-11", "seafarer:sf_4")
	require.Len(t, seafarer4.Lines, 1)
	require.Equal(t, "2026-10", seafarer4.Lines[0].AdjustsPeriod)
	require.Equal(t, "cdr-late-4", seafarer4.Lines[0].EventID)

	prog := mustStatement(t, f, "2026-11", "programme:"+programme)
	require.EqualValues(t, 240+120+60+600+60, prog.CoveredSeconds, "the programme's November: four adjustments and sf_2's own call")
	require.Equal(t, prog.CoveredSeconds, prog.BillableSeconds, "a programme pays only for covered time")
}

func TestCallMeteredBeforeACloseButIndexedAfterItIsMovedToTheNextPeriod(t *testing.T) {
	f := MustStatementFixture(t, oct.Add(28*meterDay), "sf_1")
	MustAddGrant(t, f.store, grantFrom("sf_1", "gr_1", "pg_a", 600, 1))
	ctx := context.Background()

	// The consumer debits, then crashes before indexing the debit.
	u := call("sf_1", "cdr-1", oct.Add(27*meterDay), 120)
	_, err := f.store.DebitBatch(ctx, []Usage{u})
	require.NoError(t, err)

	f.clock.Advance(5 * meterDay)
	mustClose(t, f, "2026-10")
	before := mustStatementJSON(t, f, "2026-10", "company:"+statementCompany)
	require.EqualValues(t, 0, mustStatement(t, f, "2026-10", "company:"+statementCompany).Calls,
		"the close did not see the debit: the closed statement does not count it")

	// The batch is redelivered: a duplicate, indexed this time.
	rs := meter(t, f.store, u)
	require.True(t, rs[0].Duplicate)
	require.Equal(t, before, mustStatementJSON(t, f, "2026-10", "company:"+statementCompany))

	nov := mustStatement(t, f, "2026-11", "company:"+statementCompany)
	require.EqualValues(t, 120, adjustment(t, nov, "sf_1", "2026-10").CoveredSeconds)
	require.EqualValues(t, 120, adjustment(t, mustStatement(t, f, "2026-11", "programme:pg_a"), "sf_1", "2026-10").CoveredSeconds)
	lines := mustStatement(t, f, "2026-11", "seafarer:sf_1").Lines
	require.Len(t, lines, 1)
	require.Equal(t, "2026-10", lines[0].AdjustsPeriod, "the ledger entry says where it is counted now")
}

func TestDebitGivenAStaleListOfClosedPeriodsLandsInTheFirstOpenPeriod(t *testing.T) {
	f := MustStatementFixture(t, oct.Add(10*meterDay), "sf_1")
	MustAddGrant(t, f.store, grantFrom("sf_1", "gr_1", "pg_a", 6000, 1))
	stale := f.otherReplica()
	meter(t, stale, call("sf_1", "cdr-oct", oct.Add(meterDay), 60))
	keepStale(stale)
	meter(t, f.store, call("sf_1", "cdr-nov", nov.Add(meterDay), 60))

	f.clock.Advance(60 * meterDay) // 9 December
	mustClose(t, f, "2026-10")
	mustClose(t, f, "2026-11")
	// stale still believes both open: October is frozen for sf_1, and so is
	// November, the period it would have moved the call to.
	rs := meter(t, stale, call("sf_1", "cdr-late", oct.Add(30*meterDay), 120))
	require.Equal(t, "2026-12", rs[0].Entry.StatementPeriod)
	require.Equal(t, "2026-10", rs[0].Entry.AdjustsPeriod)
	require.EqualValues(t, 120, adjustment(t, mustStatement(t, f, "2026-12", "company:"+statementCompany), "sf_1", "2026-10").CoveredSeconds)
}

func TestWelfareCostIsChargedPerStartedIncrementToTheProgrammeWhoseDrawStartsIt(t *testing.T) {
	f := MustStatementFixture(t, oct.Add(10*meterDay), "sf_1")
	MustAddGrant(t, f.store, grantFrom("sf_1", "gr_a", "pg_a", 30, 1))
	MustAddGrant(t, f.store, grantFrom("sf_1", "gr_b", "pg_b", 150, 2))

	// 120 s billable: 30 s from A, 90 s from B. Two started minutes of
	// covered time: the first starts in A's draw, the second in B's.
	rs := meter(t, f.store, call("sf_1", "cdr-1", oct.Add(meterDay), 120))
	require.Equal(t, &billing.Money{Minor: 90, Currency: "CNY"}, rs[0].Entry.WelfareCost)
	// 120 s billable: the last 60 s of B, then 60 s of overage.
	rs = meter(t, f.store, call("sf_1", "cdr-2", oct.Add(2*meterDay), 120))
	require.Equal(t, &billing.Money{Minor: 45, Currency: "CNY"}, rs[0].Entry.WelfareCost)
	require.Equal(t, billing.Money{Minor: 99, Currency: "CNY"}, rs[0].Entry.OverageAmount)

	a := mustStatement(t, f, "2026-10", "programme:pg_a")
	require.Equal(t, billing.Figures{Calls: 1, BillableSeconds: 30, CoveredSeconds: 30,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}}, a.Figures)
	b := mustStatement(t, f, "2026-10", "programme:pg_b")
	require.Equal(t, billing.Figures{Calls: 2, BillableSeconds: 150, CoveredSeconds: 150,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 90, Currency: "CNY"}}, b.Figures)
	company := mustStatement(t, f, "2026-10", "company:"+statementCompany)
	require.Equal(t, a.WelfareCost.Minor+b.WelfareCost.Minor, company.WelfareCost.Minor, "the programmes' shares add up to the calls' cost")
	require.Equal(t, billing.Figures{Calls: 2, BillableSeconds: 240, CoveredSeconds: 180, OverageSeconds: 60,
		OverageAmount: billing.Money{Minor: 99, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 135, Currency: "CNY"}}, company.Figures)
}

func TestClosingAPeriodTwiceChangesNothing(t *testing.T) {
	f := MustStatementFixture(t, oct.Add(10*meterDay), "sf_1")
	meter(t, f.store, call("sf_1", "cdr-1", oct.Add(meterDay), 60))
	f.clock.Advance(30 * meterDay)
	first, err := f.statements.ClosePeriod(context.Background(), "2026-10")
	require.NoError(t, err)
	require.EqualValues(t, 1, *first.Seafarers)
	f.clock.Advance(meterDay)
	again, err := f.statements.ClosePeriod(context.Background(), "2026-10")
	require.NoError(t, err)
	require.Equal(t, billing.PeriodClosed, again.Status)
	require.Equal(t, first.ClosedAt, again.ClosedAt)
	open, err := f.store.PeriodState(context.Background(), "2026-11")
	require.NoError(t, err)
	require.Equal(t, billing.PeriodOpen, open.Status)
}

// TestStatementTotalsEqualTheLedgerForAnyStreamOfCalls meters random
// streams of calls (repeated, late, from a replica with a stale list of
// closed periods, some indexed only on redelivery) while periods close,
// then checks every statement against the ledger: a seafarer's statement is
// the sum of the debits it counts; a company's lines are its seafarers'
// statements; a programme's is the sum of its draws, priced per started
// increment; each debit is counted in exactly one period; a closed
// period's statements never changed after its close.
func TestStatementTotalsEqualTheLedgerForAnyStreamOfCalls(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	var run atomic.Int64
	seafarers := []string{"sf_a", "sf_b", "sf_c"}
	programmes := []string{"pg_x", "pg_y"}
	end := time.Date(2027, 1, 20, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		f := newStatementFixture(rdb, fmt.Sprintf("%s:%d", prefix, run.Add(1)), oct.Add(meterDay), seafarers)
		replica := f.otherReplica()
		ctx := context.Background()
		for i := range rapid.IntRange(1, 6).Draw(rt, "grants") {
			sf := rapid.SampledFrom(seafarers).Draw(rt, "grant seafarer")
			_, _, err := f.store.AddGrant(ctx, GrantInput{
				ID: fmt.Sprintf("gr_%d", i), SeafarerID: sf, ProgrammeID: rapid.SampledFrom(programmes).Draw(rt, "programme"),
				Seconds: 30 * rapid.Int64Range(1, 20).Draw(rt, "grant halves"), Priority: rapid.IntRange(0, 2).Draw(rt, "priority"),
				EffectiveAt: oct, ExpiresAt: oct.AddDate(0, 4, 0),
			})
			require.NoError(rt, err)
		}
		var sent []Usage      // every call sent, to repeat some
		var unindexed []Usage // debited, never indexed yet (a crash)
		frozen := map[string]map[string]string{}
		closedSet := map[string]bool{}
		for step := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0: // time passes, once the consumer has restarted and Kafka
				// has redelivered what it had not committed
				for _, u := range unindexed {
					meter(rt, f.store, u)
				}
				unindexed = nil
				if f.clock.Now().Before(end) {
					f.clock.Advance(time.Duration(rapid.IntRange(1, 20).Draw(rt, "days")) * meterDay)
				}
			case 1: // close a period that has ended
				now := f.clock.Now()
				for _, p := range periodsUntil(now) {
					if _, end, _ := billing.PeriodBounds(p); !end.After(now) && !closedSet[p] {
						mustClose(rt, f, p)
						closedSet[p] = true
						frozen[p] = map[string]string{}
						for _, payer := range statementPayers(seafarers, programmes) {
							frozen[p][payer] = mustStatementJSON(rt, f, p, payer)
						}
						break
					}
				}
			case 2: // a repeat of an earlier call (the consumer sends one older
				// than the dedupe window to the late topic instead)
				var recent []Usage
				for _, u := range sent {
					if u.CallTime.After(f.clock.Now().Add(-f.store.DedupeWindow())) {
						recent = append(recent, u)
					}
				}
				if len(recent) > 0 {
					meter(rt, f.store, rapid.SampledFrom(recent).Draw(rt, "repeat"))
				}
			default: // a call, up to 20 days old
				at := f.clock.Now().Add(-time.Duration(rapid.IntRange(0, 20*24).Draw(rt, "hours ago")) * time.Hour)
				u := call(rapid.SampledFrom(seafarers).Draw(rt, "seafarer"), fmt.Sprintf("cdr-%d", step),
					maxTime(at, oct), 60*rapid.Int64Range(0, 8).Draw(rt, "minutes"))
				u.WholesalePrice.Minor = rapid.SampledFrom([]int64{45, 90}).Draw(rt, "wholesale")
				sent = append(sent, u)
				switch rapid.IntRange(0, 3).Draw(rt, "path") {
				case 0: // through a replica whose list of closed periods may be stale
					meter(rt, replica, u)
				case 1: // debited, then the consumer crashes before indexing
					_, err := f.store.DebitBatch(ctx, []Usage{u})
					require.NoError(rt, err)
					unindexed = append(unindexed, u)
				default:
					meter(rt, f.store, u)
				}
			}
		}
		for _, u := range unindexed {
			meter(rt, f.store, u)
		}

		wholesale := map[string]int64{}
		for _, u := range sent {
			wholesale[u.EventID] = u.WholesalePrice.Minor
		}
		applied := 0
		debitsIn := map[string]map[string][]*LedgerEntry{} // by statement period and seafarer
		for _, p := range periodsUntil(f.clock.Now()) {
			debitsIn[p] = map[string][]*LedgerEntry{}
		}
		for _, sf := range seafarers {
			for _, e := range readWholeLedger(rt, f.store, sf, 100) {
				if e.Kind != KindDebit {
					continue
				}
				applied++
				require.NotEmpty(rt, e.StatementPeriod, "%s is counted somewhere", e.ID)
				require.NotNil(rt, debitsIn[e.StatementPeriod], "%s counted in %s", e.ID, e.StatementPeriod)
				debitsIn[e.StatementPeriod][sf] = append(debitsIn[e.StatementPeriod][sf], e)
				require.Equal(rt, startedIncrements(e.CoveredSeconds)*wholesale[e.EventID], e.WelfareCost.Minor, "welfare cost of %s", e.ID)
				if e.AdjustsPeriod != "" {
					require.Equal(rt, billing.PeriodOf(*e.CallTime), e.AdjustsPeriod)
					require.Greater(rt, e.StatementPeriod, e.AdjustsPeriod)
				} else {
					require.Equal(rt, billing.PeriodOf(*e.CallTime), e.StatementPeriod)
				}
			}
		}
		counted := int64(0)
		for _, p := range periodsUntil(f.clock.Now()) {
			company := mustStatement(rt, f, p, "company:"+statementCompany)
			counted += company.Calls
			byLine := map[string]billing.Figures{}
			for _, l := range company.Lines {
				byLine[l.SeafarerID+"/"+l.AdjustsPeriod] = l.Figures
			}
			lines := 0
			for _, sf := range seafarers {
				st := mustStatement(rt, f, p, "seafarer:"+sf)
				var want billing.Figures
				perAdjusted := map[string]billing.Figures{}
				for _, e := range debitsIn[p][sf] {
					fig := figuresOf(e)
					require.NoError(rt, want.Add(fig))
					a := perAdjusted[e.AdjustsPeriod]
					require.NoError(rt, a.Add(fig))
					perAdjusted[e.AdjustsPeriod] = a
				}
				require.Equal(rt, withCurrency(want, "CNY"), st.Figures, "%s statement of %s equals its debits in the ledger", sf, p)
				require.Len(rt, st.Lines, int(want.Calls))
				lines += len(perAdjusted)
				for adjusted, fig := range perAdjusted {
					require.Equal(rt, withCurrency(fig, "CNY"), byLine[sf+"/"+adjusted], "company line of %s adjusting %q in %s", sf, adjusted, p)
				}
			}
			require.Len(rt, company.Lines, lines, "company lines of %s: one per seafarer and adjusted period", p)
			for _, g := range programmes {
				st := mustStatement(rt, f, p, "programme:"+g)
				var want billing.Figures
				for _, e := range allOf(debitsIn[p]) {
					covered, welfare := programmeShare(e, g, wholesale[e.EventID])
					if covered > 0 {
						want.Calls++
						want.CoveredSeconds += covered
						want.BillableSeconds += covered
						want.WelfareCost.Minor += welfare
					}
				}
				require.Equal(rt, withCurrency(want, "CNY"), st.Figures, "programme %s statement of %s equals its draws", g, p)
				var lines billing.Figures
				for _, l := range st.Lines {
					require.NoError(rt, lines.Add(l.Figures))
				}
				require.Equal(rt, st.Figures, withCurrency(lines, "CNY"), "programme statement is the sum of its seafarers' lines")
			}
			for payer, js := range frozen[p] {
				require.Equal(rt, js, mustStatementJSON(rt, f, p, payer), "closed statement of %s for %s changed", p, payer)
			}
		}
		require.EqualValues(rt, applied, counted, "every debit is counted in exactly one period")
	})
}

// periodsUntil lists the periods from October 2026 to the one of now.
func periodsUntil(now time.Time) []string {
	var out []string
	for p := oct; !p.After(now); p = p.AddDate(0, 1, 0) {
		out = append(out, billing.PeriodOf(p))
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func allOf(m map[string][]*LedgerEntry) []*LedgerEntry {
	var out []*LedgerEntry
	for _, es := range m {
		out = append(out, es...)
	}
	return out
}

func statementPayers(seafarers, programmes []string) []string {
	out := []string{"company:" + statementCompany}
	for _, sf := range seafarers {
		out = append(out, "seafarer:"+sf)
	}
	for _, g := range programmes {
		out = append(out, "programme:"+g)
	}
	return out
}

func startedIncrements(seconds int64) int64 { return (seconds + 59) / 60 }

func figuresOf(e *LedgerEntry) billing.Figures {
	return billing.Figures{Calls: 1, BillableSeconds: e.BillableSeconds, CoveredSeconds: e.CoveredSeconds,
		OverageSeconds: e.OverageSeconds, OverageAmount: e.OverageAmount, WelfareCost: *e.WelfareCost}
}

// programmeShare is what a debit's draws took from programme g and their
// welfare cost: each started minute of covered time is charged to the
// programme whose draw starts it.
func programmeShare(e *LedgerEntry, g string, price int64) (covered, welfare int64) {
	drawn := int64(0)
	for _, d := range e.Draws {
		before := startedIncrements(drawn)
		drawn += d.Seconds
		if d.ProgrammeID == g {
			covered += d.Seconds
			welfare += (startedIncrements(drawn) - before) * price
		}
	}
	return covered, welfare
}

func TestReconciliationFindsExactlyTheInjectedDifferences(t *testing.T) {
	f := MustStatementFixture(t, nov.Add(20*meterDay))
	ctx := context.Background()
	var seafarers []string
	for i := range 60 {
		sf := fmt.Sprintf("sf_%02d", i)
		seafarers = append(seafarers, sf)
		if i%2 == 0 {
			MustAddGrant(t, f.store, grantFrom(sf, "gr_"+sf, "pg_a", 300, 1))
		}
	}
	// The carrier's truth: what each MSISDN made in November.
	truth := map[string]*billing.SettlementRow{}
	n := 0
	add := func(u Usage, r *DebitResult) {
		if billing.PeriodOf(u.CallTime) != "2026-11" {
			return
		}
		row := truth[u.MSISDN]
		if row == nil {
			row = &billing.SettlementRow{MSISDN: u.MSISDN}
			truth[u.MSISDN] = row
		}
		row.Calls++
		row.BillableSeconds += r.Entry.BillableSeconds
		row.CoveredSeconds += r.Entry.CoveredSeconds
	}
	for i, sf := range seafarers {
		for j := range i%4 + 1 {
			n++
			u := call(sf, fmt.Sprintf("cdr-%d", n), nov.Add(time.Duration(i*7+j*13)*time.Hour), int64(60*(j+1)))
			if i == 7 && j > 0 { // sf_07 changed number mid-month
				u.MSISDN = "+8613999999907"
			}
			add(u, meter(t, f.store, u)[0])
		}
	}
	// An October call metered in November belongs to October's settlement,
	// and so does one metered after October closed.
	add(call("sf_01", "cdr-oct", oct.Add(30*meterDay), 60), meter(t, f.store, call("sf_01", "cdr-oct", oct.Add(30*meterDay), 60))[0])
	mustClose(t, f, "2026-10")
	meter(t, f.store, call("sf_03", "cdr-oct-late", oct.Add(29*meterDay), 60))
	require.Len(t, truth, 61)

	msisdns := make([]string, 0, len(truth))
	for m := range truth {
		msisdns = append(msisdns, m)
	}
	sort.Strings(msisdns)
	var csv strings.Builder
	csv.WriteString("covered_seconds,msisdn,calls,billable_seconds,note\n")
	missingInCarrier := map[string]bool{msisdns[3]: true, msisdns[30]: true, msisdns[59]: true}
	changed := map[string]billing.Difference{
		msisdns[5]:  {MSISDN: msisdns[5], Field: "calls", Wuyou: truth[msisdns[5]].Calls, Carrier: truth[msisdns[5]].Calls + 1},
		msisdns[11]: {MSISDN: msisdns[11], Field: "billable_seconds", Wuyou: truth[msisdns[11]].BillableSeconds, Carrier: truth[msisdns[11]].BillableSeconds + 60},
		msisdns[40]: {MSISDN: msisdns[40], Field: "covered_seconds", Wuyou: truth[msisdns[40]].CoveredSeconds, Carrier: 0},
	}
	if truth[msisdns[40]].CoveredSeconds == 0 {
		changed[msisdns[40]] = billing.Difference{MSISDN: msisdns[40], Field: "covered_seconds", Wuyou: 0, Carrier: 60}
	}
	for _, m := range msisdns {
		if missingInCarrier[m] {
			continue
		}
		r := *truth[m]
		if d, ok := changed[m]; ok {
			switch d.Field {
			case "calls":
				r.Calls = d.Carrier
			case "billable_seconds":
				r.BillableSeconds = d.Carrier
			case "covered_seconds":
				r.CoveredSeconds = d.Carrier
				if r.BillableSeconds < r.CoveredSeconds {
					r.BillableSeconds = r.CoveredSeconds
					changed[m+"/billable"] = billing.Difference{MSISDN: m, Field: "billable_seconds", Wuyou: truth[m].BillableSeconds, Carrier: r.BillableSeconds}
				}
			}
		}
		fmt.Fprintf(&csv, "%d,%s,%d,%d,ok\n", r.CoveredSeconds, strings.TrimPrefix(m, "+"), r.Calls, r.BillableSeconds)
	}
	csv.WriteString("60,+8613700000001,1,60,\n")   // the carrier has calls Wuyou never saw
	csv.WriteString("0,+8613700000002,2,120,\n")   // and a second one
	csv.WriteString("0,+8613700000002,2,120,\n")   // a repeated row
	csv.WriteString("ten,+8613700000003,1,60,\n")  // a bad figure
	csv.WriteString("\"bad,+8613700000004,1,60\n") // broken quoting runs to the end

	rep, err := f.statements.Reconcile(ctx, "2026-11", strings.NewReader(csv.String()))
	require.NoError(t, err)
	var wantMissing []billing.SettlementRow
	for _, m := range msisdns {
		if missingInCarrier[m] {
			wantMissing = append(wantMissing, *truth[m])
		}
	}
	require.Equal(t, wantMissing, rep.MissingInCarrier)
	require.Equal(t, []billing.SettlementRow{{MSISDN: "+8613700000001", Calls: 1, BillableSeconds: 60, CoveredSeconds: 60},
		{MSISDN: "+8613700000002", Calls: 2, BillableSeconds: 120}}, rep.MissingInWuyou)
	var wantDiffs []billing.Difference
	for _, d := range changed {
		wantDiffs = append(wantDiffs, d)
	}
	require.ElementsMatch(t, wantDiffs, rep.Differences)
	require.EqualValues(t, len(truth)-len(missingInCarrier)-3, rep.Matched)
	require.EqualValues(t, 3, rep.InvalidRowCount)
	require.Equal(t, "msisdn repeats an earlier row", rep.InvalidRows[0].Message)
	require.Equal(t, len(truth)-len(missingInCarrier)+3, rep.InvalidRows[0].Row, "rows are counted without the header")

	var wuyou billing.SettlementTotals
	for _, r := range truth {
		wuyou.MSISDNs++
		wuyou.Calls += r.Calls
		wuyou.BillableSeconds += r.BillableSeconds
		wuyou.CoveredSeconds += r.CoveredSeconds
	}
	require.Equal(t, wuyou, rep.Totals.Wuyou)
	require.EqualValues(t, len(truth)-len(missingInCarrier)+2, rep.Totals.Carrier.MSISDNs)

	octRep, err := f.statements.Reconcile(ctx, "2026-10", strings.NewReader("msisdn,calls,billable_seconds,covered_seconds\n"))
	require.NoError(t, err)
	require.Len(t, octRep.MissingInCarrier, 2, "October's settlement has October's calls, late ones included")
}
