package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// hotlineTariff prices every call at 99 fen a minute and makes calls to
// the union's hotline (+8612395…) and to +112 free.
const hotlineTariff = `{"free_numbers": ["+8612395", "+112"], "versions": [{"effective_from": "2026-01-01T00:00:00Z", "currency": "CNY",
  "zones": [{"name": "all", "default": true, "overage_per_increment": 99, "wholesale_per_increment": 45}]}]}`

func callTo(id, msisdn, called string, at time.Time, seconds int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"urn:carrier:test","type":"carrier.usage.voice","time":%q,"subject":%q,`+
		`"data":{"call_id":%q,"direction":"MO","duration_seconds":%d,"called_number":%q,"visited_country":"SG","network":"maritime"}}`,
		id, at.UTC().Format(time.RFC3339), msisdn, id, seconds, called)
}

func TestACallToAFreeNumberIsRecordedFreeNeverOverageAndLeavesTheGrantsAlone(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	tariff, err := billing.ParseTariff([]byte(hotlineTariff), "json")
	require.NoError(t, err)
	f.consumer.cfg.Tariff = tariff
	const empty, holder = "+8613800000001", "+8613800000002"
	f.holders.set(empty, "sf_empty", time.Time{})
	f.holders.set(holder, "sf_1", time.Time{})
	ctx := context.Background()
	now := f.now()
	_, _, err = f.store.AddGrant(ctx, quota.GrantInput{ID: "gr_1", SeafarerID: "sf_1", ProgrammeID: "pr_1", Seconds: 600, Priority: 1,
		EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour)})
	require.NoError(t, err)
	f.run(t)
	at := now.Add(-time.Minute)
	f.produce(t,
		callTo("hotline-empty", empty, "+861239500", at, 305), // free on an empty balance
		callTo("hotline-1", holder, "+861239500", at, 305),    // free: the grant stays
		callTo("sos-1", holder, "+112", at, 61),               // free
		callTo("contains-1", holder, "+4400112", at, 61),      // contains +112 later: 120 s drawn
	)

	type entry struct {
		EventID string `json:"event_id"`
		Free    *bool  `json:"free"`
		Covered int64  `json:"covered"`
		Overage int64  `json:"overage"`
		Amount  struct {
			Minor int64 `json:"minor"`
		} `json:"overage_amount"`
		Draws []json.RawMessage `json:"draws"`
	}
	got := map[string]entry{}
	for _, m := range f.read(t, f.topics.Ledger, 4) {
		var ev struct{ Data entry }
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		got[ev.Data.EventID] = ev.Data
	}
	for _, id := range []string{"hotline-empty", "hotline-1", "sos-1"} {
		e := got[id]
		require.NotNil(t, e.Free, "%s says free on wuyou.ledger.v1", id)
		require.True(t, *e.Free, id)
		require.Zero(t, e.Covered, id)
		require.Zero(t, e.Overage, "%s is never overage", id)
		require.Zero(t, e.Amount.Minor, id)
		require.Empty(t, e.Draws, id)
	}
	require.Nil(t, got["contains-1"].Free, "a paid call does not say free")
	require.Equal(t, int64(120), got["contains-1"].Covered)

	a, err := f.store.Allowance(ctx, "sf_1")
	require.NoError(t, err)
	require.Equal(t, int64(480), a.RemainingSeconds, "only the call that merely contains +112 drew")

	free := func(seafarerID string) map[string]bool {
		stored, _, err := f.ledger.Ledger(ctx, seafarerID, quota.LedgerFilter{})
		require.NoError(t, err)
		out := map[string]bool{}
		for _, e := range stored {
			if e.Kind == quota.KindDebit {
				out[e.EventID] = e.Free
				require.Zero(t, e.OverageSeconds, e.EventID)
			}
		}
		return out
	}
	require.Equal(t, map[string]bool{"hotline-empty": true}, free("sf_empty"), "PostgreSQL keeps the call as free")
	require.Equal(t, map[string]bool{"hotline-1": true, "sos-1": true, "contains-1": false}, free("sf_1"))
}

// freeSessions is fakeSessions whose call-1 is to the number given.
type freeSessions struct {
	*fakeSessions
	called string
}

func (f freeSessions) SessionCallOf(ctx context.Context, id string) (string, quota.SessionCall, error) {
	sf, call, err := f.fakeSessions.SessionCallOf(ctx, id)
	call.CalledNumber = f.called
	return sf, call, err
}

// A real-time session to a free number holds nothing (it is granted what
// it asks, as a call at home is), and its terminate charges nothing and is
// recorded as free; a number that merely contains a free prefix is drawn.
func TestASessionToAFreeNumberHoldsNothingAndItsTerminateIsFree(t *testing.T) {
	tariff, err := billing.ParseTariff([]byte(hotlineTariff), "json")
	require.NoError(t, err)
	for _, tc := range []struct {
		called string
		free   bool
	}{{"+112", true}, {"+861239500", true}, {"+4400112", false}} {
		t.Run(tc.called, func(t *testing.T) {
			s, store, _, _, _ := newSessionsFixture(t)
			s.Tariff = tariff
			s.Store = freeSessions{fakeSessions: store, called: tc.called}
			store.result = &quota.DebitResult{SeafarerID: "sf_1"}
			ctx := context.Background()
			_, err := s.Open(ctx, SessionRequest{SessionID: "call-1", MSISDN: "+8613800000001", Unit: billing.UnitSeconds,
				Requested: 600, VisitedCountry: "SG", CalledNumber: tc.called})
			require.NoError(t, err)
			require.Equal(t, tc.free, store.opened[0].Free, "a free call holds nothing")

			_, err = s.Terminate(ctx, "call-1", 125)
			require.NoError(t, err)
			u := store.terminated[0]
			require.Equal(t, tc.free, u.Free)
			require.Equal(t, int64(125), u.DurationSeconds)
			if tc.free {
				require.Zero(t, u.BillableSeconds, "a free call bills nothing")
			} else {
				require.Equal(t, int64(180), u.BillableSeconds)
			}
		})
	}
}
