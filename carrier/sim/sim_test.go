package sim_test

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
)

type message struct {
	key, value []byte
	kind       sim.Kind
}

// MustGenerate runs sim.Generate and returns every message it emitted.
func MustGenerate(tb testing.TB, cfg sim.Config, n int) ([]message, *sim.Summary) {
	tb.Helper()
	var msgs []message
	sum, err := sim.Generate(cfg, n, func(key, value []byte, kind sim.Kind) {
		msgs = append(msgs, message{key, value, kind})
	})
	if err != nil {
		tb.Fatalf("Generate: %v", err)
	}
	if len(msgs) != n {
		tb.Fatalf("Generate emitted %d messages, want %d", len(msgs), n)
	}
	return msgs, sum
}

func testConfig() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Seed = 42
	cfg.Start = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 100; i++ {
		cfg.MSISDNs = append(cfg.MSISDNs, fmt.Sprintf("+86138%08d", i))
	}
	cfg.Duplicates = 0.05
	cfg.Late = 0.02
	cfg.Reorder = 0.03
	cfg.Malformed = 0.01
	return cfg
}

func TestSameSeedGivesSameEventsByteForByte(t *testing.T) {
	t.Parallel()
	a, sa := MustGenerate(t, testConfig(), 2000)
	b, sb := MustGenerate(t, testConfig(), 2000)
	for i := range a {
		if !bytes.Equal(a[i].key, b[i].key) || !bytes.Equal(a[i].value, b[i].value) || a[i].kind != b[i].kind {
			t.Fatalf("message %d differs between two runs with one seed:\n%s\n%s", i, a[i].value, b[i].value)
		}
	}
	if sa.Totals != sb.Totals {
		t.Fatalf("totals differ: %+v vs %+v", sa.Totals, sb.Totals)
	}

	other := testConfig()
	other.Seed = 43
	c, _ := MustGenerate(t, other, 2000)
	same := 0
	for i := range a {
		if bytes.Equal(a[i].value, c[i].value) {
			same++
		}
	}
	if same > 20 {
		t.Fatalf("%d of 2000 messages equal across different seeds", same)
	}
}

func TestFaultFractionsAreRoughlyRespected(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	const n = 10000
	_, sum := MustGenerate(t, cfg, n)
	tot := sum.Totals
	for _, c := range []struct {
		name string
		got  int64
		want float64
	}{
		{"duplicates", tot.Duplicates, cfg.Duplicates},
		{"late", tot.Late, cfg.Late},
		{"reordered", tot.Reordered, cfg.Reorder},
		{"malformed", tot.Malformed, cfg.Malformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want * n
			// Five standard deviations of a binomial count, at least 10.
			tol := math.Max(10, 5*math.Sqrt(n*c.want*(1-c.want)))
			if math.Abs(float64(c.got)-want) > tol {
				t.Errorf("%s: got %d of %d, want %.0f ± %.0f", c.name, c.got, n, want, tol)
			}
		})
	}
	if tot.Sent != n || tot.Distinct+tot.Duplicates+tot.Malformed != n {
		t.Errorf("sent %d = distinct %d + duplicates %d + malformed %d, want %d", tot.Sent, tot.Distinct, tot.Duplicates, tot.Malformed, n)
	}
}

func TestVoiceShareAndDomesticShareAreRealistic(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Duplicates, cfg.Late, cfg.Reorder, cfg.Malformed = 0, 0, 0, 0
	msgs, _ := MustGenerate(t, cfg, 10000)
	var voice, domestic, maritime, mo, zero, midLength int
	for _, m := range msgs {
		ev, err := carrier.DecodeUsageEvent(m.value)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if ev.Data.Network == "maritime" {
			maritime++
		}
		if ev.Data.Direction == "MO" {
			mo++
		}
		if ev.Data.VisitedCountry == cfg.Home {
			domestic++
		}
		if ev.Type != carrier.TypeVoice {
			continue
		}
		voice++
		switch d := ev.Data.DurationSeconds; {
		case d == 0:
			zero++
		case d >= 30 && d <= 15*60:
			midLength++
		}
	}
	within := func(name string, got int, of int, lo, hi float64) {
		t.Helper()
		if f := float64(got) / float64(of); f < lo || f > hi {
			t.Errorf("%s: %.3f, want between %.2f and %.2f", name, f, lo, hi)
		}
	}
	within("voice share", voice, len(msgs), 0.77, 0.83)
	within("domestic share", domestic, len(msgs), 0.03, 0.10)
	within("maritime share", maritime, len(msgs), 0.17, 0.23)
	within("mobile-originated share", mo, len(msgs), 0.80, 0.90)
	within("unanswered voice calls", zero, voice, 0.03, 0.07)
	within("voice calls of 30s to 15min", midLength, voice, 0.75, 0.95)
}

