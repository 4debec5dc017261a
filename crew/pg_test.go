package crew

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
)

// The registry's behaviour is pinned by registry_test.go, resolve_test.go
// and resolve_at_test.go; these pin what the database adds: its
// constraints, its transactions under concurrency, one query per batch,
// and text PostgreSQL cannot keep.

// MustPGStore returns a store on a fresh migrated database and its clock.
func MustPGStore(tb testing.TB) (*PGStore, *testClock) {
	tb.Helper()
	clock := &testClock{t: epoch}
	return NewPGStore(pgtest.MustPool(tb), clock.Now), clock
}

// queryCounter is a pgx tracer counting the queries a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *queryCounter) reset() { c.n.Store(0) }

func (c *queryCounter) one() error {
	if n := c.n.Load(); n != 1 {
		return fmt.Errorf("took %d queries, want 1", n)
	}
	return nil
}

// MustCountedPool returns a pool on a fresh migrated database that counts
// the queries sent through it.
func MustCountedPool(tb testing.TB) (*pgxpool.Pool, *queryCounter) {
	tb.Helper()
	cfg := pgtest.MustPool(tb).Config()
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("counted pool: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the database is dropped
	return pool, counter
}

// wantClientError asserts err is one of the domain's errors with one of codes.
func wantClientError(tb testing.TB, err error, codes ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want one of %v", codes)
	}
	if code := wuyou.ErrorCode(err); !slices.Contains(codes, code) {
		tb.Fatalf("error %v: code %q, want one of %v", err, code, codes)
	}
}

func TestPGTheConstraintsTheStoreTranslatesExistUnderTheirNames(t *testing.T) {
	t.Parallel()
	pool := pgtest.MustPool(t)
	for _, name := range []string{pgRegistrationNoKey, pgCompanyFK, pgOneCurrentHolder, pgPeriodsDoNotOverlap, "seafarers_book_no_key"} {
		var found bool
		err := pool.QueryRow(context.Background(), `
SELECT EXISTS (SELECT FROM pg_constraint WHERE conname = $1) OR EXISTS (SELECT FROM pg_indexes WHERE indexname = $1)`, name).Scan(&found)
		if err != nil || !found {
			t.Errorf("constraint %s: found %v, %v; the store turns its violation into a conflict", name, found, err)
		}
	}
}

