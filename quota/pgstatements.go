package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// PGStatements is billing.StatementStore as SQL over the PostgreSQL ledger
// (ledger_entries) and its closed periods (statement_periods, see
// internal/pgschema/migrations/00005_periods.sql).
//
// Nothing is counted as calls are metered: a statement is an aggregate of
// the debits and adjusts whose statement_period is its period, and
// PGLedger.Append decides that period once, when it stores the entry, under
// the period's shared advisory lock. ClosePeriod takes the exclusive lock and marks the
// period closed in the same transaction, so the rows of a closed period are
// exactly those stored before its close committed: its statements are
// frozen without copying anything, and a call metered later is stored as
// an adjustment in the first open period after it.
//
// Every query of one period's statement is bounded by the index
// ledger_debits_by_statement (statement_period, seafarer_id) of the
// partitions up to the period's end (later months are pruned: nothing is
// counted in a period before the call was made); a programme's also by
// ledger_debits_by_programme.
//
// Adjusts (kind 'adjust', 00015_adjust.sql) are added to every figure but
// never counted as calls. They are read in a branch of their own (UNION
// ALL), by ledger_adjusts_by_statement and ledger_adjusts_by_programme,
// partial indexes of adjusts alone. An adjust is filed under the second it
// was applied, which may be after its period's end (a CDR arriving after
// the month ended, while the month is open), so later months are read too,
// through those small indexes; earlier months are pruned (adjustsFrom).
type PGStatements struct {
	pool *pgxpool.Pool
	now  wuyou.Clock
}

// NewPGStatements returns statements over pool, whose database is
// migrated; now stamps closes (nil: the system clock).
func NewPGStatements(pool *pgxpool.Pool, now wuyou.Clock) *PGStatements {
	if now == nil {
		now = wuyou.SystemClock
	}
	return &PGStatements{pool: pool, now: now}
}

var (
	_ billing.StatementStore = (*PGStatements)(nil)
	_ ProgrammeUsage         = (*PGStatements)(nil)
)

// statementLockClass is the first key of the periods' advisory locks
// (pg_advisory_xact_lock*(class, period)); the second is the period as
// months since year 0. Two-key advisory locks never collide with the
// one-key lock of ledger_ensure_months.
const statementLockClass int32 = 0x57595350 // "WYSP"

// periodLockKey is period ("YYYY-MM") as months since year 0.
func periodLockKey(period string) (int32, error) {
	y, m, ok := strings.Cut(period, "-")
	year, err1 := strconv.Atoi(y)
	month, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || year < 0 || month < 1 || month > 12 {
		return 0, wuyou.Errorf(wuyou.EINVALID, "statement period %q is not a month", period)
	}
	return int32(year*12 + month - 1), nil
}