func TestEveryValidEventDecodesAndEveryMalformedOneFails(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Malformed = 0.2 // plenty of each flavour of garbage
	msgs, sum := MustGenerate(t, cfg, 10000)
	var malformed int64
	for i, m := range msgs {
		ev, err := carrier.DecodeUsageEvent(m.value)
		if m.kind == sim.Malformed {
			malformed++
			if err == nil {
				t.Fatalf("message %d is malformed but decodes: %q", i, m.value)
			}
			continue
		}
		if err != nil {
			t.Fatalf("message %d (%v) does not decode: %v\n%s", i, m.kind, err, m.value)
		}
		if string(m.key) != ev.Subject {
			t.Fatalf("message %d: key %q, subject %q", i, m.key, ev.Subject)
		}
		if ev.Source != cfg.Source {
			t.Fatalf("message %d: source %q", i, ev.Source)
		}
	}
	if malformed != sum.Totals.Malformed || malformed == 0 {
		t.Fatalf("%d malformed messages emitted, summary says %d", malformed, sum.Totals.Malformed)
	}
}

func TestCallTimesFollowTheirKind(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	msgs, _ := MustGenerate(t, cfg, 5000)
	for i, m := range msgs {
		if m.kind == sim.Malformed || m.kind == sim.Duplicate {
			continue
		}
		ev, err := carrier.DecodeUsageEvent(m.value)
		if err != nil {
			t.Fatal(err)
		}
		now := cfg.Start.Add(time.Duration(i) * cfg.Step)
		age := now.Sub(ev.Time)
		switch m.kind {
		case sim.Fresh:
			if age != 0 {
				t.Fatalf("fresh event %d is %v old", i, age)
			}
		case sim.Reordered:
			if age <= 0 || age > time.Hour+time.Second {
				t.Fatalf("reordered event %d is %v old, want up to an hour", i, age)
			}
		case sim.Late:
			if age < cfg.LateAge {
				t.Fatalf("late event %d is %v old, want at least %v", i, age, cfg.LateAge)
			}
		}
	}
}

func TestDuplicatesRepeatAnEarlierEventExactly(t *testing.T) {
	t.Parallel()
	msgs, _ := MustGenerate(t, testConfig(), 5000)
	seen := map[string]bool{}
	dups := 0
	for i, m := range msgs {
		switch m.kind {
		case sim.Malformed:
		case sim.Duplicate:
			dups++
			if !seen[string(m.value)] {
				t.Fatalf("duplicate %d repeats nothing sent before: %s", i, m.value)
			}
		default:
			if seen[string(m.value)] {
				t.Fatalf("message %d is not marked duplicate but was sent before", i)
			}
			seen[string(m.value)] = true
		}
	}
	if dups == 0 {
		t.Fatal("no duplicates generated")
	}
}

// TestSummaryTotalsEqualARecomputationFromTheWire recomputes what Wuyou
// would apply from the bytes alone: dedupe by source+id, skip late events,
// round eligible voice calls up to a minute and eligible data sessions up
// to 1024 bytes, count eligible SMS.
func TestSummaryTotalsEqualARecomputationFromTheWire(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	msgs, sum := MustGenerate(t, cfg, 10000)
	type totals struct{ distinct, voice, eligible, billable, data, eligibleData, bytes, sms, eligibleSMS int64 }
	per := map[string]*totals{}
	seen := map[string]bool{}
	var all totals
	add := func(p *totals, f func(*totals)) { f(p); f(&all) }
	for _, m := range msgs {
		ev, err := carrier.DecodeUsageEvent(m.value)
		if err != nil {
			continue
		}
		if seen[ev.Identity()] {
			continue
		}
		seen[ev.Identity()] = true
		p := per[ev.Subject]
		if p == nil {
			p = &totals{}
			per[ev.Subject] = p
		}
		add(p, func(t *totals) { t.distinct++ })
		if m.kind == sim.Late {
			continue
		}
		abroad := ev.Data.VisitedCountry != cfg.Home
		switch ev.Type {
		case carrier.TypeVoice:
			add(p, func(t *totals) { t.voice++ })
			if abroad {
				billable := (ev.Data.DurationSeconds + 59) / 60 * 60
				add(p, func(t *totals) { t.eligible++; t.billable += billable })
			}
		case carrier.TypeData:
			add(p, func(t *totals) { t.data++ })
			if abroad {
				billable := (ev.Data.VolumeBytes + 1023) / 1024 * 1024
				add(p, func(t *totals) { t.eligibleData++; t.bytes += billable })
			}
		case carrier.TypeSMS:
			add(p, func(t *totals) { t.sms++ })
			if abroad {
				add(p, func(t *totals) { t.eligibleSMS++ })
			}
		}
	}
	of := func(s *sim.Totals) totals {
		return totals{s.Distinct, s.VoiceCalls, s.EligibleVoiceCalls, s.BillableSeconds,
			s.DataSessions, s.EligibleDataSessions, s.BillableBytes, s.SMS, s.EligibleSMS}
	}
	if got := of(&sum.Totals); got != all {
		t.Fatalf("summary totals %+v, recomputed %+v", got, all)
	}
	for msisdn, want := range per {
		s := sum.PerMSISDN[msisdn]
		if s == nil {
			t.Fatalf("%s missing from the summary", msisdn)
		}
		if got := of(s); got != *want {
			t.Errorf("%s: summary %+v, recomputed %+v", msisdn, got, *want)
		}
	}
	if all.billable == 0 || all.billable%60 != 0 {
		t.Fatalf("billable seconds %d: want a positive multiple of 60", all.billable)
	}
	if all.bytes == 0 || all.bytes%1024 != 0 || all.eligibleSMS == 0 {
		t.Fatalf("billable bytes %d, eligible SMS %d: want a positive multiple of 1024 and some SMS", all.bytes, all.eligibleSMS)
	}
}

