package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/pgtest"
)

// pgStatementFixture is a migrated database with the ledger, the
// statements over it and billing's statements built from them.
type pgStatementFixture struct {
	pool       *pgxpool.Pool
	ledger     *PGLedger
	store      *PGStatements
	clock      *meterClock
	statements *billing.Statements
}

func newPGStatementFixture(pool *pgxpool.Pool, now time.Time, crew []string) *pgStatementFixture {
	clock := &meterClock{t: now}
	store := NewPGStatements(pool, clock.Now)
	return &pgStatementFixture{pool: pool, ledger: NewPGLedger(pool), store: store, clock: clock,
		statements: &billing.Statements{Store: store, Now: clock.Now, Currency: "CNY",
			Registry: statementRegistry{crews: map[string][]string{statementCompany: crew}}}}
}

func MustPGStatementFixture(tb testing.TB, now time.Time, crew ...string) *pgStatementFixture {
	tb.Helper()
	return newPGStatementFixture(pgtest.MustPool(tb), now, crew)
}

// pgDebit is a debit priced like call(): 99 per started minute of overage,
// wholesale per started minute of covered time, the draws' shares given.
func pgDebit(seafarerID, eventID string, at time.Time, billable, wholesale int64, draws ...Draw) SeafarerEntry {
	at = at.UTC()
	covered := int64(0)
	for _, d := range draws {
		covered += d.Seconds
	}
	e := &LedgerEntry{
		ID: DebitEntryID(roamingCDRs, eventID), Kind: KindDebit, At: at.Add(time.Second), EventID: eventID,
		Source: roamingCDRs, Type: "carrier.usage.voice", MSISDN: msisdnOf(seafarerID), CallTime: &at,
		DurationSeconds: billable, BillableSeconds: billable, CoveredSeconds: covered, OverageSeconds: billable - covered,
		OverageAmount: billing.Money{Minor: startedIncrements(billable-covered) * 99, Currency: "CNY"},
		WelfareCost:   &billing.Money{Minor: startedIncrements(covered) * wholesale, Currency: "CNY"},
		CalledNumber:  "+861012345678", VisitedCountry: "SG", Draws: append([]Draw{}, draws...),
	}
	SplitWelfare(e, 60, billing.Money{Minor: wholesale, Currency: "CNY"})
	return SeafarerEntry{SeafarerID: seafarerID, Entry: e}
}

// pgAdjust is an adjust of a call made at callTime, applied at at: its
// billable difference, covered as the (signed) draws say, the rest overage,
// priced as pgDebit prices (signed per started minute); the draws'
// welfare shares left to the ledger.
func pgAdjust(seafarerID, eventID string, callTime, at time.Time, billable, wholesale int64, draws ...Draw) SeafarerEntry {
	callTime, at = callTime.UTC(), at.UTC()
	covered := int64(0)
	for _, d := range draws {
		covered += d.Seconds
	}
	signed := func(n, price int64) int64 {
		if n < 0 {
			return -startedIncrements(-n) * price
		}
		return startedIncrements(n) * price
	}
	e := &LedgerEntry{
		ID: "a_" + DebitEntryID(roamingCDRs, eventID)[2:], Kind: KindAdjust, At: at, EventID: eventID,
		Source: roamingCDRs, Type: "carrier.usage.voice", MSISDN: msisdnOf(seafarerID), CallTime: &callTime,
		DurationSeconds: max(billable, 0), BillableSeconds: billable, CoveredSeconds: covered, OverageSeconds: billable - covered,
		OverageAmount:   billing.Money{Minor: signed(billable-covered, 99), Currency: "CNY"},
		WelfareCost:     &billing.Money{Minor: signed(covered, wholesale), Currency: "CNY"},
		StatementPeriod: billing.PeriodOf(callTime), CalledNumber: "+861012345678", VisitedCountry: "SG",
		Draws: append([]Draw{}, draws...),
	}
	return SeafarerEntry{SeafarerID: seafarerID, Entry: e}
}

func mustAppend(tb require.TestingT, f *pgStatementFixture, entries ...SeafarerEntry) {
	require.NoError(tb, f.ledger.Append(context.Background(), entries))
}

