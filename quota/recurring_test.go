package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// recurringLab is a recurring programme's world: the registry and the
// programmes in a fresh PostgreSQL database, the hot state under a fresh
// Redis prefix, and a clock the test moves.
type recurringLab struct {
	tb    testing.TB
	ctx   context.Context
	pool  *pgxpool.Pool
	store *PGProgrammes
	hot   *RedisStore
	pub   *recurringPublisher

	mu  sync.Mutex
	now time.Time

	seq atomic.Int64 // ids and event ids
}

func newRecurringLab(tb testing.TB, now time.Time) *recurringLab {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	l := &recurringLab{tb: tb, ctx: context.Background(), pool: pgtest.MustPool(tb), now: now, pub: &recurringPublisher{}}
	l.store = NewPGProgrammes(l.pool, l.clock, nil)
	l.hot = NewRedisStore(rdb, prefix, l.clock, Options{})
	return l
}

func (l *recurringLab) clock() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

func (l *recurringLab) set(t time.Time) {
	l.mu.Lock()
	l.now = t.UTC()
	l.mu.Unlock()
}

// engine is a new engine instance (a restart, or another replica).
func (l *recurringLab) engine() *RecurringEngine {
	e := NewRecurringEngine(l.store, l.hot, l.clock)
	e.Publisher = l.pub
	return e
}

// sweep runs one sweep of a new engine and fails the test on an error.
func (l *recurringLab) sweep() SweepReport {
	l.tb.Helper()
	rep, err := l.engine().Sweep(l.ctx)
	require.NoError(l.tb, err)
	return rep
}

func (l *recurringLab) exec(sql string, args ...any) {
	l.tb.Helper()
	_, err := l.pool.Exec(l.ctx, sql, args...)
	require.NoError(l.tb, err)
}

// company stores a company and returns its id.
func (l *recurringLab) company() string {
	l.tb.Helper()
	id := fmt.Sprintf("co_%d", l.seq.Add(1))
	l.exec(`INSERT INTO companies (id, name, registration_no, created_at) VALUES ($1, $1, $1, now())`, id)
	return id
}

// seafarer stores an active seafarer of company on vessel, signed on
// signOn (YYYY-MM-DD, "" for none) and off signOff ("" for none).
func (l *recurringLab) seafarer(id, company, vessel, signOn, signOff string) {
	l.tb.Helper()
	l.exec(`INSERT INTO seafarers (id, company_id, seafarer_book_no, name, vessel_imo, sign_on, sign_off, status, created_at, updated_at)
VALUES ($1, $2, $1, $1, $3, nullif($4, '')::date, nullif($5, '')::date, 'active', now(), now())`, id, company, vessel, signOn, signOff)
}

// recurringInput is a recurring programme for company: an hour a month,
// no rollover, unlimited, from 2020 to 2040.
func recurringInput(company string) ProgrammeInput {
	return ProgrammeInput{
		Name: "每月一小时", PackSeconds: 3600, Priority: 5,
		StartsAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), EndsAt: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		Recurrence: &Recurrence{Every: EveryMonth, While: WhileSignedOn}, CompanyID: company,
	}
}

func (l *recurringLab) programme(in ProgrammeInput) *Programme {
	l.tb.Helper()
	p, err := l.store.CreateProgramme(l.ctx, in)
	require.NoError(l.tb, err)
	return p
}

// storedGrant is a recurring grant as PostgreSQL has it.
type storedGrant struct {
	ID, SeafarerID, Month  string
	Seconds                int64
	EffectiveAt, ExpiresAt time.Time
}

// grants lists programme's grants in PostgreSQL by month, then seafarer.
func (l *recurringLab) grants(programmeID string) []storedGrant {
	l.tb.Helper()
	rows, err := l.pool.Query(l.ctx, `SELECT id, seafarer_id, recurring_month, seconds, effective_at, expires_at
FROM grants WHERE programme_id = $1 ORDER BY recurring_month, seafarer_id`, programmeID)
	require.NoError(l.tb, err)
	defer rows.Close()
	var out []storedGrant
	for rows.Next() {
		var g storedGrant
		require.NoError(l.tb, rows.Scan(&g.ID, &g.SeafarerID, &g.Month, &g.Seconds, &g.EffectiveAt, &g.ExpiresAt))
		g.EffectiveAt, g.ExpiresAt = g.EffectiveAt.UTC(), g.ExpiresAt.UTC()
		out = append(out, g)
	}
	require.NoError(l.tb, rows.Err())
	return out
}

