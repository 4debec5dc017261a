package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou/billing"
)

// sessionCall is what the property test knows of one call: what its
// terminate and its carrier record (CDR) billed, when they were applied.
type sessionCall struct {
	opened          bool
	used            int64 // the last used reported
	terminated      bool
	termBillable    int64
	cdrSeconds      int64 // billable of its CDR; -1 none yet
	chargedEntries  map[string]int64
	terminatedFirst bool
}

// Random opens, updates, terminates, carrier records (some before the
// terminate, some after, some never, some redelivered), plain calls and
// the clock moving past validities, for one seafarer with two grants.
// After every step:
//   - no grant's remaining is below zero or above what it was granted, and
//     each grant's remaining is granted less the draws of every entry
//     returned (debits and adjusts, signed), each entry counted once;
//   - what open sessions hold is never more than what remains;
//   - every entry bills covered + overage;
//   - each call is charged, over all its entries, exactly what its carrier
//     record says once that came, else what its terminate said: never
//     twice.
func TestSessionsNeverChargeTwiceNorOverdraw(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		s, clock, _ := MustMeterStore(t, Options{})
		granted := map[string]int64{"gr_1": 300, "gr_2": 240}
		MustAddGrant(t, s, activeGrant("sf_1", "gr_1", 300))
		g2 := activeGrant("sf_1", "gr_2", 240)
		g2.Priority = 2
		MustAddGrant(t, s, g2)

		calls := map[string]*sessionCall{}
		entries := map[string]*LedgerEntry{}
		keep := func(callID string, e *LedgerEntry) {
			if e == nil {
				return
			}
			if _, seen := entries[e.ID]; seen {
				return
			}
			entries[e.ID] = e
			if c := calls[callID]; c != nil {
				c.chargedEntries[e.ID] = e.BillableSeconds
			}
		}
		ids := []string{"c1", "c2", "c3", "c4", "c5"}
		plain := 0

		for step := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			id := rapid.SampledFrom(ids).Draw(rt, "call")
			c := calls[id]
			switch rapid.IntRange(0, 6).Draw(rt, fmt.Sprintf("op%d", step)) {
			case 0: // open
				req := rapid.Int64Range(0, 400).Draw(rt, "requested")
				_, err := s.OpenSession(ctx, SessionOpen{SessionID: id, SeafarerID: "sf_1", Requested: req,
					Call: SessionCall{Unit: billing.UnitSeconds, Type: billing.TypeVoice, CallTime: meterNow, VisitedCountry: "SG"}})
				require.NoError(t, err)
				if c == nil {
					calls[id] = &sessionCall{opened: true, cdrSeconds: -1, chargedEntries: map[string]int64{}}
				}
			case 1: // update
				if c == nil {
					continue
				}
				used := c.used + rapid.Int64Range(0, 120).Draw(rt, "more")
				_, err := s.UpdateSession(ctx, id, used, rapid.Int64Range(0, 200).Draw(rt, "requested"), 0)
				if c.terminated || c.cdrSeconds >= 0 {
					require.Error(t, err, "an update after the call was charged")
					continue
				}
				require.NoError(t, err)
				c.used = used
			case 2: // terminate (again, perhaps)
				if c == nil {
					continue
				}
				used := c.used + rapid.Int64Range(0, 120).Draw(rt, "more")
				u := sessionUsage("sf_1", id, used)
				r, ch, err := s.TerminateSession(ctx, u)
				require.NoError(t, err)
				keep(id, r.Entry)
				if !c.terminated {
					c.terminated = true
					c.termBillable = used
					c.terminatedFirst = c.cdrSeconds < 0
				}
				want := c.termBillable
				if c.cdrSeconds >= 0 {
					want = c.cdrSeconds
				}
				require.Equal(t, want, ch.Charged, "the call's charge as settled")
			case 3, 4: // the carrier's record, perhaps redelivered
				if c == nil {
					continue
				}
				secs := c.cdrSeconds
				if secs < 0 {
					secs = rapid.Int64Range(0, 500).Draw(rt, "cdr")
				}
				u := sessionUsage("sf_1", id, secs)
				u.EventID = "cdr-" + id
				r, err := s.Debit(ctx, u)
				require.NoError(t, err)
				keep(id, r.Entry)
				c.cdrSeconds = secs
			case 5: // a call without a session
				plain++
				r, err := s.Debit(ctx, voiceCall("sf_1", fmt.Sprintf("plain-%d", plain), meterNow, rapid.Int64Range(0, 200).Draw(rt, "plain")))
				require.NoError(t, err)
				keep("", r.Entry)
			case 6:
				clock.Advance(time.Duration(rapid.IntRange(1, 400).Draw(rt, "seconds")) * time.Second)
			}

			// Invariants.
			rem := remainingByGrant(t, s, "sf_1")
			drawn := map[string]int64{}
			for _, e := range entries {
				require.Equal(t, e.BillableSeconds, e.CoveredSeconds+e.OverageSeconds, "entry %s", e.ID)
				for _, d := range e.Draws {
					drawn[d.GrantID] += d.Seconds
				}
			}
			var total int64
			for g, n := range granted {
				require.GreaterOrEqual(t, rem[g], int64(0))
				require.LessOrEqual(t, rem[g], n)
				require.Equal(t, n-drawn[g], rem[g], "grant %s: granted less every draw", g)
				total += rem[g]
			}
			require.LessOrEqual(t, reservedSeconds(t, s, "sf_1"), total)
			for callID, c := range calls {
				var charged int64
				for _, b := range c.chargedEntries {
					charged += b
				}
				switch {
				case c.cdrSeconds >= 0:
					require.Equal(t, c.cdrSeconds, charged, "call %s: its record's amount, once", callID)
				case c.terminated:
					require.Equal(t, c.termBillable, charged, "call %s: its terminate's amount, once", callID)
				default:
					require.Zero(t, charged, "call %s: nothing yet", callID)
				}
			}
		}
	})
}