func mustPGStatement(tb require.TestingT, f *pgStatementFixture, period, payer string) *billing.Statement {
	p, err := billing.ParsePayer(payer)
	require.NoError(tb, err)
	st, err := f.statements.Statement(context.Background(), period, p)
	require.NoError(tb, err)
	return st
}

func mustPGStatementJSON(tb require.TestingT, f *pgStatementFixture, period, payer string) string {
	b, err := json.Marshal(mustPGStatement(tb, f, period, payer))
	require.NoError(tb, err)
	return string(b)
}

func mustPGClose(tb require.TestingT, f *pgStatementFixture, period string) *billing.PeriodState {
	st, err := f.statements.ClosePeriod(context.Background(), period)
	require.NoError(tb, err)
	require.Equal(tb, billing.PeriodClosed, st.Status)
	return st
}

func TestPGWelfareCostIsChargedPerStartedIncrementToTheProgrammeWhoseDrawStartsIt(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, oct.Add(10*meterDay), "sf_1", "sf_2")
	// 120 s: 30 s from A, 90 s from B; the first minute starts in A's draw,
	// the second in B's. Then 60 s from B and 60 s of overage.
	mustAppend(t, f,
		pgDebit("sf_1", "cdr-1", oct.Add(meterDay), 120, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 30}, Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: 90}),
		pgDebit("sf_1", "cdr-2", oct.Add(2*meterDay), 120, 45, Draw{GrantID: "gr_b", ProgrammeID: "pg_b", Seconds: 60}))
	// The same split worked out by the ledger when the writer gave no shares.
	noShares := pgDebit("sf_2", "cdr-3", oct.Add(meterDay), 120, 45, Draw{GrantID: "gr_c", ProgrammeID: "pg_a", Seconds: 30}, Draw{GrantID: "gr_d", ProgrammeID: "pg_b", Seconds: 90})
	for i := range noShares.Entry.Draws {
		noShares.Entry.Draws[i].WelfareMinor = 0
	}
	mustAppend(t, f, noShares)

	a := mustPGStatement(t, f, "2026-10", "programme:pg_a")
	require.Equal(t, billing.Figures{Calls: 2, BillableSeconds: 60, CoveredSeconds: 60,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 90, Currency: "CNY"}}, a.Figures)
	b := mustPGStatement(t, f, "2026-10", "programme:pg_b")
	require.Equal(t, billing.Figures{Calls: 3, BillableSeconds: 240, CoveredSeconds: 240,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 135, Currency: "CNY"}}, b.Figures)
	company := mustPGStatement(t, f, "2026-10", "company:"+statementCompany)
	require.Equal(t, a.WelfareCost.Minor+b.WelfareCost.Minor, company.WelfareCost.Minor, "the programmes' shares add up to the calls' cost")
	require.Equal(t, billing.Figures{Calls: 3, BillableSeconds: 360, CoveredSeconds: 300, OverageSeconds: 60,
		OverageAmount: billing.Money{Minor: 99, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 225, Currency: "CNY"}}, company.Figures)

	used, err := f.store.ProgrammeSecondsUsed(context.Background(), "pg_b")
	require.NoError(t, err)
	require.EqualValues(t, 240, used)
}

