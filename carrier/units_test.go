package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// dataEvent is a data session of the given volume member (raw JSON, "" to
// leave it out).
func dataEvent(id, msisdn string, at time.Time, volume, country string) []byte {
	member := ""
	if volume != "" {
		member = `,"volume_bytes":` + volume
	}
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"urn:carrier:test","type":"carrier.usage.data","time":%q,"subject":%q,`+
		`"data":{"call_id":"s","direction":"MO","visited_country":%q,"network":"terrestrial"%s}}`,
		id, at.UTC().Format(time.RFC3339), msisdn, country, member)
}

func smsEvent(id, msisdn string, at time.Time, country string) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"urn:carrier:test","type":"carrier.usage.sms","time":%q,"subject":%q,`+
		`"data":{"call_id":"m","direction":"MO","called_number":"+861012345678","visited_country":%q,"network":"terrestrial"}}`,
		id, at.UTC().Format(time.RFC3339), msisdn, country)
}

// A data event carries data.volume_bytes: required, a JSON integer from 0
// to 1 TiB; a bad one is refused naming the field and saying the rule. A
// voice or SMS event needs none, and data events need no duration.
func TestDecodeReadsADataSessionsVolume(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		body       []byte
		wantVolume int64
		wantMsg    string // "" = accepted
	}{
		{"a data session of 0 bytes", dataEvent("e", "+8613800000001", at, "0", "SG"), 0, ""},
		{"a data session of 5 MB", dataEvent("e", "+8613800000001", at, "5242880", "SG"), 5 << 20, ""},
		{"a data session of exactly 1 TiB", dataEvent("e", "+8613800000001", at, "1099511627776", "SG"), 1 << 40, ""},
		{"missing volume", dataEvent("e", "+8613800000001", at, "", "SG"), 0, "required on carrier.usage.data"},
		{"null volume", dataEvent("e", "+8613800000001", at, "null", "SG"), 0, "required on carrier.usage.data"},
		{"negative volume", dataEvent("e", "+8613800000001", at, "-1", "SG"), 0, "must be between 0 and 1099511627776"},
		{"volume above 1 TiB", dataEvent("e", "+8613800000001", at, "1099511627777", "SG"), 0, "must be between 0 and 1099511627776"},
		{"volume beyond int64", dataEvent("e", "+8613800000001", at, "99999999999999999999", "SG"), 0, "must be a whole number of bytes"},
		{"volume as a string", dataEvent("e", "+8613800000001", at, `"1024"`, "SG"), 0, "must be a whole number of bytes"},
		{"volume with a fraction", dataEvent("e", "+8613800000001", at, "10.5", "SG"), 0, "must be a whole number of bytes"},
		{"volume with an exponent", dataEvent("e", "+8613800000001", at, "1e3", "SG"), 0, "must be a whole number of bytes"},
		{"an SMS needs no volume nor duration", smsEvent("e", "+8613800000001", at, "SG"), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeUsageEvent(tt.body)
			if tt.wantMsg == "" {
				require.NoError(t, err)
				require.Equal(t, tt.wantVolume, ev.Data.VolumeBytes)
				return
			}
			we := requireRefused(t, err, ReasonInvalidField)
			require.Equal(t, []string{"data.volume_bytes"}, fieldNames(we), "only the volume is wrong")
			require.Contains(t, we.Fields[0].Message, tt.wantMsg)
		})
	}
	t.Run("a voice event needs no volume and one given is not its amount", func(t *testing.T) {
		ev, err := DecodeUsageEvent([]byte(withEvent(t, `"duration_seconds":125`, `"duration_seconds":125,"volume_bytes":99`)))
		require.NoError(t, err)
		require.Zero(t, ev.Data.VolumeBytes)
		_, err = DecodeUsageEvent([]byte(withEvent(t, `"duration_seconds":125`, `"duration_seconds":125,"volume_bytes":-1`)))
		requireRefused(t, err, ReasonInvalidField)
	})
}

