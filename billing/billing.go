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
	VisitedCountry  string // ISO 3166 alpha-2
	Direction       string // MO | MT
	Network         string // terrestrial | maritime
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

// Rating is the outcome of rating one call, before grants are drawn.
//
// Increment, Zone, the prices and TariffVersion are filled for every call,
// eligible or not, so a recorded call always says which tariff saw it.
type Rating struct {
	// Eligible is false for calls that are recorded but draw nothing: SMS,
	// data, domestic calls, or whatever the tariff version does not cover.
	Eligible bool
	// BillableSeconds is the duration rounded up to a whole Increment
	// (0 stays 0); it is 0 when the call is not eligible.
	BillableSeconds int64
	// Increment is the rounding increment in seconds (60 by default).
	Increment int64
	// Zone is the tariff zone the call was priced in.
	Zone string
	// OveragePrice is what the seafarer pays per started increment of overage.
	OveragePrice Money
	// WholesalePrice is what the welfare fund pays the carrier per started
	// increment of covered time.
	WholesalePrice Money
	// TariffVersion identifies the tariff version applied: its effective_from
	// in RFC 3339 UTC.
	TariffVersion string
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

// roundUp is seconds rounded up to a whole increment. Durations are bounded
// long before this matters (a usage event is at most a week); the cap only
// keeps absurd input from wrapping around to a negative number.
func roundUp(seconds, increment int64) int64 {
	return min(StartedIncrements(seconds, increment), math.MaxInt64/increment) * increment
}
