package billing

// Statements: what each payer owes for one period.
//
// A period is a calendar month in UTC, and a call belongs to the period of
// its own time (when it started), never of its arrival. The welfare fund
// (through each programme whose packs covered a call) owes the carrier the
// wholesale price of covered time; companies and their seafarers owe the
// overage amount. Both are priced per call, per started increment (see
// Rating.OverageAmount and Rating.WelfareCost), and a statement's totals are
// the sums of those per-call amounts: nothing is rounded at the statement
// level.
//
// Closing a period freezes its statements. A call metered after its period
// was closed is counted in the first open period after it, on an adjustment
// line naming the period it belongs to; the closed statement never changes.

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

// Payer kinds (CONTRACT §4: payer=programme:{id}|company:{id}|seafarer:{id}).
const (
	PayerProgramme = "programme"
	PayerCompany   = "company"
	PayerSeafarer  = "seafarer"
)

// Period states.
const (
	PeriodOpen    = "open"    // calls of the period are still counted in it
	PeriodClosing = "closing" // a close has started: new calls of the period become adjustments
	PeriodClosed  = "closed"  // its statements are frozen
)

const periodLayout = "2006-01"

// PeriodOf is the period ("YYYY-MM", UTC) of t.
func PeriodOf(t time.Time) string { return t.UTC().Format(periodLayout) }

