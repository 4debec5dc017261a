package main

import (
	"fmt"
	"sort"
	"strings"
)

// target renders a figure against an upper bound: met, or missed by how much.
func target(value, bound float64) string {
	if value <= bound {
		return fmt.Sprintf("**%.2f×** of the target: met", value/bound)
	}
	return fmt.Sprintf("**%.2f×** of the target: missed by %s B", value/bound, thousands(value-bound))
}

// inBytes formats a size in bytes with thousands separators.
func inBytes(v float64) string { return thousands(v) + " B" }

// catchupRow is line 2b: a backlog drained, against line 2's steady rate.
func (c *collected) catchupRow() row {
	events := "1,000,000"
	if c.has("catchup.events") {
		events = thousands(c.figures["catchup.events"])
	}
	r := row{what: "2b. Catch-up: drain a backlog of " + events + " events", figure: c.notMeasured("catchup"), baseline: "—", ratio: "—",
		setup: c.infos["catchup.setup"], bound: c.notes["catchup"], commands: []string{c.infos["catchup.command"]}}
	if !c.has("catchup.rate", "catchup.seconds", "catchup.applied") {
		return r
	}
	if p, ok := c.infos["catchup.partial"]; ok {
		r.figure = fmt.Sprintf("not drained: %s of %s events applied in %.0f s, %s", thousands(c.figures["catchup.applied"]), events, c.figures["catchup.seconds"], c.rate("catchup.rate"))
		r.setup += "; " + p
	} else {
		r.figure = fmt.Sprintf("drained in %.0f s: %s", c.figures["catchup.seconds"], c.rate("catchup.rate"))
	}
	if c.has("catchup.first_tenth.rate", "catchup.last_tenth.rate") {
		r.figure += fmt.Sprintf("; first tenth of the backlog %s, last tenth %s (last ÷ first: %.2f×)",
			c.tenth("first"), c.tenth("last"), c.figures["catchup.last_tenth.rate"]/c.figures["catchup.first_tenth.rate"])
	}
	if c.has("metering.e2e.rate") {
		r.baseline = "the end-to-end rate of line 2: " + c.rate("metering.e2e.rate")
		r.ratio = fmt.Sprintf("**%.2f×** (catch-up ÷ end to end)", c.figures["catchup.rate"]/c.figures["metering.e2e.rate"])
	}
	if c.has("catchup.redis_memory_before", "catchup.redis_memory_after", "catchup.group_join", "catchup.round_trips_per_event") {
		r.setup += fmt.Sprintf("; Redis's used_memory went from %.0f MB to %.0f MB while it drained (the whole Redis, other clients' keys included); %.3f round trips to Redis per event; the consumer group join took %.1f s before the first event",
			c.figures["catchup.redis_memory_before"]/1e6, c.figures["catchup.redis_memory_after"]/1e6, c.figures["catchup.round_trips_per_event"], c.figures["catchup.group_join"])
	}
	return r
}

// tenth is the rate over the first or last tenth of the catch-up, with what
// tells a Redis slowing as it fills (its CPU per event) from a busier
// machine.
func (c *collected) tenth(which string) string {
	k := "catchup." + which + "_tenth."
	s := c.rate(k + "rate")
	if c.has(k+"redis_cpu_us_per_event", k+"machine_busy") {
		s += fmt.Sprintf(" (%.0f µs of Redis CPU per event, machine %.0f%% busy)", c.figures[k+"redis_cpu_us_per_event"], 100*c.figures[k+"machine_busy"])
	}
	return s
}

