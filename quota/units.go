package quota

// Units (CONTRACT §7.2). Grants, usage and ledger entries are in one unit
// each, billing.UnitSeconds, UnitBytes or UnitSMS; a usage draws only from
// grants of its own unit. Inside the package, amounts keep the fields they
// always had (Grant.GrantedSeconds, LedgerEntry.BillableSeconds, Draw.Seconds
// …), holding the amount in the row's unit, as PostgreSQL's columns do
// (migration 00013_units.sql). What the outside world reads says which is
// which: JSON shows granted/remaining and billable/covered/overage/amount
// for every unit and keeps the *_seconds fields for seconds only (zero for
// other units), so v1 clients reading *_seconds never count bytes as
// seconds.

import (
	"fmt"
	"time"

	// Entries are encoded for every ledger message and API answer:
	// goccy/go-json, as carrier and api use, writes what encoding/json
	// would, faster.
	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// In Go values (Grant, LedgerEntry, Note, Usage, GrantInput) a unit of ""
// is seconds, as the grants hash and the ledger records store it and as
// everything written before units has it; JSON and PostgreSQL always spell
// it out. storedUnit is the Go form of a unit, unitOrSeconds its spelled-out
// form.
func storedUnit(u string) string {
	if u == billing.UnitSeconds {
		return ""
	}
	return u
}

// UnitName spells out a unit held by a Go value of this package ("" is
// seconds), for what other packages publish.
func UnitName(u string) string { return unitOrSeconds(u) }

// unitOrSeconds reads a stored unit: "" (what v1 stored) is seconds.
func unitOrSeconds(u string) string {
	if u == "" {
		return billing.UnitSeconds
	}
	return u
}

// unit is the unit u draws.
func (u Usage) unit() string { return unitOrSeconds(u.Unit) }

// billable is u's billable amount in its unit.
func (u Usage) billable() int64 {
	if u.unit() == billing.UnitSeconds {
		return u.BillableSeconds
	}
	return u.Billable
}

// Balance is what a seafarer holds of one unit now: the sums over grants of
// that unit active now. Reserved is what open carrier sessions hold (CONTRACT
// §7.3; 0 until sessions exist). ExpiresAt is the earliest expiry among them.
type Balance struct {
	Unit      string    `json:"unit"`
	Granted   int64     `json:"granted"`
	Remaining int64     `json:"remaining"`
	Reserved  int64     `json:"reserved"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UnitFigure is one unit's figures of the allowance's month: billable
// usage and its overage (calls' seconds, data's bytes, SMS count).
type UnitFigure struct {
	Unit    string `json:"unit"`
	Used    int64  `json:"used"`
	Overage int64  `json:"overage"`
}

// balances sums the grants active at now per unit, units in billing.Units
// order, one entry per unit that has any.
func balances(gs []*Grant, now time.Time) []Balance {
	by := map[string]*Balance{}
	for _, g := range gs {
		if !g.ActiveAt(now) {
			continue
		}
		u := unitOrSeconds(g.Unit)
		b := by[u]
		if b == nil {
			b = &Balance{Unit: u, ExpiresAt: g.ExpiresAt}
			by[u] = b
		}
		b.Granted += g.GrantedSeconds
		b.Remaining += g.RemainingSeconds
		if g.ExpiresAt.Before(b.ExpiresAt) {
			b.ExpiresAt = g.ExpiresAt
		}
	}
	out := make([]Balance, 0, len(by))
	for _, u := range billing.Units {
		if b := by[u]; b != nil {
			out = append(out, *b)
		}
	}
	return out
}

// monthFields are the fields of the month figures' hash (T:m:<month>) for
// one unit: "billable" and "overage" for seconds, as v1 wrote them, else
// "billable:<unit>" and "overage:<unit>". debitScript writes the same names.
func monthFields(unit string) (billable, overage string) {
	if unit = unitOrSeconds(unit); unit == billing.UnitSeconds {
		return "billable", "overage"
	}
	return "billable:" + unit, "overage:" + unit
}

// allMonthFields lists the month figures' fields of every unit, in
// billing.Units order, billable then overage.
var allMonthFields = func() []string {
	var fs []string
	for _, u := range billing.Units {
		b, o := monthFields(u)
		fs = append(fs, b, o)
	}
	return fs
}()

// ---- JSON ----

// drawJSON is a draw as JSON shows it: seconds for a seconds entry, amount
// for another unit's.
type drawJSON struct {
	GrantID      string `json:"grant_id"`
	ProgrammeID  string `json:"programme_id,omitempty"`
	Seconds      int64  `json:"seconds"`
	Amount       int64  `json:"amount,omitempty"`
	WelfareMinor int64  `json:"welfare_minor,omitempty"`
}

// ledgerEntryPlain is LedgerEntry without its JSON methods.
type ledgerEntryPlain LedgerEntry

// ledgerEntryJSON is a ledger entry of any unit as JSON shows it.
type ledgerEntryJSON struct {
	ledgerEntryPlain
	Billable int64      `json:"billable"`
	Covered  int64      `json:"covered"`
	Overage  int64      `json:"overage"`
	Amount   int64      `json:"amount,omitempty"` // a grant's or void's amount
	Draws    []drawJSON `json:"draws"`
}

// MarshalJSON writes the entry with its unit: billable, covered and overage
// always, *_seconds, seconds and the draws' seconds only for seconds.
func (e LedgerEntry) MarshalJSON() ([]byte, error) {
	p := ledgerEntryPlain(e)
	p.Unit = unitOrSeconds(e.Unit)
	out := ledgerEntryJSON{Billable: e.BillableSeconds, Covered: e.CoveredSeconds, Overage: e.OverageSeconds,
		Amount: e.Seconds}
	if e.Draws != nil {
		out.Draws = make([]drawJSON, len(e.Draws))
	}
	seconds := p.Unit == billing.UnitSeconds
	for i, d := range e.Draws {
		out.Draws[i] = drawJSON{GrantID: d.GrantID, ProgrammeID: d.ProgrammeID, WelfareMinor: d.WelfareMinor, Amount: d.Seconds}
		if seconds {
			out.Draws[i].Seconds = d.Seconds
		}
	}
	if !seconds {
		p.BillableSeconds, p.CoveredSeconds, p.OverageSeconds, p.Seconds = 0, 0, 0, 0
	}
	out.ledgerEntryPlain = p
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes, and v1's entries (no unit:
// seconds).
func (e *LedgerEntry) UnmarshalJSON(b []byte) error {
	var in ledgerEntryJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*e = LedgerEntry(in.ledgerEntryPlain)
	e.Unit = storedUnit(e.Unit)
	seconds := e.Unit == ""
	if !seconds {
		e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds, e.Seconds = in.Billable, in.Covered, in.Overage, in.Amount
	}
	if in.Draws != nil {
		e.Draws = make([]Draw, len(in.Draws))
		for i, d := range in.Draws {
			e.Draws[i] = Draw{GrantID: d.GrantID, ProgrammeID: d.ProgrammeID, Seconds: d.Seconds, WelfareMinor: d.WelfareMinor}
			if !seconds {
				e.Draws[i].Seconds = d.Amount
			}
		}
	}
	return nil
}

// grantPlain is Grant without its JSON methods.
type grantPlain Grant

type grantJSON struct {
	grantPlain
	Granted   int64 `json:"granted"`
	Remaining int64 `json:"remaining"`
}

// MarshalJSON writes the grant with its unit, granted and remaining; the
// *_seconds fields only for a seconds grant.
func (g Grant) MarshalJSON() ([]byte, error) {
	p := grantPlain(g)
	p.Unit = unitOrSeconds(g.Unit)
	out := grantJSON{Granted: g.GrantedSeconds, Remaining: g.RemainingSeconds}
	if p.Unit != billing.UnitSeconds {
		p.GrantedSeconds, p.RemainingSeconds = 0, 0
	}
	out.grantPlain = p
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (g *Grant) UnmarshalJSON(b []byte) error {
	var in grantJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*g = Grant(in.grantPlain)
	if g.Unit = storedUnit(g.Unit); g.Unit != "" {
		g.GrantedSeconds, g.RemainingSeconds = in.Granted, in.Remaining
	}
	return nil
}

// ---- programmes ----

// Bounds of a pack's amount per unit (pack_seconds keeps v1's bounds).
const (
	maxPackBytes = 1 << 40 // 1 TiB
	maxPackSMS   = 100_000
)

// packAmount is the pack's amount in its unit: PackAmount, or PackSeconds
// for seconds when PackAmount is left out.
func (in ProgrammeInput) packAmount() int64 {
	if in.PackAmount != 0 {
		return in.PackAmount
	}
	return in.PackSeconds
}

// packErrors checks the unit and the pack's amount: pack_seconds is for
// seconds only, and beside pack_amount must say the same.
func (in ProgrammeInput) packErrors() []wuyou.FieldError {
	var errs []wuyou.FieldError
	add := func(field, msg string) { errs = append(errs, wuyou.FieldError{Field: field, Message: msg}) }
	unit := unitOrSeconds(in.Unit)
	switch {
	case !billing.ValidUnit(unit):
		add("unit", fmt.Sprintf("%q is not one of seconds, bytes, sms", in.Unit))
	case unit == billing.UnitSeconds:
		field := "pack_seconds"
		if in.PackSeconds == 0 && in.PackAmount != 0 {
			field = "pack_amount"
		}
		if in.PackSeconds != 0 && in.PackAmount != 0 && in.PackSeconds != in.PackAmount {
			add("pack_amount", fmt.Sprintf("%d differs from pack_seconds %d: give one of them, or both the same", in.PackAmount, in.PackSeconds))
		} else if n := in.packAmount(); n < minPackSeconds || n > maxPackSeconds {
			add(field, fmt.Sprintf("must be between %d and %d", minPackSeconds, maxPackSeconds))
		}
	default:
		if in.PackSeconds != 0 {
			add("pack_seconds", "is only for unit seconds; give a "+unit+" pack's amount as pack_amount")
		}
		limit := maxPackAmount(unit)
		if in.PackAmount < 1 || in.PackAmount > limit {
			add("pack_amount", fmt.Sprintf("must be between 1 and %d %s", limit, unit))
		}
	}
	return errs
}

// maxPackAmount is the largest pack of unit, and so the most a recurring
// programme may carry over from one month to the next.
func maxPackAmount(unit string) int64 {
	switch unit {
	case billing.UnitBytes:
		return maxPackBytes
	case billing.UnitSMS:
		return maxPackSMS
	}
	return maxPackSeconds
}

// unitRow reads a programme row whose first column is its unit, then the
// columns scanProgramme reads.
type unitRow struct {
	pgx.Row
	unit *string
}

func (r unitRow) Scan(dest ...any) error { return r.Row.Scan(append([]any{r.unit}, dest...)...) }

// scanProgrammeWithUnit reads "unit, " + programmeColumns.
func scanProgrammeWithUnit(row pgx.Row) (*Programme, error) {
	var unit string
	p, err := scanProgramme(unitRow{row, &unit})
	if err != nil {
		return nil, err
	}
	p.Unit = storedUnit(unit)
	return p, nil
}

// programmePlain is Programme without its JSON methods.
type programmePlain Programme

type programmeJSON struct {
	programmePlain
	PackAmount int64 `json:"pack_amount"`
	Granted    int64 `json:"granted"`
	Used       int64 `json:"used"`
}

// MarshalJSON writes the programme with its unit, pack_amount, granted and
// used; pack_seconds, seconds_granted and seconds_used only for seconds.
func (p Programme) MarshalJSON() ([]byte, error) {
	q := programmePlain(p)
	q.Unit = unitOrSeconds(p.Unit)
	out := programmeJSON{PackAmount: p.PackSeconds, Granted: p.SecondsGranted, Used: p.SecondsUsed}
	if q.Unit != billing.UnitSeconds {
		q.PackSeconds, q.SecondsGranted, q.SecondsUsed = 0, 0, 0
	}
	out.programmePlain = q
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Programme) UnmarshalJSON(b []byte) error {
	var in programmeJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*p = Programme(in.programmePlain)
	if p.Unit = storedUnit(p.Unit); p.Unit != "" {
		p.PackSeconds, p.SecondsGranted, p.SecondsUsed = in.PackAmount, in.Granted, in.Used
	}
	return nil
}
