package quota

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/pgtest"
)

// The ledger-reading rules are one suite run against every store that
// serves Ledger: PGLedger (entries appended); Redis keeps no ledger.
// PGLedger's own rules (idempotent appends, partitions, refusals) follow
// the suite.

// ledgerUnderTest is a ledger store as the shared suite sees it.
type ledgerUnderTest interface {
	Ledger(ctx context.Context, seafarerID string, f LedgerFilter) ([]*LedgerEntry, string, error)
	// File stores entries for a seafarer as the metering path would.
	File(t require.TestingT, seafarerID string, entries ...*LedgerEntry)
	// Kept is what the store keeps of an entry as filed: what reads return.
	Kept(e *LedgerEntry) *LedgerEntry
}

var ledgerStores = []struct {
	name string
	open func(tb testing.TB) ledgerUnderTest
}{
	{"postgres", openPGLedger},
}

// forEachLedgerStore runs test against every ledger store.
func forEachLedgerStore(t *testing.T, test func(t *testing.T, l ledgerUnderTest)) {
	for _, s := range ledgerStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, s.open(t))
		})
	}
}

// MustPGLedger returns a PGLedger on a fresh, migrated database.
func MustPGLedger(tb testing.TB) (*PGLedger, *pgxpool.Pool) {
	tb.Helper()
	pool := pgtest.MustPool(tb)
	return NewPGLedger(pool), pool
}

type pgLedgerUnderTest struct{ *PGLedger }

func openPGLedger(tb testing.TB) ledgerUnderTest {
	l, _ := MustPGLedger(tb)
	return pgLedgerUnderTest{l}
}

func (l pgLedgerUnderTest) File(t require.TestingT, seafarerID string, entries ...*LedgerEntry) {
	batch := make([]SeafarerEntry, len(entries))
	for i, e := range entries {
		batch[i] = SeafarerEntry{SeafarerID: seafarerID, Entry: e}
	}
	require.NoError(t, l.Append(context.Background(), batch))
}

func (pgLedgerUnderTest) Kept(e *LedgerEntry) *LedgerEntry { return e }

// ledgerSuiteT0 anchors the suite's entries: a month boundary.
var ledgerSuiteT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// debitEntry is a roaming call at callTime drawing from gr_1 (pr_1) and
// gr_2 (pr_2), the rest overage.
func debitEntry(eventID string, callTime time.Time) *LedgerEntry {
	call := callTime.UTC()
	return &LedgerEntry{
		ID: DebitEntryID(roamingCDRs, eventID), Kind: KindDebit, At: call.Add(1500 * time.Millisecond),
		EventID: eventID, Source: roamingCDRs, Type: "carrier.usage.voice", MSISDN: "+8613800000001", CallTime: &call,
		DurationSeconds: 170, BillableSeconds: 180, CoveredSeconds: 120, OverageSeconds: 60,
		OverageAmount: billing.Money{Minor: 150, Currency: "CNY"}, WelfareCost: &billing.Money{Minor: 40, Currency: "CNY"},
		StatementPeriod: billing.PeriodOf(call), CalledNumber: "+861012345678", VisitedCountry: "SG",
		Draws: []Draw{{GrantID: "gr_1", ProgrammeID: "pr_1", Seconds: 100}, {GrantID: "gr_2", ProgrammeID: "pr_2", Seconds: 20}},
	}
}

func grantEntry(grantID, programmeID string, seconds int64, at time.Time) *LedgerEntry {
	return &LedgerEntry{ID: "g_" + grantID, Kind: KindGrant, At: at.UTC(), GrantID: grantID, ProgrammeID: programmeID,
		Seconds: seconds, Draws: []Draw{}}
}

func voidEntry(grantID string, seconds int64, at time.Time) *LedgerEntry {
	return &LedgerEntry{ID: "v_" + grantID, Kind: KindVoid, At: at.UTC(), GrantID: grantID, Seconds: seconds, Draws: []Draw{}}
}