// memoryRows are line 6: what Redis keeps per seafarer, entry and identity.
func (c *collected) memoryRows() []row {
	cmd := []string{c.infos["memory.command"]}
	setup, bound := c.infos["memory.setup"], c.notes["memory"]
	missing := c.notMeasured("memory")
	rows := []row{
		{what: "6a. Redis memory per seafarer: profile, indexes, two grants (no calls)", figure: missing, baseline: "target ≤ 1,536 B", ratio: "—", setup: setup, bound: bound, commands: cmd},
		{what: "6b. Redis memory per ledger entry (a seafarer at a full 2160 h horizon)", figure: missing, baseline: "target ≤ 200 B", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
		{what: "6c. Redis memory per remembered event identity (a full 720 h dedupe window)", figure: missing, baseline: "target ≤ 100 B", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
		{what: "6d. Projection: 1.9 million seafarers, 3 calls a day, 720 h window, 2160 h horizon", figure: missing, baseline: "—", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
	}
	if c.has("memory.seafarer", "memory.seafarer.grant_ledger") {
		v, gl := c.figures["memory.seafarer"], c.figures["memory.seafarer.grant_ledger"]
		rows[0].figure = fmt.Sprintf("%s (enrolment %s, two grants %s); %s of it are the grants' two ledger entries, so %s without them",
			inBytes(v), inBytes(c.figures["memory.seafarer.enrol"]), inBytes(c.figures["memory.seafarer.grants"]), inBytes(gl), inBytes(v-gl))
		rows[0].ratio = target(v-gl, targetPerSeafarer) + " (without the grants' ledger entries); with them " + target(v, targetPerSeafarer)
	}
	if c.has("memory.entry", "memory.steady.entries") {
		rows[1].figure = fmt.Sprintf("%s (%.0f entries a seafarer; %s each with 3 calls: `memory.entry.shallow`; %s per call in all, with its identity)",
			inBytes(c.figures["memory.entry"]), c.figures["memory.steady.entries"], inBytes(c.figures["memory.entry.shallow"]), inBytes(c.figures["memory.debit"]))
		rows[1].ratio = target(c.figures["memory.entry"], targetPerEntry)
	}
	if c.has("memory.identity", "memory.steady.identities") {
		rows[2].figure = fmt.Sprintf("%s (%.0f identities a seafarer)", inBytes(c.figures["memory.identity"]), c.figures["memory.steady.identities"])
		rows[2].ratio = target(c.figures["memory.identity"], targetPerIdentity)
	}
	if c.has("memory.fleet.total", "memory.fleet.ledger", "memory.fleet.identities", "memory.fleet.seafarers", "memory.steady_seafarer") {
		rest := c.figures["memory.fleet.total"] - c.figures["memory.fleet.ledger"] - c.figures["memory.fleet.identities"] - c.figures["memory.fleet.seafarers"]
		rows[3].figure = fmt.Sprintf("%.1f GB used_memory (%s a seafarer at steady state): ledger %.1f GB, identities %.1f GB, profiles, indexes and grants %.1f GB, the rest %.1f GB (mostly the identity claims shared by all seafarers, quota/identity.go, and statement figures); about %.1f GB of RSS at the measured fragmentation of %.2f",
			c.figures["memory.fleet.total"], inBytes(c.figures["memory.steady_seafarer"]), c.figures["memory.fleet.ledger"], c.figures["memory.fleet.identities"],
			c.figures["memory.fleet.seafarers"], rest, c.figures["memory.fleet.rss"], c.figures["memory.fragmentation"])
		rows[3].baseline = fmt.Sprintf("at the targets: %.1f GB", (fleetSeafarers*(targetPerSeafarer+callsPerDay*ledgerHorizon.Hours()/24*targetPerEntry+callsPerDay*dedupeWindow.Hours()/24*targetPerIdentity))/1e9)
		rows[3].ratio = fmt.Sprintf("**%.2f×** (projection ÷ at the targets)", c.figures["memory.fleet.total"]*1e9/(fleetSeafarers*(targetPerSeafarer+callsPerDay*ledgerHorizon.Hours()/24*targetPerEntry+callsPerDay*dedupeWindow.Hours()/24*targetPerIdentity)))
	}
	return rows
}

// scalingRows are line 7: the end-to-end rate with more partitions and consumers.
func (c *collected) scalingRows() []row {
	cmd := []string{c.infos["scaling.command"]}
	setup := c.infos["scaling.setup"]
	missing := c.notMeasured("scaling")
	shape := func(k string) string {
		s := c.rate("scaling."+k+".rate") + fmt.Sprintf(" (Redis busy %.0f%%, %.0f µs of Redis CPU per event", 100*c.figures["scaling."+k+".redis_busy"], c.figures["scaling."+k+".redis_cpu_us_per_event"])
		if c.figures["scaling."+k+".redelivered"] > 0 {
			s += fmt.Sprintf("; %.0f events redelivered by the rebalance and refused as repeats", c.figures["scaling."+k+".redelivered"])
		}
		return s + ")"
	}
	rows := []row{
		{what: "7a. Metering end to end, 1 → 8 partitions (1 consumer)", figure: missing, baseline: "—", ratio: "—", setup: setup, bound: c.notes["scaling.p8c1"], commands: cmd},
		{what: "7b. Metering end to end, 1 → 2 consumers in one group (8 partitions)", figure: missing, baseline: "—", ratio: "—", setup: "as 7a", bound: c.notes["scaling.p8c2"], commands: cmd},
	}
	if c.has("scaling.p1c1.rate", "scaling.p8c1.rate", "scaling.partitions.ratio") {
		rows[0].figure = "8 partitions: " + shape("p8c1")
		rows[0].baseline = "1 partition: " + shape("p1c1")
		rows[0].ratio = c.ratio("scaling.partitions.ratio") + " (8 ÷ 1 partitions)"
	}
	if c.has("scaling.p8c2.rate", "scaling.p8c1.rate", "scaling.consumers.ratio") {
		rows[1].figure = "2 consumers: " + shape("p8c2") + "; " + c.infos["scaling.p8c2.split"]
		rows[1].baseline = "1 consumer: " + c.rate("scaling.p8c1.rate")
		rows[1].ratio = c.ratio("scaling.consumers.ratio") + " (2 ÷ 1 consumers)"
	}
	return rows
}

// earlierRun is the end-to-end metering of the BENCHMARKS.md written on
// 2026-11-28 20:56 UTC, before the consumer resolved MSISDNs and synced
// programme usage per batch; kept to show the change, not re-measured.
var earlierRun = struct {
	date, load                        string
	rate, ratio, commands, roundTrips float64
}{"2026-11-28 20:56 UTC", "5.11", 2447, 0.89, 6.05, 2.63}

// timeSection is "Where the time goes": the profile of the metering path
// and Redis's commandstats, from the scaling run with 8 partitions and 1 consumer.
func (c *collected) timeSection(load string) string {
	if !c.has("scaling.p8c1.rate") {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Where the time goes (metering end to end)\n\n")
	k := "scaling.p8c1."
	fmt.Fprintf(&b, "- **Redis**: %.0f µs of Redis main-thread CPU per event; EVALSHA ran %.2f times per event (once for the debit script, the rest for the per-pair programme-usage script of SyncProgrammeUsage) at %.1f µs a call on average (INFO commandstats, reset before the run; a script's time includes the commands it calls, which are also listed on their own); %.2f commands in %.3f round trips per event from the consumer. The commands the scripts call: %s.\n",
		c.figures[k+"redis_cpu_us_per_event"], c.figures[k+"evalsha_calls_per_event"], c.figures[k+"evalsha_usec_per_call"],
		c.figures[k+"commands_per_event"], c.figures[k+"round_trips_per_event"], orDash(c.infos[k+"commandstats"]))
	fmt.Fprintf(&b, "- **The consumer process** (CPU profile of `wuyoubench scaling`, consumer, kafka-go and kfake broker together; %.2f cores while draining):\n", c.figures[k+"self_cores"])
	var keys []string
	for key := range c.infos {
		if strings.HasPrefix(key, "profile.") {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		b.WriteString("  - not profiled in this run\n")
	}
	for _, key := range keys {
		fmt.Fprintf(&b, "  - %s\n", c.infos[key])
	}
	if c.has("metering.e2e.rate", "metering.e2e.ratio", "metering.e2e.commands_per_event", "metering.e2e.round_trips_per_event") {
		fmt.Fprintf(&b, "- **Before and after the per-batch MSISDN resolution and programme usage** (line 2): this run %s, %.2f× the direct rate, %.2f commands in %.2f round trips per event; the earlier run of %s (before that change; load average %s then, %s at the start of this run, on a shared machine, so raw events/s are not comparable across the two runs, round trips per event are) %s events/s, %.2f× direct, %.2f commands in %.2f round trips per event.\n",
			c.rate("metering.e2e.rate"), c.figures["metering.e2e.ratio"], c.figures["metering.e2e.commands_per_event"], c.figures["metering.e2e.round_trips_per_event"],
			earlierRun.date, earlierRun.load, firstField(load), thousands(earlierRun.rate), earlierRun.ratio, earlierRun.commands, earlierRun.roundTrips)
	}
	return b.String()
}

// storageRun is the run of 2026-11-28 21:30 UTC, before the ledger became
// compact weekly records, allowance reads shared pipelines and the consumer
// and API encoded JSON with goccy/go-json; kept to show the change.
var storageRun = struct {
	date, load                                   string
	debit, e2e, allowance, halfP99, entry, perSf float64
	fleetGB                                      float64
}{"2026-11-28 21:30 UTC", "3.54", 0.05, 0.67, 0.17, 179.03, 966, 2311, 524.3}

// changeSection is "Before and after": this run's ratios next to those of
// storageRun. Ratios, each against its own same-run baseline, compare
// across runs; raw rates do not.
func (c *collected) changeSection(load string) string {
	var b strings.Builder
	line := func(what string, before, now float64, unit string, digits int) {
		fmt.Fprintf(&b, "| %s | %.*f%s | %.*f%s |\n", what, digits, before, unit, digits, now, unit)
	}
	row := func(what string, before float64, key, unit string, digits int) {
		if c.has(key) {
			line(what, before, c.figures[key], unit, digits)
		}
	}
	fmt.Fprintf(&b, "\n## Before and after the compact ledger, shared allowance reads and goccy/go-json\n\n")
	fmt.Fprintf(&b, "Before: the run of %s (load average %s then, %s at the start of this run). The ledger was a JSON entry per call in a hash plus a zset index, trimmed by the debit script, which also kept per-month counters duplicating the statement figures; each allowance read was a round trip of its own; the consumer and the API used encoding/json.\n\n", storageRun.date, storageRun.load, firstField(load))
	b.WriteString("| Measurement | Before | This run |\n|---|---|---|\n")
	row("debit script ÷ one-HINCRBY script", storageRun.debit, "metering.direct.ratio", "×", 2)
	row("metering end to end ÷ direct", storageRun.e2e, "metering.e2e.ratio", "×", 2)
	row("allowance reads ÷ plain fiber handler", storageRun.allowance, "allowance.ratio", "×", 2)
	row("allowance p99 at half the maximum rate", storageRun.halfP99, "allowance.half.api.p99_ms", " ms", 2)
	row("Redis bytes per ledger entry (steady state)", storageRun.entry, "memory.entry", " B", 0)
	if c.has("memory.seafarer", "memory.seafarer.grant_ledger") {
		line("Redis bytes per seafarer, two grants, without their ledger entries", storageRun.perSf,
			c.figures["memory.seafarer"]-c.figures["memory.seafarer.grant_ledger"], " B", 0)
	}
	row("projection, 1.9 million seafarers", storageRun.fleetGB, "memory.fleet.total", " GB", 1)
	return b.String()
}

// firstField is the first word of s (the 1-minute load average), or "—".
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "—"
}