// End to end through the consumer: a data session abroad draws the
// seafarer's bytes grant (volume rounded up to 1 KiB) and never the seconds
// grant, an SMS abroad draws the sms grant, a domestic data session draws
// nothing, and a data event with a bad volume is dead-lettered naming
// data.volume_bytes while every other event of the batch is applied; the
// ledger topic carries each entry's unit and amounts.
func TestDataAndSMSAreMeteredInTheirOwnUnitsThroughTheConsumer(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	const msisdn = "+8613800000001"
	f.holders.set(msisdn, "sf_1", time.Time{})
	ctx := context.Background()
	now := f.now()
	for _, g := range []quota.GrantInput{
		{ID: "gr_secs", Seconds: 600},
		{ID: "gr_bytes", Seconds: 10 << 20, Unit: billing.UnitBytes},
		{ID: "gr_sms", Seconds: 1, Unit: billing.UnitSMS},
	} {
		g.SeafarerID, g.ProgrammeID, g.Priority = "sf_1", "pr_1", 1
		g.EffectiveAt, g.ExpiresAt = now.Add(-24*time.Hour), now.Add(30*24*time.Hour)
		_, _, err := f.store.AddGrant(ctx, g)
		require.NoError(t, err)
	}
	f.run(t)
	at := now.Add(-time.Minute)
	f.produce(t,
		dataEvent("d-1", msisdn, at, "1000001", "SG"),  // 1,000,448 bytes billable
		dataEvent("d-bad", msisdn, at, `"many"`, "SG"), // dead-lettered
		smsEvent("s-1", msisdn, at, "SG"),              // one sms
		dataEvent("d-home", msisdn, at, "50000", "CN"), // at home: nothing
		dataEvent("d-neg", msisdn, at, "-5", "SG"),     // dead-lettered
		dataEvent("d-missing", msisdn, at, "", "SG"),   // dead-lettered
		voiceEvent("v-1", msisdn, at, 61),              // 120 seconds
	)

	dls := f.read(t, f.topics.DeadLetter, 3)
	for _, dl := range dls {
		h := headersOf(dl)
		require.Equal(t, "invalid_field", h["error_code"])
		require.Contains(t, h["error"], "data.volume_bytes", "the error names the field")
	}

	type entry struct {
		EventID         string `json:"event_id"`
		SeafarerID      string `json:"seafarer_id"`
		Unit            string `json:"unit"`
		Billable        int64  `json:"billable"`
		Covered         int64  `json:"covered"`
		Overage         int64  `json:"overage"`
		BillableSeconds int64  `json:"billable_seconds"`
		VolumeBytes     int64  `json:"volume_bytes"`
		Draws           []struct {
			GrantID string `json:"grant_id"`
			Amount  int64  `json:"amount"`
		} `json:"draws"`
	}
	got := map[string]entry{}
	for _, m := range f.read(t, f.topics.Ledger, 4) {
		var ev struct{ Data entry }
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		got[ev.Data.EventID] = ev.Data
	}
	require.Equal(t, "bytes", got["d-1"].Unit)
	require.Equal(t, "sf_1", got["d-1"].SeafarerID)
	require.Equal(t, int64(1_000_448), got["d-1"].Billable, "1,000,001 bytes round up to whole KiB")
	require.Equal(t, int64(1_000_448), got["d-1"].Covered)
	require.Zero(t, got["d-1"].BillableSeconds, "bytes are never shown as seconds")
	require.Equal(t, int64(1_000_001), got["d-1"].VolumeBytes)
	require.Equal(t, "gr_bytes", got["d-1"].Draws[0].GrantID)
	require.Equal(t, "sms", got["s-1"].Unit)
	require.Equal(t, int64(1), got["s-1"].Covered)
	require.Equal(t, "gr_sms", got["s-1"].Draws[0].GrantID)
	require.Equal(t, "bytes", got["d-home"].Unit)
	require.Zero(t, got["d-home"].Billable, "data at home draws nothing")
	require.Empty(t, got["d-home"].Draws)
	require.Equal(t, "seconds", got["v-1"].Unit)
	require.Equal(t, int64(120), got["v-1"].BillableSeconds)

	a, err := f.store.Allowance(ctx, "sf_1")
	require.NoError(t, err)
	remaining := map[string]int64{}
	for _, b := range a.Balances {
		remaining[b.Unit] = b.Remaining
	}
	require.Equal(t, map[string]int64{"seconds": 480, "bytes": 10<<20 - 1_000_448, "sms": 0}, remaining, "the sms grant is used up")
	require.Equal(t, int64(480), a.RemainingSeconds)

	// The SMS took the sms grants to zero: exhausted is announced in sms,
	// never as seconds (low is 20% of one message: nothing under it).
	notes := map[string]map[string]any{}
	for _, m := range f.read(t, f.topics.Notifications, 1) {
		var ev struct {
			Type string
			Data map[string]any
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		notes[ev.Type] = ev.Data
	}
	require.Equal(t, "sms", notes[NotifyQuotaExhausted]["unit"])
	require.EqualValues(t, 1, notes[NotifyQuotaExhausted]["granted"])
	require.EqualValues(t, 0, notes[NotifyQuotaExhausted]["granted_seconds"], "messages are never shown as seconds")

	stored, _, err := f.ledger.Ledger(ctx, "sf_1", quota.LedgerFilter{})
	require.NoError(t, err)
	units := []string{}
	for _, e := range stored {
		if e.Kind == quota.KindDebit {
			units = append(units, e.EventID+":"+e.Unit)
		}
	}
	require.ElementsMatch(t, []string{"d-1:bytes", "s-1:sms", "d-home:bytes", "v-1:"}, units, "PostgreSQL keeps each entry's unit")
	require.False(t, strings.Contains(fmt.Sprint(units), "d-bad"))
}

// A voice event's fingerprint is what it was before units (claims made
// then still match its redeliveries), and a data session's names its
// volume: the same identity with another volume is another event.
func TestFingerprintsKeepVoiceAsBeforeAndNameADataSessionsVolume(t *testing.T) {
	ev, err := DecodeUsageEvent([]byte(goodEvent))
	require.NoError(t, err)
	require.Equal(t, "38b61607adff77ef1dd043bd", fingerprint(ev), "as computed before units existed")

	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	small, err := DecodeUsageEvent(dataEvent("d", "+8613800000001", at, "1024", "SG"))
	require.NoError(t, err)
	large, err := DecodeUsageEvent(dataEvent("d", "+8613800000001", at, "2048", "SG"))
	require.NoError(t, err)
	require.NotEqual(t, fingerprint(small), fingerprint(large))
}
