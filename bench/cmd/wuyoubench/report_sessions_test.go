package main

import (
	"strings"
	"testing"
)

func TestSessionsRowsSayTargetsMissedByHowMuch(t *testing.T) {
	c, err := readCollected(strings.NewReader(`sessions.pairs.rate 200 pairs/s
sessions.reads.rps 6000 req/s
sessions.pairs.ratio 0.0333 x
sessions.opens.max_rps 900 opens/s
sessions.half.rate 450 opens/s
sessions.half.api.p50_ms 3 ms
sessions.half.api.p99_ms 60 ms
sessions.half.plain.p99_ms 10 ms
sessions.half.ratio 6 x
info sessions.profile01 carrier.(*Sessions).Terminate 0.8s (45%)
`))
	if err != nil {
		t.Fatal(err)
	}
	rows := c.sessionsRows()
	if !strings.Contains(rows[0].ratio, "missed, by 15×") {
		t.Errorf("pairs ratio %q", rows[0].ratio)
	}
	if !strings.Contains(rows[1].ratio, "missed, by 3.0×") {
		t.Errorf("p99 ratio %q", rows[1].ratio)
	}
	if !strings.Contains(rows[0].bound, "carrier.(*Sessions).Terminate") {
		t.Errorf("bound %q lacks the profile", rows[0].bound)
	}
	section := c.partialSection(machine{Date: "today"}, "sessions")
	if strings.Contains(section, "1. Metering") || !strings.Contains(section, "10b. Carrier sessions") {
		t.Errorf("the section should hold the lines measured, only:\n%s", section)
	}
	doc := replaceSection("# Benchmarks\n\nfull run\n", "sessions", section)
	again := replaceSection(doc, "sessions", strings.Replace(section, "today", "tomorrow", 1))
	if !strings.HasPrefix(again, "# Benchmarks\n\nfull run\n\n") || strings.Count(again, "BEGIN run.sh") != 1 || !strings.Contains(again, "tomorrow") {
		t.Errorf("a second narrowed run should replace its section, keeping the rest:\n%s", again)
	}
}
