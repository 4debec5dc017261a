package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// unitGrant is activeGrant in unit.
func unitGrant(seafarerID, id, unit string, amount int64) GrantInput {
	g := activeGrant(seafarerID, id, amount)
	g.Unit = unit
	return g
}

// dataSession is a roaming data session billed billable bytes, priced as
// the default tariff prices Asia.
func dataSession(seafarerID, eventID string, callTime time.Time, billable int64) Usage {
	return Usage{
		SeafarerID: seafarerID, MSISDN: "+8613800000001", Source: roamingCDRs, EventID: eventID,
		Type: billing.TypeData, CallTime: callTime, Unit: billing.UnitBytes, Billable: billable, VolumeBytes: billable,
		VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: billing.BytesPerMB,
		WholesalePrice: billing.Money{Minor: 100, Currency: "CNY"},
	}
}

// textMessage is a roaming SMS.
func textMessage(seafarerID, eventID string, callTime time.Time) Usage {
	return Usage{
		SeafarerID: seafarerID, MSISDN: "+8613800000001", Source: roamingCDRs, EventID: eventID,
		Type: billing.TypeSMS, CallTime: callTime, Unit: billing.UnitSMS, Billable: 1,
		CalledNumber: "+861012345678", VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 100, Currency: "CNY"}, Increment: 1,
	}
}

// A call draws only seconds grants, a data session only bytes grants and
// an SMS only sms grants, even when the grant of another unit comes first
// in the drawing order; what its own unit lacks is overage, never taken
// from another unit.
func TestUsageDrawsOnlyFromGrantsOfItsOwnUnit(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-units"
	bytesFirst := unitGrant(sf, "gr_bytes", billing.UnitBytes, 10_000)
	bytesFirst.Priority = 0 // first in the drawing order, whatever the unit
	MustAddGrant(t, s, bytesFirst)
	MustAddGrant(t, s, unitGrant(sf, "gr_secs", "", 120))
	MustAddGrant(t, s, unitGrant(sf, "gr_sms", billing.UnitSMS, 1))

	call := MustDebit(t, s, voiceCall(sf, "cdr-call", meterNow.Add(-time.Minute), 180))
	require.Equal(t, [][2]any{{"gr_secs", int64(120)}}, drawsOf(call.Entry), "a call draws seconds only")
	require.Equal(t, int64(60), call.Entry.OverageSeconds)
	require.Equal(t, "", call.Entry.Unit)

	data := MustDebit(t, s, dataSession(sf, "cdr-data", meterNow.Add(-time.Minute), 12_288))
	require.Equal(t, [][2]any{{"gr_bytes", int64(10_000)}}, drawsOf(data.Entry), "data draws bytes only")
	require.Equal(t, billing.UnitBytes, data.Entry.Unit)
	require.Equal(t, int64(12_288), data.Entry.BillableSeconds, "the amount is in the entry's unit")
	require.Equal(t, int64(2_288), data.Entry.OverageSeconds)
	require.Equal(t, int64(300), data.Entry.OverageAmount.Minor, "2288 bytes of overage start one MB")
	require.Equal(t, int64(12_288), data.Entry.VolumeBytes)

	sms1 := MustDebit(t, s, textMessage(sf, "cdr-sms-1", meterNow.Add(-time.Minute)))
	require.Equal(t, [][2]any{{"gr_sms", int64(1)}}, drawsOf(sms1.Entry))
	sms2 := MustDebit(t, s, textMessage(sf, "cdr-sms-2", meterNow.Add(-time.Minute)))
	require.Empty(t, sms2.Entry.Draws, "no sms left: overage, though seconds and bytes are")
	require.Equal(t, int64(1), sms2.Entry.OverageSeconds)
	require.Equal(t, int64(100), sms2.Entry.OverageAmount.Minor)

	require.Equal(t, map[string]int64{"gr_bytes": 0, "gr_secs": 0, "gr_sms": 0}, remainingByGrant(t, s, sf))
}