// remaining is the hot state's remaining seconds of a grant (0 when absent).
func (l *recurringLab) remaining(seafarerID, grantID string) int64 {
	l.tb.Helper()
	rem, err := l.hot.GrantsRemaining(l.ctx, []GrantRef{{SeafarerID: seafarerID, GrantID: grantID}})
	require.NoError(l.tb, err)
	return rem[0]
}

// inHot reports whether Redis holds the grant.
func (l *recurringLab) inHot(seafarerID, grantID string) bool {
	gs, err := l.hot.Grants(l.ctx, seafarerID)
	require.NoError(l.tb, err)
	for _, g := range gs {
		if g.ID == grantID {
			return true
		}
	}
	return false
}

// call debits a call of seconds at the lab's now.
func (l *recurringLab) call(seafarerID string, seconds int64) *DebitResult {
	l.tb.Helper()
	r, err := l.hot.Debit(l.ctx, voiceCall(seafarerID, fmt.Sprintf("cdr-%d", l.seq.Add(1)), l.clock(), seconds))
	require.NoError(l.tb, err)
	return r
}

// recurringPublisher remembers every grant announced, with repeats.
type recurringPublisher struct {
	mu    sync.Mutex
	times map[string]int
	fail  atomic.Bool // refuse (like a broker that is down)
}

func (p *recurringPublisher) PublishGrants(_ context.Context, gs []IssuedGrant) error {
	if p.fail.Load() {
		return errors.New("broker down")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.times == nil {
		p.times = map[string]int{}
	}
	for _, g := range gs {
		if g.Entry == nil || g.Entry.ID != "g_"+g.Grant.ID || g.Entry.Seconds != g.Grant.Seconds {
			return fmt.Errorf("grant %s announced without its ledger entry", g.Grant.ID)
		}
		p.times[g.Grant.ID]++
	}
	return nil
}

func (p *recurringPublisher) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.times[id]
}

