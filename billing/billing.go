// Package billing owns what a call costs: rating one call against the tariff
// (is it eligible, how many seconds are billable, which zone and prices apply),
// the tariff itself and its versions, the monthly statements of what the
// welfare fund owes the carrier and what each payer ran up in overage, and
// the reconciliation of those figures with the carrier's settlement file.
//
// Rating is pure: it needs no storage and no clock, only the call and the
// tariff, so the metering debit in quota/ can call it for every event.
package billing

import (
	"math"
	"time"
)

// Money is integer minor units (fen) with an ISO 4217 currency code.
type Money struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// Call is what rating needs to know of one usage event.
type Call struct {
	Type            string    // carrier.usage.voice | carrier.usage.sms | carrier.usage.data
	Time            time.Time // when the call started; decides which tariff version applies
	DurationSeconds int64
	VolumeBytes     int64  // a data session's volume (data events only)
	VisitedCountry  string // ISO 3166 alpha-2
	Direction       string // MO | MT
	Network         string // terrestrial | maritime
	// CalledNumber is the number called (voice and SMS); a call to one of
	// the tariff's free_numbers is free (Rating.Free).
	CalledNumber string
}

// The values of Call.Type, Call.Direction and Call.Network: the carrier's
// own words (CONTRACT §5), which a tariff names. This is their one home:
// carrier checks incoming events against them and quota stores them.
const (
	TypeVoice = "carrier.usage.voice"
	TypeSMS   = "carrier.usage.sms"
	TypeData  = "carrier.usage.data"

	DirectionMO = "MO"
	DirectionMT = "MT"

	NetworkTerrestrial = "terrestrial"
	NetworkMaritime    = "maritime"
)

// Units are what grants hold and usage draws (CONTRACT §7.2): voice calls
// draw seconds, data sessions bytes, and each SMS one sms. A usage draws only
// from grants of its own unit. This is the words' one home: quota stores
// them and the API shows them.
const (
	UnitSeconds = "seconds"
	UnitBytes   = "bytes"
	UnitSMS     = "sms"
)

// Units lists every unit, seconds first.
var Units = []string{UnitSeconds, UnitBytes, UnitSMS}

// ValidUnit reports whether u is one of Units.
func ValidUnit(u string) bool { return u == UnitSeconds || u == UnitBytes || u == UnitSMS }

// UnitOf is the unit a usage of type typ draws: bytes for data, sms for
// SMS, seconds for voice and anything else.
func UnitOf(typ string) string {
	switch typ {
	case TypeData:
		return UnitBytes
	case TypeSMS:
		return UnitSMS
	}
	return UnitSeconds
}

// BytesPerMB is the megabyte data is priced by: per started MB (2^20
// bytes) of a session's overage or covered volume.
const BytesPerMB = 1 << 20

// DefaultDataIncrement is the rounding increment, in bytes, of a data
// session's volume when the tariff version names none.
const DefaultDataIncrement = 1024

// Rating is the outcome of rating one call, before grants are drawn.
//
// Increment, Zone, the prices and TariffVersion are filled for every call,
// eligible or not, so a recorded call always says which tariff saw it.
type Rating struct {
	// Eligible is false for calls that are recorded but draw nothing: SMS,
	// data, domestic calls, or whatever the tariff version does not cover.
	Eligible bool
	// BillableSeconds is the duration rounded up to a whole Increment
	// (0 stays 0); it is 0 when the call is not eligible, and for every
	// usage whose Unit is not seconds.
	BillableSeconds int64
	// Unit is what the usage draws (UnitOf its type), and Billable how much
	// of it: seconds as BillableSeconds; bytes the volume rounded up to the
	// version's data increment (0 stays 0); sms 1. 0 when not eligible.
	Unit     string
	Billable int64
	// Increment is what prices are per started increment of, in Unit: the
	// version's rounding increment of seconds (60 by default), BytesPerMB
	// for bytes, 1 for sms.
	Increment int64
	// Zone is the tariff zone the call was priced in.
	Zone string
	// OveragePrice is what the seafarer pays per started increment of overage,
	// in the zone's price for the usage's unit.
	OveragePrice Money
	// WholesalePrice is what the welfare fund pays the carrier per started
	// increment of covered usage.
	WholesalePrice Money
	// TariffVersion identifies the tariff version applied: its effective_from
	// in RFC 3339 UTC.
	TariffVersion string
	// Free is true for a call to one of the tariff's free_numbers
	// (emergency, medical advice, the union's hotline): it is never drawn
	// from grants and never overage, so it is not Eligible and bills
	// nothing, and the ledger records it as free.
	Free bool
}

// OverageAmount prices overage seconds: every started increment costs
// OveragePrice. No overage (0 or less) costs nothing, in the same currency.
// r must come from Tariff.Rate, which always sets a positive Increment.
func (r Rating) OverageAmount(overageSeconds int64) Money {
	return PricePerStartedIncrement(overageSeconds, r.Increment, r.OveragePrice)
}

// WelfareCost prices covered seconds the way OverageAmount prices overage,
// at WholesalePrice: what the welfare fund owes the carrier for them.
func (r Rating) WelfareCost(coveredSeconds int64) Money {
	return PricePerStartedIncrement(coveredSeconds, r.Increment, r.WholesalePrice)
}

// DefaultIncrement is the rounding increment, in seconds, of a tariff
// version that names none and of a usage that carries none.
const DefaultIncrement = 60

// PricePerStartedIncrement is the one pricing rule: seconds cost
// perIncrement for every increment they start, ceil(seconds/increment) ×
// perIncrement, in perIncrement's currency; zero or negative seconds cost
// nothing. increment must be positive. The metering debit (quota's
// debitScript, in Lua) prices the same way and quota's tests hold it to this.
func PricePerStartedIncrement(seconds, increment int64, perIncrement Money) Money {
	return Money{Minor: StartedIncrements(seconds, increment) * perIncrement.Minor, Currency: perIncrement.Currency}
}

// StartedIncrements is ceil(seconds/increment): a started increment is paid
// in full. Zero or negative seconds start none. increment must be positive.
func StartedIncrements(seconds, increment int64) int64 {
	if seconds <= 0 {
		return 0
	}
	n := seconds / increment
	if seconds%increment != 0 {
		n++
	}
	return n
}

// roundUp is an amount rounded up to a whole increment. Durations are bounded
// long before this matters (a usage event is at most a week); the cap only
// keeps absurd input from wrapping around to a negative number.
func roundUp(seconds, increment int64) int64 {
	return min(StartedIncrements(seconds, increment), math.MaxInt64/increment) * increment
}