// readAllPages follows the cursor through every page under f.
func readAllPages(t require.TestingT, l ledgerUnderTest, seafarerID string, f LedgerFilter) []*LedgerEntry {
	all := []*LedgerEntry{}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10000, "ledger paging does not end")
		page, next, err := l.Ledger(context.Background(), seafarerID, f)
		require.NoError(t, err)
		if f.Limit > 0 {
			require.LessOrEqual(t, len(page), f.Limit)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		require.NotEmpty(t, page, "a page with a next cursor has entries")
		f.Cursor = next
	}
}

// newestFirst is entries in the ledger's order: filing second descending,
// then id descending, each as the store keeps it.
func newestFirst(l ledgerUnderTest, entries []*LedgerEntry) []*LedgerEntry {
	out := make([]*LedgerEntry, len(entries))
	for i, e := range entries {
		out[i] = l.Kept(e)
	}
	slices.SortFunc(out, func(a, b *LedgerEntry) int {
		if c := ledgerTime(b).Unix() - ledgerTime(a).Unix(); c != 0 {
			return int(c)
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func ids(entries []*LedgerEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.ID
	}
	return out
}

func TestLedgerReadsBackDebitsWithDrawsGrantsAndVoidsAsFiled(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		const sf = "sf-readback"
		grant := grantEntry("gr_1", "pr_1", 600, ledgerSuiteT0.Add(time.Hour+250*time.Millisecond))
		debit := debitEntry("cdr-1", ledgerSuiteT0.Add(2*time.Hour))
		debit.AdjustsPeriod = "2026-10"
		void := voidEntry("gr_1", 500, ledgerSuiteT0.Add(3*time.Hour+999*time.Millisecond))
		l.File(t, sf, grant, debit, void)

		got, next, err := l.Ledger(context.Background(), sf, LedgerFilter{})
		require.NoError(t, err)
		require.Empty(t, next)
		require.Equal(t, []*LedgerEntry{l.Kept(void), l.Kept(debit), l.Kept(grant)}, got, "newest first, every field as filed")
	})
}

func TestLedgerPagesWalkEveryEntryOnceNewestFirstEvenWithinOneSecond(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		const sf = "sf-pages"
		busy := ledgerSuiteT0.Add(-time.Hour)      // twelve calls share this second
		quiet := ledgerSuiteT0.Add(-2 * time.Hour) // and seven this one
		var entries []*LedgerEntry
		for i := range 12 {
			entries = append(entries, debitEntry("cdr-busy-"+strconv.Itoa(i), busy))
		}
		for i := range 7 {
			entries = append(entries, debitEntry("cdr-quiet-"+strconv.Itoa(i), quiet))
		}
		for i := range 5 {
			entries = append(entries, debitEntry("cdr-"+strconv.Itoa(i), ledgerSuiteT0.Add(-time.Duration(3+i)*time.Hour)))
		}
		// Grants filed in the busy second at different milliseconds: still
		// ordered by id within the second.
		entries = append(entries, grantEntry("gr_9", "pr_1", 600, busy.Add(900*time.Millisecond)),
			grantEntry("gr_1", "pr_1", 600, busy.Add(100*time.Millisecond)))
		l.File(t, sf, entries...)
		want := ids(newestFirst(l, entries))

		onePage, next, err := l.Ledger(context.Background(), sf, LedgerFilter{Limit: 500})
		require.NoError(t, err)
		require.Empty(t, next)
		require.Equal(t, want, ids(onePage))
		for _, limit := range []int{1, 2, 3, 5, 11, 12, 13, len(want) - 1, len(want), len(want) + 1} {
			require.Equal(t, want, ids(readAllPages(t, l, sf, LedgerFilter{Limit: limit})), "limit %d", limit)
		}
		defaultPage, _, err := l.Ledger(context.Background(), sf, LedgerFilter{})
		require.NoError(t, err)
		require.Len(t, defaultPage, len(want), "the default limit (50) holds them all")
	})
}

