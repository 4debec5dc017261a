package quota

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou/billing"
)

// unitProgramme is one recurring programme of a run of
// TestRecurringUnitsMatchTheModel: its unit, as stored, and its model (a
// recurringModel: one programme, so its grants are all of the unit).
type unitProgramme struct {
	unit string
	p    *Programme
	m    *recurringModel
}

// unitEvent is a usage applied once, kept for its redeliveries.
type unitEvent struct {
	u     Usage
	entry *LedgerEntry
}

// ratedUsage is a carrier event of unit rated as the consumer rates it
// (carrier.Consumer.Usage) by the default tariff for a home network in CN:
// amount is a call's duration, a data session's volume, nothing for an
// SMS; abroad draws, in CN the event bills nothing.
func ratedUsage(seafarerID, eventID, unit string, amount int64, country string, at time.Time) Usage {
	c := billing.Call{Time: at, VisitedCountry: country, Direction: billing.DirectionMO, Network: billing.NetworkTerrestrial}
	switch unit {
	case billing.UnitBytes:
		c.Type, c.VolumeBytes = billing.TypeData, amount
	case billing.UnitSMS:
		c.Type = billing.TypeSMS
	default:
		c.Type, c.DurationSeconds = billing.TypeVoice, amount
	}
	r := billing.DefaultTariff().Rate(c, "CN")
	return Usage{
		SeafarerID: seafarerID, MSISDN: "+8613800000001", Source: roamingCDRs, EventID: eventID, Type: c.Type,
		CallTime: at, DurationSeconds: c.DurationSeconds, BillableSeconds: r.BillableSeconds,
		Unit: r.Unit, Billable: r.Billable, VolumeBytes: c.VolumeBytes, CalledNumber: "+861012345678", VisitedCountry: country,
		OveragePrice: r.OveragePrice, Increment: r.Increment, WholesalePrice: r.WholesalePrice,
	}
}

// billableByTheRules is what an event bills, from CONTRACT §7.2 alone: at
// home nothing; abroad a call's duration rounded up to the minute, a data
// session's volume rounded up to 1024 bytes, an SMS 1.
func billableByTheRules(unit string, amount int64, home bool) int64 {
	switch {
	case home:
		return 0
	case unit == billing.UnitBytes:
		return (amount + 1023) / 1024 * 1024
	case unit == billing.UnitSMS:
		return 1
	}
	return (amount + 59) / 60 * 60
}