// unitModel is the model of one seafarer's grants of three units that
// TestMeteringPerUnitFollowsTheModel checks the store against.
type unitModel struct {
	grants  []*unitModelGrant
	applied map[string]bool
}

type unitModelGrant struct {
	id, unit         string
	prio             int
	expires          time.Time
	granted, remains int64
}

// debit draws billable of unit in drawing order and returns covered.
func (m *unitModel) debit(unit string, billable int64) (covered int64, draws [][2]any) {
	gs := make([]*unitModelGrant, 0, len(m.grants))
	for _, g := range m.grants {
		if g.unit == unit && g.remains > 0 {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		if a.prio != b.prio {
			return a.prio < b.prio
		}
		if !a.expires.Equal(b.expires) {
			return a.expires.Before(b.expires)
		}
		return a.id < b.id // issued at the same instant
	})
	need := billable
	draws = [][2]any{}
	for _, g := range gs {
		if need == 0 {
			break
		}
		take := min(need, g.remains)
		g.remains -= take
		need -= take
		covered += take
		draws = append(draws, [2]any{g.id, take})
	}
	return covered, draws
}

// For any mix of grants of the three units and of calls, data sessions and
// SMS (repeated identities among them), every debit equals the model's:
// the same draws from grants of its own unit only, covered + overage =
// billable, no balance below zero, each identity applied once; and the
// allowance's balances per unit and month figures per unit match the
// model's sums.
func TestMeteringPerUnitFollowsTheModel(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			s, _, _ := MustMeterStore(t, Options{})
			const sf = "sf-model"
			m := &unitModel{applied: map[string]bool{}}
			units := []string{billing.UnitSeconds, billing.UnitBytes, billing.UnitSMS}
			used := map[string]int64{}
			overage := map[string]int64{}
			var identities []string
			for step := 0; step < 60; step++ {
				if rng.Intn(4) == 0 {
					unit := units[rng.Intn(3)]
					amount := []int64{120, 5000, 3}[indexOf(units, unit)] * int64(1+rng.Intn(4))
					g := unitGrant(sf, fmt.Sprintf("gr_%d", step), storedUnit(unit), amount)
					g.Priority = rng.Intn(3)
					g.ExpiresAt = meterNow.Add(time.Duration(10+rng.Intn(3)) * meterDay)
					MustAddGrant(t, s, g)
					m.grants = append(m.grants, &unitModelGrant{id: g.ID, unit: unit, prio: g.Priority, expires: g.ExpiresAt, granted: amount, remains: amount})
					continue
				}
				id := fmt.Sprintf("cdr-%d", step)
				if len(identities) > 0 && rng.Intn(5) == 0 {
					id = identities[rng.Intn(len(identities))] // a redelivery
				}
				unit := units[rng.Intn(3)]
				var u Usage
				var billable int64
				switch unit {
				case billing.UnitSeconds:
					billable = 60 * int64(rng.Intn(4))
					u = voiceCall(sf, id, meterNow.Add(-time.Minute), billable)
				case billing.UnitBytes:
					billable = 1024 * int64(rng.Intn(8))
					u = dataSession(sf, id, meterNow.Add(-time.Minute), billable)
				default:
					billable = 1
					u = textMessage(sf, id, meterNow.Add(-time.Minute))
				}
				if m.applied[id] {
					// A repeated identity changes nothing, whatever its content
					// (the Redis claims refuse other content; the same content is
					// a duplicate).
					r, err := s.Debit(context.Background(), u)
					if err == nil {
						require.True(t, r.Duplicate || r.Conflicting, "identity %s applied once", id)
					}
					continue
				}
				r := MustDebit(t, s, u)
				require.False(t, r.Duplicate)
				m.applied[id] = true
				identities = append(identities, id)
				covered, draws := m.debit(unit, billable)
				e := r.Entry
				require.Equal(t, storedUnit(unit), e.Unit)
				require.Equal(t, draws, drawsOf(e), "step %d: draws of %s", step, unit)
				require.Equal(t, covered, e.CoveredSeconds)
				require.Equal(t, billable, e.CoveredSeconds+e.OverageSeconds, "covered + overage = billable")
				used[unit] += billable
				overage[unit] += billable - covered
			}

			a, err := s.Allowance(context.Background(), sf)
			require.NoError(t, err)
			want := map[string][2]int64{}
			for _, g := range m.grants {
				require.GreaterOrEqual(t, g.remains, int64(0))
				w := want[g.unit]
				want[g.unit] = [2]int64{w[0] + g.granted, w[1] + g.remains}
			}
			got := map[string][2]int64{}
			for _, b := range a.Balances {
				got[b.Unit] = [2]int64{b.Granted, b.Remaining}
			}
			require.Equal(t, want, got, "balances per unit")
			require.Equal(t, want[billing.UnitSeconds][1], a.RemainingSeconds, "remaining_seconds counts seconds only")
			require.Equal(t, used[billing.UnitSeconds], a.UsedSeconds)
			require.Equal(t, overage[billing.UnitSeconds], a.OverageSeconds)
			for _, f := range a.Usage {
				require.Equal(t, used[f.Unit], f.Used, "month's %s used", f.Unit)
				require.Equal(t, overage[f.Unit], f.Overage, "month's %s overage", f.Unit)
			}
			for _, g := range remainingByGrantModel(m) {
				require.Equal(t, g[1], remainingByGrant(t, s, sf)[g[0].(string)])
			}
		})
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func remainingByGrantModel(m *unitModel) [][2]any {
	out := [][2]any{}
	for _, g := range m.grants {
		out = append(out, [2]any{g.id, g.remains})
	}
	return out
}

