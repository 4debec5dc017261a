// Package quota owns free minutes: welfare programmes, the grants (packs)
// issued from them, the metering debit that draws calls from grants, and the
// ledger that explains every balance.
//
// Rules it guarantees (PRODUCT.md):
//   - a call draws only from grants active at the call's own time, lowest
//     priority number first, then earliest expiry, then earliest issued;
//   - a grant's remaining amount never goes below zero; billable = covered + overage;
//   - a call event is applied at most once per identity (source + id) within
//     the dedupe window, across all seafarers (identity.go);
//   - every change to a balance is a ledger entry, so that for each seafarer
//     sum(grants) - sum(draws) - sum(voids) = remaining;
//   - a programme never issues beyond its budget, even concurrently.
package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// Grant statuses as shown to users.
const (
	GrantActive    = "active"
	GrantPending   = "pending"
	GrantExpired   = "expired"
	GrantVoided    = "voided"
	GrantExhausted = "exhausted"
)

// Ledger entry kinds.
const (
	KindDebit = "debit"
	KindGrant = "grant"
	KindVoid  = "void"
	// KindAdjust corrects a debit: the difference between a real-time
	// session's charge and the carrier's record of the same call
	// (sessions.go), its amounts and draws signed.
	KindAdjust = "adjust"
)

// Programme is a welfare programme: what one pack is worth and how many packs
// the union may issue.
type Programme struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Unit is what its packs hold ("" is seconds); PackSeconds,
	// SecondsGranted and SecondsUsed are amounts in it (JSON: units.go).
	Unit        string    `json:"unit"`
	PackSeconds int64     `json:"pack_seconds"`
	ValidDays   int       `json:"valid_days"`
	Priority    int       `json:"priority"`
	BudgetPacks int64     `json:"budget_packs"` // 0 = unlimited
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	CreatedAt   time.Time `json:"created_at"`

	// Recurring programmes (CONTRACT §7.2): the recurrence and the
	// audience, exactly one of CompanyID, VesselIMO and All. For these,
	// BudgetPacks is per month, ValidDays is 0 (grants run to the month's
	// end), PacksIssued and SecondsGranted count every month and
	// BudgetRemainingPacks the current month (Month).
	Recurrence *Recurrence `json:"recurrence,omitempty"`
	CompanyID  string      `json:"company_id,omitempty"`
	VesselIMO  string      `json:"vessel_imo,omitempty"`
	All        bool        `json:"all,omitempty"`

	// NotifyAt are the thresholds of wuyou.quota.low (notify.go), never
	// empty: the default is 20 percent.
	NotifyAt []Threshold `json:"notify_at"`
	// FinalAction is the programme's final_action for real-time sessions
	// (sessions.go); "" leaves it to the tariff.
	FinalAction string `json:"final_action,omitempty"`

	PacksIssued          int64  `json:"packs_issued"`
	BudgetRemainingPacks *int64 `json:"budget_remaining_packs"` // null when unlimited
	SecondsGranted       int64  `json:"seconds_granted"`
	SecondsUsed          int64  `json:"seconds_used"`
	// Month is the current month's issue of a recurring programme.
	Month *RecurringMonth `json:"month,omitempty"`
}