// lockPeriodsShared takes the shared lock of each period (ascending), then
// reads the closed periods from the first of them on. Two statements, so
// the read's snapshot is taken once the locks are held: a close that
// committed before a lock was granted is seen.
func lockPeriodsShared(ctx context.Context, tx pgx.Tx, periods []string) (map[string]bool, error) {
	keys := make([]int32, len(periods))
	for i, p := range periods {
		k, err := periodLockKey(p)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock_shared($1, k) FROM unnest($2::int4[]) AS k", statementLockClass, keys)
	b.Queue("SELECT period FROM statement_periods WHERE status = 'closed' AND period >= $1", periods[0])
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	closed := map[string]bool{}
	var p string
	if _, err := pgx.ForEachRow(rows, []any{&p}, func() error { closed[p] = true; return nil }); err != nil {
		return nil, err
	}
	return closed, br.Close()
}

// PeriodState returns whether period is open or closed. EINVALID for a
// malformed period.
func (s *PGStatements) PeriodState(ctx context.Context, period string) (*billing.PeriodState, error) {
	if _, _, err := billing.PeriodBounds(period); err != nil {
		return nil, err
	}
	st, _, err := s.periodState(ctx, s.pool, period)
	return st, err
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// periodState reads period's row; open when it has none. seafarers is the
// count its close stored.
func (s *PGStatements) periodState(ctx context.Context, q rowQuerier, period string) (*billing.PeriodState, *int64, error) {
	st := &billing.PeriodState{Period: period, Status: billing.PeriodOpen}
	var closedAt *time.Time
	var seafarers *int64
	err := q.QueryRow(ctx, "SELECT status, closed_at, seafarers FROM statement_periods WHERE period = $1", period).
		Scan(&st.Status, &closedAt, &seafarers)
	switch {
	case err == pgx.ErrNoRows:
		return st, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("quota: period state: %w", err)
	}
	if closedAt != nil {
		t := closedAt.UTC()
		st.ClosedAt = &t
	}
	return st, seafarers, nil
}

// adjustsFrom is the earliest filing time of an adjust counted in the
// period starting at start. An adjust is counted in its call's period, or,
// when that was closed, the first open one after; a period is closed only
// once it has ended (billing.Statements.ClosePeriod). So an adjust was
// applied after its statement period began: after its call, or after the
// periods before were closed. The bound starts a day early for the clocks
// of the carrier and of replicas that disagree.
func adjustsFrom(start time.Time) time.Time { return start.Add(-24 * time.Hour) }

// closeSQL marks period $1 closed at $2, counting the seafarers with
// figures in it (debits filed before $3, its end; adjusts from $4,
// adjustsFrom). A period closed already keeps its row.
const closeSQL = `
INSERT INTO statement_periods (period, status, closed_at, seafarers)
SELECT $1, 'closed', $2, count(DISTINCT seafarer_id)
FROM (
    SELECT seafarer_id FROM ledger_entries WHERE kind = 'debit' AND statement_period = $1 AND filed_at < $3
    UNION ALL
    SELECT seafarer_id FROM ledger_entries WHERE kind = 'adjust' AND statement_period = $1 AND filed_at >= $4
) counted
ON CONFLICT (period) DO UPDATE SET status = 'closed', closed_at = excluded.closed_at, seafarers = excluded.seafarers
    WHERE statement_periods.status <> 'closed'`

// ClosePeriod closes period: from its commit on, no debit is counted in
// it, and its statements are the debits counted before. It waits for the
// ledger batches counting into the period (their shared lock) and holds
// back new ones until it commits. Closing a closed period changes nothing
// and returns its state. The reply says how many seafarers have figures in
// it. EINVALID for a malformed period.
func (s *PGStatements) ClosePeriod(ctx context.Context, period string) (*billing.PeriodState, error) {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	key, err := periodLockKey(period)
	if err != nil {
		return nil, err
	}
	var st *billing.PeriodState
	var seafarers *int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The lock first, on its own: the count below must see every batch
		// that held the shared lock before.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", statementLockClass, key); err != nil {
			return err
		}
		closedAt := time.Unix(s.now().Unix(), 0).UTC() // to the second, as the close is shown
		if _, err := tx.Exec(ctx, closeSQL, period, closedAt, end, adjustsFrom(start)); err != nil {
			return err
		}
		st, seafarers, err = s.periodState(ctx, tx, period)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quota: close %s: %w", period, err)
	}
	st.Seafarers = seafarers
	return st, nil
}

// storableText reports whether PostgreSQL can hold s as text: an id that
// cannot be stored has no figures.
func storableText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// usageAccumulator builds SeafarerUsage from grouped rows of one seafarer
// at a time.
type usageAccumulator struct {
	u        billing.SeafarerUsage
	currency string
	adjusted map[string]*billing.Figures
	any      bool
}

func (a *usageAccumulator) reset(seafarerID string) {
	*a = usageAccumulator{u: billing.SeafarerUsage{SeafarerID: seafarerID}}
}

// add adds the figures f of the calls adjusting adjusts ("" for the
// period's own) in currency.
func (a *usageAccumulator) add(adjusts, currency string, f billing.Figures) error {
	a.any = true
	switch {
	case a.currency == "":
		a.currency = currency
	case currency != "" && currency != a.currency:
		return wuyou.Errorf(wuyou.EUNPROCESSABLE, "figures of %s are in %s and %s", a.u.SeafarerID, a.currency, currency)
	}
	target := &a.u.Period
	if adjusts != "" {
		if a.adjusted == nil {
			a.adjusted = map[string]*billing.Figures{}
		}
		if a.adjusted[adjusts] == nil {
			a.adjusted[adjusts] = &billing.Figures{}
		}
		target = a.adjusted[adjusts]
	}
	return target.Add(f)
}