// shanghai is the default zone of recurring programmes.
var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Proves: every impossible shape of a recurring programme is refused with
// EINVALID naming the field, nothing is stored, and a well-formed one is
// stored with the default time zone and read back with its fields.
func TestARecurringProgrammeOfAnImpossibleShapeIsRefusedNamingTheField(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 4, 0, 0, 0, time.UTC))
	co := l.company()
	cases := []struct {
		name  string
		edit  func(*ProgrammeInput)
		field string
	}{
		{"no audience", func(in *ProgrammeInput) { in.CompanyID = "" }, "audience"},
		{"two audiences", func(in *ProgrammeInput) { in.All = true }, "audience"},
		{"three audiences", func(in *ProgrammeInput) { in.All, in.VesselIMO = true, "9074729" }, "audience"},
		{"negative rollover_max", func(in *ProgrammeInput) { in.Recurrence.RolloverMax = -1 }, "recurrence.rollover_max"},
		{"rollover_max over the largest pack of seconds", func(in *ProgrammeInput) { in.Recurrence.RolloverMax = maxPackSeconds + 1 }, "recurrence.rollover_max"},
		{"rollover_max over the largest pack of SMS", func(in *ProgrammeInput) {
			in.Unit, in.PackSeconds, in.PackAmount, in.Recurrence.RolloverMax = billing.UnitSMS, 0, 20, maxPackSMS+1
		}, "recurrence.rollover_max"},
		{"every week", func(in *ProgrammeInput) { in.Recurrence.Every = "week" }, "recurrence.every"},
		{"every missing", func(in *ProgrammeInput) { in.Recurrence.Every = "" }, "recurrence.every"},
		{"while always", func(in *ProgrammeInput) { in.Recurrence.While = "always" }, "recurrence.while"},
		{"unknown time zone", func(in *ProgrammeInput) { in.Recurrence.TimeZone = "Asia/Atlantis" }, "recurrence.time_zone"},
		{"the host's Local zone", func(in *ProgrammeInput) { in.Recurrence.TimeZone = "Local" }, "recurrence.time_zone"},
		{"valid_days on a recurring programme", func(in *ProgrammeInput) { in.ValidDays = 30 }, "valid_days"},
		{"a bad IMO number", func(in *ProgrammeInput) { in.CompanyID, in.VesselIMO = "", "9074728" }, "vessel_imo"},
		{"unknown company", func(in *ProgrammeInput) { in.CompanyID = "co_nobody" }, "company_id"},
		{"company audience without recurrence", func(in *ProgrammeInput) { in.Recurrence, in.ValidDays = nil, 30 }, "company_id"},
		{"all without recurrence", func(in *ProgrammeInput) { in.Recurrence, in.ValidDays, in.CompanyID, in.All = nil, 30, "", true }, "all"},
		{"vessel without recurrence", func(in *ProgrammeInput) {
			in.Recurrence, in.ValidDays, in.CompanyID, in.VesselIMO = nil, 30, "", "9074729"
		}, "vessel_imo"},
		{"no valid_days without recurrence", func(in *ProgrammeInput) { in.Recurrence, in.CompanyID = nil, "" }, "valid_days"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := recurringInput(co)
			r := *in.Recurrence
			in.Recurrence = &r
			c.edit(&in)
			_, err := l.store.CreateProgramme(l.ctx, in)
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, wuyou.EINVALID, we.Code, "%v", err)
			var fields []string
			for _, f := range we.Fields {
				fields = append(fields, f.Field)
			}
			require.Contains(t, fields, c.field, "%v", err)
		})
	}
	var n int
	require.NoError(t, l.pool.QueryRow(l.ctx, `SELECT count(*) FROM programmes`).Scan(&n))
	require.Zero(t, n, "nothing refused is stored")

	// The bound is the programme's unit's: 2 GB a month carrying over up to
	// 2 GB is a data programme the union would make, far above any seconds.
	data := recurringInput(co)
	data.Unit, data.PackSeconds, data.PackAmount = billing.UnitBytes, 0, 2<<30
	data.Recurrence = &Recurrence{Every: EveryMonth, While: WhileSignedOn, RolloverMax: 2 << 30}
	p, err := l.store.CreateProgramme(l.ctx, data)
	require.NoError(t, err)
	require.EqualValues(t, 2<<30, p.Recurrence.RolloverMax)
	got, err := l.store.Programme(l.ctx, p.ID)
	require.NoError(t, err)
	require.EqualValues(t, 2<<30, got.Recurrence.RolloverMax, "as stored")

	for name, edit := range map[string]func(*ProgrammeInput){
		"company": func(*ProgrammeInput) {},
		"vessel":  func(in *ProgrammeInput) { in.CompanyID, in.VesselIMO = "", "IMO 9074729" },
		"all":     func(in *ProgrammeInput) { in.CompanyID, in.All = "", true },
	} {
		in := recurringInput(co)
		edit(&in)
		p := l.programme(in)
		got, err := l.store.Programme(l.ctx, p.ID)
		require.NoError(t, err, name)
		require.Equal(t, &Recurrence{Every: "month", While: "signed_on", TimeZone: "Asia/Shanghai"}, got.Recurrence, name)
		require.Equal(t, p.CompanyID, got.CompanyID, name)
		require.Equal(t, p.VesselIMO, got.VesselIMO, name)
		require.Equal(t, p.All, got.All, name)
		require.Equal(t, &RecurringMonth{Period: "2027-03"}, got.Month, name)
		if name == "vessel" {
			require.Equal(t, "9074729", got.VesselIMO, "the IMO number is stored normalized")
		}
	}
}

// Proves: an issuance of a recurring programme is refused (its grants are
// the monthly issue's), so valid_days 0 never reaches an issuance.
func TestARecurringProgrammeIsNotIssuedByIssuances(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 4, 0, 0, 0, time.UTC))
	p := l.programme(recurringInput(l.company()))
	iss := NewIssuer(l.store, l.hot, newFakeRoster(), l.clock)
	_, _, err := iss.Start(l.ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: []string{"sf_1"}})
	require.Equal(t, wuyou.ECONFLICT, wuyou.ErrorCode(err), "%v", err)
}