// Grant is one pack held by one seafarer. GrantedSeconds and
// RemainingSeconds hold its amounts in Unit ("" is seconds); in JSON they
// are granted and remaining, and *_seconds only for seconds (units.go).
type Grant struct {
	ID               string    `json:"id"`
	ProgrammeID      string    `json:"programme_id"`
	Unit             string    `json:"unit"`
	GrantedSeconds   int64     `json:"granted_seconds"`
	RemainingSeconds int64     `json:"remaining_seconds"`
	EffectiveAt      time.Time `json:"effective_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	IssuedAt         time.Time `json:"issued_at"`
	Priority         int       `json:"priority"`
	Status           string    `json:"status"`
	Voided           bool      `json:"-"`
	// NotifyAt are its programme's thresholds as its hot copy keeps them
	// (nil: the default; notify.go).
	NotifyAt []Threshold `json:"-"`
}

// ActiveAt reports whether the grant can be drawn from at t.
func (g *Grant) ActiveAt(t time.Time) bool {
	return !g.Voided && !t.Before(g.EffectiveAt) && t.Before(g.ExpiresAt)
}

// StatusAt is the grant's status as seen at now.
func (g *Grant) StatusAt(now time.Time) string {
	switch {
	case g.Voided:
		return GrantVoided
	case now.Before(g.EffectiveAt):
		return GrantPending
	case !now.Before(g.ExpiresAt):
		return GrantExpired
	case g.RemainingSeconds == 0:
		return GrantExhausted
	}
	return GrantActive
}

// Draw is the part of one call taken from one grant.
type Draw struct {
	GrantID     string `json:"grant_id"`
	ProgrammeID string `json:"programme_id,omitempty"`
	Seconds     int64  `json:"seconds"`
	// WelfareMinor is this draw's share of the debit's welfare cost: the
	// increments of covered time whose start falls in this draw, times the
	// wholesale price (SplitWelfare). Optional: zero on every draw means
	// not given, and PGLedger then works the shares out itself.
	WelfareMinor int64 `json:"welfare_minor,omitempty"`
}

// LedgerEntry is one change to a seafarer's balance. Its amounts
// (BillableSeconds, CoveredSeconds, OverageSeconds, Seconds and the draws')
// are in Unit ("" is seconds); in JSON, an entry of another unit shows them
// as billable, covered, overage and amount, its *_seconds zero (units.go).
type LedgerEntry struct {
	ID              string        `json:"id"`
	Kind            string        `json:"kind"`
	Unit            string        `json:"unit"`
	VolumeBytes     int64         `json:"volume_bytes,omitempty"` // a data session's, as the carrier sent it
	At              time.Time     `json:"at"`
	EventID         string        `json:"event_id"`
	Source          string        `json:"source,omitempty"`
	Type            string        `json:"type,omitempty"`
	CallTime        *time.Time    `json:"call_time"`
	DurationSeconds int64         `json:"duration_seconds"`
	BillableSeconds int64         `json:"billable_seconds"`
	CoveredSeconds  int64         `json:"covered_seconds"`
	OverageSeconds  int64         `json:"overage_seconds"`
	OverageAmount   billing.Money `json:"overage_amount"`
	// WelfareCost is what the welfare fund owes the carrier for the covered
	// seconds: the wholesale price per started increment (debits only).
	WelfareCost *billing.Money `json:"welfare_cost,omitempty"`
	// StatementPeriod is the period whose statements count the call: its own
	// period, or, when that was closed before the call was metered, the first
	// open period after it, with AdjustsPeriod naming the call's own period.
	StatementPeriod string `json:"statement_period,omitempty"`
	AdjustsPeriod   string `json:"adjusts_period,omitempty"`
	CalledNumber    string `json:"called_number"`
	VisitedCountry  string `json:"visited_country"`
	// Free marks a call to one of the tariff's free_numbers (billing.Rating
	// Free): it billed nothing, so it drew nothing and is never overage;
	// statements count it apart.
	Free   bool   `json:"free,omitempty"`
	MSISDN string `json:"msisdn,omitempty"`
	// CallID is the carrier's call id of a debit or adjust that has one (a
	// session's terminate: its session id). Kept in the system of record
	// for rebuilding sessions (rebuild_sessions.go), not published.
	CallID string `json:"-"`
	Draws  []Draw `json:"draws"`
	// For grant and void entries: the grant and the seconds it added or removed.
	GrantID     string `json:"grant_id,omitempty"`
	ProgrammeID string `json:"programme_id,omitempty"`
	Seconds     int64  `json:"seconds,omitempty"`
	// Actor is the person whose request wrote a grant or void entry (the
	// staff member who started the issuance, or voided); nil for debits and
	// for entries nobody asked for by hand.
	Actor *wuyou.Actor `json:"actor,omitempty"`
}

// Usage is what a call asks of the seafarer's grants, after rating.
type Usage struct {
	SeafarerID      string
	MSISDN          string
	Source, EventID string // identity of the carrier event
	Type            string
	CallTime        time.Time
	DurationSeconds int64
	BillableSeconds int64 // 0 when the call is not eligible, and for every other unit
	// Unit is what the usage draws ("" is seconds): only grants of this unit
	// are drawn. Billable is its billable amount when Unit is not seconds
	// (seconds use BillableSeconds). VolumeBytes is a data session's volume.
	Unit           string
	Billable       int64
	VolumeBytes    int64
	CalledNumber   string
	VisitedCountry string
	// Free: the call is to one of the tariff's free_numbers (billing.Rating
	// Free). It must bill nothing; its ledger entry is marked free.
	Free bool
	// Overage pricing: OveragePrice per started Increment of the unit
	// (billing.PricePerStartedIncrement; billing.DefaultIncrement when 0).
	OveragePrice billing.Money
	Increment    int64
	// WholesalePrice is what the welfare fund pays per started Increment of
	// covered seconds (same currency as OveragePrice).
	WholesalePrice billing.Money
	// CallID is the carrier's call id (data.call_id): a call whose id is a
	// session's settles that session (sessions.go) instead of being charged
	// twice. terminates marks a session's own terminate (TerminateSession).
	CallID     string
	terminates bool
	// Fingerprint names the event's content: two deliveries of one
	// identity with different fingerprints are two different calls
	// claiming one identity. Empty: derived from the fields above.
	Fingerprint string
}

// fingerprint is u.Fingerprint, or one derived from what u asks.
func (u Usage) fingerprint() string {
	if u.Fingerprint != "" {
		return u.Fingerprint
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%d\x00%s\x00%s", u.MSISDN, u.Type, u.CallTime.Unix(), u.DurationSeconds,
		u.BillableSeconds, u.CalledNumber, u.VisitedCountry)
	if unit := u.unit(); unit != billing.UnitSeconds { // seconds' fingerprints stay as they were
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", unit, u.Billable, u.VolumeBytes)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// DebitResult is the outcome of applying one usage.
type DebitResult struct {
	// SeafarerID is who the usage was charged to: the seafarer the
	// identity was first claimed for.
	SeafarerID string
	Entry      *LedgerEntry
	Duplicate  bool // the identity was seen before: nothing changed
	// Conflicting: the identity was first claimed by an event with other
	// content; nothing changed.
	Conflicting bool
	// Err is why this usage alone could not be applied (an
	// "apply_failed" *wuyou.Error); nothing of it is stored.
	Err error
	// Balance after the debit, over grants of the usage's unit active now.
	RemainingNow int64
	GrantedNow   int64
	// Notes are the notifications this identity triggered, the same on
	// every repeat.
	Notes []Note
}

// Note is a low or exhausted mark crossed by one call, once per grant set.
type Note struct {
	Kind             string // NoteLow or NoteExhausted
	Unit             string // the unit of the grants and amounts ("" is seconds)
	GrantSet         string // names the set of grants of Unit active when it was crossed
	RemainingSeconds int64
	GrantedSeconds   int64
	At               time.Time // when it was crossed
	// Threshold is the threshold a low note crossed (nil for exhausted).
	Threshold *Threshold
	// ExpiresAt, on a low note, is when what is left starts to lapse: the
	// earliest expiry among the grants of Unit active when it was crossed
	// with something left. NextAt, on an exhausted note, is when more
	// comes: the earliest start of a pending grant of Unit with something
	// left. Zero when there is none, and on notes announced before either
	// was kept.
	ExpiresAt time.Time
	NextAt    time.Time
}

// Note kinds.
const (
	NoteLow       = "low"
	NoteExhausted = "exhausted"
)

// Allowance is a seafarer's balance now.
type Allowance struct {
	SeafarerID       string    `json:"seafarer_id"`
	RemainingSeconds int64     `json:"remaining_seconds"`
	RemainingMinutes int64     `json:"remaining_minutes"`
	Grants           []*Grant  `json:"grants"`
	Period           string    `json:"period"`
	UsedSeconds      int64     `json:"used_seconds"`
	OverageSeconds   int64     `json:"overage_seconds"`
	AsOf             time.Time `json:"as_of"`
	// Balances per unit (units.go); *_seconds above count seconds only.
	Balances []Balance    `json:"balances"`
	Usage    []UnitFigure `json:"usage"`
}

// EarliestExpiry is the earliest expiry among seconds grants active now, or
// the zero time.
func (a *Allowance) EarliestExpiry() time.Time {
	var t time.Time
	for _, g := range a.Grants {
		if g.Status == GrantActive && unitOrSeconds(g.Unit) == billing.UnitSeconds && (t.IsZero() || g.ExpiresAt.Before(t)) {
			t = g.ExpiresAt
		}
	}
	return t
}

// Meter applies usage to balances; the carrier consumer depends on it.
type Meter interface {
	// Debit applies u at most once per (Source, EventID) and returns the
	// ledger entry (the stored one when Duplicate).
	Debit(ctx context.Context, u Usage) (*DebitResult, error)
}

// ProgrammeInput creates a programme.
type ProgrammeInput struct {
	Name string `json:"name"`
	// Unit (default seconds) and the pack's amount in it: PackAmount, or
	// for seconds PackSeconds (both given must agree). See packAmount.
	Unit        string    `json:"unit,omitempty"`
	PackAmount  int64     `json:"pack_amount,omitempty"`
	PackSeconds int64     `json:"pack_seconds"`
	ValidDays   int       `json:"valid_days"`
	Priority    int       `json:"priority"`
	BudgetPacks int64     `json:"budget_packs"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
	// A recurring programme's recurrence and audience (exactly one of
	// CompanyID, VesselIMO and All); none of them on any other programme.
	Recurrence *Recurrence `json:"recurrence,omitempty"`
	CompanyID  string      `json:"company_id,omitempty"`
	VesselIMO  string      `json:"vessel_imo,omitempty"`
	All        bool        `json:"all,omitempty"`
	// NotifyAt are the thresholds of wuyou.quota.low (notify.go); left
	// out, the default 20 percent.
	NotifyAt []Threshold `json:"notify_at,omitempty"`
	// FinalAction is what the carrier does when a session's final grant,
	// one of this programme's, is used up; "" leaves it to the tariff.
	FinalAction string `json:"final_action,omitempty"`
}