// PeriodBoundsOf returns the first instant of t's period and the first
// instant of the next one, both in UTC.
func PeriodBoundsOf(t time.Time) (start, end time.Time) {
	t = t.UTC()
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// PeriodBounds returns the first instant of period and the first instant of
// the next one. EINVALID unless period is "YYYY-MM".
func PeriodBounds(period string) (start, end time.Time, err error) {
	start, err = time.Parse(periodLayout, period)
	if err != nil || len(period) != len(periodLayout) || start.Year() < 2000 {
		return time.Time{}, time.Time{}, wuyou.Invalid([]wuyou.FieldError{{Field: "period", Message: "must be a month as YYYY-MM"}})
	}
	start, end = PeriodBoundsOf(start)
	return start, end, nil
}

// NextPeriod is the period after period, which must be valid.
func NextPeriod(period string) string {
	_, end, err := PeriodBounds(period)
	if err != nil {
		panic("billing: NextPeriod of an invalid period " + period)
	}
	return PeriodOf(end)
}

// Payer names who a statement is for.
type Payer struct {
	Kind string // PayerProgramme, PayerCompany or PayerSeafarer
	ID   string
}

func (p Payer) String() string { return p.Kind + ":" + p.ID }

// ParsePayer reads "programme:{id}", "company:{id}" or "seafarer:{id}". EINVALID.
func ParsePayer(s string) (Payer, error) {
	kind, id, _ := strings.Cut(s, ":")
	switch {
	case kind != PayerProgramme && kind != PayerCompany && kind != PayerSeafarer:
		return Payer{}, wuyou.Invalid([]wuyou.FieldError{{Field: "payer", Message: "must be programme:{id}, company:{id} or seafarer:{id}"}})
	case id == "" || len(id) > 128 || strings.ContainsAny(id, ":{} \t\r\n"):
		return Payer{}, wuyou.Invalid([]wuyou.FieldError{{Field: "payer", Message: "needs an id after " + kind + ":"}})
	}
	return Payer{Kind: kind, ID: id}, nil
}

// Figures are what calls add up to. Money is summed in minor units; adding
// figures in two different currencies is an error, never a conversion.
//
// Calls and the *_seconds figures count voice calls (unit seconds); the
// money counts every unit. Units has the figures of data and SMS, one entry
// per unit other than seconds that has any, in Units order.
//
// FreeCalls are those of Calls made to the tariff's free_numbers (Rating
// Free), and FreeSeconds their duration: they bill nothing, so they are in
// no other figure but Calls.
type Figures struct {
	Calls           int64         `json:"calls"`
	BillableSeconds int64         `json:"billable_seconds"`
	CoveredSeconds  int64         `json:"covered_seconds"`
	OverageSeconds  int64         `json:"overage_seconds"`
	OverageAmount   Money         `json:"overage_amount"`
	WelfareCost     Money         `json:"welfare_cost"`
	Units           []UnitFigures `json:"units,omitempty"`
	FreeCalls       int64         `json:"free_calls"`
	FreeSeconds     int64         `json:"free_seconds"`
}

// UnitFigures are the figures of one unit other than seconds: how many
// usage events (data sessions, SMS), their billable, covered and overage
// amounts in the unit, and their money (included in the Figures' money).
type UnitFigures struct {
	Unit          string `json:"unit"`
	Events        int64  `json:"events"`
	Billable      int64  `json:"billable"`
	Covered       int64  `json:"covered"`
	Overage       int64  `json:"overage"`
	OverageAmount Money  `json:"overage_amount"`
	WelfareCost   Money  `json:"welfare_cost"`
}

// AddUnits merges b's unit figures into a's (minor units added; the
// currency is the first non-empty), in Units order.
func AddUnits(a, b []UnitFigures) []UnitFigures {
	if len(b) == 0 {
		return a
	}
	by := map[string]UnitFigures{}
	for _, list := range [][]UnitFigures{a, b} {
		for _, u := range list {
			t := by[u.Unit]
			t.Unit = u.Unit
			t.Events += u.Events
			t.Billable += u.Billable
			t.Covered += u.Covered
			t.Overage += u.Overage
			t.OverageAmount.Minor += u.OverageAmount.Minor
			t.WelfareCost.Minor += u.WelfareCost.Minor
			if t.OverageAmount.Currency == "" {
				t.OverageAmount.Currency = u.OverageAmount.Currency
			}
			if t.WelfareCost.Currency == "" {
				t.WelfareCost.Currency = u.WelfareCost.Currency
			}
			by[u.Unit] = t
		}
	}
	out := make([]UnitFigures, 0, len(by))
	for _, unit := range Units {
		if u, ok := by[unit]; ok {
			out = append(out, u)
		}
	}
	return out
}

// IsZero reports figures of no call.
func (f Figures) IsZero() bool {
	return f.Calls == 0 && f.BillableSeconds == 0 && f.CoveredSeconds == 0 && f.OverageSeconds == 0 &&
		f.OverageAmount.Minor == 0 && f.WelfareCost.Minor == 0 && len(f.Units) == 0 && f.FreeCalls == 0 && f.FreeSeconds == 0
}

// Add adds g to f. EUNPROCESSABLE when their money is in different currencies.
func (f *Figures) Add(g Figures) error {
	oa, err := addMoney(f.OverageAmount, g.OverageAmount)
	if err != nil {
		return err
	}
	wc, err := addMoney(f.WelfareCost, g.WelfareCost)
	if err != nil {
		return err
	}
	f.Calls += g.Calls
	f.BillableSeconds += g.BillableSeconds
	f.CoveredSeconds += g.CoveredSeconds
	f.OverageSeconds += g.OverageSeconds
	f.FreeCalls += g.FreeCalls
	f.FreeSeconds += g.FreeSeconds
	f.OverageAmount, f.WelfareCost = oa, wc
	f.Units = AddUnits(f.Units, g.Units)
	return nil
}

// addMoney sums two amounts; an empty currency takes the other's.
func addMoney(a, b Money) (Money, error) {
	switch {
	case a.Currency == "":
		a.Currency = b.Currency
	case b.Currency != "" && b.Currency != a.Currency:
		return Money{}, wuyou.Errorf(wuyou.EUNPROCESSABLE, "amounts in %s and %s cannot be added", a.Currency, b.Currency)
	}
	a.Minor += b.Minor
	return a, nil
}

// withCurrency gives empty currencies the default.
func (f Figures) withCurrency(currency string) Figures {
	if f.OverageAmount.Currency == "" {
		f.OverageAmount.Currency = currency
	}
	if f.WelfareCost.Currency == "" {
		f.WelfareCost.Currency = currency
	}
	if len(f.Units) > 0 {
		units := make([]UnitFigures, len(f.Units))
		for i, u := range f.Units {
			if u.OverageAmount.Currency == "" {
				u.OverageAmount.Currency = currency
			}
			if u.WelfareCost.Currency == "" {
				u.WelfareCost.Currency = currency
			}
			units[i] = u
		}
		f.Units = units
	}
	return f
}

// Adjustment is what calls of an earlier, closed period add to a later
// period's statement: they were metered after their own period closed.
type Adjustment struct {
	Period string // the closed period the calls belong to
	Figures
}

// SeafarerUsage is one seafarer's figures in one statement period: the calls
// of the period itself and the adjustments counted in it.
type SeafarerUsage struct {
	SeafarerID  string
	Period      Figures
	Adjustments []Adjustment // by Period, ascending
}

// CallLine is one call counted in a seafarer's statement.
type CallLine struct {
	EntryID        string    `json:"entry_id"`
	EventID        string    `json:"event_id"`
	CallTime       time.Time `json:"call_time"`
	MSISDN         string    `json:"msisdn"`
	VisitedCountry string    `json:"visited_country"`
	// AdjustsPeriod is set when the call belongs to an earlier, closed period.
	AdjustsPeriod string `json:"adjusts_period,omitempty"`
	Figures
}

// PeriodState is where a period is in its life.
type PeriodState struct {
	Period   string     `json:"period"`
	Status   string     `json:"status"`
	ClosedAt *time.Time `json:"closed_at,omitempty"` // when the close started: the cut
	// Seafarers is, in a close's reply, how many seafarers' figures it froze.
	Seafarers *int64 `json:"seafarers,omitempty"`
}

// StatementStore is what statements are built from. Figures of a closed
// period are its frozen figures: a store never returns for a closed period
// anything that was counted after it closed.
type StatementStore interface {
	// PeriodState returns the state of period (open when never closed).
	PeriodState(ctx context.Context, period string) (*PeriodState, error)
	// ClosePeriod freezes period's statements and returns its state; closing
	// a closed period again changes nothing.
	ClosePeriod(ctx context.Context, period string) (*PeriodState, error)
	// ProgrammeUsage calls fn, in no particular order, for every seafarer who
	// has figures of the programme's packs in period's statement: the seconds
	// its packs covered and their welfare cost. It stops at fn's first error.
	ProgrammeUsage(ctx context.Context, period, programmeID string, fn func(SeafarerUsage) error) error
	// SeafarersUsage returns the figures of each listed seafarer in period's
	// statement, in the order asked (zero figures for one without calls).
	SeafarersUsage(ctx context.Context, period string, seafarerIDs []string) ([]SeafarerUsage, error)
	// SeafarerCalls returns the calls counted in a seafarer's statement of
	// period, by call time.
	SeafarerCalls(ctx context.Context, period, seafarerID string) ([]CallLine, error)
	// UsageByMSISDN calls fn with Wuyou's figures of every call made in
	// period (by call time, whatever statement counts it), per seafarer and
	// the MSISDN the call was made from.
	UsageByMSISDN(ctx context.Context, period string, fn func(SettlementRow) error) error
}

// Registry tells whether a payer exists and who a company's crew is.
type Registry interface {
	Programmes
	Crews
}

// Programmes is the part of Registry the programme store answers.
type Programmes interface {
	// ProgrammeExists returns ENOTFOUND for an unknown programme.
	ProgrammeExists(ctx context.Context, id string) error
}

// Crews is the part of Registry the crew registry answers.
type Crews interface {
	// SeafarerExists returns ENOTFOUND for an unknown seafarer.
	SeafarerExists(ctx context.Context, id string) error
	// CompanyCrew calls fn with every seafarer id of the company, in id
	// order. ENOTFOUND for an unknown company.
	CompanyCrew(ctx context.Context, companyID string, fn func(seafarerID string) error) error
}

// CrewNames tells who seafarers are and what a company is called, for the
// names statements show beside ids (crew.PGStore).
type CrewNames interface {
	// SeafarerNames maps each known seafarer id to its name and company.
	SeafarerNames(ctx context.Context, ids []string) (map[string]crew.SeafarerName, error)
	// CompanyName returns a company's name. ENOTFOUND.
	CompanyName(ctx context.Context, id string) (string, error)
}

// ProgrammeNames tells what a programme is called (quota.PGProgrammes).
type ProgrammeNames interface {
	// ProgrammeName returns a programme's name. ENOTFOUND.
	ProgrammeName(ctx context.Context, id string) (string, error)
}

// JoinRegistry is a Registry made of its two owners' parts.
type JoinRegistry struct {
	Programmes
	Crews
}

// Statements builds statements, closes periods and reconciles with the carrier.
type Statements struct {
	Store    StatementStore
	Registry Registry
	Now      wuyou.Clock
	// Currency is shown on a statement without any amount (the tariff's).
	Currency string
	// CrewNames and ProgrammeNames, when set, put names beside the ids of
	// the payer and of each seafarer line (CONTRACT §7.6).
	CrewNames      CrewNames
	ProgrammeNames ProgrammeNames
}

// Line is one line of a statement: a seafarer's figures (programme and
// company payers; a seafarer with adjustments has one more line per
// adjusted period) or one call (seafarer payer).
type Line struct {
	SeafarerID string `json:"seafarer_id,omitempty"`
	// Names beside the seafarer's id on seafarer lines: the seafarer's, and
	// the company they sail for.
	SeafarerName string `json:"seafarer_name,omitempty"`
	CompanyID    string `json:"company_id,omitempty"`
	CompanyName  string `json:"company_name,omitempty"`
	// Call lines only.
	EntryID        string     `json:"entry_id,omitempty"`
	EventID        string     `json:"event_id,omitempty"`
	CallTime       *time.Time `json:"call_time,omitempty"`
	MSISDN         string     `json:"msisdn,omitempty"`
	VisitedCountry string     `json:"visited_country,omitempty"`
	// AdjustsPeriod names the closed period an adjustment line's calls
	// belong to; empty on lines of the statement's own period.
	AdjustsPeriod string `json:"adjusts_period,omitempty"`
	Figures
}

// Statement is what one payer owes for one period. Its figures are the
// totals of its lines, repeated under "totals". A statement of a closed
// period is the same, byte for byte, every time it is produced.
type Statement struct {
	Period string `json:"period"`
	Payer  string `json:"payer"`
	// PayerName is the payer's name: the programme's, company's or seafarer's.
	PayerName string     `json:"payer_name,omitempty"`
	Status    string     `json:"status"`
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
	Figures
	Totals Figures `json:"totals"`
	Lines  []Line  `json:"lines"`
}

// batchSize is how many seafarers' figures are read at once.
const batchSize = 1000

// Statement builds payer's statement of period. EINVALID (period),
// ENOTFOUND (payer), EUNPROCESSABLE (amounts in several currencies).
func (s *Statements) Statement(ctx context.Context, period string, payer Payer) (*Statement, error) {
	if _, _, err := PeriodBounds(period); err != nil {
		return nil, err
	}
	state, err := s.Store.PeriodState(ctx, period)
	if err != nil {
		return nil, err
	}
	st := &Statement{Period: period, Payer: payer.String(), Status: state.Status, ClosedAt: state.ClosedAt, Lines: []Line{}}
	switch payer.Kind {
	case PayerProgramme:
		if err := s.Registry.ProgrammeExists(ctx, payer.ID); err != nil {
			return nil, err
		}
		err = s.Store.ProgrammeUsage(ctx, period, payer.ID, func(u SeafarerUsage) error {
			st.Lines = appendUsage(st.Lines, u)
			return nil
		})
		sortLines(st.Lines)
	case PayerCompany:
		err = s.companyLines(ctx, period, payer.ID, st)
	case PayerSeafarer:
		if err := s.Registry.SeafarerExists(ctx, payer.ID); err != nil {
			return nil, err
		}
		var calls []CallLine
		if calls, err = s.Store.SeafarerCalls(ctx, period, payer.ID); err == nil {
			for _, c := range calls {
				st.Lines = append(st.Lines, Line{
					EntryID: c.EntryID, EventID: c.EventID, CallTime: &c.CallTime, MSISDN: c.MSISDN,
					VisitedCountry: c.VisitedCountry, AdjustsPeriod: c.AdjustsPeriod, Figures: c.Figures,
				})
			}
		}
	default:
		return nil, wuyou.Errorf(wuyou.EINVALID, "unknown payer kind %q", payer.Kind)
	}
	if err != nil {
		return nil, err
	}
	if err := s.name(ctx, payer, st); err != nil {
		return nil, err
	}
	for i := range st.Lines {
		if err := st.Figures.Add(st.Lines[i].Figures); err != nil {
			return nil, err
		}
	}
	currency := s.Currency
	for _, c := range []string{st.WelfareCost.Currency, st.OverageAmount.Currency} {
		if c != "" {
			currency = c
		}
	}
	for i := range st.Lines {
		st.Lines[i].Figures = st.Lines[i].Figures.withCurrency(currency)
	}
	st.Figures = st.Figures.withCurrency(currency)
	st.Totals = st.Figures
	return st, nil
}

// name puts the payer's name on st and each seafarer line's names beside
// its id, in one query for the lines, when the names are known.
func (s *Statements) name(ctx context.Context, payer Payer, st *Statement) error {
	var err error
	switch {
	case payer.Kind == PayerProgramme && s.ProgrammeNames != nil:
		st.PayerName, err = s.ProgrammeNames.ProgrammeName(ctx, payer.ID)
	case payer.Kind == PayerCompany && s.CrewNames != nil:
		st.PayerName, err = s.CrewNames.CompanyName(ctx, payer.ID)
	}
	if err != nil || s.CrewNames == nil {
		return err
	}
	ids := []string{}
	if payer.Kind == PayerSeafarer {
		ids = append(ids, payer.ID)
	}
	for _, l := range st.Lines {
		if l.SeafarerID != "" && (len(ids) == 0 || ids[len(ids)-1] != l.SeafarerID) {
			ids = append(ids, l.SeafarerID) // lines are by seafarer: each id once
		}
	}
	if len(ids) == 0 {
		return nil
	}
	names, err := s.CrewNames.SeafarerNames(ctx, ids)
	if err != nil {
		return err
	}
	if payer.Kind == PayerSeafarer {
		st.PayerName = names[payer.ID].Name
	}
	for i := range st.Lines {
		if n, ok := names[st.Lines[i].SeafarerID]; ok && st.Lines[i].SeafarerID != "" {
			st.Lines[i].SeafarerName, st.Lines[i].CompanyID, st.Lines[i].CompanyName = n.Name, n.CompanyID, n.CompanyName
		}
	}
	return nil
}

// companyLines adds a line per crew member with figures, in id order.
func (s *Statements) companyLines(ctx context.Context, period, companyID string, st *Statement) error {
	ids := make([]string, 0, batchSize)
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		us, err := s.Store.SeafarersUsage(ctx, period, ids)
		if err != nil {
			return err
		}
		for _, u := range us {
			st.Lines = appendUsage(st.Lines, u)
		}
		ids = ids[:0]
		return nil
	}
	err := s.Registry.CompanyCrew(ctx, companyID, func(id string) error {
		ids = append(ids, id)
		if len(ids) == batchSize {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	sortLines(st.Lines)
	return nil
}

// appendUsage adds a seafarer's lines: one for the period's own calls (when
// there were any) and one per adjusted period.
func appendUsage(lines []Line, u SeafarerUsage) []Line {
	if !u.Period.IsZero() {
		lines = append(lines, Line{SeafarerID: u.SeafarerID, Figures: u.Period})
	}
	for _, a := range u.Adjustments {
		if !a.Figures.IsZero() {
			lines = append(lines, Line{SeafarerID: u.SeafarerID, AdjustsPeriod: a.Period, Figures: a.Figures})
		}
	}
	return lines
}

// sortLines orders seafarer lines by seafarer, the period's own line first,
// then adjustments by period.
func sortLines(lines []Line) {
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].SeafarerID != lines[j].SeafarerID {
			return lines[i].SeafarerID < lines[j].SeafarerID
		}
		return lines[i].AdjustsPeriod < lines[j].AdjustsPeriod
	})
}

