package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// thresholdGrant is an active grant of unit with the thresholds ts.
func thresholdGrant(seafarerID, id, unit string, amount int64, ts ...Threshold) GrantInput {
	g := unitGrant(seafarerID, id, unit, amount)
	g.NotifyAt = ts
	return g
}

// lowKeys lists the thresholds of the low notes of rs, in order.
func lowKeys(rs ...*DebitResult) []string {
	out := []string{}
	for _, r := range rs {
		for _, n := range r.Notes {
			if n.Kind == NoteLow {
				out = append(out, n.Threshold.Key())
			}
		}
	}
	return out
}

// usageOf is one event of unit drawing amount at a distinct time.
func usageOf(unit, seafarerID, eventID string, i int, amount int64) Usage {
	at := meterNow.Add(-time.Hour + time.Duration(i)*time.Second)
	switch unit {
	case billing.UnitBytes:
		return dataSession(seafarerID, eventID, at, amount)
	case billing.UnitSMS:
		require.Equal(nil, int64(1), amount) // one message a call
		return textMessage(seafarerID, eventID, at)
	}
	return voiceCall(seafarerID, eventID, at, amount)
}

// Each threshold of notify_at is announced by the one call that takes the
// set's remaining below its level, once per grant set, in every unit: a
// percent (of the granted total) and a remaining amount (in the unit)
// cross in separate calls or in one, never again for the same set, and a
// new grant (a new set) arms them again.
func TestEachThresholdIsAnnouncedOncePerGrantSetInEveryUnit(t *testing.T) {
	tests := []struct {
		unit  string
		grant int64
		ts    []Threshold
		// draws per call and the thresholds each announces
		steps []int64
		want  [][]string
	}{
		{billing.UnitSeconds, 3000, []Threshold{{Percent: 50}, {Remaining: 600}},
			[]int64{1200, 360, 600, 300, 540}, [][]string{{}, {"p50"}, {}, {"r600"}, {}}},
		{billing.UnitSeconds, 3000, []Threshold{{Percent: 50}, {Remaining: 600}},
			[]int64{2700, 300}, [][]string{{"p50", "r600"}, {}}},
		{billing.UnitBytes, 10 << 20, []Threshold{{Percent: 90}, {Remaining: 2 << 20}},
			[]int64{1 << 20, 1 << 20, 6 << 20, 1 << 20}, [][]string{{}, {"p90"}, {}, {"r2097152"}}},
		{billing.UnitSMS, 10, []Threshold{{Percent: 50}, {Remaining: 2}, {Percent: 20}},
			[]int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, [][]string{{}, {}, {}, {}, {}, {"p50"}, {}, {}, {"p20", "r2"}, {}}},
	}
	for ti, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d", unitOrSeconds(tt.unit), ti), func(t *testing.T) {
			s, clock, _ := MustMeterStore(t, Options{})
			sf := fmt.Sprintf("sf-th-%d", ti)
			unit := storedUnit(tt.unit)
			MustAddGrant(t, s, thresholdGrant(sf, "gr_1", unit, tt.grant, tt.ts...))
			var first []*DebitResult
			for i, amount := range tt.steps {
				r := MustDebit(t, s, usageOf(tt.unit, sf, fmt.Sprintf("e-%d", i), i, amount))
				require.Equal(t, tt.want[i], lowKeys(r), "call %d", i)
				for _, n := range r.Notes {
					require.Equal(t, unit, n.Unit)
				}
				first = append(first, r)
			}
			// Redelivered, each call repeats exactly its first notes.
			clock.Advance(time.Minute)
			for i, amount := range tt.steps {
				r := MustDebit(t, s, usageOf(tt.unit, sf, fmt.Sprintf("e-%d", i), i, amount))
				require.True(t, r.Duplicate)
				require.Equal(t, first[i].Notes, r.Notes, "repeat of call %d", i)
			}
			// A new grant (the old one voided) is a new set: its thresholds
			// are armed again and announced as for the first.
			_, err := s.VoidGrant(context.Background(), sf, "gr_1")
			require.NoError(t, err)
			MustAddGrant(t, s, thresholdGrant(sf, "gr_2", unit, tt.grant, tt.ts...))
			for i, amount := range tt.steps {
				r := MustDebit(t, s, usageOf(tt.unit, sf, fmt.Sprintf("n-%d", i), i, amount))
				require.Equal(t, tt.want[i], lowKeys(r), "new set, call %d", i)
				if len(r.Notes) > 0 {
					require.NotEqual(t, first[i].Notes[0].GrantSet, r.Notes[0].GrantSet)
				}
			}
		})
	}
}