// Low and exhausted are announced per unit: draining the data grants
// announces them for the bytes set alone, and the seconds balance, untouched,
// announces nothing.
func TestLowAndExhaustedAreAnnouncedPerUnit(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-notes"
	MustAddGrant(t, s, unitGrant(sf, "gr_secs", "", 600))
	MustAddGrant(t, s, unitGrant(sf, "gr_bytes", billing.UnitBytes, 10_240))

	r := MustDebit(t, s, dataSession(sf, "cdr-1", meterNow.Add(-time.Minute), 9_216))
	require.Len(t, r.Notes, 1)
	require.Equal(t, NoteLow, r.Notes[0].Kind)
	require.Equal(t, billing.UnitBytes, r.Notes[0].Unit)
	require.Equal(t, int64(1_024), r.Notes[0].RemainingSeconds)
	require.Equal(t, int64(10_240), r.Notes[0].GrantedSeconds, "the bytes grants' total, not the seconds'")
	require.Equal(t, int64(1_024), r.RemainingNow)

	r = MustDebit(t, s, dataSession(sf, "cdr-2", meterNow.Add(-time.Minute), 2_048))
	require.Len(t, r.Notes, 1)
	require.Equal(t, NoteExhausted, r.Notes[0].Kind)

	r = MustDebit(t, s, voiceCall(sf, "cdr-3", meterNow.Add(-time.Minute), 60))
	require.Empty(t, r.Notes, "seconds are at 540 of 600: nothing to announce")
	require.Equal(t, int64(540), r.RemainingNow)
	require.Equal(t, int64(600), r.GrantedNow)
}

// A data session's repeat while its record is pending carries the first
// application's entry, with its unit and volume: the record keeps them.
func TestARepeatedDataSessionCarriesItsUnitAndVolume(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-repeat"
	MustAddGrant(t, s, unitGrant(sf, "gr_bytes", billing.UnitBytes, 4096))
	first := MustDebit(t, s, dataSession(sf, "cdr-1", meterNow.Add(-time.Minute), 5120))
	again := MustDebit(t, s, dataSession(sf, "cdr-1", meterNow.Add(-time.Minute), 5120))
	require.True(t, again.Duplicate)
	require.Equal(t, first.Entry, again.Entry)
	require.Equal(t, billing.UnitBytes, again.Entry.Unit)
	require.Equal(t, int64(5120), again.Entry.VolumeBytes)
}