func TestPGAConstraintViolationBecomesThePreciseConflictOrAbsence(t *testing.T) {
	t.Parallel()
	s := NewPGStore(nil, wuyou.SystemClock)
	violation := func(code, constraint string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, ConstraintName: constraint})
	}
	for _, tc := range []struct {
		name       string
		err        error
		code       string
		field, msg string
	}{
		{"the current holder of a number", violation("23505", pgOneCurrentHolder), wuyou.ECONFLICT, "msisdn", "MSISDN +8613800000001 belongs to another seafarer"},
		{"overlapping periods of a number", violation("23P01", pgPeriodsDoNotOverlap), wuyou.ECONFLICT, "msisdn", "MSISDN +8613800000001 belongs to another seafarer"},
		{"an unknown company", violation("23503", pgCompanyFK), wuyou.ENOTFOUND, "", "company co_X not found"},
		{"a domain error", seafarerNotFound("sf_X"), wuyou.ENOTFOUND, "", "seafarer sf_X not found"},
		{"another constraint", violation("23514", "seafarer_status_is_known"), wuyou.EINTERNAL, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.refused("enrol", tc.err, "co_X", "+8613800000001")
			wantCode(t, err, tc.code)
			var e *wuyou.Error
			if tc.code == wuyou.EINTERNAL {
				if errors.As(err, &e) {
					t.Fatalf("%v became a domain error; a broken rule is a bug, not the caller's", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Message != tc.msg {
				t.Fatalf("error %v, want message %q", err, tc.msg)
			}
			if tc.field != "" {
				wantField(t, err, tc.field)
			}
		})
	}
}

func TestPGTheDatabaseRefusesASecondCurrentHolderAndOverlappingPeriodsEvenFromHandWrittenSQL(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	a := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	b := MustEnrol(t, s, co.ID, enrolment("E2", msisdn(2)))

	_, err := s.pool.Exec(ctx, `INSERT INTO msisdn_holdings (msisdn, seafarer_id, held_from) VALUES ($1, $2, $3)`,
		msisdn(1), b.ID, epoch.Add(time.Hour))
	if constraint, code := violated(err); code != "23505" && code != "23P01" {
		t.Fatalf("a second current holder: %v (%s %s), want a unique or exclusion violation", err, code, constraint)
	}
	// A closed period inside a's open one.
	_, err = s.pool.Exec(ctx, `INSERT INTO msisdn_holdings (msisdn, seafarer_id, held_from, held_to) VALUES ($1, $2, $3, $4)`,
		msisdn(1), b.ID, epoch.Add(time.Hour), epoch.Add(2*time.Hour))
	if constraint, _ := violated(err); constraint != pgPeriodsDoNotOverlap {
		t.Fatalf("a period overlapping another of the number: %v, want %s", err, pgPeriodsDoNotOverlap)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO seafarers (id, company_id, seafarer_book_no, name, status, created_at, updated_at)
VALUES ('sf_X', $1, 'E1', 'x', 'active', now(), now())`, co.ID)
	if constraint, _ := violated(err); constraint != "seafarers_book_no_key" {
		t.Fatalf("a second seafarer with a book number: %v", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE seafarers SET status = 'retired' WHERE id = $1`, a.ID)
	if constraint, _ := violated(err); constraint != "seafarer_status_is_known" {
		t.Fatalf("an unknown status: %v", err)
	}
}

func TestPGConcurrentEnrolmentsOfOneBookNoByManyCompaniesGiveItToExactlyOne(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	const n = 12
	companies := make([]*Company, n)
	for i := range companies {
		companies[i] = MustCompany(t, s, fmt.Sprintf("R%d", i))
	}
	enrolled := make([]*Seafarer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			enrolled[i], _, errs[i] = s.Enrol(ctx, companies[i].ID, enrolment("E1", msisdn(i)))
		})
	}
	wg.Wait()
	var winner *Seafarer
	for i, err := range errs {
		if err == nil {
			if winner != nil {
				t.Fatalf("both %s and %s enrolled book number E1", winner.CompanyID, enrolled[i].CompanyID)
			}
			winner = enrolled[i]
			continue
		}
		wantCode(t, err, wuyou.ECONFLICT)
		wantField(t, err, "seafarer_book_no")
	}
	if winner == nil {
		t.Fatal("nobody enrolled E1")
	}
	// The losers' numbers were given back with their enrolments.
	got, err := s.SeafarerIDsByMSISDN(ctx, func() []string {
		var all []string
		for i := range n {
			all = append(all, msisdn(i))
		}
		return all
	}())
	if err != nil || len(got) != 1 || got[winner.MSISDN] != winner.ID {
		t.Fatalf("numbers held: %v, %v; want only the winner's", got, err)
	}
}