func TestPGDebitOfAClosedPeriodIsAnAdjustmentInTheFirstOpenPeriodAndTheClosedStatementNeverChanges(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, oct.Add(10*meterDay), "sf_1", "sf_2")
	g := Draw{GrantID: "gr_1", ProgrammeID: "pg_a", Seconds: 60}
	mustAppend(t, f, pgDebit("sf_1", "cdr-oct", oct.Add(meterDay), 60, 45, g), pgDebit("sf_2", "cdr-nov", nov.Add(meterDay), 120, 45, g))
	f.clock.Advance(60 * meterDay) // 9 December
	first := mustPGClose(t, f, "2026-10")
	require.EqualValues(t, 1, *first.Seafarers)
	mustPGClose(t, f, "2026-11")
	payers := []string{"company:" + statementCompany, "programme:pg_a", "seafarer:sf_1", "seafarer:sf_2"}
	frozen := map[string]string{}
	for _, p := range payers {
		frozen[p] = mustPGStatementJSON(t, f, "2026-10", p) + mustPGStatementJSON(t, f, "2026-11", p)
	}

	late := pgDebit("sf_1", "cdr-late", oct.Add(30*meterDay), 120, 45, g)
	mustAppend(t, f, late)
	require.Equal(t, "2026-12", late.Entry.StatementPeriod, "October and November are closed: counted in December")
	require.Equal(t, "2026-10", late.Entry.AdjustsPeriod)
	for _, p := range payers {
		require.Equal(t, frozen[p], mustPGStatementJSON(t, f, "2026-10", p)+mustPGStatementJSON(t, f, "2026-11", p), "closed statements of %s", p)
	}
	dec := mustPGStatement(t, f, "2026-12", "company:"+statementCompany)
	require.Equal(t, []billing.Line{{SeafarerID: "sf_1", AdjustsPeriod: "2026-10", Figures: billing.Figures{Calls: 1, BillableSeconds: 120,
		CoveredSeconds: 60, OverageSeconds: 60, OverageAmount: billing.Money{Minor: 99, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 45, Currency: "CNY"}}}}, dec.Lines)
	calls := mustPGStatement(t, f, "2026-12", "seafarer:sf_1").Lines
	require.Len(t, calls, 1)
	require.Equal(t, "cdr-late", calls[0].EventID)
	require.Equal(t, "2026-10", calls[0].AdjustsPeriod)

	// Redelivered after yet another close, the debit keeps the statement its
	// first copy was counted in, and the caller is told so.
	f.clock.Advance(30 * meterDay)
	mustPGClose(t, f, "2026-12")
	again := pgDebit("sf_1", "cdr-late", oct.Add(30*meterDay), 120, 45, g)
	mustAppend(t, f, again, pgDebit("sf_2", "cdr-late-2", oct.Add(30*meterDay), 60, 45))
	require.Equal(t, "2026-12", again.Entry.StatementPeriod)
	require.Equal(t, "2026-10", again.Entry.AdjustsPeriod)
	require.EqualValues(t, 1, mustPGStatement(t, f, "2026-12", "company:"+statementCompany).Calls)
	require.EqualValues(t, 1, mustPGStatement(t, f, "2027-01", "company:"+statementCompany).Calls)

	// Reconciliation goes by call time, whatever statement counts the call.
	rep, err := f.statements.Reconcile(context.Background(), "2026-10", strings.NewReader("msisdn,calls,billable_seconds,covered_seconds\n"))
	require.NoError(t, err)
	require.Equal(t, billing.SettlementTotals{MSISDNs: 2, Calls: 3, BillableSeconds: 240, CoveredSeconds: 120}, rep.Totals.Wuyou)
}

func TestPGClosingAPeriodTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, oct.Add(10*meterDay), "sf_1")
	mustAppend(t, f, pgDebit("sf_1", "cdr-1", oct.Add(meterDay), 60, 45))
	f.clock.Advance(30 * meterDay)
	first := mustPGClose(t, f, "2026-10")
	require.EqualValues(t, 1, *first.Seafarers)
	f.clock.Advance(meterDay)
	again := mustPGClose(t, f, "2026-10")
	require.Equal(t, first.ClosedAt, again.ClosedAt)
	require.Equal(t, first.Seafarers, again.Seafarers)
	open, err := f.store.PeriodState(context.Background(), "2026-11")
	require.NoError(t, err)
	require.Equal(t, billing.PeriodOpen, open.Status)
}