// Grants written before units (eight fields, no unit) are seconds: a call
// draws them, a data session does not.
func TestGrantsWrittenBeforeUnitsAreSeconds(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	const sf = "sf-v1"
	v1 := fmt.Sprintf("600:600:%d:%d:1:%d:0:pr_old", meterNow.Add(-meterDay).Unix(), meterNow.Add(meterDay).Unix(), meterNow.UnixMilli())
	require.NoError(t, rdb.HSet(context.Background(), s.keys(sf).grants, "gr_v1", v1).Err())
	// A seconds grant whose programme id is a unit's word is still seconds.
	tricky := fmt.Sprintf("60:60:%d:%d:2:%d:0:bytes", meterNow.Add(-meterDay).Unix(), meterNow.Add(meterDay).Unix(), meterNow.UnixMilli())
	require.NoError(t, rdb.HSet(context.Background(), s.keys(sf).grants, "gr_tricky", tricky).Err())

	data := MustDebit(t, s, dataSession(sf, "cdr-data", meterNow.Add(-time.Minute), 1024))
	require.Empty(t, data.Entry.Draws, "a data session never draws a v1 grant")
	call := MustDebit(t, s, voiceCall(sf, "cdr-call", meterNow.Add(-time.Minute), 660))
	require.Equal(t, [][2]any{{"gr_v1", int64(600)}, {"gr_tricky", int64(60)}}, drawsOf(call.Entry))
	v, err := rdb.HGet(context.Background(), s.keys(sf).grants, "gr_v1").Result()
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("600:0:%d:%d:1:%d:0:pr_old", meterNow.Add(-meterDay).Unix(), meterNow.Add(meterDay).Unix(), meterNow.UnixMilli()), v,
		"a seconds grant keeps v1's encoding")
}

