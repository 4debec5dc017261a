package main

import (
	"strings"
	"testing"
)

func TestGoBenchOutputGivesEachBenchmarksMetricsAndLoggedPlan(t *testing.T) {
	out := parseGoBench(strings.NewReader(`goos: linux
BenchmarkAppend-2           	     100	   5120000 ns/op	      5120 ns/row
BenchmarkAppendBareCopy-2   	     100	   3072000 ns/op	      3072 ns/row
BenchmarkPGProgrammeStatement-2   	       3	 812345678 ns/op
--- BENCH: BenchmarkPGProgrammeStatement-2
    pgstatements_test.go:631: plan: Aggregate | Index Scan ledger_entries_2026_11 ledger_debits_by_statement
PASS
`))
	if len(out.results) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(out.results), out.results)
	}
	if r := out.results[0]; r.name != "Append" || r.metrics["ns/row"] != 5120 || r.metrics["ns/op"] != 5120000 {
		t.Errorf("first result %+v", r)
	}
	if got := out.plans["PGProgrammeStatement"]; got != "Aggregate | Index Scan ledger_entries_2026_11 ledger_debits_by_statement" {
		t.Errorf("plan %q", got)
	}
}

func TestConsumerRedisTimeCountsOnlyTheShareOfCallsTheConsumerSent(t *testing.T) {
	stats := map[string]cmdStat{
		"evalsha": {calls: 1000, usec: 20000, usecPerCall: 20},
		"hdel":    {calls: 400, usec: 400, usecPerCall: 1}, // 200 from the consumer, 200 from scripts
		"hset":    {calls: 3000, usec: 3000, usecPerCall: 1},
		"info":    {calls: 5, usec: 500, usecPerCall: 100},
	}
	usec, per := consumerUsec(stats, map[string]int64{"evalsha": 1000, "hdel": 200, "info": 5})
	if usec != 20200 {
		t.Errorf("usec %v, want 20200 (evalsha 20000 + half of hdel's 400; INFO left out)", usec)
	}
	if _, ok := per["hset"]; ok {
		t.Error("HSET, which only the scripts call, counted as the consumer's")
	}
}

func TestReportShowsTargetsMetAndMissed(t *testing.T) {
	c, err := readCollected(strings.NewReader(`metering.direct.rate 10000 debits/s
metering.direct.baseline 100000 calls/s
metering.direct.ratio 0.1 x
metering.e2e.rate 6000 events/s
metering.e2e.ratio 0.6 x
catchup.events 1000000 events
catchup.seconds 120 s
catchup.applied 1000000 events
catchup.rate 8333 events/s
scaling.p8c1.rate 5000 events/s
scaling.p8c1.commandstats_us_per_event 12 us
scaling.p8c1.redis_cpu_us_per_event 30 us
memory.redis.keys_per_seafarer 3000 B
memory.redis.used_per_seafarer 3500 B
memory.fleet.total 6.65 GB
memory.fragmentation 1.05 x
script.DebitScriptRedisTime.redis-cpu-us_per_debit 30 redis-cpu-us/debit
script.DebitScriptRedisTime.redis-us_per_debit 40 redis-us/debit
script.EmptyScriptRedisTime.redis-cpu-us_per_debit 6 redis-cpu-us/debit
script.CommandsOnlyScriptRedisTime.redis-cpu-us_per_debit 18 redis-cpu-us/debit
ledger.Append.ns_per_row 5000 ns/row
ledger.AppendBareCopy.ns_per_row 4000 ns/row
statements.PGProgrammeStatement.ns_per_op 800000000 ns/op
info statements.PGProgrammeStatement.plan Aggregate | Index Scan ledger_entries_2026_11 ledger_debits_by_statement
`))
	if err != nil {
		t.Fatal(err)
	}
	doc := c.document(machine{Date: "today"})
	for _, want := range []string{
		"target ≥ 0.7×: missed",        // end to end 0.6×
		"target ≤ 60 s: missed",        // 120 s
		"**0.80×** of the target: met", // 12 µs of 15
		"**0.73×** of the target: met", // 3000 B of 4096
		"**0.80×** (Append ÷ bare COPY, rows/s; target ≥ 0.7×: met)",
		"through an index: ledger_entries_2026_11 via ledger_debits_by_statement",
		"| metering end to end ÷ direct | 0.85× | 0.60× |",
		"30.0 µs of main-thread CPU a debit (24.0 µs above the baseline); 40.0 µs a call in INFO commandstats; the floor of any debit done by a script, its commands alone without its logic: 18.0 µs (12.0 µs above the empty script), 1.20× the 15 µs target of line 2c | an empty script, same keys, arguments and pipelines: 6.0 µs | **5.0×** (debit ÷ empty script)",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestRecurringRowGivesTheSweepTheBareWritesTheRatioAgainstItsTargetAndTheIdleSweep(t *testing.T) {
	cases := []struct {
		name, ratio, want string
	}{
		{"met", "0.8", "**0.80×** (sweep ÷ bare grant writes, grants/s; target ≥ 0.7×: met)"},
		{"missed", "0.65", "**0.65×** (sweep ÷ bare grant writes, grants/s; target ≥ 0.7×: missed)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := readCollected(strings.NewReader(`recurring.seafarers 100000 seafarers
recurring.rate 3378.4 grants/s
recurring.seconds 29.6 s
recurring.baseline 4201.7 grants/s
recurring.baseline_seconds 23.8 s
recurring.ratio ` + tc.ratio + ` x
recurring.idle_seconds 0.52 s
`))
			if err != nil {
				t.Fatal(err)
			}
			r := c.recurringRow()
			for got, want := range map[string]string{
				r.what:     "4b. Monthly grants of a recurring programme to 100,000 eligible seafarers (`quota.RecurringEngine` sweep)",
				r.figure:   "3,378 grants/s: the month's 100,000 grants in 29.6 s; an idle sweep (every seafarer already holds the month's grant) over the 100,000 in 0.52 s",
				r.baseline: "bare grant writes of the same grants (per batch of 500: one INSERT of the grant rows, then `RedisStore.AddGrant` for each, 16 at once): 4,202 grants/s, 23.8 s",
				r.ratio:    tc.want,
			} {
				if got != want {
					t.Errorf("got  %q\nwant %q", got, want)
				}
			}
			if doc := c.document(machine{}); !strings.Contains(doc, "| "+r.what+" | "+r.figure+" |") {
				t.Error("the document's table lacks line 4b")
			}
		})
	}
}

func TestRecurringRowSaysWhyItWasNotMeasured(t *testing.T) {
	c, err := readCollected(strings.NewReader("info recurring.skipped failed (see the run's output)\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.recurringRow(); r.figure != "not measured: failed (see the run's output)" || r.ratio != "—" {
		t.Errorf("row %+v", r)
	}
}