// usage is the seafarer's figures: one currency on every amount, as the
// Redis store gives them, adjustments by period.
func (a *usageAccumulator) usage() billing.SeafarerUsage {
	u := a.u
	if !a.any {
		return u
	}
	u.Period = withCurrency(u.Period, a.currency)
	for p, f := range a.adjusted {
		u.Adjustments = append(u.Adjustments, billing.Adjustment{Period: p, Figures: withCurrency(*f, a.currency)})
	}
	sort.Slice(u.Adjustments, func(i, j int) bool { return u.Adjustments[i].Period < u.Adjustments[j].Period })
	return u
}

// programmeUsageSQL: the share of programme $4 (containment $3 for the
// indexes) in each seafarer's figures of period $1 (debits filed before its
// end $2, adjusts from $5), by seafarer; calls count debits only.
const programmeUsageSQL = `
SELECT e.seafarer_id, coalesce(e.adjusts_period, ''), coalesce(e.currency, e.welfare_cost_currency, ''), e.unit,
    count(*) FILTER (WHERE e.kind = 'debit'), sum((s->>'seconds')::int8)::int8, sum((s->>'welfare_minor')::int8)::int8
FROM (
    SELECT seafarer_id, kind, adjusts_period, currency, welfare_cost_currency, unit, programme_shares
    FROM ledger_entries
    WHERE kind = 'debit' AND statement_period = $1 AND filed_at < $2 AND programme_shares @> $3::jsonb
    UNION ALL
    SELECT seafarer_id, kind, adjusts_period, currency, welfare_cost_currency, unit, programme_shares
    FROM ledger_entries
    WHERE kind = 'adjust' AND statement_period = $1 AND filed_at >= $5 AND programme_shares @> $3::jsonb
) e CROSS JOIN LATERAL jsonb_array_elements(e.programme_shares) AS s
WHERE s->>'programme_id' = $4
GROUP BY 1, 2, 3, 4
ORDER BY 1`

// programmeFilter is the jsonb containment that finds a programme's debits
// by ledger_debits_by_programme.
func programmeFilter(programmeID string) string {
	b, _ := json.Marshal([]map[string]string{{"programme_id": programmeID}}) // strings always marshal
	return string(b)
}

// ProgrammeUsage implements billing.StatementStore: for every seafarer
// with figures of the programme's packs in period, the seconds they covered
// (billable = covered: the programme pays for no overage) and their share
// of the welfare cost, streamed by seafarer. EINVALID for a malformed period
// or programme id; fn's error is returned as it is.
func (s *PGStatements) ProgrammeUsage(ctx context.Context, period, programmeID string, fn func(billing.SeafarerUsage) error) error {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return err
	}
	if !storableText(programmeID) {
		return wuyou.Errorf(wuyou.EINVALID, "programme id is not valid UTF-8 text without NUL bytes")
	}
	rows, err := s.pool.Query(ctx, programmeUsageSQL, period, end, programmeFilter(programmeID), programmeID, adjustsFrom(start))
	if err != nil {
		return fmt.Errorf("quota: programme statement: %w", err)
	}
	return eachUsage(rows, func(a *usageAccumulator, adjusts, currency, unit string, calls, covered, welfare int64) error {
		if unit != billing.UnitSeconds { // the share's "seconds" are in the entry's unit
			return a.add(adjusts, currency, billing.Figures{WelfareCost: billing.Money{Minor: welfare}, Units: []billing.UnitFigures{
				{Unit: unit, Events: calls, Billable: covered, Covered: covered, WelfareCost: billing.Money{Minor: welfare}}}})
		}
		return a.add(adjusts, currency, billing.Figures{Calls: calls, BillableSeconds: covered, CoveredSeconds: covered,
			WelfareCost: billing.Money{Minor: welfare}})
	}, fn)
}