// Seafarers trading numbers at once, with newcomers grabbing the numbers
// being released: whatever the interleaving, every request succeeds or gets
// a precise 409, every number ends with at most one holder, every seafarer
// with one number, and the periods of each number follow one another.
func TestPGConcurrentNumberChangesKeepOneHolderPerNumberAndPeriodsApart(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	const crew = 8
	ids := make([]string, crew)
	for i := range crew {
		ids[i] = MustEnrol(t, s, co.ID, enrolment(fmt.Sprintf("E%d", i), msisdn(i))).ID
	}
	clock.Advance(time.Hour)

	var wg sync.WaitGroup
	errs := make(chan error, 4*crew)
	for i := range crew {
		wg.Go(func() { // seafarer i moves to its neighbour's number (taken: 409) or a fresh one
			next := msisdn((i + 1) % crew)
			if i%2 == 0 {
				next = msisdn(100 + i)
			}
			_, err := s.UpdateSeafarer(ctx, ids[i], SeafarerUpdate{MSISDN: &next})
			errs <- err
		})
		wg.Go(func() { // a newcomer wants the number seafarer i may be releasing
			_, _, err := s.Enrol(ctx, co.ID, enrolment(fmt.Sprintf("N%d", i), msisdn(i)))
			errs <- err
		})
		wg.Go(func() { // two seafarers swap numbers: at least one must be refused
			a, b := msisdn((i+3)%crew), msisdn(100+(i+3)%crew)
			_, err := s.UpdateSeafarer(ctx, ids[(i+5)%crew], SeafarerUpdate{MSISDN: &a})
			errs <- err
			_, err = s.UpdateSeafarer(ctx, ids[(i+5)%crew], SeafarerUpdate{MSISDN: &b})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			wantCode(t, err, wuyou.ECONFLICT)
			wantField(t, err, "msisdn")
		}
	}

	rows, err := s.pool.Query(ctx, `SELECT msisdn, seafarer_id, held_from, held_to FROM msisdn_holdings ORDER BY msisdn, held_from, id`)
	if err != nil {
		t.Fatal(err)
	}
	type period struct {
		msisdn, id string
		from       time.Time
		to         *time.Time
	}
	var periods []period
	var p period
	if _, err := pgx.ForEachRow(rows, []any{&p.msisdn, &p.id, &p.from, &p.to}, func() error {
		q := p
		if p.to != nil {
			to := *p.to
			q.to = &to
		}
		periods = append(periods, q)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	current := map[string]string{} // msisdn → holder
	numbers := map[string]int{}    // seafarer → current numbers
	for i, p := range periods {
		if p.to == nil {
			if current[p.msisdn] != "" {
				t.Errorf("%s held by %s and %s", p.msisdn, current[p.msisdn], p.id)
			}
			current[p.msisdn] = p.id
			numbers[p.id]++
		}
		if i > 0 && periods[i-1].msisdn == p.msisdn && (periods[i-1].to == nil || periods[i-1].to.After(p.from)) {
			t.Errorf("periods of %s overlap: %+v then %+v", p.msisdn, periods[i-1], p)
		}
	}
	all, _, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, sf := range all {
		if numbers[sf.ID] != 1 || current[sf.MSISDN] != sf.ID {
			t.Errorf("seafarer %s shows %s and holds %d numbers", sf.ID, sf.MSISDN, numbers[sf.ID])
		}
	}
}

// Bulk enrolment calls Enrol once per row, rows at once; repeated book
// numbers and MSISDNs among the rows settle as one at a time would.
func TestPGConcurrentBulkRowsWithRepeatsEnrolEachBookAndNumberOnce(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	const rows = 60
	type outcome struct {
		sf      *Seafarer
		created bool
		err     error
	}
	out := make([]outcome, rows)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Go(func() {
			// Rows i and i+20 and i+40 share a book number and a number.
			e := enrolment(fmt.Sprintf("B%02d", i%20), msisdn(i%20))
			out[i].sf, out[i].created, out[i].err = s.Enrol(ctx, co.ID, e)
		})
	}
	wg.Wait()
	created := map[string]bool{}
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("row %d: %v", i, o.err)
		}
		if o.created {
			if created[o.sf.BookNo] {
				t.Fatalf("book %s created twice", o.sf.BookNo)
			}
			created[o.sf.BookNo] = true
		}
	}
	if len(created) != 20 {
		t.Fatalf("%d seafarers created, want 20", len(created))
	}
	var count int
	if err := s.EachSeafarer(ctx, SeafarerFilter{CompanyID: co.ID}, func(*Seafarer) error { count++; return nil }); err != nil || count != 20 {
		t.Fatalf("crew of %d, %v; want 20", count, err)
	}
}