// Proves: a month is the programme's zone's month, from local midnight on
// the 1st to local midnight on the next 1st, across the 31st, a leap-year
// February, and daylight saving changes.
func TestAMonthlyGrantRunsToTheEndOfTheMonthInTheProgrammesZone(t *testing.T) {
	cases := []struct {
		name, zone       string
		now              time.Time
		month            string
		effective, expir time.Time
	}{
		{"Shanghai on Jan 31", "Asia/Shanghai", time.Date(2027, 1, 31, 22, 0, 0, 0, shanghai), "2027-01",
			time.Date(2027, 1, 1, 0, 0, 0, 0, shanghai), time.Date(2027, 2, 1, 0, 0, 0, 0, shanghai)},
		{"Shanghai already Feb 1 while UTC is Jan 31", "Asia/Shanghai", time.Date(2027, 1, 31, 16, 30, 0, 0, time.UTC), "2027-02",
			time.Date(2027, 2, 1, 0, 0, 0, 0, shanghai), time.Date(2027, 3, 1, 0, 0, 0, 0, shanghai)},
		{"leap-year February", "Asia/Shanghai", time.Date(2028, 2, 29, 12, 0, 0, 0, shanghai), "2028-02",
			time.Date(2028, 2, 1, 0, 0, 0, 0, shanghai), time.Date(2028, 3, 1, 0, 0, 0, 0, shanghai)},
		{"Berlin in March (summer time begins)", "Europe/Berlin", time.Date(2027, 3, 31, 23, 30, 0, 0, mustZone("Europe/Berlin")), "2027-03",
			time.Date(2027, 2, 28, 23, 0, 0, 0, time.UTC), time.Date(2027, 3, 31, 22, 0, 0, 0, time.UTC)},
		{"Berlin in October (summer time ends)", "Europe/Berlin", time.Date(2027, 10, 31, 12, 0, 0, 0, mustZone("Europe/Berlin")), "2027-10",
			time.Date(2027, 9, 30, 22, 0, 0, 0, time.UTC), time.Date(2027, 10, 31, 23, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newRecurringLab(t, c.now)
			co := l.company()
			l.seafarer("sf_a", co, "", "2026-01-01", "")
			in := recurringInput(co)
			in.Recurrence.TimeZone = c.zone
			p := l.programme(in)
			require.Equal(t, 1, l.sweep().Issued)
			gs := l.grants(p.ID)
			require.Len(t, gs, 1)
			require.Equal(t, c.month, gs[0].Month)
			require.Equal(t, c.effective.UTC(), gs[0].EffectiveAt)
			require.Equal(t, c.expir.UTC(), gs[0].ExpiresAt)
			require.Equal(t, RecurringGrantID(p.ID, c.month, "sf_a"), gs[0].ID)
			require.True(t, l.inHot("sf_a", gs[0].ID), "the grant is in the hot state")
			require.Equal(t, 1, l.pub.count(gs[0].ID), "and announced once")
		})
	}
}