// Every data session carries its volume: mostly a few megabytes, some
// under a kilobyte, a few large, none beyond what the decoder accepts.
func TestDataSessionsCarryARealisticVolume(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Duplicates, cfg.Late, cfg.Reorder, cfg.Malformed = 0, 0, 0, 0
	msgs, _ := MustGenerate(t, cfg, 10000)
	var sessions, tiny, megabytes, large int
	for _, m := range msgs {
		ev, err := carrier.DecodeUsageEvent(m.value)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if ev.Type != carrier.TypeData {
			continue
		}
		sessions++
		switch v := ev.Data.VolumeBytes; {
		case v > 0 && v < 1024:
			tiny++
		case v >= 1<<20 && v <= 50<<20:
			megabytes++
		case v > 200<<20:
			large++
		}
	}
	if sessions < 500 || tiny == 0 || large == 0 || megabytes*2 < sessions {
		t.Fatalf("%d data sessions: %d under 1 KB, %d of 1-50 MB, %d over 200 MB", sessions, tiny, megabytes, large)
	}
}

func TestBillableBytesRoundUpTo1024(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want int64 }{{0, 0}, {1, 1024}, {1024, 1024}, {1025, 2048}, {5 << 20, 5 << 20}} {
		if got := sim.BillableBytes(c.in); got != c.want {
			t.Errorf("BillableBytes(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestBillableSecondsRoundUpToAWholeMinute(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want int64 }{{0, 0}, {1, 60}, {59, 60}, {60, 60}, {61, 120}, {125, 180}} {
		if got := sim.BillableSeconds(c.in); got != c.want {
			t.Errorf("BillableSeconds(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestHomeCountryCallsAreDomesticAndNotEligible(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Home = "SG"
	cfg.Duplicates, cfg.Late, cfg.Reorder, cfg.Malformed = 0, 0, 0, 0
	msgs, sum := MustGenerate(t, cfg, 3000)
	var eligible int64
	for _, m := range msgs {
		ev, _ := carrier.DecodeUsageEvent(m.value)
		if ev.Type == carrier.TypeVoice && ev.Data.VisitedCountry != "SG" {
			eligible++
		}
	}
	if eligible != sum.Totals.EligibleVoiceCalls {
		t.Fatalf("eligible with home SG: counted %d, summary %d", eligible, sum.Totals.EligibleVoiceCalls)
	}
}

func TestInvalidConfigIsRefused(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*sim.Config){
		"no MSISDNs":            func(c *sim.Config) { c.MSISDNs = nil },
		"MSISDN without plus":   func(c *sim.Config) { c.MSISDNs = []string{"8613800000001"} },
		"fraction above one":    func(c *sim.Config) { c.Duplicates = 1.5 },
		"negative fraction":     func(c *sim.Config) { c.Late = -0.1 },
		"faults add up over 1":  func(c *sim.Config) { c.Duplicates, c.Malformed = 0.6, 0.6 },
		"home not alpha-2":      func(c *sim.Config) { c.Home = "China" },
		"empty source":          func(c *sim.Config) { c.Source = "" },
		"late without late age": func(c *sim.Config) { c.LateAge = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			mutate(&cfg)
			if _, err := sim.New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}