func TestLedgerDefaultLimitIsFifty(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		const sf = "sf-fifty"
		var entries []*LedgerEntry
		for i := range 51 {
			entries = append(entries, debitEntry("cdr-"+strconv.Itoa(i), ledgerSuiteT0.Add(time.Duration(i)*time.Minute)))
		}
		l.File(t, sf, entries...)
		page, next, err := l.Ledger(context.Background(), sf, LedgerFilter{})
		require.NoError(t, err)
		require.Len(t, page, 50)
		require.NotEmpty(t, next)
		rest, next, err := l.Ledger(context.Background(), sf, LedgerFilter{Cursor: next})
		require.NoError(t, err)
		require.Empty(t, next)
		require.Equal(t, []string{entries[0].ID}, ids(rest), "the oldest is on the second page")
	})
}

func TestLedgerFromIsInclusiveToExclusiveAndTheCursorKeepsToTheRange(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		const sf = "sf-range"
		var entries []*LedgerEntry
		for h := range 10 { // calls on the hour, three to each hour
			for i := range 3 {
				entries = append(entries, debitEntry(fmt.Sprintf("cdr-%d-%d", h, i), ledgerSuiteT0.Add(time.Duration(h)*time.Hour)))
			}
		}
		l.File(t, sf, entries...)
		from, to := ledgerSuiteT0.Add(2*time.Hour), ledgerSuiteT0.Add(6*time.Hour)
		var want []*LedgerEntry
		for _, e := range entries {
			if !e.CallTime.Before(from) && e.CallTime.Before(to) {
				want = append(want, e)
			}
		}
		require.Len(t, want, 12, "hours 2, 3, 4 and 5: from inclusive, to exclusive")
		for _, limit := range []int{1, 2, 4, 12, 50} {
			require.Equal(t, ids(newestFirst(l, want)), ids(readAllPages(t, l, sf, LedgerFilter{From: from, To: to, Limit: limit})), "limit %d", limit)
		}
		onlyFrom := readAllPages(t, l, sf, LedgerFilter{From: ledgerSuiteT0.Add(9 * time.Hour), Limit: 2})
		require.Len(t, onlyFrom, 3)
		onlyTo := readAllPages(t, l, sf, LedgerFilter{To: ledgerSuiteT0.Add(time.Hour), Limit: 2})
		require.Len(t, onlyTo, 3)
		empty, next, err := l.Ledger(context.Background(), sf, LedgerFilter{From: to, To: from})
		require.NoError(t, err)
		require.Empty(t, empty)
		require.Empty(t, next)

		// Bounds inside a second compare the entries' exact times: a grant
		// written at .250 is after .200 and before .300.
		g := grantEntry("gr_1", "pr_1", 600, ledgerSuiteT0.Add(30*time.Minute+250*time.Millisecond))
		l.File(t, sf, g)
		at := func(ms int) time.Time { return ledgerSuiteT0.Add(30*time.Minute + time.Duration(ms)*time.Millisecond) }
		require.Equal(t, []string{g.ID}, ids(readAllPages(t, l, sf, LedgerFilter{From: at(200), To: at(300)})))
		require.Equal(t, []string{g.ID}, ids(readAllPages(t, l, sf, LedgerFilter{From: at(250), To: at(251)})))
		require.Empty(t, readAllPages(t, l, sf, LedgerFilter{From: at(251), To: at(900)}))
		require.Empty(t, readAllPages(t, l, sf, LedgerFilter{From: at(0), To: at(250)}))
	})
}

func TestLedgerRefusesAMalformedCursorAsInvalid(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		for _, cursor := range []string{"not-a-cursor", "12.", "x.y", "p1.12", "p1.x.Z2", "p1.12.%%%"} {
			_, _, err := l.Ledger(context.Background(), "sf-cursor", LedgerFilter{Cursor: cursor})
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "cursor %q", cursor)
		}
	})
}