// A set's thresholds are the union of its grants': a grant with the
// default (20 percent) beside one with 600 remaining announces both.
func TestASetAnnouncesTheUnionOfItsGrantsThresholds(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-th-union"
	MustAddGrant(t, s, thresholdGrant(sf, "gr_d", "", 1000))
	MustAddGrant(t, s, thresholdGrant(sf, "gr_r", "", 2000, Threshold{Remaining: 600}, Threshold{Percent: 20}))
	r1 := MustDebit(t, s, voiceCall(sf, "u-1", meterNow.Add(-time.Hour), 2400)) // 3000 → 600: 600 not below
	require.Empty(t, r1.Notes)
	r2 := MustDebit(t, s, voiceCall(sf, "u-2", meterNow.Add(-time.Hour+time.Second), 60)) // 600 → 540
	require.Equal(t, []string{"p20", "r600"}, lowKeys(r2), "both crossed, each once")
	require.Equal(t, Note{Kind: NoteLow, GrantSet: r2.Notes[1].GrantSet, RemainingSeconds: 540, GrantedSeconds: 3000,
		At: r2.Notes[1].At, Threshold: &Threshold{Remaining: 600}, ExpiresAt: meterNow.Add(30 * meterDay)}, r2.Notes[1])
}

// A programme that names no thresholds writes its grants as before
// thresholds (no tenth field), so hot state of either age means the same.
func TestDefaultThresholdsKeepTheGrantAsBefore(t *testing.T) {
	s, _, rdb := MustMeterStore(t, Options{})
	const sf = "sf-th-default"
	MustAddGrant(t, s, thresholdGrant(sf, "gr_a", "", 600, Threshold{Percent: 20}))
	MustAddGrant(t, s, thresholdGrant(sf, "gr_b", billing.UnitBytes, 600))
	MustAddGrant(t, s, thresholdGrant(sf, "gr_c", "", 600, Threshold{Remaining: 60}))
	MustAddGrant(t, s, thresholdGrant(sf, "gr_d", billing.UnitSMS, 6, Threshold{Percent: 50}))
	hot, err := rdb.HGetAll(context.Background(), s.keys(sf).grants).Result()
	require.NoError(t, err)
	require.Regexp(t, `:pr_test$`, hot["gr_a"])
	require.Regexp(t, `:pr_test:bytes$`, hot["gr_b"])
	require.Regexp(t, `:pr_test::r60$`, hot["gr_c"])
	require.Regexp(t, `:pr_test:sms:p50$`, hot["gr_d"])
	for id, v := range hot {
		g, err := parseGrant(id, v)
		require.NoError(t, err)
		require.Equal(t, encodeThresholds(g.NotifyAt) == "", id == "gr_a" || id == "gr_b", id)
	}
	// A draw rewrites the grant with its thresholds kept.
	MustDebit(t, s, voiceCall(sf, "k-1", meterNow.Add(-time.Hour), 60))
	MustDebit(t, s, textMessage(sf, "k-2", meterNow.Add(-time.Hour)))
	hot, err = rdb.HGetAll(context.Background(), s.keys(sf).grants).Result()
	require.NoError(t, err)
	require.Regexp(t, `:pr_test::r60$`, hot["gr_c"])
	require.Regexp(t, `^6:5:.*:pr_test:sms:p50$`, hot["gr_d"])
}