func TestPGStatementsRefuseMalformedPeriodsAndIdsPostgreSQLCannotHold(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, oct.Add(10*meterDay), "sf_1")
	ctx := context.Background()
	mustAppend(t, f, pgDebit("sf_1", "cdr-1", oct.Add(meterDay), 60, 45, Draw{GrantID: "gr_1", ProgrammeID: "pg_a", Seconds: 60}))
	isInvalid := func(err error) {
		t.Helper()
		require.Error(t, err)
		require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "%v", err)
	}
	for _, period := range []string{"2026-13", "2026-1", "", "1999-12", "2026-10'; DROP TABLE ledger_entries; --"} {
		_, err := f.store.PeriodState(ctx, period)
		isInvalid(err)
		_, err = f.store.ClosePeriod(ctx, period)
		isInvalid(err)
		isInvalid(f.store.ProgrammeUsage(ctx, period, "pg_a", func(billing.SeafarerUsage) error { return nil }))
		_, err = f.store.SeafarersUsage(ctx, period, []string{"sf_1"})
		isInvalid(err)
		_, err = f.store.SeafarerCalls(ctx, period, "sf_1")
		isInvalid(err)
		isInvalid(f.store.UsageByMSISDN(ctx, period, func(billing.SettlementRow) error { return nil }))
	}
	_, err := f.store.ProgrammeSecondsUsed(ctx, "pg\x00a")
	isInvalid(err)
	isInvalid(f.store.ProgrammeUsage(ctx, "2026-10", "pg\xffa", func(billing.SeafarerUsage) error { return nil }))
	// Ids with JSON's and SQL's special characters are only ids.
	for _, id := range []string{`pg_a"}]`, `pg_a\`, "pg_a' OR 1=1 --", `%`} {
		used, err := f.store.ProgrammeSecondsUsed(ctx, id)
		require.NoError(t, err)
		require.Zero(t, used, id)
	}
	us, err := f.store.SeafarersUsage(ctx, "2026-10", []string{"sf\x00", "sf_1", "nobody"})
	require.NoError(t, err)
	require.Equal(t, []string{"sf\x00", "sf_1", "nobody"}, []string{us[0].SeafarerID, us[1].SeafarerID, us[2].SeafarerID})
	require.True(t, us[0].Period.IsZero())
	require.EqualValues(t, 1, us[1].Period.Calls)
	require.True(t, us[2].Period.IsZero())
	// fn's error stops the stream and is returned as it is.
	stop := fmt.Errorf("stop")
	require.ErrorIs(t, f.store.UsageByMSISDN(ctx, "2026-10", func(billing.SettlementRow) error { return stop }), stop)
	require.ErrorIs(t, f.store.ProgrammeUsage(ctx, "2026-10", "pg_a", func(billing.SeafarerUsage) error { return stop }), stop)
}

// TestPGCloseRacingAppendsCountsEveryDebitInExactlyOneStatement closes
// October while writers append October calls (and repeat some), and
// checks that each debit is counted exactly once, in October or as an
// adjustment of October in November; that what Append told each writer is
// what is stored; and that October's figures never change once
// ClosePeriod has returned.
func TestPGCloseRacingAppendsCountsEveryDebitInExactlyOneStatement(t *testing.T) {
	t.Parallel()
	const writers, batches, perBatch = 4, 12, 25
	var seafarers []string
	for i := range 20 {
		seafarers = append(seafarers, fmt.Sprintf("sf_%02d", i))
	}
	f := MustPGStatementFixture(t, nov.Add(2*meterDay), seafarers...)
	ctx := context.Background()
	g := Draw{GrantID: "gr", ProgrammeID: "pg_a", Seconds: 60}

	var mu sync.Mutex
	told := map[string]string{} // entry id -> statement period/adjusted period Append gave
	started := make(chan struct{}, writers*batches)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sent [][]SeafarerEntry
			for b := range batches {
				batch := make([]SeafarerEntry, 0, perBatch)
				for i := range perBatch {
					n := (w*batches+b)*perBatch + i
					at := oct.Add(time.Duration(n%(30*24)) * time.Hour)
					batch = append(batch, pgDebit(seafarers[n%len(seafarers)], "cdr-"+strconv.Itoa(n), at, 120, 45, g))
				}
				if b%4 == 3 && len(sent) > 0 { // a redelivery of an earlier batch with the new one
					for _, e := range sent[len(sent)-1] {
						c := *e.Entry
						c.StatementPeriod, c.AdjustsPeriod = "", ""
						batch = append(batch, SeafarerEntry{SeafarerID: e.SeafarerID, Entry: &c})
					}
				}
				if err := f.ledger.Append(ctx, batch); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, e := range batch {
					p := e.Entry.StatementPeriod + "/" + e.Entry.AdjustsPeriod
					if prev, ok := told[e.Entry.ID]; ok && prev != p {
						mu.Unlock()
						errs <- fmt.Errorf("%s was told %s, then %s", e.Entry.ID, prev, p)
						return
					}
					told[e.Entry.ID] = p
				}
				mu.Unlock()
				sent = append(sent, batch[:perBatch])
				started <- struct{}{}
			}
		}()
	}
	// Close once a quarter of the batches are in, with the rest in flight.
	for range writers * batches / 4 {
		<-started
	}
	mustPGClose(t, f, "2026-10")
	atClose := map[string]string{}
	for _, p := range []string{"company:" + statementCompany, "programme:pg_a", "seafarer:sf_03"} {
		atClose[p] = mustPGStatementJSON(t, f, "2026-10", p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	total := writers * batches * perBatch
	require.Len(t, told, total)
	october := mustPGStatement(t, f, "2026-10", "company:"+statementCompany)
	november := mustPGStatement(t, f, "2026-11", "company:"+statementCompany)
	counted, adjusting := 0, 0
	for _, id := range seafarers {
		for _, l := range mustPGStatement(t, f, "2026-10", "seafarer:"+id).Lines {
			require.Equal(t, "2026-10/", told[l.EntryID], "Append told the writer where %s is counted", l.EntryID)
			counted++
		}
		for _, l := range mustPGStatement(t, f, "2026-11", "seafarer:"+id).Lines {
			require.Equal(t, "2026-11/2026-10", told[l.EntryID], "Append told the writer where %s is counted", l.EntryID)
			counted++
			adjusting++
		}
	}
	require.Equal(t, total, counted, "every debit is counted in exactly one statement")
	require.EqualValues(t, total-adjusting, october.Calls)
	require.EqualValues(t, adjusting, november.Calls)
	for p, js := range atClose {
		require.Equal(t, js, mustPGStatementJSON(t, f, "2026-10", p), "October's statement of %s changed after its close", p)
	}
	t.Logf("%d debits: %d counted in October, %d adjust it in November", total, total-adjusting, adjusting)
}

// pgModelDebit is what the model knows of a stored debit.
type pgModelDebit struct {
	seafarer  string
	entry     LedgerEntry
	statement string
	adjusts   string
}

// TestPGStatementsEqualTheSumsOfTheDebitsStoredForAnyStreamOfEntries
// appends random debits (of several months, some repeated) while periods
// close, and checks every statement against a model: a seafarer's is its
// debits counted there; a company's lines are its seafarers' figures per
// adjusted period; a programme's is the sum of its shares; reconciliation
// is by call time; a programme's seconds used is every draw from it; a
// closed period's statements never change.
func TestPGStatementsEqualTheSumsOfTheDebitsStoredForAnyStreamOfEntries(t *testing.T) {
	pool := pgtest.MustPool(t)
	seafarers := []string{"sf_a", "sf_b", "sf_c"}
	programmes := []string{"pg_x", "pg_y"}
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		_, err := pool.Exec(ctx, "TRUNCATE ledger_entries, statement_periods")
		require.NoError(rt, err)
		f := newPGStatementFixture(pool, oct.Add(meterDay), seafarers)
		stored := map[string]*pgModelDebit{}
		var order []string
		closed := map[string]bool{}
		frozen := map[string]map[string]string{}
		for step := range rapid.IntRange(1, 25).Draw(rt, "steps") {
			switch rapid.IntRange(0, 5).Draw(rt, "action") {
			case 0:
				f.clock.Advance(time.Duration(rapid.IntRange(1, 25).Draw(rt, "days")) * meterDay)
			case 1: // close the first period that has ended and is open
				for _, p := range periodsUntil(f.clock.Now()) {
					if _, end, _ := billing.PeriodBounds(p); !end.After(f.clock.Now()) && !closed[p] {
						mustPGClose(rt, f, p)
						closed[p] = true
						frozen[p] = map[string]string{}
						for _, payer := range statementPayers(seafarers, programmes) {
							frozen[p][payer] = mustPGStatementJSON(rt, f, p, payer)
						}
						break
					}
				}
			default: // a batch of calls up to 40 days old, with repeats
				var batch []SeafarerEntry
				for i := range rapid.IntRange(1, 4).Draw(rt, "calls") {
					if len(order) > 0 && rapid.IntRange(0, 3).Draw(rt, "repeat") == 0 {
						m := stored[rapid.SampledFrom(order).Draw(rt, "repeated")]
						c := m.entry
						batch = append(batch, SeafarerEntry{SeafarerID: m.seafarer, Entry: &c})
						continue
					}
					at := f.clock.Now().Add(-time.Duration(rapid.IntRange(0, 40*24).Draw(rt, "hours ago")) * time.Hour)
					var draws []Draw
					for j := range rapid.IntRange(0, 3).Draw(rt, "draws") {
						pg := rapid.SampledFrom(append([]string{""}, programmes...)).Draw(rt, "programme")
						draws = append(draws, Draw{GrantID: fmt.Sprintf("gr_%d", j), ProgrammeID: pg, Seconds: rapid.Int64Range(1, 150).Draw(rt, "seconds")})
					}
					covered := int64(0)
					for _, d := range draws {
						covered += d.Seconds
					}
					billable := 60 * ((covered+59)/60 + rapid.Int64Range(0, 3).Draw(rt, "overage minutes"))
					e := pgDebit(rapid.SampledFrom(seafarers).Draw(rt, "seafarer"), fmt.Sprintf("cdr-%d-%d", step, i),
						maxTime(at, oct), billable, rapid.SampledFrom([]int64{45, 90}).Draw(rt, "wholesale"), draws...)
					batch = append(batch, e)
				}
				mustAppend(rt, f, batch...)
				for _, se := range batch {
					e := se.Entry
					own := billing.PeriodOf(*e.CallTime)
					m := stored[e.ID]
					if m == nil { // the model's choice: the first open period from the call's
						want := own
						for closed[want] {
							want = billing.NextPeriod(want)
						}
						m = &pgModelDebit{seafarer: se.SeafarerID, entry: *e, statement: want}
						if want != own {
							m.adjusts = own
						}
						stored[e.ID] = m
						order = append(order, e.ID)
					}
					require.Equal(rt, m.statement, e.StatementPeriod, "statement period Append gave %s", e.ID)
					require.Equal(rt, m.adjusts, e.AdjustsPeriod, "adjusted period Append gave %s", e.ID)
				}
			}
		}

		used := map[string]int64{}
		for _, m := range stored {
			for _, d := range m.entry.Draws {
				used[d.ProgrammeID] += d.Seconds
			}
		}
		for _, g := range programmes {
			n, err := f.store.ProgrammeSecondsUsed(ctx, g)
			require.NoError(rt, err)
			require.Equal(rt, used[g], n, "seconds used of %s", g)
		}
		for _, p := range periodsUntil(f.clock.Now()) {
			company := mustPGStatement(rt, f, p, "company:"+statementCompany)
			byLine := map[string]billing.Figures{}
			for _, l := range company.Lines {
				byLine[l.SeafarerID+"/"+l.AdjustsPeriod] = l.Figures
			}
			lines := 0
			for _, sf := range seafarers {
				var want billing.Figures
				perAdjusted := map[string]billing.Figures{}
				var wantCalls []string
				for _, id := range order {
					m := stored[id]
					if m.seafarer != sf || m.statement != p {
						continue
					}
					fig := figuresOf(&m.entry)
					require.NoError(rt, want.Add(fig))
					a := perAdjusted[m.adjusts]
					require.NoError(rt, a.Add(fig))
					perAdjusted[m.adjusts] = a
					wantCalls = append(wantCalls, m.entry.EventID)
				}
				st := mustPGStatement(rt, f, p, "seafarer:"+sf)
				require.Equal(rt, withCurrency(want, "CNY"), st.Figures, "%s statement of %s", sf, p)
				var gotCalls []string
				for _, l := range st.Lines {
					gotCalls = append(gotCalls, l.EventID)
				}
				require.ElementsMatch(rt, wantCalls, gotCalls, "%s calls in %s", sf, p)
				lines += len(perAdjusted)
				for adjusted, fig := range perAdjusted {
					require.Equal(rt, withCurrency(fig, "CNY"), byLine[sf+"/"+adjusted], "company line of %s adjusting %q in %s", sf, adjusted, p)
				}
			}
			require.Len(rt, company.Lines, lines, "company lines of %s", p)
			for _, g := range programmes {
				var want billing.Figures
				for _, m := range stored {
					if m.statement != p {
						continue
					}
					covered, welfare := int64(0), int64(0)
					for _, d := range m.entry.Draws {
						if d.ProgrammeID == g {
							covered += d.Seconds
							welfare += d.WelfareMinor
						}
					}
					if covered > 0 {
						want.Calls++
						want.CoveredSeconds += covered
						want.BillableSeconds += covered
						want.WelfareCost.Minor += welfare
					}
				}
				require.Equal(rt, withCurrency(want, "CNY"), mustPGStatement(rt, f, p, "programme:"+g).Figures, "programme %s statement of %s", g, p)
			}
			// Reconciliation: the calls made in p, by MSISDN.
			wantRows := map[string]billing.SettlementRow{}
			for _, m := range stored {
				if billing.PeriodOf(*m.entry.CallTime) == p {
					r := wantRows[m.entry.MSISDN]
					r.MSISDN = m.entry.MSISDN
					r.Calls++
					r.BillableSeconds += m.entry.BillableSeconds
					r.CoveredSeconds += m.entry.CoveredSeconds
					wantRows[m.entry.MSISDN] = r
				}
			}
			gotRows := map[string]billing.SettlementRow{}
			require.NoError(rt, f.store.UsageByMSISDN(ctx, p, func(r billing.SettlementRow) error {
				require.NotContains(rt, gotRows, r.MSISDN, "one row per seafarer and MSISDN")
				gotRows[r.MSISDN] = r
				return nil
			}))
			require.Equal(rt, wantRows, gotRows, "figures by MSISDN of %s", p)
			for payer, js := range frozen[p] {
				require.Equal(rt, js, mustPGStatementJSON(rt, f, p, payer), "closed statement of %s for %s changed", p, payer)
			}
		}
	})
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// mustPlan explains q and returns its plan's root.
func mustPlan(tb require.TestingT, pool *pgxpool.Pool, q string, args ...any) planNode {
	var js []byte
	require.NoError(tb, pool.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&js))
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(tb, json.Unmarshal(js, &plans))
	return plans[0].Plan
}

// TestPGProgrammeStatementIsReadByIndexesNotByScanningMonths loads four
// months of debits of many programmes, and some adjusts, and checks that
// the plans of a programme's statement, a company's, a seafarer's and a
// programme's seconds used scan no partition holding rows: they read
// indexes, adjusts by their own.
func TestPGProgrammeStatementIsReadByIndexesNotByScanningMonths(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, dec.Add(40*meterDay))
	ctx := context.Background()
	var batch []SeafarerEntry
	for n := range 24_000 {
		at := oct.Add(time.Duration(n%(120*24)) * time.Hour).Add(time.Duration(n) * time.Second)
		pg := fmt.Sprintf("pg_%03d", n%200)
		sf := fmt.Sprintf("sf_%05d", n%3000)
		batch = append(batch, pgDebit(sf, "cdr-"+strconv.Itoa(n), at, 120, 45, Draw{GrantID: "gr_" + pg, ProgrammeID: pg, Seconds: 60}))
		if n%40 == 0 {
			batch = append(batch, pgAdjust(sf, "cdr-a-"+strconv.Itoa(n), at, at.Add(time.Hour), -30, 45, Draw{GrantID: "gr_" + pg, ProgrammeID: pg, Seconds: -30}))
		}
		if len(batch) >= 2000 {
			mustAppend(t, f, batch...)
			batch = batch[:0]
		}
	}
	_, err := f.pool.Exec(ctx, "ANALYZE ledger_entries")
	require.NoError(t, err)
	var withRows []string
	rows, err := f.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'ledger_entries'::regclass AND c.reltuples > 0`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		withRows = append(withRows, name)
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, len(withRows), 4, "four months of rows")

	start, end, _ := billing.PeriodBounds("2026-11")
	crew := make([]string, 20) // a batch of a small crew: a large one in a small test table is cheaper to scan
	for i := range crew {
		crew[i] = fmt.Sprintf("sf_%05d", i*7)
	}
	for name, plan := range map[string]planNode{
		"programme statement": mustPlan(t, f.pool, programmeUsageSQL, "2026-11", end, programmeFilter("pg_007"), "pg_007", adjustsFrom(start)),
		"company statement":   mustPlan(t, f.pool, seafarersUsageSQL, "2026-11", end, crew, adjustsFrom(start)),
		"seafarer's calls":    mustPlan(t, f.pool, seafarerCallsSQL, "2026-11", "sf_00007", end, adjustsFrom(start)),
		"seconds used":        mustPlan(t, f.pool, programmeSecondsSQL, programmeFilter("pg_007"), "pg_007"),
	} {
		var indexes []string
		plan.walk(func(n planNode) {
			if strings.Contains(n.NodeType, "Index") && n.IndexName != "" {
				indexes = append(indexes, n.IndexName)
			}
			if n.NodeType == "Seq Scan" {
				require.NotContains(t, withRows, n.RelationName, "%s scans a month with rows", name)
			}
		})
		require.NotEmpty(t, indexes, "%s reads an index", name)
		sort.Strings(indexes)
		t.Logf("%s: %s", name, strings.Join(slices.Compact(indexes), ", "))
	}

	// Reconciliation reads every call of the month, so it reads the
	// month's partition whole; the adjusts of its calls, filed in it or
	// later, are read by their call times' index, no other month scanned.
	var read []string
	mustPlan(t, f.pool, usageByMSISDNSQL, start, end, adjustsFrom(start)).walk(func(n planNode) {
		if strings.HasPrefix(n.RelationName, "ledger_entries") {
			read = append(read, strings.TrimSpace(n.NodeType+" "+n.RelationName+" "+n.IndexName))
			if n.NodeType == "Seq Scan" && n.RelationName != "ledger_entries_202611" {
				require.NotContains(t, withRows, n.RelationName, "reconciliation scans another month with rows")
			}
		}
	})
	require.Contains(t, read, "Seq Scan ledger_entries_202611")
	require.NotContains(t, strings.Join(read, ","), "ledger_entries_202609", "no month before the period")
	t.Logf("reconciliation: %s", strings.Join(read, ", "))
}