func TestLedgerEntriesOfTwoSeafarersNeverMix(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		at := ledgerSuiteT0.Add(time.Hour)
		// The same grant id and the same second for both: still two ledgers.
		a := []*LedgerEntry{grantEntry("gr_1", "pr_1", 600, at), debitEntry("cdr-a", at)}
		b := []*LedgerEntry{grantEntry("gr_1", "pr_2", 300, at), debitEntry("cdr-b", at), voidEntry("gr_1", 300, at.Add(time.Second))}
		l.File(t, "sf-a", a...)
		l.File(t, "sf-b", b...)
		require.Equal(t, newestFirst(l, a), readAllPages(t, l, "sf-a", LedgerFilter{Limit: 1}))
		require.Equal(t, newestFirst(l, b), readAllPages(t, l, "sf-b", LedgerFilter{Limit: 1}))
		require.Empty(t, readAllPages(t, l, "sf-a-", LedgerFilter{}), "a seafarer id is not a prefix")
	})
}

// TestLedgerPagesConcatenateToTheSortedEntriesForAnyEntriesBoundsAndPageSize:
// whatever entries were filed (many in one second, across weeks and a month
// boundary) and whatever bounds and page size are asked, the pages in order
// are exactly the entries in range, newest first, each once.
func TestLedgerPagesConcatenateToTheSortedEntriesForAnyEntriesBoundsAndPageSize(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		run := 0
		rapid.Check(t, func(rt *rapid.T) {
			run++
			sf := "sf-prop-" + strconv.Itoa(run)
			// A few seconds, spread over 30 days around a month boundary, so
			// that many entries share one.
			seconds := rapid.SliceOfN(rapid.IntRange(-15*24*3600, 15*24*3600), 1, 6).Draw(rt, "seconds")
			n := rapid.IntRange(0, 40).Draw(rt, "entries")
			var entries []*LedgerEntry
			for i := range n {
				sec := ledgerSuiteT0.Add(time.Duration(rapid.SampledFrom(seconds).Draw(rt, "second")) * time.Second)
				ms := time.Duration(rapid.IntRange(0, 999).Draw(rt, "ms")) * time.Millisecond
				switch rapid.SampledFrom([]string{KindDebit, KindDebit, KindGrant, KindVoid}).Draw(rt, "kind") {
				case KindDebit:
					e := debitEntry(fmt.Sprintf("cdr-%d", i), sec)
					e.At = sec.Add(ms + time.Duration(rapid.IntRange(0, 5).Draw(rt, "delay"))*time.Second)
					e.Draws = e.Draws[:rapid.IntRange(0, 2).Draw(rt, "draws")]
					e.CoveredSeconds = 0
					for _, d := range e.Draws {
						e.CoveredSeconds += d.Seconds
					}
					e.OverageSeconds = e.BillableSeconds - e.CoveredSeconds
					entries = append(entries, e)
				case KindGrant:
					entries = append(entries, grantEntry(fmt.Sprintf("gr_%d", 10+i), "pr_1", 600, sec.Add(ms)))
				case KindVoid:
					entries = append(entries, voidEntry(fmt.Sprintf("gr_%d", 10+i), int64(rapid.IntRange(0, 600).Draw(rt, "voided")), sec.Add(ms)))
				}
			}
			l.File(rt, sf, entries...)

			var f LedgerFilter
			bound := func(label string) time.Time {
				if !rapid.Bool().Draw(rt, label) {
					return time.Time{}
				}
				sec := ledgerSuiteT0.Add(time.Duration(rapid.SampledFrom(seconds).Draw(rt, label+" second")) * time.Second)
				return sec.Add(time.Duration(rapid.SampledFrom([]int{0, 0, 1, 500, 999, 1000, -1000}).Draw(rt, label+" ms")) * time.Millisecond)
			}
			f.From, f.To = bound("from"), bound("to")
			f.Limit = rapid.IntRange(1, 12).Draw(rt, "limit")
			var want []*LedgerEntry
			for _, e := range entries {
				t := ledgerTime(e)
				if (f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || t.Before(f.To)) {
					want = append(want, e)
				}
			}
			require.Equal(rt, newestFirst(l, want), readAllPages(rt, l, sf, f))
		})
	})
}

