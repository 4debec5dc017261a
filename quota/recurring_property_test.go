package quota

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// recurringModel is what a recurring programme should have done, worked
// out from the rules alone: who is signed on when, one grant per eligible
// seafarer per month in turn of id while the month's budget lasts, each
// pack_seconds plus last month's remainder up to rollover_max, from the
// month's start or the sign-on day to the month's end, and calls drawing
// from the grant active at their time.
type recurringModel struct {
	pack, rolloverMax, budget int64
	seafarers                 []string
	signOn, signOff           map[string]string // YYYY-MM-DD, "" for none
	grants                    map[[2]string]*monthlyGrant
	issued                    map[string]int64 // month -> packs
}

type monthlyGrant struct {
	seconds, remaining   int64
	effective, expiresAt time.Time
}

// sweep issues the month of now as the rules say.
func (m *recurringModel) sweep(now time.Time) {
	month, start, end := recurringMonth(now, shanghai)
	prev := start.AddDate(0, -1, 0).Format("2006-01")
	day := now.In(shanghai).Format(time.DateOnly)
	for _, sf := range m.seafarers {
		on, off := m.signOn[sf], m.signOff[sf]
		if on == "" || on > day || (off != "" && off < day) || m.grants[[2]string{sf, month}] != nil {
			continue
		}
		if m.budget > 0 && m.issued[month] >= m.budget {
			continue
		}
		var left int64
		if g := m.grants[[2]string{sf, prev}]; g != nil {
			left = g.remaining
		}
		onDay, _ := time.ParseInLocation(time.DateOnly, on, shanghai)
		eff := start
		if onDay.After(eff) {
			eff = onDay
		}
		secs := m.pack + min(left, m.rolloverMax)
		m.grants[[2]string{sf, month}] = &monthlyGrant{seconds: secs, remaining: secs, effective: eff.UTC(), expiresAt: end.UTC()}
		m.issued[month]++
	}
}

// call draws seconds at now from sf's active grant; it returns the covered
// seconds.
func (m *recurringModel) call(sf string, seconds int64, now time.Time) int64 {
	var covered int64
	for k, g := range m.grants {
		if k[0] == sf && !now.Before(g.effective) && now.Before(g.expiresAt) {
			take := min(g.remaining, seconds-covered)
			g.remaining -= take
			covered += take
		}
	}
	return covered
}