func TestPGABatchOfAThousandCallsIsAttributedInOneQuery(t *testing.T) {
	t.Parallel()
	pool, counter := MustCountedPool(t)
	clock := &testClock{t: epoch}
	s := NewPGStore(pool, clock.Now)
	co := MustCompany(t, s, "R1")
	const crew = 50
	ids := make([]string, crew)
	for i := range crew {
		ids[i] = MustEnrol(t, s, co.ID, enrolment(fmt.Sprintf("E%d", i), msisdn(i))).ID
		clock.Advance(time.Minute)
	}
	changed := clock.Now()
	for i := 0; i < crew; i += 2 { // every other seafarer moves on; the odd ones' numbers stay
		MustChangeMSISDN(t, s, ids[i], msisdn(1000+i))
	}
	clock.Advance(time.Hour)
	taken := MustEnrol(t, s, co.ID, enrolment("LATE", msisdn(0))) // takes a released number
	clock.Advance(time.Hour)

	var calls []MSISDNAt
	var want []string
	for k := 0; len(calls) < 1000; k++ {
		i := k % crew
		calls = append(calls,
			MSISDNAt{msisdn(i), changed.Add(-time.Second)},       // before the change: the first holder
			MSISDNAt{msisdn(1000 + i), changed.Add(time.Minute)}, // after it
		)
		want = append(want, ids[i], "")
		if i%2 == 0 {
			want[len(want)-1] = ids[i]
		}
	}
	calls = append(calls, MSISDNAt{msisdn(0), clock.Now()}, MSISDNAt{"+86 138", epoch}, MSISDNAt{"\x00", epoch})
	want = append(want, taken.ID, "", "")

	counter.reset()
	MustAttribute(t, s, calls, want)
	if err := counter.one(); err != nil {
		t.Fatalf("%d calls: %v", len(calls), err)
	}
}