// notify_at is refused naming the entry and what is wrong with it.
func TestNotifyAtIsValidated(t *testing.T) {
	base := ProgrammeInput{Name: "Thresholds", PackSeconds: 3600, ValidDays: 30, StartsAt: meterNow, EndsAt: meterNow.Add(90 * meterDay)}
	six := make([]Threshold, 6)
	for i := range six {
		six[i] = Threshold{Percent: 10 + i}
	}
	tests := []struct {
		name      string
		notifyAt  []Threshold
		wantField string // "" = valid
		why       string
	}{
		{"left out is the default", nil, "", ""},
		{"a percent and a remaining amount", []Threshold{{Percent: 20}, {Remaining: 600}}, "", ""},
		{"an empty list names no threshold", []Threshold{}, "notify_at", "1 to 5"},
		{"more than five", six, "notify_at", "1 to 5"},
		{"both percent and remaining", []Threshold{{Percent: 20, Remaining: 600}}, "notify_at[0]", "not both"},
		{"neither", []Threshold{{Percent: 20}, {}}, "notify_at[1]", "one of percent"},
		{"0 percent is no threshold at all", []Threshold{{Remaining: 5}, {Percent: -1}}, "notify_at[1].percent", "between 1 and 99"},
		{"100 percent would announce every set at once", []Threshold{{Percent: 100}}, "notify_at[0].percent", "between 1 and 99"},
		{"a negative remaining amount", []Threshold{{Remaining: -600}}, "notify_at[0].remaining", "above 0"},
		{"the same threshold twice", []Threshold{{Remaining: 600}, {Remaining: 600}}, "notify_at[1]", "repeats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.NotifyAt = tt.notifyAt
			err := in.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
			var found bool
			for _, f := range err.(*wuyou.Error).Fields {
				if f.Field == tt.wantField {
					found = true
					require.Contains(t, f.Message, tt.why)
				}
			}
			require.True(t, found, "%v names %s", err, tt.wantField)
		})
	}
}

// A programme keeps its thresholds in PostgreSQL (the default when it names
// none), shows them as notify_at, and after Redis loses everything the
// rebuild writes them into its grants' hot copies again, with the marks a
// set already crossed: a threshold crossed before the loss is not
// announced again, one not yet crossed still is.
func TestRebuildHotStateRestoresThresholds(t *testing.T) {
	l := newRebuildLab(t, Options{})
	ctx := context.Background()
	progs := NewPGProgrammes(l.pool, l.clock.Now, nil)
	in := ProgrammeInput{Name: "Thresholds", PackSeconds: 3600, ValidDays: 30, StartsAt: meterNow.Add(-meterDay),
		EndsAt: meterNow.Add(90 * meterDay), NotifyAt: []Threshold{{Percent: 50}, {Remaining: 600}}}
	p, err := progs.CreateProgramme(ctx, in)
	require.NoError(t, err)
	in.NotifyAt = nil
	plain, err := progs.CreateProgramme(ctx, in)
	require.NoError(t, err)
	require.Equal(t, DefaultNotifyAt(), plain.NotifyAt)
	read, err := progs.Programme(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, []Threshold{{Percent: 50}, {Remaining: 600}}, read.NotifyAt)
	js, err := json.Marshal(read)
	require.NoError(t, err)
	require.Contains(t, string(js), `"notify_at":[{"percent":50},{"remaining":600}]`)

	const sf = "sf-th-rebuild"
	g := thresholdGrant(sf, "gr_th", "", 3000, read.NotifyAt...)
	g.ProgrammeID = p.ID
	l.grant(t, g)
	r := l.settle(t, []Usage{voiceCall(sf, "rb-1", meterNow.Add(-time.Hour), 1800)}) // 3000 → 1200: p50
	require.Equal(t, []string{"p50"}, lowKeys(r...))
	before, err := l.rdb.HGet(ctx, l.s.keys(sf).grants, "gr_th").Result()
	require.NoError(t, err)

	l.lose(t)
	_, err = RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	after, err := l.rdb.HGet(ctx, l.s.keys(sf).grants, "gr_th").Result()
	require.NoError(t, err)
	require.Equal(t, before, after, "the grant with its thresholds")
	r = l.settle(t, []Usage{voiceCall(sf, "rb-2", meterNow.Add(-time.Hour+time.Second), 660)}) // 1200 → 540
	require.Equal(t, []string{"r600"}, lowKeys(r...), "p50 was crossed before the loss")
}