// --- PGLedger's own rules ---

func pgBatch(seafarerID string, entries ...*LedgerEntry) []SeafarerEntry {
	out := make([]SeafarerEntry, len(entries))
	for i, e := range entries {
		out[i] = SeafarerEntry{SeafarerID: seafarerID, Entry: e}
	}
	return out
}

func countLedgerRows(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	var n int
	require.NoError(tb, pool.QueryRow(context.Background(), "SELECT count(*) FROM ledger_entries").Scan(&n))
	return n
}

func TestPGLedgerAppendingTheSameBatchTwiceKeepsOneCopy(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	at := ledgerSuiteT0.Add(time.Hour)
	batch := pgBatch("sf-1", grantEntry("gr_1", "pr_1", 600, at), debitEntry("cdr-1", at), debitEntry("cdr-2", at),
		voidEntry("gr_1", 480, at.Add(time.Minute)))
	require.NoError(t, l.Append(ctx, batch))
	require.NoError(t, l.Append(ctx, batch), "a redelivered batch is not an error")
	// A batch repeating one of its own entries, and mixing new with old.
	require.NoError(t, l.Append(ctx, append(pgBatch("sf-1", debitEntry("cdr-3", at), debitEntry("cdr-3", at)), batch[1])))
	require.Equal(t, 5, countLedgerRows(t, pool))
	got, _, err := l.Ledger(ctx, "sf-1", LedgerFilter{})
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.NoError(t, l.Append(ctx, nil), "an empty batch stores nothing")
}

func TestPGLedgerCreatesMonthlyPartitionsOnDemandPastAndFarAhead(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	months := []time.Time{
		time.Date(2019, 3, 31, 23, 59, 59, 0, time.UTC), // long past
		time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2061, 7, 4, 12, 0, 0, 0, time.UTC), // far ahead
	}
	var entries []*LedgerEntry
	for i, m := range months {
		entries = append(entries, debitEntry("cdr-"+strconv.Itoa(i), m), grantEntry("gr_"+strconv.Itoa(i), "pr_1", 60, m.Add(123*time.Millisecond)))
	}
	require.NoError(t, l.Append(ctx, pgBatch("sf-months", entries...)))

	rows, err := pool.Query(ctx, `SELECT tableoid::regclass::text, count(*) FROM ledger_entries GROUP BY 1 ORDER BY 1`)
	require.NoError(t, err)
	perPartition, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name string
		var n int
		err := r.Scan(&name, &n)
		return fmt.Sprintf("%s=%d", name, n), err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"ledger_entries_201903=2", "ledger_entries_202610=2", "ledger_entries_202611=2",
		"ledger_entries_202612=2", "ledger_entries_206107=2"}, perPartition,
		"each month in its own partition, by UTC month of the filing second; none in the default")
	require.Equal(t, ids(newestFirst(pgLedgerUnderTest{l}, entries)), ids(readAllPages(t, pgLedgerUnderTest{l}, "sf-months", LedgerFilter{Limit: 3})))
	require.Equal(t, []string{entries[1].ID, entries[0].ID},
		ids(readAllPages(t, pgLedgerUnderTest{l}, "sf-months", LedgerFilter{To: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})))

	// Another process (an empty cache) appending into existing months.
	again := NewPGLedger(pool)
	require.NoError(t, again.Append(ctx, pgBatch("sf-months", debitEntry("cdr-late", months[0].Add(-time.Hour)))))
	require.Equal(t, 11, countLedgerRows(t, pool))
}