// ClosePeriod freezes period's statements. Only a period that has ended can
// be closed (EUNPROCESSABLE otherwise); closing it again returns its state.
// EINVALID for a malformed period.
func (s *Statements) ClosePeriod(ctx context.Context, period string) (*PeriodState, error) {
	_, end, err := PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	if now := s.now(); now.Before(end) {
		return nil, &wuyou.Error{Code: wuyou.EUNPROCESSABLE, Reason: "period_not_ended",
			Message: fmt.Sprintf("period %s has not ended: it can be closed from %s", period, end.Format(time.RFC3339))}
	}
	return s.Store.ClosePeriod(ctx, period)
}

func (s *Statements) now() time.Time {
	if s.Now == nil {
		return wuyou.SystemClock()
	}
	return s.Now()
}

// csvUnitColumns are the CSV columns of each unit other than seconds, after
// the seconds figures: events, then billable, covered and overage amounts
// in the unit (their money is in the line's overage and welfare columns).
var csvUnitColumns = []struct{ unit, events, amount string }{
	{UnitBytes, "data_sessions", "bytes"},
	{UnitSMS, "sms_messages", "sms"},
}

// WriteCSV writes the statement's lines as CSV with a header row. Seafarer
// lines (programme and company payers) start with seafarer_id and the
// names beside it (seafarer_name, company_id, company_name), call lines
// (seafarer payer) with entry_id; both go on with the figures, money in
// minor units of the currency column, go on with the figures of data and
// SMS (csvUnitColumns; zeros for a line without any) and end with the free
// calls (free_calls, free_seconds).
func (st *Statement) WriteCSV(w io.Writer) error { return st.writeCSV(w, true) }