// Proves: with recurring programmes of all three units for one crew (one
// of them with a monthly budget smaller than the crew, one with
// rollover_max > 0), over random sequences of sign-ons, sign-offs, clock
// moves across month boundaries, engine restarts, sweeps, and calls, data
// sessions and SMS abroad and at home (with redeliveries of events already
// applied), the stores equal the recurringModel of each programme: every
// event covers what the model says, drawing only from the grant of its own
// unit (at home nothing) and never more than billable; a redelivery
// changes nothing; each programme's grants in PostgreSQL (amount, unit,
// times), their remaining amount in Redis, and the packs issued per month
// equal the model's and never pass the budget; and each seafarer's
// allowance shows per unit the granted and remaining amounts of the active
// grants and the month's used and overage amounts the model has.
func TestRecurringUnitsMatchTheModel(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	units := []string{billing.UnitSeconds, billing.UnitBytes, billing.UnitSMS}
	run := 0
	seen := map[string]int{} // what the runs exercised, logged at the end
	defer func() { t.Logf("%d runs exercised %v", run, seen) }()
	rapid.Check(t, func(rt *rapid.T) {
		run++
		l.set(time.Date(2027, time.Month(rapid.IntRange(1, 12).Draw(rt, "start month")), rapid.IntRange(1, 28).Draw(rt, "start day"),
			rapid.IntRange(0, 23).Draw(rt, "start hour"), 0, 0, 0, shanghai))
		co := l.company()
		// The crew: some signed on before the run starts (some of them off
		// again since), some not yet.
		var crew []string
		signOn, signOff := map[string]string{}, map[string]string{}
		for j := range 4 {
			sf := fmt.Sprintf("sfu_%03d_%d", run, j)
			crew = append(crew, sf)
			switch rapid.SampledFrom([]string{"not signed on", "signed on", "signed on", "signed off"}).Draw(rt, "crew member") {
			case "signed on":
				signOn[sf] = l.clock().AddDate(0, 0, -rapid.IntRange(0, 60).Draw(rt, "days on board")).In(shanghai).Format(time.DateOnly)
			case "signed off":
				signOn[sf] = l.clock().AddDate(0, 0, -60).In(shanghai).Format(time.DateOnly)
				signOff[sf] = l.clock().AddDate(0, 0, -rapid.IntRange(1, 40).Draw(rt, "days since sign-off")).In(shanghai).Format(time.DateOnly)
			}
			l.seafarer(sf, co, "", signOn[sf], signOff[sf])
		}
		sort.Strings(crew)

		// One programme per unit; the draws below make one of them's budget
		// smaller than the crew and one of them carry something over.
		tight := rapid.IntRange(0, 2).Draw(rt, "programme with a budget below the crew")
		carries := rapid.IntRange(0, 2).Draw(rt, "programme with rollover")
		progs := map[string]*unitProgramme{}
		grantUnit := map[string]string{} // grant id -> unit, for every grant a programme of this run may issue
		for i, unit := range units {
			var pack int64
			var rollovers []int64
			switch unit {
			case billing.UnitBytes:
				pack = rapid.Int64Range(1, 64).Draw(rt, "pack KiB") * 1024
				rollovers = []int64{0, 1000, 4096, 1 << 20}
			case billing.UnitSMS:
				pack = rapid.Int64Range(1, 10).Draw(rt, "pack sms")
				rollovers = []int64{0, 1, 5, 100}
			default:
				pack = rapid.Int64Range(1, 60).Draw(rt, "pack minutes") * 60
				rollovers = []int64{0, 300, 1800, 100_000}
			}
			budget := rapid.Int64Range(0, 3).Draw(rt, "budget "+unit)
			if i == tight && budget == 0 {
				budget = rapid.Int64Range(1, int64(len(crew)-1)).Draw(rt, "tight budget")
			}
			rollover := rapid.SampledFrom(rollovers).Draw(rt, "rollover_max "+unit)
			if i == carries && rollover == 0 {
				rollover = rapid.SampledFrom(rollovers[1:]).Draw(rt, "positive rollover_max")
			}
			in := recurringInput(co)
			in.Name = "每月 " + unit
			in.PackSeconds, in.BudgetPacks, in.Recurrence.RolloverMax = 0, budget, rollover
			in.Unit, in.PackAmount = unit, pack
			in.NotifyAt = rapid.SampledFrom([][]Threshold{nil, {{Percent: 50}}, {{Remaining: 1}, {Percent: 10}}}).Draw(rt, "notify_at "+unit)
			p := l.programme(in)
			if p.Unit != unit && !(unit == billing.UnitSeconds && p.Unit == "") {
				rt.Fatalf("programme of %s stored with unit %q", unit, p.Unit)
			}
			progs[unit] = &unitProgramme{unit: unit, p: p, m: &recurringModel{
				pack: pack, rolloverMax: rollover, budget: budget, seafarers: crew,
				signOn: signOn, signOff: signOff, // the crew's, the same for every programme
				grants: map[[2]string]*monthlyGrant{}, issued: map[string]int64{},
			}}
		}
		// The run's programmes end with the run, so later runs' sweeps do
		// not go through them.
		defer func() {
			for _, up := range progs {
				l.exec(`UPDATE programmes SET ends_at = starts_at + interval '1 second' WHERE id = $1`, up.p.ID)
			}
		}()
		engine := l.engine()

		// used[sf][period][unit] = {billable, overage}: the allowance's
		// month figures (periods are UTC months of the call time).
		used := map[string]map[string]map[string][2]int64{}
		var applied []unitEvent
		today := func() string { return l.clock().In(shanghai).Format(time.DateOnly) }

		// grantID is the id of the grant the model says sf draws in unit
		// now ("" for none).
		grantID := func(unit, sf string, now time.Time) string {
			month, _, _ := recurringMonth(now, shanghai)
			if g := progs[unit].m.grants[[2]string{sf, month}]; g != nil && !now.Before(g.effective) && now.Before(g.expiresAt) {
				return RecurringGrantID(progs[unit].p.ID, month, sf)
			}
			return ""
		}
		// checkEntry checks an event's entry against what the model says it
		// covered.
		checkEntry := func(what string, u Usage, e *LedgerEntry, billable, covered int64, drawn string) {
			if e == nil {
				rt.Fatalf("%s: no ledger entry", what)
			}
			unit := unitOrSeconds(u.Unit)
			if e.Unit != storedUnit(unit) {
				rt.Fatalf("%s: entry in unit %q", what, e.Unit)
			}
			if e.BillableSeconds != billable || e.CoveredSeconds != covered || e.OverageSeconds != billable-covered || e.OverageSeconds < 0 {
				rt.Fatalf("%s: billable %d covered %d overage %d, the model billable %d covered %d", what,
					e.BillableSeconds, e.CoveredSeconds, e.OverageSeconds, billable, covered)
			}
			for _, d := range e.Draws {
				if grantUnit[d.GrantID] != unit {
					rt.Fatalf("%s: a %s event drew %d from grant %s of unit %q", what, unit, d.Seconds, d.GrantID, grantUnit[d.GrantID])
				}
			}
			want := [][2]any{}
			if covered > 0 {
				want = [][2]any{{drawn, covered}}
			}
			if got := drawsOf(e); fmt.Sprint(got) != fmt.Sprint(want) {
				rt.Fatalf("%s: draws %v, the model %v", what, got, want)
			}
		}
		// checkAllowance compares sf's allowance now with the model.
		checkAllowance := func(sf string) {
			now := l.clock()
			a, err := l.hot.Allowance(l.ctx, sf)
			require.NoError(rt, err)
			want := map[string][2]int64{}
			for _, unit := range units {
				for k, g := range progs[unit].m.grants {
					if g.remaining < 0 || g.remaining > g.seconds {
						rt.Fatalf("the model's grant of %s for %s in %s holds %d of %d", k[0], k[1], unit, g.remaining, g.seconds)
					}
					if k[0] == sf && !now.Before(g.effective) && now.Before(g.expiresAt) {
						w := want[unit]
						want[unit] = [2]int64{w[0] + g.seconds, w[1] + g.remaining}
					}
				}
			}
			got := map[string][2]int64{}
			for _, b := range a.Balances {
				if b.Remaining < 0 {
					rt.Fatalf("%s holds %d %s", sf, b.Remaining, b.Unit)
				}
				got[b.Unit] = [2]int64{b.Granted, b.Remaining}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				rt.Fatalf("%s at %s: balances (granted, remaining) %v, the model %v", sf, now, got, want)
			}
			if a.RemainingSeconds != want[billing.UnitSeconds][1] {
				rt.Fatalf("%s: remaining_seconds %d, the model %d", sf, a.RemainingSeconds, want[billing.UnitSeconds][1])
			}
			wantUsage := map[string][2]int64{}
			for unit, f := range used[sf][billing.PeriodOf(now)] {
				if f != [2]int64{} {
					wantUsage[unit] = f
				}
			}
			gotUsage := map[string][2]int64{}
			for _, f := range a.Usage {
				gotUsage[f.Unit] = [2]int64{f.Used, f.Overage}
			}
			if fmt.Sprint(gotUsage) != fmt.Sprint(wantUsage) {
				rt.Fatalf("%s: the month's (used, overage) per unit %v, the model %v", sf, gotUsage, wantUsage)
			}
		}
		// checkStores compares every programme's grants and months, and
		// every seafarer's allowance, with the model.
		checkStores := func() {
			for _, unit := range units {
				up := progs[unit]
				requireRecurringMatchesModel(rt, l, up.p.ID, up.m)
				var wrong int
				require.NoError(rt, l.pool.QueryRow(l.ctx, `SELECT count(*) FROM grants WHERE programme_id = $1 AND unit <> $2`,
					up.p.ID, unit).Scan(&wrong))
				if wrong != 0 {
					rt.Fatalf("%d grants of the %s programme stored in another unit", wrong, unit)
				}
			}
			for _, sf := range crew {
				checkAllowance(sf)
			}
		}
		sweep := func() {
			if _, err := engine.Sweep(l.ctx); err != nil {
				rt.Fatalf("sweep: %v", err)
			}
			for _, unit := range units {
				up := progs[unit]
				up.m.sweep(l.clock())
				month, _, _ := recurringMonth(l.clock(), shanghai)
				for _, sf := range crew {
					grantUnit[RecurringGrantID(up.p.ID, month, sf)] = unit
				}
			}
			checkStores()
		}

		if rapid.Bool().Draw(rt, "sweep at the start (a service running)") {
			sweep()
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			sf := rapid.SampledFrom(crew).Draw(rt, "seafarer")
			switch rapid.SampledFrom([]string{"sign on", "sign off", "tick", "month edge", "event", "event", "event", "event", "repeat", "restart", "sweep", "sweep"}).Draw(rt, "action") {
			case "sign on":
				signOn[sf], signOff[sf] = today(), ""
				l.exec(`UPDATE seafarers SET sign_on = $2::date, sign_off = NULL WHERE id = $1`, sf, today())
			case "sign off":
				if signOn[sf] == "" {
					continue
				}
				signOff[sf] = today()
				l.exec(`UPDATE seafarers SET sign_off = $2::date WHERE id = $1`, sf, today())
			case "tick":
				l.set(l.clock().Add(rapid.SampledFrom([]time.Duration{time.Hour, 7 * time.Hour, 24 * time.Hour, 9 * 24 * time.Hour, 20 * 24 * time.Hour, 45 * 24 * time.Hour}).Draw(rt, "tick")))
			case "month edge":
				_, _, end := recurringMonth(l.clock(), shanghai)
				l.set(end.Add(time.Duration(rapid.IntRange(-1, 1).Draw(rt, "edge seconds")) * time.Second))
			case "event":
				unit := rapid.SampledFrom(units).Draw(rt, "unit")
				home := rapid.IntRange(0, 3).Draw(rt, "at home (0)") == 0
				country := "CN"
				if !home {
					country = rapid.SampledFrom([]string{"SG", "DE", "US", "BR"}).Draw(rt, "visited country")
				}
				var amount int64
				switch unit {
				case billing.UnitBytes:
					amount = rapid.Int64Range(0, 3*progs[unit].m.pack/2).Draw(rt, "volume bytes")
				case billing.UnitSeconds:
					amount = rapid.Int64Range(1, 5000).Draw(rt, "duration seconds")
				}
				now := l.clock()
				u := ratedUsage(sf, fmt.Sprintf("ev-%d", l.seq.Add(1)), unit, amount, country, now)
				billable := billableByTheRules(unit, amount, home)
				if u.billable() != billable {
					rt.Fatalf("%s event of %d in %s rated %d billable, the rules %d", unit, amount, country, u.billable(), billable)
				}
				drawn := grantID(unit, sf, now)
				var covered int64
				if billable > 0 {
					covered = progs[unit].m.call(sf, billable, now)
				}
				r, err := l.hot.Debit(l.ctx, u)
				if err != nil {
					rt.Fatalf("%s event of %s: %v", unit, sf, err)
				}
				if r.Duplicate || r.Conflicting {
					rt.Fatalf("a new %s event answered as a repeat", unit)
				}
				checkEntry(fmt.Sprintf("%s event of %s (%d in %s) at %s", unit, sf, amount, country, now), u, r.Entry, billable, covered, drawn)
				if used[sf] == nil {
					used[sf] = map[string]map[string][2]int64{}
				}
				period := billing.PeriodOf(now)
				if used[sf][period] == nil {
					used[sf][period] = map[string][2]int64{}
				}
				f := used[sf][period][unit]
				used[sf][period][unit] = [2]int64{f[0] + billable, f[1] + billable - covered}
				applied = append(applied, unitEvent{u: u, entry: r.Entry})
				switch {
				case home:
					seen["events at home"]++
				case covered > 0 && covered < billable:
					seen[unit+" events partly covered"]++
				case covered > 0:
					seen[unit+" events covered"]++
				default:
					seen[unit+" events uncovered abroad"]++
				}
				checkAllowance(sf)
			case "repeat":
				// A redelivery within the dedupe window (older events are late
				// and never reach the debit) is applied once: the same entry,
				// nothing drawn again.
				var recent []unitEvent
				for _, ev := range applied {
					if !Late(ev.u.CallTime, l.clock(), l.hot.DedupeWindow()) {
						recent = append(recent, ev)
					}
				}
				if len(recent) == 0 {
					continue
				}
				ev := recent[rapid.IntRange(0, len(recent)-1).Draw(rt, "repeated event")]
				r, err := l.hot.Debit(l.ctx, ev.u)
				if err != nil {
					rt.Fatalf("repeat of %s: %v", ev.u.EventID, err)
				}
				if !r.Duplicate {
					rt.Fatalf("repeat of %s (%s at %s) applied again at %s: %+v", ev.u.EventID, ev.u.Unit, ev.u.CallTime, l.clock(), r.Entry)
				}
				what := fmt.Sprintf("repeat of %s at %s", ev.u.EventID, l.clock())
				checkEntry(what, ev.u, r.Entry, ev.entry.BillableSeconds, ev.entry.CoveredSeconds, grantOf(ev.entry))
				seen["repeats"]++
				checkAllowance(ev.u.SeafarerID)
			case "restart":
				engine = l.engine()
			case "sweep":
				sweep()
			}
		}
		checkStores()
		for _, up := range progs {
			for _, n := range up.m.issued {
				if up.m.budget > 0 && n == up.m.budget {
					seen["months whose budget ran out"]++
				}
			}
			seen["grants"] += len(up.m.grants)
			for _, g := range up.m.grants {
				if g.seconds > up.m.pack {
					seen[up.unit+" grants with rollover"]++
				}
			}
		}
	})
}

// grantOf is the grant an entry drew from ("" for none).
func grantOf(e *LedgerEntry) string {
	if len(e.Draws) == 0 {
		return ""
	}
	return e.Draws[0].GrantID
}
