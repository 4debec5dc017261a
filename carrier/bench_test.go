package carrier

import (
	"strings"
	"testing"
	"time"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// The consumer's own CPU per event is mostly these two: reading the
// carrier's event and writing the ledger entry back out (bench/ measures
// the whole path; these isolate the encoding work).

var benchEvent = []byte(`{"specversion":"1.0","id":"cdr-000123","source":"urn:carrier:cmcc:roaming","type":"carrier.usage.voice",
 "time":"2026-11-28T10:15:00Z","subject":"+8613800000001",
 "data":{"call_id":"c-77","direction":"MO","duration_seconds":125,"called_number":"+861012345678",
         "visited_country":"SG","network":"terrestrial"}}`)

func BenchmarkDecodeUsageEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeUsageEvent(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// An event carrying CloudEvents extensions takes the decoder's slower path:
// unknown members are kept so that case variants of fields can be refused.
func BenchmarkDecodeUsageEventWithExtensions(b *testing.B) {
	ev := []byte(strings.Replace(string(benchEvent), `"specversion":"1.0",`,
		`"specversion":"1.0","datacontenttype":"application/json","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",`, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeUsageEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLedgerMessage(b *testing.B) {
	call := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)
	e := &quota.LedgerEntry{ID: "d_0123456789abcdef0123", Kind: quota.KindDebit, At: call.Add(time.Minute), EventID: "cdr-000123",
		Source: "urn:carrier:cmcc:roaming", Type: TypeVoice, CallTime: &call, DurationSeconds: 125, BillableSeconds: 180,
		CoveredSeconds: 180, OverageAmount: billing.Money{Currency: "CNY"}, WelfareCost: &billing.Money{Minor: 30, Currency: "CNY"},
		StatementPeriod: "2026-11", CalledNumber: "+861012345678", VisitedCountry: "SG", MSISDN: "+8613800000001",
		Draws: []quota.Draw{{GrantID: "gr_0123456789abcdef0123", ProgrammeID: "pr_1", Seconds: 180}}}
	p := NewPublisher(nil, NewTopics(""), time.Now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.LedgerMessage("sf_1", "+8613800000001", e); err != nil {
			b.Fatal(err)
		}
	}
}