// Text PostgreSQL cannot keep (NUL bytes, bytes that are not UTF-8) is
// refused as invalid input, or names nothing; it never reaches the
// database as a driver error (a 500).
func TestPGHostileTextIsRefusedOrNamesNothingNeverAnInternalError(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	const nul, notUTF8 = "\x00", "\xff\xfe"

	for _, bad := range []string{nul, notUTF8, "a" + nul + "b"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			_, err := s.CreateCompany(ctx, "Acme"+bad, "R2")
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, "name")
			_, err = s.CreateCompany(ctx, "Acme", "R2"+bad)
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, "registration_no")

			for field, set := range map[string]func(*Enrolment){
				"seafarer_book_no": func(e *Enrolment) { e.BookNo += bad },
				"name":             func(e *Enrolment) { e.Name += bad },
				"nationality":      func(e *Enrolment) { e.Nationality += bad },
				"msisdn":           func(e *Enrolment) { e.MSISDN += bad },
				"vessel_imo":       func(e *Enrolment) { e.VesselIMO += bad },
				"vessel_name":      func(e *Enrolment) { e.VesselName += bad },
				"sign_on":          func(e *Enrolment) { e.SignOn += bad },
				"sign_off":         func(e *Enrolment) { e.SignOff = "2026-12-01" + bad },
				"union_member_no":  func(e *Enrolment) { e.UnionMemberNo += bad },
			} {
				e := enrolment("E2", msisdn(2))
				set(&e)
				_, _, err := s.Enrol(ctx, co.ID, e)
				wantCode(t, err, wuyou.EINVALID)
				wantField(t, err, field)
			}
			_, _, err = s.Enrol(ctx, co.ID+bad, enrolment("E2", msisdn(2)))
			wantCode(t, err, wuyou.ENOTFOUND)

			v := "x" + bad
			for field, u := range map[string]SeafarerUpdate{
				"msisdn": {MSISDN: &v}, "vessel_imo": {VesselIMO: &v}, "vessel_name": {VesselName: &v},
				"sign_off": {SignOff: &v}, "status": {Status: &v},
			} {
				_, err := s.UpdateSeafarer(ctx, sf.ID, u)
				wantCode(t, err, wuyou.EINVALID)
				wantField(t, err, field)
			}
			active := StatusActive
			_, err = s.UpdateSeafarer(ctx, sf.ID+bad, SeafarerUpdate{Status: &active})
			wantCode(t, err, wuyou.ENOTFOUND)

			id := "sf_" + bad
			_, err = s.Seafarer(ctx, id)
			wantCode(t, err, wuyou.ENOTFOUND)
			_, err = s.Company(ctx, "co_"+bad)
			wantCode(t, err, wuyou.ENOTFOUND)
			_, err = s.MSISDNHistory(ctx, id)
			wantCode(t, err, wuyou.ENOTFOUND)
			_, err = s.SeafarerStatus(ctx, id)
			wantCode(t, err, wuyou.ENOTFOUND)
			_, err = s.MSISDNOf(ctx, id)
			wantCode(t, err, wuyou.ENOTFOUND)
			wantCode(t, s.SeafarerExists(ctx, id), wuyou.ENOTFOUND)
			_, err = s.SeafarerByMSISDN(ctx, msisdn(1)+bad)
			wantCode(t, err, wuyou.ENOTFOUND)
			wantCode(t, s.CompanyCrew(ctx, "co_"+bad, func(string) error { return nil }), wuyou.ENOTFOUND)
			_, _, err = s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Cursor: bad})
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, "cursor")
			_, _, err = s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, VesselIMO: bad})
			wantClientError(t, err, wuyou.EINVALID)
			wantCode(t, s.VesselCrew(ctx, "9074729"+bad, func(string) error { return nil }), wuyou.EINVALID)

			statuses, err := s.SeafarerStatuses(ctx, []string{id, sf.ID})
			if err != nil || !slices.Equal(statuses, []string{"", StatusActive}) {
				t.Fatalf("SeafarerStatuses = %v, %v", statuses, err)
			}
			byMSISDN, err := s.SeafarerIDsByMSISDN(ctx, []string{msisdn(1) + bad, msisdn(1)})
			if err != nil || len(byMSISDN) != 1 || byMSISDN[msisdn(1)] != sf.ID {
				t.Fatalf("SeafarerIDsByMSISDN = %v, %v", byMSISDN, err)
			}
		})
	}
	if got, _ := s.Seafarer(ctx, sf.ID); *got != *sf {
		t.Fatalf("refused requests changed the seafarer: %+v", got)
	}
}

func TestPGTheYearZeroIsNotARealDate(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	e := enrolment("E1", msisdn(1))
	e.SignOn = "0000-01-01"
	_, _, err := s.Enrol(ctx, co.ID, e)
	wantCode(t, err, wuyou.EINVALID)
	wantField(t, err, "sign_on")

	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	e.SignOn, e.SignOff = "2026-10-01", "0000-12-31"
	_, _, err = s.Enrol(ctx, co.ID, e)
	wantClientError(t, err, wuyou.EINVALID)
	zero := "0000-02-29"
	_, err = s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{SignOff: &zero})
	wantClientError(t, err, wuyou.EINVALID)
	first := "0001-01-01" // the first real date, and before sign_on
	_, err = s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{SignOff: &first})
	wantCode(t, err, wuyou.EINVALID)
	wantField(t, err, "sign_off")
}

