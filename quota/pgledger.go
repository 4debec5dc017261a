package quota

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// PGLedger keeps the whole ledger in PostgreSQL: table ledger_entries
// (internal/pgschema/migrations/00002_ledger.sql), partitioned by month of
// the filing time, nothing ever trimmed.
//
// An entry is filed under the whole second of its filing time (a debit's
// call time, a grant's or void's write time: ledgerTime), and is identified
// by (seafarer, that second, entry id). The id and the times are the
// entry's own, so a redelivered entry has the same key and is stored once.
// Times are kept to the microsecond, as PostgreSQL does.
type PGLedger struct {
	pool *pgxpool.Pool
	// months holds the first instant (unix seconds) of every month whose
	// partition this process has made sure of; a partition is never
	// dropped while the service runs.
	months sync.Map
}

// NewPGLedger returns a ledger over pool, whose database is migrated.
func NewPGLedger(pool *pgxpool.Pool) *PGLedger {
	return &PGLedger{pool: pool}
}

// SeafarerEntry is one ledger entry and whose balance it changed.
type SeafarerEntry struct {
	SeafarerID string
	Entry      *LedgerEntry
}

// EnsureMonths makes sure the monthly partitions of the given times exist.
// Append does it for each batch's months; calling it at start for now and
// next month takes that work off the first batches.
//
// A month's partition is created before any row of that month is inserted,
// so rows never wait in the default partition for it; should some sit
// there anyway (a tool that inserted without this), ledger_ensure_months
// moves them into the new month. Returns an error wrapping the driver's.
func (l *PGLedger) EnsureMonths(ctx context.Context, times ...time.Time) error {
	var missing []time.Time
	seen := map[int64]bool{}
	for _, t := range times {
		m, _ := billing.PeriodBoundsOf(t) // a partition holds one period's rows
		if seen[m.Unix()] {
			continue
		}
		seen[m.Unix()] = true
		if _, ok := l.months.Load(m.Unix()); !ok {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := l.pool.Exec(ctx, "SELECT ledger_ensure_months($1::timestamptz[])", missing); err != nil {
		return fmt.Errorf("quota: ledger partitions: %w", err)
	}
	for _, m := range missing {
		l.months.Store(m.Unix(), struct{}{})
	}
	return nil
}

// filingSecond is the second an entry is filed under (ledger_entries.filed_at).
func filingSecond(e *LedgerEntry) time.Time {
	return time.Unix(ledgerTime(e).Unix(), 0).UTC()
}

// appendSQL inserts a batch given as one array per column: one statement,
// so one round trip and all or nothing. A row already stored (same
// seafarer, filing second and id) is skipped, as is a repeat within the
// batch; the rows inserted are returned.
const appendSQL = `
INSERT INTO ledger_entries (seafarer_id, filed_at, id, kind, at, event_source, event_id, type, msisdn, call_time,
    duration_seconds, billable_seconds, covered_seconds, overage_seconds, overage_amount_minor, currency,
    welfare_cost_minor, welfare_cost_currency, statement_period, adjusts_period, called_number, visited_country,
    grant_id, programme_id, seconds, draws, programme_shares, actor, actor_role, actor_company_id, unit, volume_bytes, free,
    call_id)
SELECT seafarer_id, filed_at, id, kind, at, nullif(event_source, ''), nullif(event_id, ''), nullif(type, ''),
    nullif(msisdn, ''), call_time, duration_seconds, billable_seconds, covered_seconds, overage_seconds,
    overage_amount_minor, nullif(currency, ''), welfare_cost_minor, welfare_cost_currency,
    nullif(statement_period, ''), nullif(adjusts_period, ''), nullif(called_number, ''), nullif(visited_country, ''),
    nullif(grant_id, ''), nullif(programme_id, ''), seconds, draws::jsonb, programme_shares::jsonb,
    nullif(actor, ''), nullif(actor_role, ''), nullif(actor_company_id, ''), unit, volume_bytes, free,
    nullif(call_id, '')
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::timestamptz[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[],
    $16::text[], $17::int8[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
    $24::text[], $25::int8[], $26::text[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[], $32::int8[], $33::bool[],
    $34::text[])
    AS e(seafarer_id, filed_at, id, kind, at, event_source, event_id, type, msisdn, call_time,
    duration_seconds, billable_seconds, covered_seconds, overage_seconds, overage_amount_minor, currency,
    welfare_cost_minor, welfare_cost_currency, statement_period, adjusts_period, called_number, visited_country,
    grant_id, programme_id, seconds, draws, programme_shares, actor, actor_role, actor_company_id, unit, volume_bytes, free,
    call_id)
ON CONFLICT DO NOTHING
RETURNING seafarer_id, filed_at, id`

// ledgerColumns is a batch of entries as one slice per column of appendSQL.
type ledgerColumns struct {
	seafarerID, id, kind                                         []string
	filedAt, at                                                  []time.Time
	callTime                                                     []pgtype.Timestamptz
	source, eventID, typ, msisdn                                 []string
	duration, billable, covered, overage, overageMinor           []int64
	currency                                                     []string
	welfareMinor                                                 []pgtype.Int8
	welfareCurrency                                              []pgtype.Text
	statementPeriod, adjustsPeriod, calledNumber, visitedCountry []string
	grantID, programmeID                                         []string
	seconds                                                      []int64
	draws                                                        []string
	programmeShares                                              []pgtype.Text // jsonb, NULL without programmes
	actor, actorRole, actorCompany                               []string      // grants' and voids' actor, "" for none
	unit                                                         []string      // spelled out: seconds, bytes or sms
	volume                                                       []int64
	free                                                         []bool
	callID                                                       []string
}

func (c *ledgerColumns) args() []any {
	return []any{c.seafarerID, c.filedAt, c.id, c.kind, c.at, c.source, c.eventID, c.typ, c.msisdn, c.callTime,
		c.duration, c.billable, c.covered, c.overage, c.overageMinor, c.currency, c.welfareMinor, c.welfareCurrency,
		c.statementPeriod, c.adjustsPeriod, c.calledNumber, c.visitedCountry, c.grantID, c.programmeID, c.seconds, c.draws, c.programmeShares,
		c.actor, c.actorRole, c.actorCompany, c.unit, c.volume, c.free, c.callID}
}

// ledgerRows turns entries into columns, refusing what PostgreSQL cannot
// keep as text (invalid UTF-8, NUL bytes) with an EINVALID naming the entry
// and field, before anything is sent.
func ledgerRows(entries []SeafarerEntry) (*ledgerColumns, error) {
	n := len(entries)
	c := &ledgerColumns{
		seafarerID: make([]string, 0, n), id: make([]string, 0, n), kind: make([]string, 0, n),
		filedAt: make([]time.Time, 0, n), at: make([]time.Time, 0, n), callTime: make([]pgtype.Timestamptz, 0, n),
		source: make([]string, 0, n), eventID: make([]string, 0, n), typ: make([]string, 0, n), msisdn: make([]string, 0, n),
		duration: make([]int64, 0, n), billable: make([]int64, 0, n), covered: make([]int64, 0, n),
		overage: make([]int64, 0, n), overageMinor: make([]int64, 0, n), currency: make([]string, 0, n),
		welfareMinor: make([]pgtype.Int8, 0, n), welfareCurrency: make([]pgtype.Text, 0, n),
		statementPeriod: make([]string, 0, n), adjustsPeriod: make([]string, 0, n),
		calledNumber: make([]string, 0, n), visitedCountry: make([]string, 0, n),
		grantID: make([]string, 0, n), programmeID: make([]string, 0, n), seconds: make([]int64, 0, n),
		draws: make([]string, 0, n), programmeShares: make([]pgtype.Text, 0, n),
		actor: make([]string, 0, n), actorRole: make([]string, 0, n), actorCompany: make([]string, 0, n),
		unit: make([]string, 0, n), volume: make([]int64, 0, n), free: make([]bool, 0, n), callID: make([]string, 0, n),
	}
	var buf []byte
	for i, se := range entries {
		e := se.Entry
		if e == nil {
			return nil, wuyou.Errorf(wuyou.EINVALID, "ledger entry %d: missing", i)
		}
		// PostgreSQL keeps microseconds; the filing second is taken from
		// the times as kept, so the database computes the same one.
		e = pgTimes(e)
		if err := pgText(i, se.SeafarerID, e); err != nil {
			return nil, err
		}
		c.seafarerID = append(c.seafarerID, se.SeafarerID)
		c.id = append(c.id, e.ID)
		c.kind = append(c.kind, e.Kind)
		c.filedAt = append(c.filedAt, filingSecond(e))
		c.at = append(c.at, e.At)
		if e.CallTime != nil {
			c.callTime = append(c.callTime, pgtype.Timestamptz{Time: *e.CallTime, Valid: true})
		} else {
			c.callTime = append(c.callTime, pgtype.Timestamptz{})
		}
		c.source = append(c.source, e.Source)
		c.eventID = append(c.eventID, e.EventID)
		c.typ = append(c.typ, e.Type)
		c.msisdn = append(c.msisdn, e.MSISDN)
		c.duration = append(c.duration, e.DurationSeconds)
		c.billable = append(c.billable, e.BillableSeconds)
		c.covered = append(c.covered, e.CoveredSeconds)
		c.overage = append(c.overage, e.OverageSeconds)
		c.overageMinor = append(c.overageMinor, e.OverageAmount.Minor)
		c.currency = append(c.currency, e.OverageAmount.Currency)
		if e.WelfareCost != nil {
			c.welfareMinor = append(c.welfareMinor, pgtype.Int8{Int64: e.WelfareCost.Minor, Valid: true})
			c.welfareCurrency = append(c.welfareCurrency, pgtype.Text{String: e.WelfareCost.Currency, Valid: true})
		} else {
			c.welfareMinor = append(c.welfareMinor, pgtype.Int8{})
			c.welfareCurrency = append(c.welfareCurrency, pgtype.Text{})
		}
		c.statementPeriod = append(c.statementPeriod, e.StatementPeriod)
		c.adjustsPeriod = append(c.adjustsPeriod, e.AdjustsPeriod)
		c.calledNumber = append(c.calledNumber, e.CalledNumber)
		c.visitedCountry = append(c.visitedCountry, e.VisitedCountry)
		c.grantID = append(c.grantID, e.GrantID)
		c.programmeID = append(c.programmeID, e.ProgrammeID)
		c.seconds = append(c.seconds, e.Seconds)
		c.unit = append(c.unit, unitOrSeconds(e.Unit))
		c.volume = append(c.volume, e.VolumeBytes)
		c.free = append(c.free, e.Free)
		c.callID = append(c.callID, e.CallID)
		buf = appendDrawsJSON(buf[:0], e.Draws)
		c.draws = append(c.draws, string(buf))
		if shares := programmeShares(e); len(shares) > 0 {
			buf = appendSharesJSON(buf[:0], shares)
			c.programmeShares = append(c.programmeShares, pgtype.Text{String: string(buf), Valid: true})
		} else {
			c.programmeShares = append(c.programmeShares, pgtype.Text{})
		}
		var actor wuyou.Actor
		if e.Actor != nil {
			actor = *e.Actor
		}
		c.actor = append(c.actor, actor.Sub)
		c.actorRole = append(c.actorRole, actor.Role)
		c.actorCompany = append(c.actorCompany, actor.CompanyID)
	}
	return c, nil
}

// pgTimes is e with its times cut to the microsecond (a copy when they
// had to be cut).
func pgTimes(e *LedgerEntry) *LedgerEntry {
	cut := func(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }
	if e.At.Equal(cut(e.At)) && e.At.Location() == time.UTC && (e.CallTime == nil || e.CallTime.Equal(cut(*e.CallTime))) {
		return e
	}
	c := *e
	c.At = cut(e.At)
	if e.CallTime != nil {
		t := cut(*e.CallTime)
		c.CallTime = &t
	}
	return &c
}

// pgText refuses text PostgreSQL cannot store: invalid UTF-8 or NUL bytes.
func pgText(i int, seafarerID string, e *LedgerEntry) error {
	bad := func(field string) error {
		return &wuyou.Error{Code: wuyou.EINVALID,
			Message: fmt.Sprintf("ledger entry %d (%s): %s is not valid UTF-8 text without NUL bytes", i, e.ID, field),
			Fields:  []wuyou.FieldError{{Field: field, Message: "not valid UTF-8 text without NUL bytes"}}}
	}
	ok := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	for _, f := range [...]struct{ name, value string }{
		{"seafarer_id", seafarerID}, {"id", e.ID}, {"kind", e.Kind}, {"source", e.Source}, {"event_id", e.EventID},
		{"type", e.Type}, {"msisdn", e.MSISDN}, {"overage_amount.currency", e.OverageAmount.Currency},
		{"statement_period", e.StatementPeriod}, {"adjusts_period", e.AdjustsPeriod},
		{"called_number", e.CalledNumber}, {"visited_country", e.VisitedCountry},
		{"grant_id", e.GrantID}, {"programme_id", e.ProgrammeID}, {"call_id", e.CallID},
	} {
		if !ok(f.value) {
			return bad(f.name)
		}
	}
	if a := e.Actor; a != nil && (!ok(a.Sub) || !ok(a.Role) || !ok(a.CompanyID)) {
		return bad("actor")
	}
	if e.WelfareCost != nil && !ok(e.WelfareCost.Currency) {
		return bad("welfare_cost.currency")
	}
	for _, d := range e.Draws {
		if !ok(d.GrantID) {
			return bad("draws.grant_id")
		}
		if !ok(d.ProgrammeID) {
			return bad("draws.programme_id")
		}
	}
	return nil
}

// appendDrawsJSON writes draws as the jsonb array the table keeps:
// [{"grant_id","programme_id","seconds","welfare_minor"}], programme_id and
// welfare_minor left out when empty (as Draw's JSON does).
func appendDrawsJSON(b []byte, draws []Draw) []byte {
	b = append(b, '[')
	for i, d := range draws {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"grant_id":`...)
		b = appendJSONString(b, d.GrantID)
		if d.ProgrammeID != "" {
			b = append(b, `,"programme_id":`...)
			b = appendJSONString(b, d.ProgrammeID)
		}
		b = append(b, `,"seconds":`...)
		b = strconv.AppendInt(b, d.Seconds, 10)
		if d.WelfareMinor != 0 {
			b = append(b, `,"welfare_minor":`...)
			b = strconv.AppendInt(b, d.WelfareMinor, 10)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// Append stores entries, each once however often it is delivered: an entry
// already stored (same seafarer, filing second and id) is skipped. Each
// batch is all or nothing, so a refused batch stores nothing. The months the
// batch is filed under get their partitions first (EnsureMonths).
//
// Append decides which statement counts each debit and each adjust
// (statement_periods, in 00005_periods.sql; an adjust is counted as its
// call's debit would be): the period of its call time while that is open, else
// the first open period after it, with AdjustsPeriod naming the call's own
// period. It holds a shared advisory lock on every period it counts into,
// taken before it reads which periods are closed, for the whole
// transaction; PGStatements.ClosePeriod takes the exclusive one. So a close
// waits for the batches counting into its period, and no batch counts into
// a period once its close has committed. Append sets StatementPeriod and
// AdjustsPeriod on the debits and adjusts given (a redelivered one gets those its first
// copy was stored with), so what the caller publishes afterwards says what
// PostgreSQL holds.
//
// The batch is COPYed straight into ledger_entries: the fastest way in
// (BenchmarkAppend*), and almost every batch is new. A batch holding an
// entry already stored (a redelivery after a crash or a rebalance) makes the
// COPY fail whole on the primary key; the transaction is then run again with
// one INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING, which skips
// what is stored.
//
// Errors: EINVALID naming the rule when an entry breaks one of the table's
// constraints (kind, seconds >= 0, covered >= 0 but for adjusts, billable =
// covered + overage for debits and adjusts) or holds text PostgreSQL cannot
// keep; anything else
// wraps the driver's error.
func (l *PGLedger) Append(ctx context.Context, entries []SeafarerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	cols, err := ledgerRows(entries)
	if err != nil {
		return err
	}
	if err := l.EnsureMonths(ctx, cols.filedAt...); err != nil {
		return err
	}
	periods := cols.callPeriods()
	redelivered := false
	// Each round either stores the batch or learns of more periods to lock
	// (calls of closed periods, counted in a later one) or of a redelivery;
	// the periods only grow and are finitely many.
	for range 1000 {
		more, err := l.appendCounted(ctx, cols, periods, redelivered)
		var pe *pgconn.PgError
		switch {
		case err == nil && len(more) == 0:
			cols.setPeriods(entries)
			return nil
		case err == nil:
			periods = unionSorted(periods, more)
		case !redelivered && errors.As(err, &pe) && pe.Code == "23505":
			redelivered = true
		default:
			return pgLedgerError("append", err)
		}
	}
	return wuyou.Errorf(wuyou.EINTERNAL, "ledger append: the periods to count debits in kept changing")
}

// appendCounted stores cols in one transaction holding the shared lock of
// every period in locked (ascending, so two writers and a close never wait
// on each other in a cycle). It returns, storing nothing, the periods the
// debits must be counted in that locked lacks. With skipStored the rows
// are inserted skipping those stored, whose statement periods are then read
// back into cols; else they are COPYed, and an entry already stored fails
// the COPY with the driver's unique violation.
func (l *PGLedger) appendCounted(ctx context.Context, cols *ledgerColumns, locked []string, skipStored bool) ([]string, error) {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; the error that matters is returned
	if len(locked) > 0 {
		closed, err := lockPeriodsShared(ctx, tx, locked)
		if err != nil {
			return nil, err
		}
		if more := cols.countIn(closed, locked); len(more) > 0 {
			return more, nil
		}
	}
	if skipStored {
		if err := appendSkippingStored(ctx, tx, cols); err != nil {
			return nil, err
		}
	} else if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, ledgerCopyColumns, cols.copyRows()); err != nil {
		return nil, err
	}
	return nil, tx.Commit(ctx)
}

// counted reports whether row i is counted in a statement: a debit or an
// adjust with a call time. An adjust's statement period is decided as a
// debit's, from its call's period.
func (c *ledgerColumns) counted(i int) bool {
	return (c.kind[i] == KindDebit || c.kind[i] == KindAdjust) && c.callTime[i].Valid
}

// callPeriods are the periods of the counted rows' call times, ascending.
func (c *ledgerColumns) callPeriods() []string {
	var out []string
	for i := range c.id {
		if c.counted(i) {
			out = unionSorted(out, []string{billing.PeriodOf(c.callTime[i].Time)})
		}
	}
	return out
}

// countIn sets each counted row's statement and adjusted period, given the
// closed periods, and returns the periods counted into that locked lacks.
func (c *ledgerColumns) countIn(closed map[string]bool, locked []string) []string {
	var more []string
	for i := range c.id {
		if !c.counted(i) {
			continue
		}
		own := billing.PeriodOf(c.callTime[i].Time)
		target := own
		for closed[target] {
			target = billing.NextPeriod(target)
		}
		c.statementPeriod[i], c.adjustsPeriod[i] = target, ""
		if target != own {
			c.adjustsPeriod[i] = own
		}
		if !slices.Contains(locked, target) {
			more = unionSorted(more, []string{target})
		}
	}
	return more
}

// setPeriods gives the debits and adjusts of entries (cols' rows, in
// order) the statement periods they were stored with.
func (c *ledgerColumns) setPeriods(entries []SeafarerEntry) {
	for i, se := range entries {
		if c.counted(i) {
			se.Entry.StatementPeriod, se.Entry.AdjustsPeriod = c.statementPeriod[i], c.adjustsPeriod[i]
		}
	}
}

// unionSorted is the sorted union of two sorted lists without repeats.
func unionSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// storedPeriodsSQL reads the statement periods of stored rows, by key.
const storedPeriodsSQL = `
SELECT l.seafarer_id, l.filed_at, l.id, coalesce(l.statement_period, ''), coalesce(l.adjusts_period, '')
FROM ledger_entries l
JOIN unnest($1::text[], $2::timestamptz[], $3::text[]) AS k(seafarer_id, filed_at, id)
    ON l.seafarer_id = k.seafarer_id AND l.filed_at = k.filed_at AND l.id = k.id`

// rowKey is a row's primary key.
type rowKey struct {
	seafarerID string
	filedAt    int64
	id         string
}

// appendSkippingStored inserts the rows of cols not stored yet, and gives
// the debits and adjusts that were stored already (by an earlier delivery, or earlier
// in this batch) the statement periods of the stored copy.
func appendSkippingStored(ctx context.Context, tx pgx.Tx, cols *ledgerColumns) error {
	rows, err := tx.Query(ctx, appendSQL, cols.args()...)
	if err != nil {
		return err
	}
	inserted := map[rowKey]bool{}
	var k rowKey
	var filed time.Time
	if _, err := pgx.ForEachRow(rows, []any{&k.seafarerID, &filed, &k.id}, func() error {
		k.filedAt = filed.Unix()
		inserted[k] = true
		return nil
	}); err != nil {
		return err
	}
	var seafarers, ids []string
	var filedAt []time.Time
	for i := range cols.id {
		if !inserted[rowKey{cols.seafarerID[i], cols.filedAt[i].Unix(), cols.id[i]}] {
			seafarers, filedAt, ids = append(seafarers, cols.seafarerID[i]), append(filedAt, cols.filedAt[i]), append(ids, cols.id[i])
		}
	}
	if len(ids) == 0 {
		return nil
	}
	stored := map[rowKey][2]string{}
	rows, err = tx.Query(ctx, storedPeriodsSQL, seafarers, filedAt, ids)
	if err != nil {
		return err
	}
	var st, adj string
	if _, err := pgx.ForEachRow(rows, []any{&k.seafarerID, &filed, &k.id, &st, &adj}, func() error {
		k.filedAt = filed.Unix()
		stored[k] = [2]string{st, adj}
		return nil
	}); err != nil {
		return err
	}
	for i := range cols.id {
		if p, ok := stored[rowKey{cols.seafarerID[i], cols.filedAt[i].Unix(), cols.id[i]}]; ok && cols.counted(i) {
			cols.statementPeriod[i], cols.adjustsPeriod[i] = p[0], p[1]
		}
	}
	return nil
}

// ledgerCopyColumns are the columns Append copies, in copyRows' order.
var ledgerCopyColumns = []string{"seafarer_id", "filed_at", "id", "kind", "at", "event_source", "event_id", "type", "msisdn",
	"call_time", "duration_seconds", "billable_seconds", "covered_seconds", "overage_seconds", "overage_amount_minor",
	"currency", "welfare_cost_minor", "welfare_cost_currency", "statement_period", "adjusts_period", "called_number",
	"visited_country", "grant_id", "programme_id", "seconds", "draws", "programme_shares", "actor", "actor_role", "actor_company_id",
	"unit", "volume_bytes", "free", "call_id"}

// copyRows is c as COPY rows, empty text as NULL (as appendSQL stores it).
func (c *ledgerColumns) copyRows() pgx.CopyFromSource {
	text := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	row := make([]any, len(ledgerCopyColumns)) // CopyFrom encodes a row before asking for the next
	return pgx.CopyFromSlice(len(c.id), func(i int) ([]any, error) {
		row[0], row[1], row[2], row[3], row[4] = c.seafarerID[i], c.filedAt[i], c.id[i], c.kind[i], c.at[i]
		row[5], row[6], row[7], row[8] = text(c.source[i]), text(c.eventID[i]), text(c.typ[i]), text(c.msisdn[i])
		row[9], row[10], row[11], row[12], row[13] = c.callTime[i], c.duration[i], c.billable[i], c.covered[i], c.overage[i]
		row[14], row[15], row[16], row[17] = c.overageMinor[i], text(c.currency[i]), c.welfareMinor[i], c.welfareCurrency[i]
		row[18], row[19], row[20] = text(c.statementPeriod[i]), text(c.adjustsPeriod[i]), text(c.calledNumber[i])
		row[21], row[22], row[23] = text(c.visitedCountry[i]), text(c.grantID[i]), text(c.programmeID[i])
		row[24], row[25], row[26] = c.seconds[i], c.draws[i], c.programmeShares[i]
		row[27], row[28], row[29] = text(c.actor[i]), text(c.actorRole[i]), text(c.actorCompany[i])
		row[30], row[31], row[32], row[33] = c.unit[i], c.volume[i], c.free[i], text(c.callID[i])
		return row, nil
	})
}

// ledgerRules names, for each constraint of ledger_entries, the rule it
// keeps, as said to whoever sent the entry.
var ledgerRules = map[string]string{
	"ledger_entry_ids_not_empty":                     "an entry names its seafarer and its id",
	"ledger_kind_is_debit_grant_void_or_adjust":      "kind is debit, grant, void or adjust",
	"ledger_seconds_not_negative":                    "seconds >= 0",
	"ledger_covered_seconds_not_negative":            "covered seconds >= 0 (only an adjust's may be negative)",
	"ledger_debit_billable_is_covered_plus_overage":  "a debit's billable seconds = covered + overage",
	"ledger_adjust_billable_is_covered_plus_overage": "an adjust's billable seconds = covered + overage",
	"ledger_welfare_cost_has_currency":               "a welfare cost has a currency",
	"ledger_draws_are_an_array":                      "draws are a list",
	"ledger_unit_known":                              "the unit is seconds, bytes or sms",
	"ledger_volume_bytes_not_negative":               "volume bytes >= 0",
	"ledger_filed_at_is_the_filing_second":           "an entry is filed under the second of its time",
	"ledger_free_call_bills_nothing":                 "a free call bills, covers and costs nothing",
}

// pgLedgerError turns a constraint violation or bad value into EINVALID
// naming the rule; anything else is wrapped as it is.
func pgLedgerError(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("quota: ledger %s: %w", op, err)
	}
	switch {
	case pe.Code == "23505": // unique_violation: ON CONFLICT prevents it
		return fmt.Errorf("quota: ledger %s: %w", op, err)
	case strings.HasPrefix(pe.Code, "23"): // integrity constraint violation
		rule, ok := ledgerRules[pe.ConstraintName]
		if !ok {
			rule = pe.ConstraintName
			if rule == "" {
				rule = pe.ColumnName + " is required"
			}
		}
		return &wuyou.Error{Code: wuyou.EINVALID, Reason: pe.ConstraintName,
			Message: "ledger entry refused, the batch stored nothing: " + rule}
	case strings.HasPrefix(pe.Code, "22"): // data exception: a value the column cannot hold
		return &wuyou.Error{Code: wuyou.EINVALID, Message: "ledger entry refused, the batch stored nothing: " + pe.Message}
	}
	return fmt.Errorf("quota: ledger %s: %w", op, err)
}

// ledgerSelect reads entries in the order pages are served: newest filing
// second first, then id descending (ids compare bytewise, COLLATE "C").
const ledgerSelect = `
SELECT filed_at, id, kind, at, coalesce(event_source, ''), coalesce(event_id, ''), coalesce(type, ''),
    coalesce(msisdn, ''), call_time, duration_seconds, billable_seconds, covered_seconds, overage_seconds,
    overage_amount_minor, coalesce(currency, ''), welfare_cost_minor, welfare_cost_currency,
    coalesce(statement_period, ''), coalesce(adjusts_period, ''), coalesce(called_number, ''),
    coalesce(visited_country, ''), coalesce(grant_id, ''), coalesce(programme_id, ''), seconds, draws,
    coalesce(actor, ''), coalesce(actor_role, ''), coalesce(actor_company_id, ''), unit, volume_bytes, free
FROM ledger_entries
WHERE seafarer_id = $1`

// exactLedgerTime is an entry's filing time to the microsecond, in SQL
// (ledgerTime): only needed at a bound that is not a whole second.
const exactLedgerTime = `(CASE WHEN kind = 'debit' AND call_time IS NOT NULL THEN call_time ELSE at END)`

// pgCursorPrefix marks cursors of this ledger: "p1.<unix second>.<id in
// base64url>", the filing second and id of the last entry served.
const pgCursorPrefix = "p1."

func pgCursor(filed time.Time, id string) string {
	return pgCursorPrefix + strconv.FormatInt(filed.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func parsePGCursor(c string) (time.Time, string, bool) {
	rest, ok := strings.CutPrefix(c, pgCursorPrefix)
	if !ok {
		return time.Time{}, "", false
	}
	sec, id64, ok := strings.Cut(rest, ".")
	n, err1 := strconv.ParseInt(sec, 10, 64)
	id, err2 := base64.RawURLEncoding.DecodeString(id64)
	if !ok || err1 != nil || err2 != nil || len(id) == 0 || !utf8.Valid(id) {
		return time.Time{}, "", false
	}
	return time.Unix(n, 0).UTC(), string(id), true
}

// Ledger returns a page of a seafarer's ledger entries, as RedisStore.Ledger
// does: newest first by filing time (a debit's call time, a grant's or
// void's write time, to the second), ties by id descending; From inclusive,
// To exclusive (zero = open); Limit 50 when not positive; the cursor of the
// next page, "" after the last. Pages are keyset ranges of the primary key,
// not offsets, and nothing is beyond reach: PostgreSQL keeps every entry.
//
// Errors: EINVALID for a cursor this ledger did not make; anything else
// wraps the driver's error.
func (l *PGLedger) Ledger(ctx context.Context, seafarerID string, f LedgerFilter) ([]*LedgerEntry, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var q strings.Builder
	q.WriteString(ledgerSelect)
	args := []any{seafarerID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.From.IsZero() {
		from := f.From.Truncate(time.Microsecond)
		sec := time.Unix(from.Unix(), 0)
		q.WriteString(" AND filed_at >= " + arg(sec))
		if !from.Equal(sec) { // entries in sec but before from stay out
			q.WriteString(" AND (filed_at > " + arg(sec) + " OR " + exactLedgerTime + " >= " + arg(from) + ")")
		}
	}
	if !f.To.IsZero() {
		to := f.To.Truncate(time.Microsecond)
		if sec := time.Unix(to.Unix(), 0); to.Equal(sec) {
			q.WriteString(" AND filed_at < " + arg(to))
		} else {
			q.WriteString(" AND filed_at <= " + arg(sec) + " AND (filed_at < " + arg(sec) + " OR " + exactLedgerTime + " < " + arg(to) + ")")
		}
	}
	if f.WithoutFree {
		q.WriteString(" AND NOT free")
	}
	if f.Cursor != "" {
		filed, id, ok := parsePGCursor(f.Cursor)
		if !ok {
			return nil, "", wuyou.Errorf(wuyou.EINVALID, "cursor: malformed")
		}
		// The first bound lets the planner prune months after the cursor;
		// the row comparison is the keyset bound within the index.
		c := arg(filed)
		q.WriteString(" AND filed_at <= " + c + " AND (filed_at, id) < (" + c + ", " + arg(id) + ")")
	}
	q.WriteString(" ORDER BY filed_at DESC, id DESC LIMIT " + arg(f.Limit+1))

	rows, err := l.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, "", pgLedgerError("read", err)
	}
	page := make([]*LedgerEntry, 0, min(f.Limit+1, 512))
	var last time.Time
	for rows.Next() {
		e, filed, err := scanLedgerEntry(rows)
		if err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("quota: ledger read: %w", err)
		}
		if len(page) < f.Limit {
			last = filed
		}
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", pgLedgerError("read", err)
	}
	if len(page) <= f.Limit {
		return page, "", nil
	}
	page = page[:f.Limit]
	return page, pgCursor(last, page[len(page)-1].ID), nil
}

func scanLedgerEntry(rows pgx.Rows) (*LedgerEntry, time.Time, error) {
	var (
		e               LedgerEntry
		filed           time.Time
		callTime        *time.Time
		currency        string
		welfareMinor    *int64
		welfareCurrency *string
		draws           []byte
		actor           wuyou.Actor
	)
	err := rows.Scan(&filed, &e.ID, &e.Kind, &e.At, &e.Source, &e.EventID, &e.Type, &e.MSISDN, &callTime,
		&e.DurationSeconds, &e.BillableSeconds, &e.CoveredSeconds, &e.OverageSeconds,
		&e.OverageAmount.Minor, &currency, &welfareMinor, &welfareCurrency,
		&e.StatementPeriod, &e.AdjustsPeriod, &e.CalledNumber, &e.VisitedCountry,
		&e.GrantID, &e.ProgrammeID, &e.Seconds, &draws, &actor.Sub, &actor.Role, &actor.CompanyID, &e.Unit, &e.VolumeBytes, &e.Free)
	if err != nil {
		return nil, time.Time{}, err
	}
	e.Unit = storedUnit(e.Unit)
	e.At = e.At.UTC()
	if actor.Sub != "" {
		e.Actor = &actor
	}
	if callTime != nil {
		t := callTime.UTC()
		e.CallTime = &t
	}
	e.OverageAmount.Currency = currency
	if welfareMinor != nil {
		e.WelfareCost = &billing.Money{Minor: *welfareMinor}
		if welfareCurrency != nil {
			e.WelfareCost.Currency = *welfareCurrency
		}
	}
	e.Draws = []Draw{}
	if err := json.Unmarshal(draws, &e.Draws); err != nil {
		return nil, time.Time{}, fmt.Errorf("draws of %s: %w", e.ID, err)
	}
	if e.Draws == nil {
		e.Draws = []Draw{}
	}
	return &e, filed.UTC(), nil
}

// SplitWelfare gives each of a debit's draws its share of the welfare
// cost: wholesale per started increment of covered time, each increment
// charged to the draw in which it starts (as the debit script charges the
// programmes), so the shares add up to the cost. The debit, which knows the
// increment it was rated with, is where to call it; PGLedger stores the
// shares with the entry.
func SplitWelfare(e *LedgerEntry, increment int64, wholesale billing.Money) {
	if increment <= 0 {
		increment = billing.DefaultIncrement
	}
	drawn := int64(0)
	for i := range e.Draws {
		before := billing.StartedIncrements(drawn, increment)
		drawn += e.Draws[i].Seconds
		e.Draws[i].WelfareMinor = (billing.StartedIncrements(drawn, increment) - before) * wholesale.Minor
	}
}

// programmePart is one programme's part of a debit or an adjust
// (ledger_entries.programme_shares).
type programmePart struct {
	ProgrammeID  string
	Seconds      int64
	WelfareMinor int64
}

// programmeShares is the part each programme whose grants covered debit e
// takes of it, in the order its draws first name them; nil for grants and
// voids. The welfare shares are the draws' WelfareMinor when given (any
// non-zero); else they are worked out as SplitWelfare does at the default
// increment, with what that increment leaves unexplained (the debit was
// rated at another) given to the first programme.
//
// An adjust's shares are signed, as its draws are: a programme's seconds
// and welfare move by the adjust (a negative one gives back). Its welfare
// shares are the draws' WelfareMinor when they add up to its welfare cost;
// else (not given, or worked out by SplitWelfare as if the adjust were a
// call of its own, which an adjust's price, the difference of the whole
// call's, is not) its welfare cost is split in proportion to each
// programme's seconds, the remainder (and all of it when the seconds add
// up to nothing) to the first programme.
func programmeShares(e *LedgerEntry) []programmePart {
	if (e.Kind != KindDebit && e.Kind != KindAdjust) || len(e.Draws) == 0 {
		return nil
	}
	if e.Kind == KindAdjust {
		return adjustShares(e)
	}
	given := slices.ContainsFunc(e.Draws, func(d Draw) bool { return d.WelfareMinor != 0 })
	var price, rest, drawn int64
	if !given && e.WelfareCost != nil && e.CoveredSeconds > 0 {
		n := billing.StartedIncrements(e.CoveredSeconds, billing.DefaultIncrement)
		price, rest = e.WelfareCost.Minor/n, e.WelfareCost.Minor%n
	}
	var out []programmePart
	for _, d := range e.Draws {
		before := billing.StartedIncrements(drawn, billing.DefaultIncrement)
		drawn += d.Seconds
		if d.ProgrammeID == "" || d.Seconds <= 0 {
			continue
		}
		welfare := d.WelfareMinor
		if !given {
			welfare = (billing.StartedIncrements(drawn, billing.DefaultIncrement) - before) * price
		}
		out = addShare(out, d.ProgrammeID, d.Seconds, welfare)
	}
	if len(out) > 0 {
		out[0].WelfareMinor += rest
	}
	return out
}

// adjustShares is programmeShares of an adjust: signed, every draw of a
// programme that moved anything counted.
func adjustShares(e *LedgerEntry) []programmePart {
	var cost, given int64
	if e.WelfareCost != nil {
		cost = e.WelfareCost.Minor
	}
	var out []programmePart
	for _, d := range e.Draws {
		given += d.WelfareMinor
		if d.ProgrammeID == "" || d.Seconds == 0 && d.WelfareMinor == 0 {
			continue
		}
		out = addShare(out, d.ProgrammeID, d.Seconds, d.WelfareMinor)
	}
	if len(out) == 0 || given == cost {
		return out
	}
	for i := range out {
		out[i].WelfareMinor = 0
	}
	var seconds int64
	for _, s := range out {
		seconds += s.Seconds
	}
	welfare, rest := cost, cost
	if seconds != 0 {
		for i := range out {
			out[i].WelfareMinor = welfare * out[i].Seconds / seconds
			rest -= out[i].WelfareMinor
		}
	}
	out[0].WelfareMinor += rest
	return out
}

// addShare adds seconds and welfare to programmeID's part of out, a part
// of its own at the end when it has none yet.
func addShare(out []programmePart, programmeID string, seconds, welfare int64) []programmePart {
	i := slices.IndexFunc(out, func(s programmePart) bool { return s.ProgrammeID == programmeID })
	if i < 0 {
		out = append(out, programmePart{ProgrammeID: programmeID})
		i = len(out) - 1
	}
	out[i].Seconds += seconds
	out[i].WelfareMinor += welfare
	return out
}

// appendSharesJSON writes shares as programme_shares keeps them:
// [{"programme_id","seconds","welfare_minor"}].
func appendSharesJSON(b []byte, shares []programmePart) []byte {
	b = append(b, '[')
	for i, s := range shares {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"programme_id":`...)
		b = appendJSONString(b, s.ProgrammeID)
		b = append(b, `,"seconds":`...)
		b = strconv.AppendInt(b, s.Seconds, 10)
		b = append(b, `,"welfare_minor":`...)
		b = strconv.AppendInt(b, s.WelfareMinor, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString writes s as a JSON string. Ids are plain ASCII almost
// always and are copied as they are; anything else goes through
// encoding/json (Go's quoting is not JSON's for control characters).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			js, _ := json.Marshal(s) // a string always marshals
			return append(b, js...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