// Proves: whoever signs on mid-month gets that month's grant at the first
// sweep of the sign-on day, effective from the start of that day; before
// the day nothing; one who signed off, or is not active, gets no further
// months.
func TestSignOnMidMonthGrantsAtOnceAndSignOffStopsLaterMonths(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai))
	co := l.company()
	l.seafarer("sf_late", co, "", "2027-03-15", "")
	l.seafarer("sf_leaving", co, "", "2027-01-01", "2027-03-20")
	l.seafarer("sf_suspended", co, "", "2027-01-01", "")
	l.exec(`UPDATE seafarers SET status = 'suspended' WHERE id = 'sf_suspended'`)
	l.seafarer("sf_never", co, "", "", "")
	other := l.company()
	l.seafarer("sf_other_company", other, "", "2027-01-01", "")
	p := l.programme(recurringInput(co))

	require.Equal(t, 1, l.sweep().Issued, "on Mar 10 only sf_leaving is signed on")
	l.set(time.Date(2027, 3, 14, 23, 59, 0, 0, shanghai))
	require.Equal(t, 0, l.sweep().Issued, "the eve of sign-on gives nothing")
	l.set(time.Date(2027, 3, 15, 0, 0, 30, 0, shanghai))
	require.Equal(t, 1, l.sweep().Issued, "the sign-on day gives the month's grant at once")
	gs := l.grants(p.ID)
	require.Equal(t, []string{"sf_late", "sf_leaving"}, []string{gs[0].SeafarerID, gs[1].SeafarerID})
	require.Equal(t, time.Date(2027, 3, 15, 0, 0, 0, 0, shanghai).UTC(), gs[0].EffectiveAt, "effective from the sign-on day")
	require.Equal(t, time.Date(2027, 3, 1, 0, 0, 0, 0, shanghai).UTC(), gs[1].EffectiveAt)
	require.Equal(t, time.Date(2027, 4, 1, 0, 0, 0, 0, shanghai).UTC(), gs[0].ExpiresAt)

	l.set(time.Date(2027, 4, 1, 0, 1, 0, 0, shanghai))
	require.Equal(t, 1, l.sweep().Issued, "April: only sf_late; sf_leaving signed off on Mar 20")
	gs = l.grants(p.ID)
	require.Len(t, gs, 3)
	require.Equal(t, "2027-04", gs[2].Month)
	require.Equal(t, "sf_late", gs[2].SeafarerID)

	// Signing off today still counts today; from tomorrow nothing.
	l.exec(`UPDATE seafarers SET sign_off = '2027-05-01' WHERE id = 'sf_late'`)
	l.set(time.Date(2027, 5, 1, 8, 0, 0, 0, shanghai))
	require.Equal(t, 1, l.sweep().Issued, "signed off on May 1: May 1 is still a day on board")
	l.set(time.Date(2027, 6, 1, 8, 0, 0, 0, shanghai))
	require.Equal(t, 0, l.sweep().Issued, "nobody is on board in June")
}

// Proves: the per-month budget is never exceeded however many sweeps run at
// once, and the next month has a budget of its own.
func TestTwoSweepersAtOnceNeverIssueBeyondTheMonthsBudget(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai))
	co := l.company()
	for j := range 30 {
		l.seafarer(fmt.Sprintf("sf_%02d", j), co, "", "2027-01-01", "")
	}
	in := recurringInput(co)
	in.BudgetPacks = 12
	p := l.programme(in)
	for _, at := range []time.Time{time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai), time.Date(2027, 4, 2, 9, 0, 0, 0, shanghai)} {
		l.set(at)
		var wg sync.WaitGroup
		var issued atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					rep, err := l.engine().Sweep(l.ctx)
					if err != nil {
						t.Error(err)
					}
					issued.Add(int64(rep.Issued))
				}
			}()
		}
		wg.Wait()
		require.EqualValues(t, 12, issued.Load(), "the sweeps together issued exactly the budget")
		got, err := l.store.Programme(l.ctx, p.ID)
		require.NoError(t, err)
		require.EqualValues(t, 12, got.Month.PacksIssued)
		require.EqualValues(t, 0, *got.BudgetRemainingPacks)
	}
	gs := l.grants(p.ID)
	require.Len(t, gs, 24, "12 a month")
	byMonth := map[string][]string{}
	for _, g := range gs {
		byMonth[g.Month] = append(byMonth[g.Month], g.SeafarerID)
	}
	for m, ids := range byMonth {
		require.Len(t, ids, 12, m)
		require.Equal(t, "sf_11", ids[11], "lowest ids first: %s", m)
	}
	got, err := l.store.Programme(l.ctx, p.ID)
	require.NoError(t, err)
	require.EqualValues(t, 24, got.PacksIssued)
	require.EqualValues(t, 24*3600, got.SecondsGranted)
}