// CompanyStatement is a statement as a company reads it (WithoutFreeCalls):
// the statement's JSON without free_calls and free_seconds anywhere, its
// CSV without their columns. The fields below shadow the statement's (a
// shallower field of the same JSON name wins, and an empty struct with
// omitzero is never written), so every other field of a statement, today's
// or one added later, shows here as it is.
type CompanyStatement struct {
	Statement
	FreeCalls   absent         `json:"free_calls,omitzero"`
	FreeSeconds absent         `json:"free_seconds,omitzero"`
	Totals      companyFigures `json:"totals"`
	Lines       []companyLine  `json:"lines"`
}

// absent is a JSON field that is never written (omitzero).
type absent struct{}

type companyFigures struct {
	Figures
	FreeCalls   absent `json:"free_calls,omitzero"`
	FreeSeconds absent `json:"free_seconds,omitzero"`
}

type companyLine struct {
	Line
	FreeCalls   absent `json:"free_calls,omitzero"`
	FreeSeconds absent `json:"free_seconds,omitzero"`
}

// WithoutFreeCalls is the statement as a company reads it. A company must
// not learn that one of its crew called one of the tariff's free numbers
// (a seafarer calling the union's hotline about their employer): its view
// has no free_calls or free_seconds (left out, not zeros), counts in calls
// only the calls that were not free, and leaves out a line that only free
// calls made. Its seconds and money are the statement's: a free call bills
// nothing. st is not changed.
func (st *Statement) WithoutFreeCalls() *CompanyStatement {
	hide := func(f Figures) Figures {
		f.Calls -= f.FreeCalls
		f.FreeCalls, f.FreeSeconds = 0, 0
		return f
	}
	out := &CompanyStatement{Statement: *st}
	out.Statement.Figures = hide(st.Figures)
	out.Statement.Lines = make([]Line, 0, len(st.Lines))
	for _, l := range st.Lines {
		if l.Figures = hide(l.Figures); l.Figures.IsZero() {
			continue
		}
		out.Statement.Lines = append(out.Statement.Lines, l)
	}
	out.Statement.Totals = out.Statement.Figures
	out.Totals = companyFigures{Figures: out.Statement.Totals}
	out.Lines = make([]companyLine, len(out.Statement.Lines))
	for i, l := range out.Statement.Lines {
		out.Lines[i] = companyLine{Line: l}
	}
	return out
}

