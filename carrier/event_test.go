package carrier

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
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

// withEvent replaces the first from in the contract example with to.
func withEvent(tb testing.TB, from, to string) string {
	tb.Helper()
	body := strings.Replace(goodEvent, from, to, 1)
	require.NotEqual(tb, goodEvent, body, "%q is not in the example", from)
	return body
}

// hostileEvent is an input a lenient reader would take one way and Wuyou
// must refuse, with the error_code the dead letter carries and the field it
// names (empty: no field).
type hostileEvent struct {
	name, body, code, field string
}

// hostileEvents are the ways one message could be read as two different
// events, or as an event it is not. Each name says what is refused and why.
func hostileEvents(tb testing.TB) []hostileEvent {
	tb.Helper()
	secondSeafarer := withEvent(tb, "+8613800000001", "+8613800000002")
	return []hostileEvent{
		// Exactly one JSON document, nothing around it but whitespace.
		{"two documents: the second would be dropped unseen", goodEvent + goodEvent, "malformed_json", ""},
		{"two documents on two lines: a second seafarer's call", goodEvent + "\n" + secondSeafarer, "malformed_json", ""},
		{"trailing garbage after the object", goodEvent + "GARBAGE", "malformed_json", ""},
		{"trailing NUL after the object", goodEvent + "\x00", "malformed_json", ""},
		{"trailing comma after the object", goodEvent + ",", "malformed_json", ""},
		{"byte order mark before the object", "\ufeff" + goodEvent, "malformed_json", ""},
		{"top-level null is not an event", `null`, "malformed_json", ""},
		{"top-level string is not an event", `"` + strings.ReplaceAll(goodEvent, `"`, `\"`) + `"`, "malformed_json", ""},
		{"empty message", ``, "malformed_json", ""},
		{"whitespace only", " \n\t", "malformed_json", ""},
		{"invalid UTF-8 in a string", withEvent(tb, "cdr-000123", "cdr-\xff000123"), "malformed_json", ""},
		{"invalid UTF-8 in a name", withEvent(tb, `"network"`, "\"netw\xc3ork\""), "malformed_json", ""},
		{"escaped lone surrogate", withEvent(tb, "cdr-000123", `cdr-\ud800`), "malformed_json", ""},
		{"bare NaN is not JSON", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":NaN`), "malformed_json", ""},
		{"bare Infinity is not JSON", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":-Infinity`), "malformed_json", ""},
		{"single-quoted string is not JSON", withEvent(tb, `"MO"`, `'MO'`), "malformed_json", ""},

		// Names match exactly and once.
		{"SUBJECT beside subject: another seafarer for a lenient reader", withEvent(tb, `"subject":"+8613800000001",`, `"subject":"+8613800000001","SUBJECT":"+8613800000002",`), "duplicate_key", "subject"},
		{"Subject before subject", withEvent(tb, `"subject":"+8613800000001",`, `"Subject":"+8613800000002","subject":"+8613800000001",`), "duplicate_key", "subject"},
		{"Unicode case fold ſubject beside subject", withEvent(tb, `"subject":"+8613800000001",`, `"subject":"+8613800000001","ſubject":"+8613800000002",`), "duplicate_key", "subject"},
		{"DATA beside data", withEvent(tb, `"data":{`, `"DATA":{},"data":{`), "duplicate_key", "data"},
		{"Duration_Seconds beside duration_seconds in data", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":125,"Duration_Seconds":9`), "duplicate_key", "data.duration_seconds"},
		{"SUBJECT instead of subject: the subject is missing", withEvent(tb, `"subject"`, `"SUBJECT"`), "invalid_field", "subject"},
		{"subject twice", withEvent(tb, `"subject":"+8613800000001",`, `"subject":"+8613800000001","subject":"+8613800000002",`), "duplicate_key", "subject"},
		{"subject twice, once escaped", withEvent(tb, `"subject":"+8613800000001",`, `"subject":"+8613800000001","subj\u0065ct":"+8613800000002",`), "duplicate_key", "subject"},
		{"call_id twice inside data", withEvent(tb, `"call_id":"c-77",`, `"call_id":"c-77","call_id":"c-78",`), "duplicate_key", "data.call_id"},
		{"duration_seconds twice inside data", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":0,"duration_seconds":125`), "duplicate_key", "data.duration_seconds"},
		{"a name twice inside an extension", withEvent(tb, `"specversion":"1.0",`, `"specversion":"1.0","carrierext":{"a":1,"a":2},`), "duplicate_key", "carrierext.a"},
		{"an extension twice", withEvent(tb, `"specversion":"1.0",`, `"traceparent":"x","specversion":"1.0","traceparent":"y",`), "duplicate_key", "traceparent"},
		{"a repeated name wins over an earlier wrong type", withEvent(tb, `"specversion":"1.0",`, `"specversion":1,"id":"x",`), "duplicate_key", "id"},

		// data is an object.
		{"null data", withEvent(tb, `"data":{`, `"data":null,"x":{`), "invalid_field", "data"},
		{"data as an array", withEvent(tb, `"data":{`, `"data":[],"x":{`), "invalid_field", "data"},
		{"data as a string", withEvent(tb, `"data":{`, `"data":"{}","x":{`), "invalid_field", "data"},

		// Known fields have their JSON type.
		{"duration as a string", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":"12"`), "invalid_field", "data.duration_seconds"},
		{"duration as NaN in a string", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":"NaN"`), "invalid_field", "data.duration_seconds"},
		{"duration as a boolean", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":true`), "invalid_field", "data.duration_seconds"},
		{"duration with a fraction", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":12.5`), "invalid_field", "data.duration_seconds"},
		{"duration with an exponent", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":1e2`), "invalid_field", "data.duration_seconds"},
		{"duration beyond int64", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":99999999999999999999`), "invalid_field", "data.duration_seconds"},
		{"duration 1e400", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":1e400`), "invalid_field", "data.duration_seconds"},
		{"duration at int64's maximum is longer than a week", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":9223372036854775807`), "invalid_field", "data.duration_seconds"},
		{"duration at int64's minimum", withEvent(tb, `"duration_seconds":125`, `"duration_seconds":-9223372036854775808`), "invalid_field", "data.duration_seconds"},
		{"subject as a number", withEvent(tb, `"subject":"+8613800000001"`, `"subject":8613800000001`), "invalid_field", "subject"},
		{"specversion as a number", withEvent(tb, `"specversion":"1.0"`, `"specversion":1.0`), "invalid_field", "specversion"},
		{"id as an object", withEvent(tb, `"id":"cdr-000123"`, `"id":{"cdr":123}`), "invalid_field", "id"},
		{"time as Unix seconds", withEvent(tb, `"time":"2026-11-28T10:15:00Z"`, `"time":1795860900`), "invalid_field", "time"},
		{"direction as an array", withEvent(tb, `"direction":"MO"`, `"direction":["MO"]`), "invalid_field", "data.direction"},
		{"null time", withEvent(tb, `"time":"2026-11-28T10:15:00Z"`, `"time":null`), "invalid_field", "time"},

		// time is RFC 3339 in the years 1970 to 9999.
		{"year 10000", withEvent(tb, "2026-11-28T10:15:00Z", "10000-11-28T10:15:00Z"), "invalid_field", "time"},
		{"negative year", withEvent(tb, "2026-11-28T10:15:00Z", "-0001-11-28T10:15:00Z"), "invalid_field", "time"},
		{"year 0000", withEvent(tb, "2026-11-28T10:15:00Z", "0000-11-28T10:15:00Z"), "invalid_field", "time"},
		{"1969, before any CDR", withEvent(tb, "2026-11-28T10:15:00Z", "1969-12-31T23:59:59Z"), "invalid_field", "time"},
		{"1970 local is 1969 in UTC", withEvent(tb, "2026-11-28T10:15:00Z", "1970-01-01T00:30:00+01:00"), "invalid_field", "time"},
		{"9999 local is 10000 in UTC", withEvent(tb, "2026-11-28T10:15:00Z", "9999-12-31T23:30:00-01:00"), "invalid_field", "time"},
		{"one-digit hour (time.Parse takes it)", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T1:15:00Z"), "invalid_field", "time"},
		{"comma before the fraction (time.Parse takes it)", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00,5Z"), "invalid_field", "time"},
		{"offset of 24 hours (time.Parse takes it)", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00+24:00"), "invalid_field", "time"},
		{"offset minute 60", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00+05:60"), "invalid_field", "time"},
		{"period without a fraction", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00.Z"), "invalid_field", "time"},
		{"lower-case t and z", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28t10:15:00z"), "invalid_field", "time"},
		{"13th month", withEvent(tb, "2026-11-28T10:15:00Z", "2026-13-28T10:15:00Z"), "invalid_field", "time"},
		{"hour 24", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T24:00:00Z"), "invalid_field", "time"},
		{"no time zone", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00"), "invalid_field", "time"},
		{"space instead of T", withEvent(tb, "2026-11-28T10:15:00Z", "2026-11-28 10:15:00Z"), "invalid_field", "time"},
		{"30 February", withEvent(tb, "2026-11-28T10:15:00Z", "2026-02-30T10:15:00Z"), "invalid_field", "time"},
		{"leap second", withEvent(tb, "2026-11-28T10:15:00Z", "2026-12-31T23:59:60Z"), "invalid_field", "time"},

		// Ids and sources are text: the identity is source + NUL + id.
		{"NUL in id would forge another identity", withEvent(tb, "cdr-000123", `cdr\u0000000123`), "invalid_field", "id"},
		{"newline in source", withEvent(tb, "urn:carrier:cmcc:roaming", `urn:carrier\n:cmcc`), "invalid_field", "source"},
		{"C1 control in source", withEvent(tb, "urn:carrier:cmcc:roaming", `urn:carrier\u0085:cmcc`), "invalid_field", "source"},
		{"DEL in id", withEvent(tb, "cdr-000123", "cdr-\x7f000123"), "invalid_field", "id"},
		{"bell in call_id", withEvent(tb, `"c-77"`, `"c-\u000777"`), "invalid_field", "data.call_id"},
		{"id longer than 256 bytes", withEvent(tb, "cdr-000123", strings.Repeat("x", 257)), "invalid_field", "id"},

		// The subject is an MSISDN by crew's one rule.
		{"subject +0…: no country code starts with 0", withEvent(tb, "+8613800000001", "+0123456789"), "invalid_field", "subject"},
		{"subject with full-width digits", withEvent(tb, "+8613800000001", "+８６１３８０００００００１"), "invalid_field", "subject"},
		{"subject with a trailing space", withEvent(tb, "+8613800000001", "+8613800000001 "), "invalid_field", "subject"},
	}
}

func TestDecodeRefusesEventsALenientReaderWouldMisread(t *testing.T) {
	for _, tc := range hostileEvents(t) {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeUsageEvent([]byte(tc.body))
			require.Nil(t, ev)
			we := requireRefused(t, err, tc.code)
			if tc.field != "" {
				require.Contains(t, fieldNames(we), tc.field, "message: %s", we.Message)
			}
		})
	}
}

func TestDecodeAllowsWhatCloudEventsAllows(t *testing.T) {
	cases := []struct{ name, body string }{
		{"whitespace around the object", " \r\n\t" + goodEvent + "\n\n"},
		{"CloudEvents extensions", withEvent(t, `"specversion":"1.0",`, `"specversion":"1.0","datacontenttype":"application/json","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",`)},
		{"unknown members in data", withEvent(t, `"network":"terrestrial"`, `"network":"terrestrial","cell_id":"460-00-1234","extra":{"a":[1,2]}`)},
		{"an extension whose name contains a field's name", withEvent(t, `"specversion":"1.0",`, `"specversion":"1.0","subjectx":"y","datax":null,`)},
		{"year 9999", withEvent(t, "2026-11-28T10:15:00Z", "9999-12-31T23:59:59Z")},
		{"year 1970", withEvent(t, "2026-11-28T10:15:00Z", "1970-01-01T00:00:00Z")},
		{"nanoseconds", withEvent(t, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00.123456789Z")},
		{"an offset", withEvent(t, "2026-11-28T10:15:00Z", "2026-11-28T10:15:00-23:59")},
		{"29 February of a leap year", withEvent(t, "2026-11-28T10:15:00Z", "2028-02-29T10:15:00Z")},
		{"non-ASCII text in ids", withEvent(t, "cdr-000123", "cdr-中国移动-000123")},
		{"escaped ASCII in a value", withEvent(t, "cdr-000123", `cdr-\u0030\u0030\u0030123`)},
		{"8-digit and 15-digit subjects", withEvent(t, "+8613800000001", "+12345678")},
		{"15-digit subject", withEvent(t, "+8613800000001", "+123456789012345")},
		{"duration 0", withEvent(t, `"duration_seconds":125`, `"duration_seconds":0`)},
		{"duration -0", withEvent(t, `"duration_seconds":125`, `"duration_seconds":-0`)},
		{"null call_id is empty", withEvent(t, `"call_id":"c-77"`, `"call_id":null`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeUsageEvent([]byte(tc.body))
			require.NoError(t, err)
		})
	}
}

func TestDecodeNamesTheDuplicatedKey(t *testing.T) {
	_, err := DecodeUsageEvent([]byte(withEvent(t, `"call_id":"c-77",`, `"call_id":"c-77","call_id":"c-78",`)))
	we := requireRefused(t, err, "duplicate_key")
	require.Equal(t, []wuyou.FieldError{{Field: "data.call_id", Message: "appears twice in one object"}}, we.Fields)
	require.Contains(t, we.Message, "data.call_id")

	_, err = DecodeUsageEvent([]byte(withEvent(t, `"subject":"+8613800000001",`, `"subject":"+8613800000001","SUBJECT":"+8613800000002",`)))
	we = requireRefused(t, err, "duplicate_key")
	require.Equal(t, "subject", we.Fields[0].Field)
	require.Contains(t, we.Fields[0].Message, `"SUBJECT"`)
}

func TestDecodeNamesAWrongTypeAndEveryBadFieldOtherwise(t *testing.T) {
	_, err := DecodeUsageEvent([]byte(withEvent(t, `"duration_seconds":125`, `"duration_seconds":"12"`)))
	we := requireRefused(t, err, "invalid_field")
	require.Equal(t, []string{"data.duration_seconds"}, fieldNames(we))
	require.Contains(t, we.Fields[0].Message, "JSON integer")

	body := withEvent(t, `"specversion":"1.0"`, `"specversion":"0.3"`)
	body = strings.Replace(body, `"direction":"MO"`, `"direction":"IN"`, 1)
	_, err = DecodeUsageEvent([]byte(body))
	we = requireRefused(t, err, "invalid_field")
	require.Equal(t, []string{"specversion", "data.direction"}, fieldNames(we))
}

// A subject that is not an MSISDN by crew's rule is dead-lettered as
// invalid_field; it is never held for an enrolment that could not happen.
func TestSubjectStartingWithPlusZeroIsInvalidNeverHeld(t *testing.T) {
	_, err := DecodeUsageEvent([]byte(withEvent(t, "+8613800000001", "+0123456789")))
	we := requireRefused(t, err, "invalid_field")
	require.Equal(t, []wuyou.FieldError{{Field: "subject", Message: "must be " + crew.MSISDNRule}}, we.Fields)
}

func TestYear9999IsDecodedButRefusedAsAFutureCall(t *testing.T) {
	ev, err := DecodeUsageEvent([]byte(withEvent(t, "2026-11-28T10:15:00Z", "9999-12-31T23:59:59Z")))
	require.NoError(t, err)
	now := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	we := requireRefused(t, CheckCallTime(ev.Time, now, 24*time.Hour), "invalid_field")
	require.Equal(t, []wuyou.FieldError{{Field: "time", Message: "more than 24h after now"}}, we.Fields)
}

func TestCheckCallTimeAllowsTheClockSkewAndNoMore(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	skew := 24 * time.Hour
	require.NoError(t, CheckCallTime(now.AddDate(-1, 0, 0), now, skew), "a call in the past")
	require.NoError(t, CheckCallTime(now, now, skew))
	require.NoError(t, CheckCallTime(now.Add(skew), now, skew), "exactly the skew ahead")
	requireRefused(t, CheckCallTime(now.Add(skew+time.Nanosecond), now, skew), "invalid_field")
	we := requireRefused(t, CheckCallTime(now.Add(time.Minute), now, 90*time.Second-time.Minute), "invalid_field")
	require.Equal(t, "more than 30s after now", we.Fields[0].Message)
	we = requireRefused(t, CheckCallTime(now.Add(2*time.Hour), now, 90*time.Minute), "invalid_field")
	require.Equal(t, "more than 1h30m after now", we.Fields[0].Message)
}

// The lists the case check uses are the event's own JSON names.
func TestMemberListsAreTheEventsJSONNames(t *testing.T) {
	tags := func(v any) []string {
		var names []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			names = append(names, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		return names
	}
	require.Equal(t, tags(UsageEvent{}), eventMembers)
	require.Equal(t, tags(UsageData{}), dataMembers)
}

// requireRefused asserts err is an EINVALID *wuyou.Error with the given
// reason, and that refusals naming fields have some.
func requireRefused(tb testing.TB, err error, reason string) *wuyou.Error {
	tb.Helper()
	var we *wuyou.Error
	require.ErrorAs(tb, err, &we)
	require.Equal(tb, wuyou.EINVALID, we.Code)
	require.Equal(tb, reason, we.Reason, "message: %s", we.Message)
	require.NotEmpty(tb, we.Message)
	if reason == "invalid_field" || reason == "duplicate_key" {
		require.NotEmpty(tb, we.Fields)
	}
	return we
}

func fieldNames(we *wuyou.Error) []string {
	var names []string
	for _, f := range we.Fields {
		names = append(names, f.Field)
	}
	return names
}

// requireEventFollowsRules asserts every field rule of an accepted event.
func requireEventFollowsRules(tb testing.TB, ev *UsageEvent) {
	tb.Helper()
	text := func(s string) bool {
		return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
	}
	require.Equal(tb, "1.0", ev.SpecVersion)
	require.True(tb, ev.ID != "" && len(ev.ID) <= 256 && text(ev.ID), "id %q", ev.ID)
	require.True(tb, ev.Source != "" && len(ev.Source) <= 256 && text(ev.Source), "source %q", ev.Source)
	require.Contains(tb, []string{TypeVoice, TypeSMS, TypeData}, ev.Type)
	require.True(tb, crew.ValidMSISDN(ev.Subject), "subject %q", ev.Subject)
	require.Equal(tb, time.UTC, ev.Time.Location())
	require.True(tb, ev.Time.Year() >= 1970 && ev.Time.Year() <= 9999, "time %v", ev.Time)
	d := ev.Data
	require.Contains(tb, []string{"MO", "MT"}, d.Direction)
	require.True(tb, d.DurationSeconds >= 0 && d.DurationSeconds <= 604800, "duration %d", d.DurationSeconds)
	require.Regexp(tb, `^[A-Z]{2}$`, d.VisitedCountry)
	require.Contains(tb, []string{"terrestrial", "maritime"}, d.Network)
	require.True(tb, len(d.CalledNumber) <= 32 && text(d.CalledNumber) && text(d.CallID))
}

// objectNames reads b with encoding/json (not the decoder under test) and
// returns, for the top-level object and for its data object, every member
// name in order, repeats included. ok is false if b is not one object.
func objectNames(b []byte) (top, data []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // 1e400 is a JSON number, if not a float64
	// path holds, for each open container, whether it is an object, its
	// member names so far and whether the next string is a name.
	type frame struct {
		object, wantName bool
		names            *[]string
	}
	var stack []frame
	var lastName string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, false
		}
		var parent *frame
		if len(stack) > 0 {
			parent = &stack[len(stack)-1]
		}
		if parent != nil && parent.object && parent.wantName && tok != json.Delim('}') {
			name := tok.(string)
			if parent.names != nil {
				*parent.names = append(*parent.names, name)
			}
			lastName, parent.wantName = name, false
			continue
		}
		if parent != nil && parent.object {
			parent.wantName = true // this token is a member's value
		}
		switch tok {
		case json.Delim('{'):
			var names *[]string
			switch {
			case len(stack) == 0:
				names = &top
			case len(stack) == 1 && lastName == "data":
				names = &data
			}
			stack = append(stack, frame{object: true, wantName: true, names: names})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantName = true
			}
		}
	}
	return top, data, top != nil
}

// FuzzDecodeUsageEvent: any input either decodes to an event that satisfies
// every rule and survives a round trip, or is refused with an EINVALID error
// that has a reason — never a panic. An accepted input is one JSON object
// whose names are unique, and none differs only in case from a field.
func FuzzDecodeUsageEvent(f *testing.F) {
	f.Add([]byte(goodEvent))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"specversion":"1.0","data":null}`))
	f.Add([]byte(strings.Replace(goodEvent, "voice", "sms", 1)))
	for _, tc := range hostileEvents(f) {
		f.Add([]byte(tc.body))
	}
	reasons := []string{"too_large", "malformed_json", "duplicate_key", "invalid_field"}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeUsageEvent(b)
		if err != nil {
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Contains(t, reasons, we.Reason)
			requireRefused(t, err, we.Reason)
			return
		}
		requireEventFollowsRules(t, ev)

		// Exactly one object with unique names, none a case variant of a field.
		top, data, ok := objectNames(b)
		require.True(t, ok, "accepted input is not one JSON object")
		for _, names := range []struct {
			got    []string
			fields []string
		}{{top, eventMembers}, {data, dataMembers}} {
			seen := map[string]bool{}
			for _, name := range names.got {
				require.False(t, seen[name], "accepted %q twice", name)
				seen[name] = true
				for _, field := range names.fields {
					require.False(t, name != field && strings.EqualFold(name, field), "accepted %q beside field %q", name, field)
				}
			}
		}

		// An accepted event round-trips through JSON to the same event.
		again, err := jsonv2.Marshal(ev)
		require.NoError(t, err)
		ev2, err := DecodeUsageEvent(again)
		require.NoError(t, err, "re-encoded: %s", again)
		require.Equal(t, ev, ev2)
	})
}