// Proves: sweeping again, and sweeping with new engines (restarts), issues
// nothing twice and announces nothing twice; a crash between PostgreSQL
// and Redis (or the broker) is repaired by the next sweep.
func TestReRunsAndRestartsIssueNothingTwiceAndACrashBeforeRedisIsRepaired(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai))
	co := l.company()
	for j := range 5 {
		l.seafarer(fmt.Sprintf("sf_%d", j), co, "", "2027-01-01", "")
	}
	p := l.programme(recurringInput(co))

	// The "crash": Redis refuses after PostgreSQL committed.
	e := NewRecurringEngine(l.store, crashingHot{l.hot}, l.clock)
	e.Publisher = l.pub
	rep, err := e.Sweep(l.ctx)
	require.Error(t, err)
	require.Equal(t, 5, rep.Issued, "committed to PostgreSQL")
	gs := l.grants(p.ID)
	require.Len(t, gs, 5)
	for _, g := range gs {
		require.False(t, l.inHot(g.SeafarerID, g.ID))
	}
	// The broker down: the grants reach Redis, not the topic; still listed.
	l.pub.fail.Store(true)
	_, err = l.engine().Sweep(l.ctx)
	require.Error(t, err)
	l.pub.fail.Store(false)

	rep = l.sweep()
	require.Equal(t, 0, rep.Issued)
	require.Equal(t, 5, rep.Announced, "the next sweep adds and announces what was committed")
	for _, g := range gs {
		require.True(t, l.inHot(g.SeafarerID, g.ID))
		require.Equal(t, 1, l.pub.count(g.ID))
		require.EqualValues(t, 3600, l.remaining(g.SeafarerID, g.ID))
	}
	for range 3 {
		rep = l.sweep()
		require.Equal(t, SweepReport{Programmes: 1}, rep, "nothing more to do")
	}
	require.Len(t, l.grants(p.ID), 5)
	for _, g := range gs {
		require.Equal(t, 1, l.pub.count(g.ID), "announced once")
	}
	var n int
	require.NoError(t, l.pool.QueryRow(l.ctx, `SELECT count(*) FROM recurring_unannounced`).Scan(&n))
	require.Zero(t, n)

	// A second grant for the same programme, seafarer and month is impossible
	// even under another id.
	_, err = l.pool.Exec(l.ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, recurring_month)
SELECT 'gr_other', seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, recurring_month FROM grants WHERE id = $1`, gs[0].ID)
	require.ErrorContains(t, err, "grant_once_per_programme_month")
}

// crashingHot is a hot state whose AddGrant fails, as a crash would.
type crashingHot struct{ *RedisStore }

func (crashingHot) AddGrant(context.Context, GrantInput) (bool, *LedgerEntry, error) {
	return false, nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "redis went away")
}

// Proves: the new month's grant adds what was left of last month's grant,
// at most rollover_max; nothing carries over two months or from a voided
// grant.
func TestRolloverAddsLastMonthsRemainderUpToRolloverMax(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 9, 0, 0, 0, shanghai))
	co := l.company()
	for _, id := range []string{"sf_heavy", "sf_light", "sf_idle", "sf_voided"} {
		l.seafarer(id, co, "", "2027-01-01", "")
	}
	in := recurringInput(co)
	in.Recurrence.RolloverMax = 1000
	p := l.programme(in)
	require.Equal(t, 4, l.sweep().Issued)
	l.call("sf_heavy", 3600) // nothing left
	l.call("sf_light", 3000) // 600 left
	march := RecurringGrantID(p.ID, "2027-03", "sf_voided")
	_, err := l.hot.VoidGrant(l.ctx, "sf_voided", march)
	require.NoError(t, err)

	l.set(time.Date(2027, 4, 1, 0, 0, 5, 0, shanghai))
	require.Equal(t, 4, l.sweep().Issued)
	want := map[string]int64{"sf_heavy": 3600, "sf_light": 3600 + 600, "sf_idle": 3600 + 1000, "sf_voided": 3600}
	for id, secs := range want {
		g := RecurringGrantID(p.ID, "2027-04", id)
		require.Equal(t, secs, l.remaining(id, g), id)
	}
	l.set(time.Date(2027, 6, 1, 0, 0, 5, 0, shanghai))
	require.Equal(t, 4, l.sweep().Issued, "June after a May without a sweep")
	for id := range want {
		require.EqualValues(t, 3600, l.remaining(id, RecurringGrantID(p.ID, "2027-06", id)), "%s: May was never issued, so nothing rolls over", id)
	}
	got, err := l.store.Programme(l.ctx, p.ID)
	require.NoError(t, err)
	require.EqualValues(t, 12, got.PacksIssued)
	require.EqualValues(t, 4*3600+(4*3600+1600)+4*3600, got.SecondsGranted)
}