// Writers in several processes meeting a new month at once: one creates
// its partition, the others wait for it and find it there.
func TestPGLedgerWritersCreatingTheSameMonthAtOnceAllSucceed(t *testing.T) {
	t.Parallel()
	_, pool := MustPGLedger(t)
	ctx := context.Background()
	month := time.Date(2040, 2, 10, 0, 0, 0, 0, time.UTC)
	const writers = 6
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			l := NewPGLedger(pool) // each its own cache, as separate replicas
			errs <- l.Append(ctx, pgBatch("sf-"+strconv.Itoa(w), debitEntry("cdr-"+strconv.Itoa(w), month.Add(time.Duration(w)*time.Hour))))
		}()
	}
	for range writers {
		require.NoError(t, <-errs)
	}
	var inMonth int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM ledger_entries_204002").Scan(&inMonth))
	require.Equal(t, writers, inMonth)
}

func TestPGLedgerMovesRowsOutOfTheDefaultPartitionWhenTheirMonthIsCreated(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	// A tool that inserted without ensuring the month: the row waits in
	// the default partition, which would make CREATE … PARTITION OF fail.
	stray := time.Date(2031, 5, 3, 10, 0, 0, 0, time.UTC)
	_, err := pool.Exec(ctx, `INSERT INTO ledger_entries (seafarer_id, filed_at, id, kind, at, grant_id, programme_id, seconds)
		VALUES ('sf-stray', $1, 'g_gr_stray', 'grant', $1, 'gr_stray', 'pr_1', 60)`, stray)
	require.NoError(t, err)
	require.NoError(t, l.Append(ctx, pgBatch("sf-stray", debitEntry("cdr-1", stray.Add(time.Hour)))))
	var where []string
	rows, err := pool.Query(ctx, `SELECT tableoid::regclass::text FROM ledger_entries ORDER BY id`)
	require.NoError(t, err)
	where, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"ledger_entries_203105", "ledger_entries_203105"}, where)
	got := readAllPages(t, pgLedgerUnderTest{l}, "sf-stray", LedgerFilter{})
	require.Len(t, got, 2)
}

func TestPGLedgerRefusesABatchBreakingARuleAndStoresNothingOfIt(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	at := ledgerSuiteT0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		break_ func(e *LedgerEntry)
		rule   string
	}{
		{"billable is not covered + overage", func(e *LedgerEntry) { e.OverageSeconds++ }, "ledger_debit_billable_is_covered_plus_overage"},
		{"negative covered seconds", func(e *LedgerEntry) { e.CoveredSeconds, e.OverageSeconds = -60, 240 }, "ledger_covered_seconds_not_negative"},
		{"an adjust's billable is not covered + overage", func(e *LedgerEntry) {
			e.Kind, e.ID, e.CoveredSeconds, e.OverageSeconds = KindAdjust, "a_"+e.ID[2:], -60, 0
		}, "ledger_adjust_billable_is_covered_plus_overage"},
		{"negative seconds", func(e *LedgerEntry) { e.Seconds = -1 }, "ledger_seconds_not_negative"},
		{"unknown kind", func(e *LedgerEntry) { e.Kind = "refund" }, "ledger_kind_is_debit_grant_void_or_adjust"},
		{"no id", func(e *LedgerEntry) { e.ID = "" }, "ledger_entry_ids_not_empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := debitEntry("cdr-bad", at)
			tc.break_(bad)
			err := l.Append(ctx, pgBatch("sf-bad", grantEntry("gr_1", "pr_1", 600, at), bad, debitEntry("cdr-good", at)))
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "%v", err)
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, tc.rule, we.Reason)
			require.Contains(t, we.Message, ledgerRules[tc.rule], "the message names the rule")
			require.Zero(t, countLedgerRows(t, pool), "nothing of the batch is stored")
		})
	}
	t.Run("text PostgreSQL cannot keep", func(t *testing.T) {
		bad := debitEntry("cdr-nul", at)
		bad.CalledNumber = "+86\x00"
		err := l.Append(ctx, pgBatch("sf-bad", debitEntry("cdr-good", at), bad))
		require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
		require.Contains(t, err.Error(), "called_number")
		require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(l.Append(ctx, []SeafarerEntry{{SeafarerID: "sf-bad"}})), "a missing entry")
		require.Zero(t, countLedgerRows(t, pool))
	})
}