// The allowance lists one balance per unit held in active grants, keeps
// remaining_seconds for seconds, and shows a bytes grant's amounts as
// granted/remaining with zero *_seconds; the month's usage is per unit.
func TestAllowanceShowsBalancesPerUnit(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ctx := context.Background()
	const sf = "sf-balances"
	MustAddGrant(t, s, unitGrant(sf, "gr_secs", "", 600))
	soon := unitGrant(sf, "gr_bytes_soon", billing.UnitBytes, 1<<20)
	soon.ExpiresAt = meterNow.Add(3 * meterDay)
	MustAddGrant(t, s, soon)
	MustAddGrant(t, s, unitGrant(sf, "gr_bytes", billing.UnitBytes, 2<<30))
	MustDebit(t, s, dataSession(sf, "cdr-1", meterNow.Add(-time.Minute), 2048))
	MustDebit(t, s, textMessage(sf, "cdr-2", meterNow.Add(-time.Minute)))

	a, err := s.Allowance(ctx, sf)
	require.NoError(t, err)
	require.Equal(t, []Balance{
		{Unit: billing.UnitSeconds, Granted: 600, Remaining: 600, ExpiresAt: meterNow.Add(30 * meterDay)},
		{Unit: billing.UnitBytes, Granted: 1<<20 + 2<<30, Remaining: 1<<20 + 2<<30 - 2048, ExpiresAt: meterNow.Add(3 * meterDay)},
	}, a.Balances, "no sms balance: no sms grant")
	require.Equal(t, int64(600), a.RemainingSeconds)
	require.Equal(t, int64(0), a.UsedSeconds)
	require.Equal(t, []UnitFigure{{Unit: billing.UnitBytes, Used: 2048}, {Unit: billing.UnitSMS, Used: 1, Overage: 1}}, a.Usage)

	b, err := json.Marshal(a)
	require.NoError(t, err)
	var doc struct {
		Grants []map[string]any `json:"grants"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	byID := map[string]map[string]any{}
	for _, g := range doc.Grants {
		byID[g["id"].(string)] = g
	}
	require.Equal(t, "bytes", byID["gr_bytes"]["unit"])
	require.EqualValues(t, 2<<30, byID["gr_bytes"]["granted"])
	require.EqualValues(t, 0, byID["gr_bytes"]["granted_seconds"], "bytes are never shown as seconds")
	require.Equal(t, "seconds", byID["gr_secs"]["unit"])
	require.EqualValues(t, 600, byID["gr_secs"]["granted_seconds"])
	require.EqualValues(t, 600, byID["gr_secs"]["remaining"])

	var back Allowance
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, a.Grants, back.Grants, "the JSON reads back to the same grants")
}

// A ledger entry of another unit shows its amounts as billable, covered,
// overage (draws: amount), never as *_seconds, and reads back the same; a
// seconds entry shows *_seconds as v1 did, with its unit.
func TestLedgerEntryJSONNamesItsUnit(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-json"
	MustAddGrant(t, s, unitGrant(sf, "gr_bytes", billing.UnitBytes, 1024))
	e := MustDebit(t, s, dataSession(sf, "cdr-1", meterNow.Add(-time.Minute), 3072)).Entry
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "bytes", doc["unit"])
	require.EqualValues(t, 3072, doc["billable"])
	require.EqualValues(t, 1024, doc["covered"])
	require.EqualValues(t, 2048, doc["overage"])
	require.EqualValues(t, 0, doc["billable_seconds"])
	require.EqualValues(t, 0, doc["covered_seconds"])
	require.EqualValues(t, 0, doc["overage_seconds"])
	require.EqualValues(t, 1024, doc["draws"].([]any)[0].(map[string]any)["amount"])
	require.EqualValues(t, 0, doc["draws"].([]any)[0].(map[string]any)["seconds"])
	var back LedgerEntry
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, e, &back)

	MustAddGrant(t, s, activeGrant(sf, "gr_secs", 60))
	c := MustDebit(t, s, voiceCall(sf, "cdr-2", meterNow.Add(-time.Minute), 120)).Entry
	b, err = json.Marshal(c)
	require.NoError(t, err)
	doc = nil
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "seconds", doc["unit"])
	require.EqualValues(t, 120, doc["billable_seconds"])
	require.EqualValues(t, 60, doc["draws"].([]any)[0].(map[string]any)["seconds"])
}

// A programme's unit and pack amount: seconds by default (pack_seconds or
// pack_amount, the same if both), bytes and sms by pack_amount only, with
// bounds per unit; each mistake names its field.
func TestProgrammeUnitAndPackAmountAreValidated(t *testing.T) {
	base := ProgrammeInput{Name: "Data at sea", ValidDays: 30, StartsAt: meterNow, EndsAt: meterNow.Add(90 * meterDay)}
	with := func(f func(*ProgrammeInput)) ProgrammeInput { in := base; f(&in); return in }
	tests := []struct {
		name       string
		in         ProgrammeInput
		wantField  string // "" = valid
		wantAmount int64
	}{
		{"seconds by pack_seconds as in v1", with(func(in *ProgrammeInput) { in.PackSeconds = 3600 }), "", 3600},
		{"seconds by pack_amount", with(func(in *ProgrammeInput) { in.PackAmount = 3600 }), "", 3600},
		{"seconds by both, the same", with(func(in *ProgrammeInput) { in.PackAmount, in.PackSeconds = 3600, 3600 }), "", 3600},
		{"seconds by both, different", with(func(in *ProgrammeInput) { in.PackAmount, in.PackSeconds = 3600, 1800 }), "pack_amount", 0},
		{"seconds pack_amount too small", with(func(in *ProgrammeInput) { in.PackAmount = 10 }), "pack_amount", 0},
		{"2 GB of data", with(func(in *ProgrammeInput) { in.Unit, in.PackAmount = "bytes", 2<<30 }), "", 2 << 30},
		{"data without an amount", with(func(in *ProgrammeInput) { in.Unit = "bytes" }), "pack_amount", 0},
		{"data by pack_seconds", with(func(in *ProgrammeInput) { in.Unit, in.PackSeconds, in.PackAmount = "bytes", 600, 600 }), "pack_seconds", 0},
		{"data above a TiB", with(func(in *ProgrammeInput) { in.Unit, in.PackAmount = "bytes", 1<<40+1 }), "pack_amount", 0},
		{"50 SMS", with(func(in *ProgrammeInput) { in.Unit, in.PackAmount = "sms", 50 }), "", 50},
		{"negative SMS", with(func(in *ProgrammeInput) { in.Unit, in.PackAmount = "sms", -1 }), "pack_amount", 0},
		{"an unknown unit", with(func(in *ProgrammeInput) { in.Unit, in.PackAmount = "minutes", 5 }), "unit", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				require.Equal(t, tt.wantAmount, tt.in.packAmount())
				return
			}
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
			var fields []string
			for _, f := range err.(*wuyou.Error).Fields {
				fields = append(fields, f.Field)
			}
			require.Contains(t, fields, tt.wantField)
		})
	}
}

// After Redis loses everything, the rebuild restores each grant with its
// unit and remaining amount, the month's figures per unit, and the
// identities of data and SMS events: balances per unit equal those before
// the loss, a repeated data session is a duplicate, and a new one draws the
// bytes grant again, never the seconds grant.
func TestRebuildHotStateRestoresUnits(t *testing.T) {
	l := newRebuildLab(t, Options{})
	ctx := context.Background()
	const sf = "sf-rebuild-units"
	for _, g := range []GrantInput{
		unitGrant(sf, "gr_secs", "", 600),
		unitGrant(sf, "gr_bytes", billing.UnitBytes, 1<<20),
		unitGrant(sf, "gr_sms", billing.UnitSMS, 3),
	} {
		g.ProgrammeID = "pr_a"
		g.IssuedAt = l.clock.Now().Truncate(time.Millisecond)
		_, err := l.pool.Exec(ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, unit)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, g.ID, g.SeafarerID, g.ProgrammeID, g.Seconds, g.Priority,
			g.EffectiveAt.Truncate(time.Second), g.ExpiresAt.Truncate(time.Second), g.IssuedAt, unitOrSeconds(g.Unit))
		require.NoError(t, err)
		added, e, err := l.s.AddGrant(ctx, g)
		require.NoError(t, err)
		require.True(t, added)
		l.record(t, []SeafarerEntry{{SeafarerID: sf, Entry: e}})
	}
	at := meterNow.Add(-time.Minute)
	l.settle(t, []Usage{
		dataSession(sf, "d-1", at, 300_000), voiceCall(sf, "v-1", at, 120),
		textMessage(sf, "s-1", at), textMessage(sf, "s-2", at), dataSession(sf, "d-2", at, 1<<20),
	})
	before, err := l.s.Allowance(ctx, sf)
	require.NoError(t, err)
	grantsBefore, err := l.rdb.HGetAll(ctx, l.s.keys(sf).grants).Result()
	require.NoError(t, err)

	l.lose(t)
	_, err = RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)

	after, err := l.s.Allowance(ctx, sf)
	require.NoError(t, err)
	require.Equal(t, before.Balances, after.Balances, "balances per unit")
	require.Equal(t, before.Usage, after.Usage, "the month's figures per unit")
	require.Equal(t, before.UsedSeconds, after.UsedSeconds)
	grantsAfter, err := l.rdb.HGetAll(ctx, l.s.keys(sf).grants).Result()
	require.NoError(t, err)
	require.Equal(t, grantsBefore, grantsAfter, "each grant as it was, unit and all")
	require.Equal(t, []Balance{
		{Unit: billing.UnitSeconds, Granted: 600, Remaining: 480, ExpiresAt: meterNow.Add(30 * meterDay)},
		{Unit: billing.UnitBytes, Granted: 1 << 20, Remaining: 0, ExpiresAt: meterNow.Add(30 * meterDay)},
		{Unit: billing.UnitSMS, Granted: 3, Remaining: 1, ExpiresAt: meterNow.Add(30 * meterDay)},
	}, after.Balances)

	rs := l.settle(t, []Usage{dataSession(sf, "d-1", at, 300_000), textMessage(sf, "s-3", at)})
	require.True(t, rs[0].Duplicate, "a data session applied before the loss is not charged again")
	require.Equal(t, [][2]any{{"gr_sms", int64(1)}}, drawsOf(rs[1].Entry))
}

// A recurring programme of 2 GB a month gives bytes grants: PostgreSQL and
// Redis hold them in bytes, a data session draws them, a call does not, and
// the ledger's grant entry is in bytes.
func TestARecurringDataProgrammeGivesBytesGrantsEachMonth(t *testing.T) {
	l := newRecurringLab(t, time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC))
	co := l.company()
	l.seafarer("sf_data", co, "", "2026-01-01", "")
	in := recurringInput(co)
	in.PackSeconds, in.Unit, in.PackAmount = 0, billing.UnitBytes, 2<<30
	p := l.programme(in)
	require.Equal(t, billing.UnitBytes, p.Unit)
	require.Equal(t, 1, l.sweep().Issued)
	gs := l.grants(p.ID)
	require.Len(t, gs, 1)
	require.EqualValues(t, 2<<30, gs[0].Seconds)
	var unit string
	require.NoError(t, l.pool.QueryRow(l.ctx, `SELECT unit FROM grants WHERE id = $1`, gs[0].ID).Scan(&unit))
	require.Equal(t, "bytes", unit)

	call := l.call("sf_data", 60)
	require.Empty(t, call.Entry.Draws, "a call never draws the data grant")
	r, err := l.hot.Debit(l.ctx, dataSession("sf_data", "d-1", l.clock(), 5<<20))
	require.NoError(t, err)
	require.Equal(t, [][2]any{{gs[0].ID, int64(5 << 20)}}, drawsOf(r.Entry))
	require.Equal(t, int64(2<<30-5<<20), l.remaining("sf_data", gs[0].ID))
}

// A statement's seconds count only calls: a data session and an SMS add
// their money to the figures and their amounts to units (bytes, sms), never
// to calls or *_seconds.
func TestStatementFiguresKeepUnitsApart(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ledger, pool := MustPGLedger(t)
	ctx := context.Background()
	const sf = "sf-statement"
	MustAddGrant(t, s, unitGrant(sf, "gr_bytes", billing.UnitBytes, 1<<20))
	MustAddGrant(t, s, activeGrant(sf, "gr_secs", 60))
	at := meterNow.Add(-time.Minute)
	var entries []*LedgerEntry
	for _, u := range []Usage{voiceCall(sf, "v-1", at, 120), dataSession(sf, "d-1", at, 3<<20), textMessage(sf, "s-1", at), textMessage(sf, "s-2", at)} {
		entries = append(entries, MustDebit(t, s, u).Entry)
	}
	mustRecord(t, s, ledger, sf, entries...)

	us, err := NewPGStatements(pool, func() time.Time { return meterNow }).SeafarersUsage(ctx, billing.PeriodOf(at), []string{sf})
	require.NoError(t, err)
	got := us[0].Period
	require.Equal(t, int64(1), got.Calls, "one call; the data session and SMS are not calls")
	require.Equal(t, int64(120), got.BillableSeconds)
	require.Equal(t, int64(60), got.CoveredSeconds)
	require.Equal(t, int64(60), got.OverageSeconds)
	// Overage: a minute at 150, 2 MB of data at 300 each, two SMS at 100 each.
	require.Equal(t, billing.Money{Minor: 150 + 600 + 200, Currency: "CNY"}, got.OverageAmount)
	require.Equal(t, []billing.UnitFigures{
		{Unit: billing.UnitBytes, Events: 1, Billable: 3 << 20, Covered: 1 << 20, Overage: 2 << 20,
			OverageAmount: billing.Money{Minor: 600, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 100, Currency: "CNY"}},
		{Unit: billing.UnitSMS, Events: 2, Billable: 2, Overage: 2,
			OverageAmount: billing.Money{Minor: 200, Currency: "CNY"}, WelfareCost: billing.Money{Minor: 0, Currency: "CNY"}},
	}, got.Units)

	// The month overview counts calls and seconds only.
	o, err := NewPGStatements(pool, func() time.Time { return meterNow }).MonthOverview(ctx, billing.PeriodOf(at), 0)
	require.NoError(t, err)
	var calls, covered, overage int64
	for _, d := range o.Days {
		calls, covered, overage = calls+d.Calls, covered+d.CoveredSeconds, overage+d.OverageSeconds
	}
	require.Equal(t, [3]int64{1, 60, 60}, [3]int64{calls, covered, overage}, "no bytes or messages among the seconds")
}

// A programme's statement counts what its packs covered per unit: a data
// programme's line has its bytes in units and its welfare cost, no seconds.
func TestAProgrammeStatementCountsItsPacksInTheirUnit(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	ledger, pool := MustPGLedger(t)
	ctx := context.Background()
	const sf = "sf-prog-statement"
	g := unitGrant(sf, "gr_bytes", billing.UnitBytes, 1<<20)
	g.ProgrammeID = "pr_data"
	MustAddGrant(t, s, g)
	at := meterNow.Add(-time.Minute)
	e := MustDebit(t, s, dataSession(sf, "d-1", at, 3<<20)).Entry
	mustRecord(t, s, ledger, sf, e)

	var got []billing.SeafarerUsage
	err := NewPGStatements(pool, func() time.Time { return meterNow }).ProgrammeUsage(ctx, billing.PeriodOf(at), "pr_data",
		func(u billing.SeafarerUsage) error { got = append(got, u); return nil })
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Zero(t, got[0].Period.Calls)
	require.Zero(t, got[0].Period.CoveredSeconds, "bytes are never counted as seconds")
	require.Equal(t, billing.Money{Minor: 100, Currency: "CNY"}, got[0].Period.WelfareCost, "one started MB covered, at 100")
	require.Equal(t, []billing.UnitFigures{{Unit: billing.UnitBytes, Events: 1, Billable: 1 << 20, Covered: 1 << 20,
		OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: billing.Money{Minor: 100, Currency: "CNY"}}}, got[0].Period.Units)
}

// The ledger audit compares units too: a seconds grant that Redis holds as
// bytes (remaining and granted unchanged) is reported, and a data debit in
// the ledger explains the bytes grant's remaining amount.
func TestAuditComparesUnits(t *testing.T) {
	l, a := auditLab(t)
	ctx := context.Background()
	const sf = "sf-a1"
	g := unitGrant(sf, "gr_bytes", billing.UnitBytes, 1<<20)
	g.ProgrammeID = "pr_a"
	g.IssuedAt = l.clock.Now().Truncate(time.Millisecond)
	_, err := l.pool.Exec(ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, unit)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'bytes')`, g.ID, sf, g.ProgrammeID, g.Seconds, g.Priority,
		g.EffectiveAt.Truncate(time.Second), g.ExpiresAt.Truncate(time.Second), g.IssuedAt)
	require.NoError(t, err)
	_, e, err := l.s.AddGrant(ctx, g)
	require.NoError(t, err)
	l.record(t, []SeafarerEntry{{SeafarerID: sf, Entry: e}})
	l.settle(t, []Usage{dataSession(sf, "d-audit", l.clock.Now().Add(-time.Minute), 4096)})
	require.True(t, mustAudit(t, a, sf).OK, "a data debit explains the bytes grant")

	k := l.s.keys(sf)
	v, err := l.rdb.HGet(ctx, k.grants, "g-sf-a1").Result()
	require.NoError(t, err)
	wrong, err := parseGrant("g-sf-a1", v)
	require.NoError(t, err)
	wrong.Unit = billing.UnitBytes
	require.NoError(t, l.rdb.HSet(ctx, k.grants, "g-sf-a1", encodeGrant(wrong)).Err())
	r := mustAudit(t, a, sf)
	require.Equal(t, []string{AuditGranted + " g-sf-a1"}, kinds(r))
	require.Contains(t, r.Differences[0].Detail, "unit differs: recorded seconds, Redis bytes")
}
