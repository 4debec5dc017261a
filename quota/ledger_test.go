package quota

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
)

// FuzzLedgerRecord: whatever text the carrier puts in an event's fields, a
// debit's compact record reads back as the entry that was written: escaping
// keeps spaces, newlines and percent signs out of the record's separators.
func FuzzLedgerRecord(f *testing.F) {
	f.Add("cdr-1", "carrier.usage.voice", "+8613800000001", "+861012345678", "SG", int64(1795860000), int64(125))
	f.Add("id with spaces", "", "", "", "", int64(0), int64(0))
	f.Add("a%20b\nc\r", "x y", "%", "100%", "\n", int64(-86400*9), int64(7))
	f.Fuzz(func(t *testing.T, eventID, typ, msisdn, called, country string, callUnix, duration int64) {
		if callUnix < -1e11 || callUnix > 1e11 {
			t.Skip("times Go cannot print")
		}
		call := time.Unix(callUnix, 0).UTC()
		at := call.Add(90*time.Second + 250*time.Millisecond)
		u := Usage{EventID: eventID, Source: "s", Type: typ, MSISDN: msisdn, CalledNumber: called,
			VisitedCountry: country, CallTime: call, DurationSeconds: duration, BillableSeconds: 120}
		rec := debitRecordHead(u, "0123456789abcdef0123", at) + "120" + billableSuffix(u) + " 60 150 CNY 30 2026-12 2026-11 gr_1:40 gr_2:20"
		require.NotContains(t, rec, "\n", "a record is one line")
		e, err := decodeRecord(ledgerBucket(call), rec)
		require.NoError(t, err)
		require.Equal(t, &LedgerEntry{
			ID: "d_0123456789abcdef0123", Kind: KindDebit, At: at, EventID: eventID, Type: typ, MSISDN: msisdn,
			CallTime: &call, DurationSeconds: duration, CalledNumber: called, VisitedCountry: country,
			BillableSeconds: 120, CoveredSeconds: 60, OverageSeconds: 60,
			OverageAmount: billing.Money{Minor: 150, Currency: "CNY"}, WelfareCost: &billing.Money{Minor: 30, Currency: "CNY"},
			StatementPeriod: "2026-12", AdjustsPeriod: "2026-11",
			Draws: []Draw{{GrantID: "gr_1", Seconds: 40}, {GrantID: "gr_2", Seconds: 20}},
		}, e)
	})
}

func TestVoidRecordsReadBack(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 123e6, time.UTC)
	v, err := decodeRecord(ledgerBucket(at), voidRecordHead(at, "gr_1")+"480")
	require.NoError(t, err)
	require.Equal(t, &LedgerEntry{ID: "v_gr_1", Kind: KindVoid, At: at, GrantID: "gr_1", Seconds: 480, Draws: []Draw{}}, v)
}

// A record that is not a debit's or a void's (Redis keeps no grant records), or misses fields, is an
// error naming it, never a zero entry.
func TestMalformedLedgerRecordsAreRefused(t *testing.T) {
	for _, rec := range []string{"", "x 1 2", "g 1 0 gr_1 pr_1 600", "v 1 0 gr_1 many", "d 1 id 0 e v m 1 c SG 60",
		"d 1 id 0 e v m 1 c SG 60 60 0 CNY 0 2026-11  gr_1:pr_1:60"} {
		_, err := decodeRecord(0, rec)
		require.Error(t, err, "%q", rec)
	}
}

// The carrier's event types (billing's words) are stored as one letter
// each; any other type is kept as written.
func TestTheCarriersEventTypesAreStoredAsOneLetterAndReadBack(t *testing.T) {
	for _, tc := range []struct{ typ, code string }{
		{billing.TypeVoice, "v"}, {billing.TypeSMS, "s"}, {billing.TypeData, "d"},
		{"", "-"}, {"carrier.usage.fax", "=carrier.usage.fax"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			require.Equal(t, tc.code, encodeType(tc.typ))
			require.Equal(t, tc.typ, decodeType(encodeType(tc.typ)))
		})
	}
}