// Proves: over random sequences of sign-ons, sign-offs, clock moves across
// month boundaries (months skipped too), calls, engine restarts and sweeps,
// the grants in PostgreSQL, their remaining seconds in Redis, and each
// month's packs issued equal the model's, and every call covers what the
// model says.
func TestRecurringIssueMatchesTheModel(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		l.set(time.Date(2027, time.Month(rapid.IntRange(1, 12).Draw(rt, "start month")), rapid.IntRange(1, 28).Draw(rt, "start day"),
			rapid.IntRange(0, 23).Draw(rt, "start hour"), 0, 0, 0, shanghai))
		co := l.company()
		m := &recurringModel{
			pack:        rapid.Int64Range(1, 60).Draw(rt, "pack minutes") * 60,
			rolloverMax: rapid.SampledFrom([]int64{0, 300, 1800, 100_000}).Draw(rt, "rollover_max"),
			budget:      rapid.Int64Range(0, 3).Draw(rt, "budget"),
			signOn:      map[string]string{}, signOff: map[string]string{},
			grants: map[[2]string]*monthlyGrant{}, issued: map[string]int64{},
		}
		for j := range 4 {
			sf := fmt.Sprintf("sf_%03d_%d", run, j)
			m.seafarers = append(m.seafarers, sf)
			l.seafarer(sf, co, "", "", "")
		}
		sort.Strings(m.seafarers)
		in := recurringInput(co)
		in.PackSeconds, in.BudgetPacks, in.Recurrence.RolloverMax = m.pack, m.budget, m.rolloverMax
		p := l.programme(in)
		engine := l.engine()

		today := func() string { return l.clock().In(shanghai).Format(time.DateOnly) }
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			sf := rapid.SampledFrom(m.seafarers).Draw(rt, "seafarer")
			switch rapid.SampledFrom([]string{"sign on", "sign off", "tick", "month edge", "call", "call", "restart", "sweep", "sweep"}).Draw(rt, "action") {
			case "sign on":
				m.signOn[sf], m.signOff[sf] = today(), ""
				l.exec(`UPDATE seafarers SET sign_on = $2::date, sign_off = NULL WHERE id = $1`, sf, today())
			case "sign off":
				if m.signOn[sf] == "" {
					continue
				}
				m.signOff[sf] = today()
				l.exec(`UPDATE seafarers SET sign_off = $2::date WHERE id = $1`, sf, today())
			case "tick":
				l.set(l.clock().Add(rapid.SampledFrom([]time.Duration{time.Hour, 7 * time.Hour, 24 * time.Hour, 9 * 24 * time.Hour, 20 * 24 * time.Hour, 45 * 24 * time.Hour}).Draw(rt, "tick")))
			case "month edge":
				_, _, end := recurringMonth(l.clock(), shanghai)
				l.set(end.Add(time.Duration(rapid.IntRange(-1, 1).Draw(rt, "edge seconds")) * time.Second))
			case "call":
				secs := rapid.Int64Range(1, 5000).Draw(rt, "call seconds")
				want := m.call(sf, secs, l.clock())
				got := l.call(sf, secs)
				if got.Entry.CoveredSeconds != want {
					rt.Fatalf("call of %d s by %s at %s covered %d s, the model %d s", secs, sf, l.clock(), got.Entry.CoveredSeconds, want)
				}
			case "restart":
				engine = l.engine()
			case "sweep":
				if _, err := engine.Sweep(l.ctx); err != nil {
					rt.Fatalf("sweep: %v", err)
				}
				m.sweep(l.clock())
				requireRecurringMatchesModel(rt, l, p.ID, m)
			}
		}
	})
}

// requireRecurringMatchesModel compares the stores with the model.
func requireRecurringMatchesModel(rt *rapid.T, l *recurringLab, programmeID string, m *recurringModel) {
	stored := l.grants(programmeID)
	if len(stored) != len(m.grants) {
		rt.Fatalf("%d grants stored, the model has %d: %+v", len(stored), len(m.grants), stored)
	}
	for _, g := range stored {
		want := m.grants[[2]string{g.SeafarerID, g.Month}]
		if want == nil {
			rt.Fatalf("grant %s of %s for %s is not in the model", g.ID, g.SeafarerID, g.Month)
		}
		got := monthlyGrant{seconds: g.Seconds, remaining: l.remaining(g.SeafarerID, g.ID), effective: g.EffectiveAt, expiresAt: g.ExpiresAt}
		if got != *want {
			rt.Fatalf("grant of %s for %s: stored %+v, the model %+v", g.SeafarerID, g.Month, got, *want)
		}
	}
	rows, err := l.pool.Query(l.ctx, `SELECT month, packs_issued FROM recurring_months WHERE programme_id = $1`, programmeID)
	require.NoError(rt, err)
	defer rows.Close()
	months := map[string]int64{}
	for rows.Next() {
		var month string
		var n int64
		require.NoError(rt, rows.Scan(&month, &n))
		months[month] = n
	}
	for month, n := range m.issued {
		if months[month] != n {
			rt.Fatalf("month %s: %d packs counted, the model %d", month, months[month], n)
		}
		if m.budget > 0 && n > m.budget {
			rt.Fatalf("month %s: the model itself passed the budget", month)
		}
	}
	for month, n := range months {
		if n != m.issued[month] {
			rt.Fatalf("month %s: %d packs counted, the model %d", month, n, m.issued[month])
		}
	}
}