// BenchmarkPGProgrammeStatement reads the November statement of one
// programme covering 100,000 seafarers, each with two November calls, and
// with October and December rows beside them (400,000 debits, loaded
// through Append, i.e. COPY; 3 calls a day for a month would be 9M rows,
// too slow to load here).
//
//	go test ./quota -run '^$' -bench BenchmarkPGProgrammeStatement -benchtime 5x
func BenchmarkPGProgrammeStatement(b *testing.B) {
	f := MustPGStatementFixture(b, dec.Add(40*meterDay))
	ctx := context.Background()
	const seafarers = 100_000
	batch := make([]SeafarerEntry, 0, 5000)
	g := Draw{GrantID: "gr", ProgrammeID: "pg_union", Seconds: 60}
	for i := range seafarers {
		sf := fmt.Sprintf("sf_%06d", i)
		for j, at := range []time.Time{oct.Add(time.Duration(i) * time.Second), nov.Add(time.Duration(i) * time.Second),
			nov.Add(15*meterDay + time.Duration(i)*time.Second), dec.Add(time.Duration(i) * time.Second)} {
			batch = append(batch, pgDebit(sf, fmt.Sprintf("cdr-%d-%d", i, j), at, 120, 45, g))
		}
		if len(batch) == cap(batch) {
			require.NoError(b, f.ledger.Append(ctx, batch))
			batch = batch[:0]
		}
	}
	require.NoError(b, f.ledger.Append(ctx, batch))
	_, err := f.pool.Exec(ctx, "ANALYZE ledger_entries")
	require.NoError(b, err)
	start, end, _ := billing.PeriodBounds("2026-11")
	plan := mustPlan(b, f.pool, programmeUsageSQL, "2026-11", end, programmeFilter("pg_union"), "pg_union", adjustsFrom(start))
	var nodes []string
	plan.walk(func(n planNode) {
		nodes = append(nodes, strings.TrimSpace(n.NodeType+" "+n.RelationName+" "+n.IndexName))
	})
	b.Logf("plan: %s", strings.Join(nodes, " | "))
	b.ResetTimer()
	for range b.N {
		st := mustPGStatement(b, f, "2026-11", "programme:pg_union")
		if len(st.Lines) != seafarers || st.Calls != 2*seafarers {
			b.Fatalf("%d lines, %d calls", len(st.Lines), st.Calls)
		}
	}
}