// eachUsage reads rows ordered by seafarer (seafarer, adjusts, currency, unit,
// calls, then figures read by add) and calls fn once per seafarer.
func eachUsage(rows pgx.Rows, add func(a *usageAccumulator, adjusts, currency, unit string, calls, x, y int64) error,
	fn func(billing.SeafarerUsage) error) error {
	defer rows.Close()
	var (
		a                   usageAccumulator
		seafarer, current   string
		adjusts, currency   string
		unit                string
		calls, first, other int64
		started             bool
	)
	for rows.Next() {
		if err := rows.Scan(&seafarer, &adjusts, &currency, &unit, &calls, &first, &other); err != nil {
			return fmt.Errorf("quota: statement figures: %w", err)
		}
		if !started || seafarer != current {
			if started {
				if err := fn(a.usage()); err != nil {
					return err
				}
			}
			a.reset(seafarer)
			current, started = seafarer, true
		}
		if err := add(&a, adjusts, currency, unit, calls, first, other); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quota: statement figures: %w", err)
	}
	if started {
		return fn(a.usage())
	}
	return nil
}

// seafarersUsageSQL: the figures of seafarers $3 in period $1 (debits
// filed before its end $2, adjusts from $4), one row per unit. The amount
// columns hold the row's unit: a seconds row gives the calls and *_seconds
// figures, another unit's its Units entry; money counts every unit. Calls
// count debits only; adjusts add their signed amounts. Free calls (debits
// marked free) are counted, with their duration, apart as well.
const seafarersUsageSQL = `
SELECT seafarer_id, coalesce(adjusts_period, ''), coalesce(currency, welfare_cost_currency, ''), unit,
    count(*) FILTER (WHERE kind = 'debit'),
    sum(billable_seconds)::int8, sum(covered_seconds)::int8, sum(overage_seconds)::int8,
    sum(overage_amount_minor)::int8, coalesce(sum(welfare_cost_minor), 0)::int8,
    count(*) FILTER (WHERE kind = 'debit' AND free), coalesce(sum(duration_seconds) FILTER (WHERE kind = 'debit' AND free), 0)::int8
FROM (
    SELECT seafarer_id, kind, adjusts_period, currency, welfare_cost_currency, unit, billable_seconds, covered_seconds,
        overage_seconds, overage_amount_minor, welfare_cost_minor, free, duration_seconds
    FROM ledger_entries
    WHERE kind = 'debit' AND statement_period = $1 AND filed_at < $2 AND seafarer_id = ANY($3::text[])
    UNION ALL
    SELECT seafarer_id, kind, adjusts_period, currency, welfare_cost_currency, unit, billable_seconds, covered_seconds,
        overage_seconds, overage_amount_minor, welfare_cost_minor, free, duration_seconds
    FROM ledger_entries
    WHERE kind = 'adjust' AND statement_period = $1 AND filed_at >= $4 AND seafarer_id = ANY($3::text[])
) e
GROUP BY 1, 2, 3, 4`

// SeafarersUsage implements billing.StatementStore: the figures of each
// listed seafarer in period's statement, in the order asked (zero figures
// for one without calls). EINVALID for a malformed period; EUNPROCESSABLE
// when a seafarer's figures are in two currencies.
func (s *PGStatements) SeafarersUsage(ctx context.Context, period string, seafarerIDs []string) ([]billing.SeafarerUsage, error) {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(seafarerIDs))
	for _, id := range seafarerIDs {
		if storableText(id) {
			ids = append(ids, id)
		}
	}
	byID := map[string]*usageAccumulator{}
	rows, err := s.pool.Query(ctx, seafarersUsageSQL, period, end, ids, adjustsFrom(start))
	if err != nil {
		return nil, fmt.Errorf("quota: seafarers' statements: %w", err)
	}
	var (
		id, adjusts, currency, unit                        string
		calls, billable, covered, overage, amount, welfare int64
		freeCalls, freeSeconds                             int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &adjusts, &currency, &unit, &calls, &billable, &covered, &overage, &amount, &welfare,
		&freeCalls, &freeSeconds}, func() error {
		a := byID[id]
		if a == nil {
			a = &usageAccumulator{}
			a.reset(id)
			byID[id] = a
		}
		f := billing.Figures{OverageAmount: billing.Money{Minor: amount}, WelfareCost: billing.Money{Minor: welfare}}
		if unit == billing.UnitSeconds {
			f.Calls, f.BillableSeconds, f.CoveredSeconds, f.OverageSeconds = calls, billable, covered, overage
			f.FreeCalls, f.FreeSeconds = freeCalls, freeSeconds
		} else {
			f.Units = []billing.UnitFigures{{Unit: unit, Events: calls, Billable: billable, Covered: covered, Overage: overage,
				OverageAmount: billing.Money{Minor: amount}, WelfareCost: billing.Money{Minor: welfare}}}
		}
		return a.add(adjusts, currency, f)
	})
	if err != nil {
		var we *wuyou.Error
		if errors.As(err, &we) {
			return nil, err
		}
		return nil, fmt.Errorf("quota: seafarers' statements: %w", err)
	}
	out := make([]billing.SeafarerUsage, len(seafarerIDs))
	for i, id := range seafarerIDs {
		if a := byID[id]; a != nil {
			out[i] = a.usage()
		} else {
			out[i] = billing.SeafarerUsage{SeafarerID: id}
		}
	}
	return out, nil
}