// Pages are keyset ranges of the primary key: the plan reads the index
// backwards from the cursor, neither sorting nor skipping an offset.
func TestPGLedgerPagesByIndexNotBySortingOrOffset(t *testing.T) {
	t.Parallel()
	l, pool := MustPGLedger(t)
	ctx := context.Background()
	var batch []SeafarerEntry
	for s := range 50 {
		for i := range 40 {
			batch = append(batch, SeafarerEntry{SeafarerID: "sf-" + strconv.Itoa(s),
				Entry: debitEntry(fmt.Sprintf("cdr-%d-%d", s, i), ledgerSuiteT0.Add(time.Duration(i)*time.Hour))})
		}
	}
	require.NoError(t, l.Append(ctx, batch))
	_, err := pool.Exec(ctx, "ANALYZE ledger_entries")
	require.NoError(t, err)
	_, next, err := l.Ledger(ctx, "sf-7", LedgerFilter{Limit: 5})
	require.NoError(t, err)
	filed, id, ok := parsePGCursor(next)
	require.True(t, ok)
	rows, err := pool.Query(ctx, "EXPLAIN "+ledgerSelect+` AND filed_at <= $2 AND (filed_at, id) < ($2, $3) ORDER BY filed_at DESC, id DESC LIMIT 6`,
		"sf-7", filed, id)
	require.NoError(t, err)
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	text := strings.Join(plan, "\n")
	require.Contains(t, text, "Index Scan Backward", text)
	require.NotContains(t, text, "Sort  (", text)
	require.NotContains(t, text, "ledger_entries_202612", "months after the cursor are pruned")
}

// --- Benchmarks: which append is kept, and how it compares to a bare COPY ---
//
//	go test ./quota -run '^$' -bench 'BenchmarkAppend' -benchtime 200x
//
// Each iteration stores a batch of benchBatch new debits (1,000 seafarers,
// one or two draws each) into a table already holding the earlier ones.

const benchBatch = 1000

func benchEntries(iter int) []SeafarerEntry {
	out := make([]SeafarerEntry, benchBatch)
	for i := range out {
		n := iter*benchBatch + i
		e := debitEntry("cdr-"+strconv.Itoa(n), ledgerSuiteT0.Add(time.Duration(n)*time.Second))
		if n%3 == 0 {
			e.Draws = e.Draws[:1]
			e.CoveredSeconds, e.OverageSeconds = 100, 80
		}
		out[i] = SeafarerEntry{SeafarerID: fmt.Sprintf("sf-%06d", n%997), Entry: e}
	}
	return out
}

// BenchmarkAppend is PGLedger.Append on new batches: a COPY straight into
// ledger_entries.
func BenchmarkAppend(b *testing.B) {
	l, _ := MustPGLedger(b)
	benchmarkAppend(b, l.Append)
}

// BenchmarkAppendRedelivered is PGLedger.Append on batches already stored:
// the COPY fails on the key, the unnest INSERT skips every row.
func BenchmarkAppendRedelivered(b *testing.B) {
	l, _ := MustPGLedger(b)
	ctx := context.Background()
	for i := range b.N {
		require.NoError(b, l.Append(ctx, benchEntries(i)))
	}
	benchmarkAppend(b, l.Append)
}

