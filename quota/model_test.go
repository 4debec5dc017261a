package quota

import (
	"sort"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// meterModel is the metering rules of PRODUCT.md written as plainly as
// possible, in memory, for one seafarer. The property test drives it and the
// Redis store with the same operations and requires the same outcomes.
//
// Times are whole unix seconds, as the store keeps them; a grant's issue
// order is the clock's milliseconds when it was added, ties broken by id.
type meterModel struct {
	grants map[string]*modelGrant
	debits map[string]*modelDebit // by event identity (source + id)
	voids  map[string]int64       // grant id -> seconds the void removed

	ledgerEntries int // grants added + debits applied + voids
}

type modelGrant struct {
	ID          string
	ProgrammeID string
	Granted     int64
	Remaining   int64
	Effective   int64 // unix s, inclusive
	Expires     int64 // unix s, exclusive
	Priority    int
	IssuedMs    int64
	Voided      bool
}

// modelDebit is the outcome of the first application of one identity.
type modelDebit struct {
	CallTime      int64
	Billable      int64
	Covered       int64
	Overage       int64
	OverageMinor  int64
	Draws         []Draw
	PriceCurrency string
}

func newMeterModel() *meterModel {
	return &meterModel{grants: map[string]*modelGrant{}, debits: map[string]*modelDebit{}, voids: map[string]int64{}}
}

// addGrant adds g unless a grant with its id exists; it reports whether it did.
func (m *meterModel) addGrant(g modelGrant) bool {
	if _, ok := m.grants[g.ID]; ok {
		return false
	}
	g.Remaining = g.Granted
	m.grants[g.ID] = &g
	m.ledgerEntries++
	return true
}

func (g *modelGrant) activeAt(t int64) bool {
	return !g.Voided && g.Effective <= t && t < g.Expires
}

// drawingOrder is every grant in the order calls draw from them: lowest
// priority number, then earliest expiry, then earliest issued, then id.
func (m *meterModel) drawingOrder() []*modelGrant {
	gs := make([]*modelGrant, 0, len(m.grants))
	for _, g := range m.grants {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		switch {
		case a.Priority != b.Priority:
			return a.Priority < b.Priority
		case a.Expires != b.Expires:
			return a.Expires < b.Expires
		case a.IssuedMs != b.IssuedMs:
			return a.IssuedMs < b.IssuedMs
		}
		return a.ID < b.ID
	})
	return gs
}

// debit applies a call once per identity: billable seconds are drawn from
// grants active at the call's own time; what they cannot cover is overage,
// priced per started increment. A repeated identity changes nothing and
// yields the first application.
func (m *meterModel) debit(identity string, callTime, billable, priceMinor, increment int64, currency string) (d *modelDebit, duplicate bool) {
	if d, ok := m.debits[identity]; ok {
		return d, true
	}
	if increment <= 0 {
		increment = billing.DefaultIncrement
	}
	d = &modelDebit{CallTime: callTime, Billable: billable, Draws: []Draw{}, PriceCurrency: currency}
	need := billable
	for _, g := range m.drawingOrder() {
		if need == 0 {
			break
		}
		if !g.activeAt(callTime) || g.Remaining == 0 {
			continue
		}
		take := min(need, g.Remaining)
		g.Remaining -= take
		need -= take
		d.Covered += take
		d.Draws = append(d.Draws, Draw{GrantID: g.ID, ProgrammeID: g.ProgrammeID, Seconds: take})
	}
	d.Overage = need
	d.OverageMinor = billing.PricePerStartedIncrement(need, increment, billing.Money{Minor: priceMinor}).Minor
	m.debits[identity] = d
	m.ledgerEntries++
	return d, false
}

// void sets a grant's remaining to zero and records what it removed. The
// code is ENOTFOUND for an unknown grant and ECONFLICT for one already voided.
func (m *meterModel) void(id string) (removed int64, code string) {
	g, ok := m.grants[id]
	switch {
	case !ok:
		return 0, wuyou.ENOTFOUND
	case g.Voided:
		return 0, wuyou.ECONFLICT
	}
	removed = g.Remaining
	g.Remaining = 0
	g.Voided = true
	m.voids[id] = removed
	m.ledgerEntries++
	return removed, ""
}

// remainingAt sums remaining seconds over grants active at t; grantedAt sums
// their granted seconds.
func (m *meterModel) remainingAt(t int64) (remaining, granted int64) {
	for _, g := range m.grants {
		if g.activeAt(t) {
			remaining += g.Remaining
			granted += g.Granted
		}
	}
	return remaining, granted
}

// statusAt is what a user is shown for g at now.
func (g *modelGrant) statusAt(now int64) string {
	switch {
	case g.Voided:
		return GrantVoided
	case now < g.Effective:
		return GrantPending
	case now >= g.Expires:
		return GrantExpired
	case g.Remaining == 0:
		return GrantExhausted
	}
	return GrantActive
}

// usageIn sums billable and overage seconds of applied calls whose call time
// falls in period.
func (m *meterModel) usageIn(period string) (billable, overage int64) {
	for _, d := range m.debits {
		if billing.PeriodOf(time.Unix(d.CallTime, 0)) == period {
			billable += d.Billable
			overage += d.Overage
		}
	}
	return billable, overage
}