// seafarerCallsSQL: the debits and adjusts counted in seafarer $2's
// statement of period $1 (debits filed before its end $3, adjusts from
// $4), by call time. A data session's or an SMS's line has its money but
// no seconds (its amounts are not seconds). A free voice call's line says
// so, with its duration (the last two columns).
const seafarerCallsSQL = `
SELECT ` + seafarerCallColumns + `
FROM ledger_entries
WHERE kind = 'debit' AND statement_period = $1 AND seafarer_id = $2 AND filed_at < $3 AND call_time IS NOT NULL
UNION ALL
SELECT ` + seafarerCallColumns + `
FROM ledger_entries
WHERE kind = 'adjust' AND statement_period = $1 AND seafarer_id = $2 AND filed_at >= $4 AND call_time IS NOT NULL
ORDER BY 4, 1`

// seafarerCallColumns are what seafarerCallsSQL reads of a debit or an
// adjust.
const seafarerCallColumns = `id, kind = 'debit', coalesce(event_id, ''), call_time, coalesce(msisdn, ''), coalesce(visited_country, ''),
    coalesce(adjusts_period, ''),
    CASE WHEN unit = 'seconds' THEN billable_seconds ELSE 0 END,
    CASE WHEN unit = 'seconds' THEN covered_seconds ELSE 0 END,
    CASE WHEN unit = 'seconds' THEN overage_seconds ELSE 0 END, overage_amount_minor,
    coalesce(currency, ''), welfare_cost_minor, coalesce(welfare_cost_currency, ''),
    kind = 'debit' AND free AND unit = 'seconds', duration_seconds`

