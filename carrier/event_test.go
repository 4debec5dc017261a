package carrier

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

const goodEvent = `{"specversion":"1.0","id":"cdr-000123","source":"urn:carrier:cmcc:roaming","type":"carrier.usage.voice",
 "time":"2026-11-28T10:15:00Z","subject":"+8613800000001",
 "data":{"call_id":"c-77","direction":"MO","duration_seconds":125,"called_number":"+861012345678",
         "visited_country":"SG","network":"terrestrial"}}`

func TestDecodeAcceptsTheContractExample(t *testing.T) {
	ev, err := DecodeUsageEvent([]byte(goodEvent))
	require.NoError(t, err)
	require.Equal(t, "cdr-000123", ev.ID)
	require.Equal(t, "+8613800000001", ev.Subject)
	require.EqualValues(t, 125, ev.Data.DurationSeconds)
	require.Equal(t, "2026-11-28T10:15:00Z", ev.Time.Format("2006-01-02T15:04:05Z07:00"))
	require.Equal(t, "urn:carrier:cmcc:roaming\x00cdr-000123", ev.Identity())
}

func TestDecodeNormalisesTimeToUTC(t *testing.T) {
	ev, err := DecodeUsageEvent([]byte(strings.Replace(goodEvent, "2026-11-28T10:15:00Z", "2026-11-28T18:15:00+08:00", 1)))
	require.NoError(t, err)
	require.Equal(t, "2026-11-28T10:15:00Z", ev.Time.Format("2006-01-02T15:04:05Z07:00"))
}

// Each case says what is rejected and why; the error names the field and
// carries the error_code the dead-letter topic shows.
func TestDecodeRejectsBadEventsNamingTheField(t *testing.T) {
	cases := []struct {
		name, from, to, field, code string
	}{
		{"truncated JSON is malformed", goodEvent, goodEvent[:40], "", "malformed_json"},
		{"an array is not an event", goodEvent, `[1,2]`, "", "malformed_json"},
		{"specversion other than 1.0", `"specversion":"1.0"`, `"specversion":"0.3"`, "specversion", "invalid_field"},
		{"missing id: identity would be unknown", `"id":"cdr-000123",`, ``, "id", "invalid_field"},
		{"missing source: identity would be unknown", `"source":"urn:carrier:cmcc:roaming",`, ``, "source", "invalid_field"},
		{"unknown type", `carrier.usage.voice`, `carrier.usage.fax`, "type", "invalid_field"},
		{"time not RFC 3339", `2026-11-28T10:15:00Z`, `28/11/2026 10:15`, "time", "invalid_field"},
		{"missing time: call time decides the grants", `"time":"2026-11-28T10:15:00Z",`, ``, "time", "invalid_field"},
		{"subject not E.164", `"subject":"+8613800000001"`, `"subject":"13800000001"`, "subject", "invalid_field"},
		{"negative duration", `"duration_seconds":125`, `"duration_seconds":-5`, "data.duration_seconds", "invalid_field"},
		{"duration longer than a week", `"duration_seconds":125`, `"duration_seconds":700000`, "data.duration_seconds", "invalid_field"},
		{"duration as a string", `"duration_seconds":125`, `"duration_seconds":"125"`, "data.duration_seconds", "invalid_field"},
		{"direction other than MO or MT", `"direction":"MO"`, `"direction":"IN"`, "data.direction", "invalid_field"},
		{"country not alpha-2", `"visited_country":"SG"`, `"visited_country":"SGP"`, "data.visited_country", "invalid_field"},
		{"unknown network", `"network":"terrestrial"`, `"network":"satellite"`, "data.network", "invalid_field"},
		{"missing data", `,
 "data":{"call_id":"c-77","direction":"MO","duration_seconds":125,"called_number":"+861012345678",
         "visited_country":"SG","network":"terrestrial"}`, ``, "data", "invalid_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(goodEvent, tc.from, tc.to, 1)
			require.NotEqual(t, goodEvent, body, "the case must change the event")
			_, err := DecodeUsageEvent([]byte(body))
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, wuyou.EINVALID, we.Code)
			require.Equal(t, tc.code, we.Reason)
			if tc.field != "" {
				var fields []string
				for _, f := range we.Fields {
					fields = append(fields, f.Field)
				}
				require.Contains(t, fields, tc.field)
			}
		})
	}
}

func TestDecodeRejectsOversizedEvents(t *testing.T) {
	big := strings.Replace(goodEvent, `"c-77"`, `"`+strings.Repeat("x", MaxEventBytes)+`"`, 1)
	_, err := DecodeUsageEvent([]byte(big))
	var we *wuyou.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "too_large", we.Reason)
}

// FuzzDecodeUsageEvent: any input either decodes to an event that satisfies
// every rule, or is refused with an EINVALID error that has a reason — never
// a panic.
func FuzzDecodeUsageEvent(f *testing.F) {
	f.Add([]byte(goodEvent))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"specversion":"1.0","data":null}`))
	f.Add([]byte(strings.Replace(goodEvent, "voice", "sms", 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeUsageEvent(b)
		if err != nil {
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, wuyou.EINVALID, we.Code)
			require.NotEmpty(t, we.Reason)
			require.NotEmpty(t, we.Message)
			return
		}
		require.Equal(t, "1.0", ev.SpecVersion)
		require.NotEmpty(t, ev.ID)
		require.NotEmpty(t, ev.Source)
		require.True(t, crew.ValidMSISDN(ev.Subject))
		require.GreaterOrEqual(t, ev.Data.DurationSeconds, int64(0))
		require.Contains(t, []string{"MO", "MT"}, ev.Data.Direction)
		require.False(t, ev.Time.IsZero() && !strings.Contains(string(b), "0001-01-01"))
		// An accepted event round-trips through JSON to the same event.
		again, err := json.Marshal(ev)
		require.NoError(t, err)
		if utf8.Valid(again) {
			ev2, err := DecodeUsageEvent(again)
			require.NoError(t, err)
			require.Equal(t, ev.Identity(), ev2.Identity())
		}
	})
}