// BenchmarkAppendUnnest is the idempotent INSERT alone: INSERT … SELECT
// FROM unnest(arrays) … ON CONFLICT DO NOTHING.
func BenchmarkAppendUnnest(b *testing.B) {
	l, _ := MustPGLedger(b)
	benchmarkAppend(b, func(ctx context.Context, batch []SeafarerEntry) error {
		cols, err := ledgerRows(batch)
		if err != nil {
			return err
		}
		if err := l.EnsureMonths(ctx, cols.filedAt...); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error { return appendSkippingStored(ctx, tx, cols) })
	})
}

func benchmarkAppend(b *testing.B, appendBatch func(context.Context, []SeafarerEntry) error) {
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		batch := benchEntries(i)
		b.StartTimer()
		if err := appendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/row")
}

// BenchmarkAppendCopyTempTable is the alternative not kept: COPY into a
// temporary table (ON COMMIT DROP), then INSERT … SELECT … ON CONFLICT DO
// NOTHING, in one transaction.
func BenchmarkAppendCopyTempTable(b *testing.B) {
	l, pool := MustPGLedger(b)
	benchmarkAppend(b, func(ctx context.Context, batch []SeafarerEntry) error {
		return appendViaTempCopy(ctx, l, pool, batch)
	})
}

// BenchmarkAppendBareCopy is the baseline: COPY of the same rows into a
// plain table (no key, no constraint, no partitions, not idempotent).
func BenchmarkAppendBareCopy(b *testing.B) {
	_, pool := MustPGLedger(b)
	_, err := pool.Exec(context.Background(), "CREATE TABLE ledger_bare (LIKE ledger_entries)")
	require.NoError(b, err)
	benchmarkAppend(b, func(ctx context.Context, batch []SeafarerEntry) error {
		cols, err := ledgerRows(batch)
		if err != nil {
			return err
		}
		_, err = pool.CopyFrom(ctx, pgx.Identifier{"ledger_bare"}, ledgerCopyColumns, cols.copyRows())
		return err
	})
}

func appendViaTempCopy(ctx context.Context, l *PGLedger, pool *pgxpool.Pool, entries []SeafarerEntry) error {
	cols, err := ledgerRows(entries)
	if err != nil {
		return err
	}
	if err := l.EnsureMonths(ctx, cols.filedAt...); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE ledger_batch (LIKE ledger_entries INCLUDING DEFAULTS) ON COMMIT DROP"); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_batch"}, ledgerCopyColumns, cols.copyRows()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO ledger_entries SELECT * FROM ledger_batch ON CONFLICT DO NOTHING")
		return err
	})
}

// WithoutFree (what a company reads of its crew's usage) leaves out the
// calls to free numbers, and its pages are still full.
func TestLedgerWithoutFreeLeavesOutFreeCallsAndKeepsPagesFull(t *testing.T) {
	forEachLedgerStore(t, func(t *testing.T, l ledgerUnderTest) {
		const sf = "sf-without-free"
		var all, paid []*LedgerEntry
		for i := range 6 {
			e := debitEntry(fmt.Sprintf("cdr-%d", i), ledgerSuiteT0.Add(time.Duration(i)*time.Hour))
			if i%2 == 1 {
				e.Free, e.CalledNumber = true, "+861239500"
				e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds, e.Draws = 0, 0, 0, nil
				e.OverageAmount.Minor, e.WelfareCost = 0, nil
			} else {
				paid = append(paid, e)
			}
			all = append(all, e)
		}
		l.File(t, sf, all...)
		require.Len(t, readAllPages(t, l, sf, LedgerFilter{}), 6, "everyone else reads every entry")
		for _, limit := range []int{1, 2, 3, 50} {
			got := readAllPages(t, l, sf, LedgerFilter{Limit: limit, WithoutFree: true})
			require.Equal(t, ids(newestFirst(l, paid)), ids(got), "limit %d", limit)
		}
		page, next, err := l.Ledger(context.Background(), sf, LedgerFilter{Limit: 3, WithoutFree: true})
		require.NoError(t, err)
		require.Len(t, page, 3, "a page of three is the three paid calls")
		require.Empty(t, next)
	})
}