func TestPGSeafarerStatusesAnswersEachIDInOrderInOneQuery(t *testing.T) {
	t.Parallel()
	pool, counter := MustCountedPool(t)
	s := NewPGStore(pool, wuyou.SystemClock)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	a := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	b := MustEnrol(t, s, co.ID, enrolment("E2", msisdn(2)))
	suspended := StatusSuspended
	if _, err := s.UpdateSeafarer(ctx, b.ID, SeafarerUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	got, err := s.SeafarerStatuses(ctx, []string{b.ID, "sf_unknown", a.ID, b.ID, "", "sf_{x}"})
	if err != nil || !slices.Equal(got, []string{StatusSuspended, "", StatusActive, StatusSuspended, "", ""}) {
		t.Fatalf("SeafarerStatuses = %v, %v", got, err)
	}
	if err := counter.one(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SeafarerStatuses(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %v, %v", got, err)
	}
}

// Replicas' clocks disagree a little. A number released by a replica whose
// clock is ahead and taken by one whose clock is behind is held from the
// release on, so its periods never overlap, and the hook is told that time.
func TestPGANumberTakenByAReplicaWhoseClockIsBehindIsHeldFromItsRelease(t *testing.T) {
	t.Parallel()
	pool := pgtest.MustPool(t)
	ahead, behind := &testClock{t: epoch.Add(time.Hour)}, &testClock{t: epoch}
	s1, s2 := NewPGStore(pool, ahead.Now), NewPGStore(pool, behind.Now)
	var assignedAt time.Time
	s2.OnMSISDNAssigned = func(_ context.Context, _, _ string, at time.Time) { assignedAt = at }
	ctx := context.Background()
	co := MustCompany(t, s1, "R1")
	a := MustEnrol(t, s1, co.ID, enrolment("E1", msisdn(1)))
	ahead.Advance(time.Hour)
	MustChangeMSISDN(t, s1, a.ID, msisdn(2)) // released at epoch + 2h

	b := MustEnrol(t, s2, co.ID, enrolment("E2", msisdn(1))) // at epoch by its clock
	released := epoch.Add(2 * time.Hour)
	if !assignedAt.Equal(released) {
		t.Fatalf("OnMSISDNAssigned at %s, want the release %s", assignedAt, released)
	}
	history, err := s2.MSISDNHistory(ctx, b.ID)
	if err != nil || !slices.Equal(history, []MSISDNPeriod{{MSISDN: msisdn(1), From: released}}) {
		t.Fatalf("MSISDNHistory = %+v, %v", history, err)
	}
	// A change made by the clock that is behind ends a's current period no
	// earlier than it began.
	MustChangeMSISDN(t, s2, a.ID, msisdn(3))
	history, err = s2.MSISDNHistory(ctx, a.ID)
	want := []MSISDNPeriod{{msisdn(1), epoch.Add(time.Hour), released}, {msisdn(2), released, released}, {msisdn(3), released, time.Time{}}}
	if err != nil || !slices.Equal(history, want) {
		t.Fatalf("MSISDNHistory = %+v, %v; want %+v", history, err, want)
	}
	MustAttribute(t, s2, []MSISDNAt{{msisdn(1), released.Add(-time.Nanosecond)}, {msisdn(1), released}, {msisdn(3), released}},
		[]string{a.ID, b.ID, a.ID})
}

func TestPGTimesAreKeptToTheMicrosecondAndReturnedAsStored(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: epoch.Add(123456789 * time.Nanosecond)}
	s := NewPGStore(pgtest.MustPool(t), clock.Now)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	if got, _ := s.Company(ctx, co.ID); *got != *co || co.CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("Company = %+v, created %+v", got, co)
	}
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	got, err := s.Seafarer(ctx, sf.ID)
	if err != nil || *got != *sf || !strings.HasSuffix(sf.CreatedAt.Format(time.RFC3339Nano), ".123456Z") {
		t.Fatalf("Seafarer = %+v, %v; Enrol returned %+v", got, err, sf)
	}
	// A call 500ns into the microsecond the number was first held is the holder's.
	MustAttribute(t, s, []MSISDNAt{{msisdn(1), sf.CreatedAt.Add(500 * time.Nanosecond)}, {msisdn(1), sf.CreatedAt.Add(-500 * time.Nanosecond)}},
		[]string{sf.ID, sf.ID})
}