// WriteCSV writes the lines as Statement.WriteCSV does, without the free
// calls' columns.
func (cs *CompanyStatement) WriteCSV(w io.Writer) error { return cs.Statement.writeCSV(w, false) }

// writeCSV is WriteCSV, with the free calls' columns or without.
func (st *Statement) writeCSV(w io.Writer, free bool) error {
	cw := wuyou.NewCSVWriter(w) // every cell made safe for spreadsheets
	figures := []string{"adjusts_period", "calls", "billable_seconds", "covered_seconds", "overage_seconds",
		"overage_amount_minor", "welfare_cost_minor", "currency"}
	for _, c := range csvUnitColumns {
		figures = append(figures, c.events, "billable_"+c.amount, "covered_"+c.amount, "overage_"+c.amount)
	}
	if free {
		figures = append(figures, "free_calls", "free_seconds")
	}
	calls := strings.HasPrefix(st.Payer, PayerSeafarer+":")
	head := []string{"seafarer_id", "seafarer_name", "company_id", "company_name"}
	if calls {
		head = []string{"entry_id", "event_id", "call_time", "msisdn", "visited_country"}
	}
	if err := cw.Write(append(head, figures...)); err != nil {
		return err
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	rec := make([]string, 0, len(head)+len(figures))
	for _, l := range st.Lines {
		rec = rec[:0]
		if calls {
			at := ""
			if l.CallTime != nil {
				at = l.CallTime.UTC().Format(time.RFC3339)
			}
			rec = append(rec, l.EntryID, l.EventID, at, l.MSISDN, l.VisitedCountry)
		} else {
			rec = append(rec, l.SeafarerID, l.SeafarerName, l.CompanyID, l.CompanyName)
		}
		rec = append(rec, l.AdjustsPeriod, num(l.Calls), num(l.BillableSeconds), num(l.CoveredSeconds),
			num(l.OverageSeconds), num(l.OverageAmount.Minor), num(l.WelfareCost.Minor), l.OverageAmount.Currency)
		for _, c := range csvUnitColumns {
			var u UnitFigures
			for _, f := range l.Units {
				if f.Unit == c.unit {
					u = f
				}
			}
			rec = append(rec, num(u.Events), num(u.Billable), num(u.Covered), num(u.Overage))
		}
		if free {
			rec = append(rec, num(l.FreeCalls), num(l.FreeSeconds))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