// SeafarerCalls implements billing.StatementStore: the calls counted in a
// seafarer's statement of period, by call time then entry id. An adjust of
// a call (a CDR settling a real-time session) is a line of its own, with
// its signed amounts and no call (Calls 0): the call is its session's
// debit. EINVALID for a malformed period.
func (s *PGStatements) SeafarerCalls(ctx context.Context, period, seafarerID string) ([]billing.CallLine, error) {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	lines := []billing.CallLine{}
	if !storableText(seafarerID) {
		return lines, nil
	}
	rows, err := s.pool.Query(ctx, seafarerCallsSQL, period, seafarerID, end, adjustsFrom(start))
	if err != nil {
		return nil, fmt.Errorf("quota: statement lines: %w", err)
	}
	var (
		l              billing.CallLine
		currency, wcur string
		welfare        *int64
		call, free     bool
		duration       int64
	)
	_, err = pgx.ForEachRow(rows, []any{&l.EntryID, &call, &l.EventID, &l.CallTime, &l.MSISDN, &l.VisitedCountry, &l.AdjustsPeriod,
		&l.BillableSeconds, &l.CoveredSeconds, &l.OverageSeconds, &l.OverageAmount.Minor, &currency, &welfare, &wcur,
		&free, &duration}, func() error {
		line := l
		line.CallTime = l.CallTime.UTC()
		line.Calls = 0
		if call {
			line.Calls = 1
		}
		line.FreeCalls, line.FreeSeconds = 0, 0
		if free {
			line.FreeCalls, line.FreeSeconds = 1, duration
		}
		line.OverageAmount.Currency = currency
		line.WelfareCost = billing.Money{}
		if welfare != nil {
			line.WelfareCost = billing.Money{Minor: *welfare, Currency: wcur}
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: statement lines: %w", err)
	}
	return lines, nil
}

// usageByMSISDNSQL: the calls made in [$1, $2) by call time, whatever
// statement counts them, per seafarer and MSISDN, with the adjusts of
// those calls added to their seconds (not counted as calls). A debit's
// filed_at is the call's second, so its range is one month's partition; an
// adjust is filed when it was applied (from $3, adjustsFrom, on) and found
// by its call time (ledger_adjusts_by_call_time). Only voice calls (unit
// seconds): the carrier's settlement file counts calls and seconds.
const usageByMSISDNSQL = `
SELECT seafarer_id, coalesce(msisdn, ''), count(*) FILTER (WHERE kind = 'debit'),
    sum(billable_seconds)::int8, sum(covered_seconds)::int8
FROM (
    SELECT seafarer_id, msisdn, kind, billable_seconds, covered_seconds
    FROM ledger_entries
    WHERE kind = 'debit' AND filed_at >= $1 AND filed_at < $2 AND call_time IS NOT NULL AND unit = 'seconds'
    UNION ALL
    SELECT seafarer_id, msisdn, kind, billable_seconds, covered_seconds
    FROM ledger_entries
    WHERE kind = 'adjust' AND call_time >= $1 AND call_time < $2 AND filed_at >= $3 AND unit = 'seconds'
) e
GROUP BY 1, 2`

// UsageByMSISDN implements billing.StatementStore: Wuyou's figures of every
// call made in period, per seafarer and the MSISDN it was made from,
// streamed. EINVALID for a malformed period; fn's error is returned as it is.
func (s *PGStatements) UsageByMSISDN(ctx context.Context, period string, fn func(billing.SettlementRow) error) error {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, usageByMSISDNSQL, start, end, adjustsFrom(start))
	if err != nil {
		return fmt.Errorf("quota: figures by MSISDN: %w", err)
	}
	var seafarer string
	var r billing.SettlementRow
	var fnErr error
	_, err = pgx.ForEachRow(rows, []any{&seafarer, &r.MSISDN, &r.Calls, &r.BillableSeconds, &r.CoveredSeconds}, func() error {
		fnErr = fn(r)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("quota: figures by MSISDN: %w", err)
	}
	return nil
}

// programmeSecondsSQL: the seconds programme $2 (containment $1 for the
// indexes) covered, over every period: its debits' shares and its adjusts'
// signed ones.
const programmeSecondsSQL = `
SELECT coalesce(sum((s->>'seconds')::int8), 0)::int8
FROM (
    SELECT programme_shares FROM ledger_entries WHERE kind = 'debit' AND programme_shares @> $1::jsonb
    UNION ALL
    SELECT programme_shares FROM ledger_entries WHERE kind = 'adjust' AND programme_shares @> $1::jsonb
) e CROSS JOIN LATERAL jsonb_array_elements(e.programme_shares) AS s
WHERE s->>'programme_id' = $2`

// ProgrammeSecondsUsed returns the seconds drawn from the programme's
// grants by every debit stored, moved by every adjust, over all periods (0 for a programme
// nothing drew from). EINVALID for an id PostgreSQL cannot hold.
func (s *PGStatements) ProgrammeSecondsUsed(ctx context.Context, programmeID string) (int64, error) {
	if !storableText(programmeID) {
		return 0, wuyou.Errorf(wuyou.EINVALID, "programme id is not valid UTF-8 text without NUL bytes")
	}
	var used int64
	if err := s.pool.QueryRow(ctx, programmeSecondsSQL, programmeFilter(programmeID), programmeID).Scan(&used); err != nil {
		return 0, fmt.Errorf("quota: programme seconds used: %w", err)
	}
	return used, nil
}

// SecondsUsed is ProgrammeSecondsUsed: PGStatements is the ProgrammeUsage
// of PGProgrammes (a programme's seconds_used).
func (s *PGStatements) SecondsUsed(ctx context.Context, programmeID string) (int64, error) {
	return s.ProgrammeSecondsUsed(ctx, programmeID)
}

// withCurrency names the currency of f's amounts.
func withCurrency(f billing.Figures, cur string) billing.Figures {
	f.OverageAmount.Currency, f.WelfareCost.Currency = cur, cur
	if len(f.Units) > 0 {
		units := make([]billing.UnitFigures, len(f.Units))
		for i, u := range f.Units {
			u.OverageAmount.Currency, u.WelfareCost.Currency = cur, cur
			units[i] = u
		}
		f.Units = units
	}
	return f
}
