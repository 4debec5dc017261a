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
		r.figure = fmt.Sprintf("not drained within the drain limit: %s of %s events applied in %.0f s, %s, so the whole backlog at that rate would take about %.0f s (target ≤ 60 s: missed)",
			thousands(c.figures["catchup.applied"]), events, c.figures["catchup.seconds"], c.rate("catchup.rate"), c.figures["catchup.events"]/c.figures["catchup.rate"])
		r.setup += "; " + p
	} else {
		r.figure = fmt.Sprintf("drained in %.0f s (target ≤ 60 s: %s): %s", c.figures["catchup.seconds"], metOrMissed(c.figures["catchup.seconds"] <= 60), c.rate("catchup.rate"))
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
	if c.has("catchup.pg_ledger_bytes", "catchup.pg_claims_bytes") {
		r.setup += fmt.Sprintf("; PostgreSQL then held %.0f MB of ledger and %.0f MB of identity claims (indexes included)", c.figures["catchup.pg_ledger_bytes"]/1e6, c.figures["catchup.pg_claims_bytes"]/1e6)
	}
	return r
}

// recurringRow is line 4b: a recurring programme's month issued by one
// sweep, against bare writes of the same grants, and a sweep with nothing
// left to issue.
func (c *collected) recurringRow() row {
	seafarers := "100,000"
	if c.has("recurring.seafarers") {
		seafarers = thousands(c.figures["recurring.seafarers"])
	}
	r := row{what: "4b. Monthly grants of a recurring programme to " + seafarers + " eligible seafarers (`quota.RecurringEngine` sweep)", figure: c.notMeasured("recurring"), baseline: "—", ratio: "—",
		setup: c.infos["recurring.setup"], bound: c.notes["recurring"], commands: []string{c.infos["recurring.command"]}}
	if !c.has("recurring.rate", "recurring.seconds", "recurring.baseline", "recurring.baseline_seconds", "recurring.ratio") {
		return r
	}
	r.figure = fmt.Sprintf("%s: the month's %s grants in %.1f s", c.rate("recurring.rate"), seafarers, c.figures["recurring.seconds"])
	if c.has("recurring.idle_seconds") {
		r.figure += fmt.Sprintf("; an idle sweep (every seafarer already holds the month's grant) over the %s in %.2f s", seafarers, c.figures["recurring.idle_seconds"])
	}
	r.baseline = fmt.Sprintf("bare grant writes of the same grants (per batch of 500: one INSERT of the grant rows, then `RedisStore.AddGrant` for each, 16 at once): %s, %.1f s", c.rate("recurring.baseline"), c.figures["recurring.baseline_seconds"])
	r.ratio = c.ratio("recurring.ratio") + " (sweep ÷ bare grant writes, grants/s; target ≥ 0.7×: " + metOrMissed(c.figures["recurring.ratio"] >= 0.7) + ")"
	if c.has("recurring.round_trips_per_grant") {
		r.setup += fmt.Sprintf("; %.2f round trips to Redis per grant", c.figures["recurring.round_trips_per_grant"])
	}
	if s, ok := c.infos["recurring.enrol_setup"]; ok {
		r.setup += "; setup, not timed: " + s
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

// memoryRows are line 6: what Redis keeps per seafarer at steady state,
// the fleet projection, and what PostgreSQL keeps of the same calls.
func (c *collected) memoryRows() []row {
	cmd := []string{c.infos["memory.command"]}
	setup, bound := c.infos["memory.setup"], c.notes["memory"]
	missing := c.notMeasured("memory")
	rows := []row{
		{what: "6a. Redis memory per seafarer at steady state (two grants, 3 calls a day, 720 h dedupe window), after the consumer's path", figure: missing, baseline: "target ≤ 4,096 B", ratio: "—", setup: setup, bound: bound, commands: cmd},
		{what: "6b. Redis memory per remembered event identity (the seafarer's seen set)", figure: missing, baseline: "—", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
		{what: "6c. Projection: Redis for 1.9 million seafarers at that steady state", figure: missing, baseline: "target ≤ 8 GB", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
		{what: "6d. PostgreSQL per seafarer at that steady state: event identity claims (not in Redis)", figure: missing, baseline: "—", ratio: "—", setup: "as 6a", bound: "see 6a", commands: cmd},
	}
	if c.has("memory.redis.keys_per_seafarer", "memory.redis.used_per_seafarer") {
		v := c.figures["memory.redis.keys_per_seafarer"]
		rows[0].figure = fmt.Sprintf("%s (MEMORY USAGE of the seafarer's keys, with its share of the expiry index); %s of used_memory per seafarer (enrolment %s, two grants %s, a window of calls %s); %.2f pending records left per seafarer",
			inBytes(v), inBytes(c.figures["memory.redis.used_per_seafarer"]), inBytes(c.figures["memory.redis.enrol"]), inBytes(c.figures["memory.redis.grants"]),
			inBytes(c.figures["memory.redis.calls"]), c.figures["memory.redis.pending_records"])
		rows[0].ratio = target(v, targetPerSeafarer)
	}
	if c.has("memory.redis.identity", "memory.redis.identities") {
		rows[1].figure = fmt.Sprintf("%s (%.0f identities a seafarer)", inBytes(c.figures["memory.redis.identity"]), c.figures["memory.redis.identities"])
	}
	if c.has("memory.fleet.total", "memory.redis.used_per_seafarer") {
		v := c.figures["memory.fleet.total"]
		rows[2].figure = fmt.Sprintf("%.2f GB of used_memory (%s a seafarer × 1.9 million; RSS adds the allocator's fragmentation, not projected from a test this small)",
			v, inBytes(c.figures["memory.redis.used_per_seafarer"]))
		if v <= targetFleetGB {
			rows[2].ratio = fmt.Sprintf("**%.2f×** of the target: met", v/targetFleetGB)
		} else {
			rows[2].ratio = fmt.Sprintf("**%.2f×** of the target: missed by %.2f GB", v/targetFleetGB, v-targetFleetGB)
		}
	}
	if c.has("memory.pg.claims_per_seafarer", "memory.pg.ledger_per_seafarer", "memory.pg.fleet_claims") {
		rows[3].figure = fmt.Sprintf("claims %s a seafarer (pg_total_relation_size of event_claims ÷ seafarers; %.1f GB for 1.9 million); the ledger of the same calls %s a seafarer (ledger_entries, all partitions)",
			inBytes(c.figures["memory.pg.claims_per_seafarer"]), c.figures["memory.pg.fleet_claims"], inBytes(c.figures["memory.pg.ledger_per_seafarer"]))
	}
	return rows
}

// redisCPURow is line 2c: Redis's time per applied event on the consumer's
// path, from INFO commandstats of the scaling run's own redis-server.
func (c *collected) redisCPURow() row {
	r := row{what: "2c. Redis CPU per applied event (INFO commandstats, the consumer's path)", figure: c.notMeasured("scaling"), baseline: "target ≤ 15 µs", ratio: "—",
		setup:    "line 7a's 8-partition, 1-consumer run on a redis-server of its own: CONFIG RESETSTAT before it, INFO commandstats after; the time of the commands the consumer sent (the debit EVALSHA, whose time includes the commands the script calls; the HDEL of Recorded; the EXISTS of the hot-state check), each counted in the share of its calls the consumer sent, divided by the events applied",
		bound:    "INFO commandstats time a command from its start to its end on the main thread: wall time, so on a machine whose cores are all busy it includes the time the thread waited for a core. When it exceeds the main thread's CPU per event (which includes reading and writing the sockets), that excess is such waiting, and the figure is an upper bound of the script's own cost; a quiet machine gives the lower figure",
		commands: []string{c.infos["scaling.command"]}}
	k := "scaling.p8c1."
	if c.has(k+"commandstats_us_per_event", k+"redis_cpu_us_per_event") {
		v := c.figures[k+"commandstats_us_per_event"]
		r.figure = fmt.Sprintf("%.1f µs (%s); Redis's main thread spent %.1f µs of CPU per event in all (I/O and the event loop included)", v, orDash(c.infos[k+"consumer_commands"]), c.figures[k+"redis_cpu_us_per_event"])
		if v <= 15 {
			r.ratio = fmt.Sprintf("**%.2f×** of the target: met", v/15)
		} else {
			r.ratio = fmt.Sprintf("**%.2f×** of the target: missed by %.1f µs", v/15, v-15)
		}
	}
	return r
}

// scriptRow is line 2d: the debit script alone, against an empty script
// with the same keys and arguments (the floor of any script call).
func (c *collected) scriptRow() row {
	r := row{what: "2d. Redis CPU per debit, the script alone (BenchmarkDebitScriptRedisTime)", figure: c.notMeasured("script"), baseline: "—", ratio: "—",
		setup:    "quota/debit_bench_test.go: a redis-server of its own, 500 seafarers with two grants each carried to the steady state (90 calls each, three a day, so about 90 identities in each seen set), then debits in pipelines of 500 through DebitBatch with the claims held (PostgreSQL's work, not Redis's) and their records dropped as the consumer drops them; the main thread's CPU time (INFO cpu, user and system) per debit. The baseline sends the same keys and arguments the same way to a script that reads and writes nothing; the floor (BenchmarkCommandsOnlyScriptRedisTime) sends them to a script that only runs the commands a debit cannot do without (the grants and sessions read, the identity added and the window trimmed, one grant written, the pending record and its expiry, the month's two counters); the three alternate, each figure the median of the rounds",
		bound:    "the baseline is what any script call costs Redis (reading 21 arguments, entering Lua, replying); above it is the debit's own work: about a dozen commands on the seafarer's keys (the seen set's listpack is scanned to add the identity and trimmed; the grants read and the drawn ones written; the pending record; this month's two counters) and the Lua that parses the grants and decides the draws",
		commands: []string{"wuyoubench gobench -key script", c.infos["script.command"]}}
	const debit, empty = "script.DebitScriptRedisTime.", "script.EmptyScriptRedisTime."
	if c.has(debit+"redis-cpu-us_per_debit", empty+"redis-cpu-us_per_debit") {
		d, e := c.figures[debit+"redis-cpu-us_per_debit"], c.figures[empty+"redis-cpu-us_per_debit"]
		r.figure = fmt.Sprintf("%.1f µs of main-thread CPU a debit (%.1f µs above the baseline)", d, d-e)
		if c.has(debit + "redis-us_per_debit") {
			r.figure += fmt.Sprintf("; %.1f µs a call in INFO commandstats", c.figures[debit+"redis-us_per_debit"])
		}
		r.baseline = fmt.Sprintf("an empty script, same keys, arguments and pipelines: %.1f µs", e)
		r.ratio = fmt.Sprintf("**%.1f×** (debit ÷ empty script)", d/e)
		if floor := "script.CommandsOnlyScriptRedisTime.redis-cpu-us_per_debit"; c.has(floor) {
			f := c.figures[floor]
			r.figure += fmt.Sprintf("; the floor of any debit done by a script, its commands alone without its logic: %.1f µs (%.1f µs above the empty script), %.2f× the 15 µs target of line 2c", f, f-e, f/15)
		}
	}
	return r
}

// ledgerRow is line 8: PGLedger.Append against a bare COPY of the same rows.
func (c *collected) ledgerRow() row {
	r := row{what: "8. Ledger into PostgreSQL: `PGLedger.Append` (BenchmarkAppend)", figure: c.notMeasured("ledger"), baseline: "—", ratio: "—",
		setup:    "quota/pgledger_test.go: batches of 1,000 debit entries into a fresh database; Append is what the consumer calls (partitions ensured, the periods' shared advisory locks, COPY into ledger_entries with its key and constraints, in one transaction); the baseline COPYs the same rows into a plain table LIKE ledger_entries (no key, no constraint, no partitions) on the same server; the two alternate, each figure the median of the rounds",
		bound:    "the COPY itself bounds both; what Append adds is the primary key and the statement indexes maintained per row, the partition routing and the transaction with its advisory locks",
		commands: []string{"wuyoubench gobench -key ledger", c.infos["ledger.command"]}}
	if c.has("ledger.Append.ns_per_row", "ledger.AppendBareCopy.ns_per_row") {
		a, b := c.figures["ledger.Append.ns_per_row"], c.figures["ledger.AppendBareCopy.ns_per_row"]
		r.figure = fmt.Sprintf("%s rows/s (%.1f µs a row)", thousands(1e9/a), a/1000)
		r.baseline = fmt.Sprintf("bare COPY of the same rows: %s rows/s (%.1f µs a row)", thousands(1e9/b), b/1000)
		verdict := "met"
		if b/a < 0.7 {
			verdict = "missed"
		}
		r.ratio = fmt.Sprintf("**%.2f×** (Append ÷ bare COPY, rows/s; target ≥ 0.7×: %s)", b/a, verdict)
	}
	return r
}

// statementRow is line 9: a programme's statement over 100,000 seafarers.
func (c *collected) statementRow() row {
	r := row{what: "9. Statement of a programme of 100,000 seafarers for a month (BenchmarkPGProgrammeStatement)", figure: c.notMeasured("statements"), baseline: "—", ratio: "—",
		setup:    "quota/pgstatements_test.go: a fresh database; 100,000 seafarers each with 4 debits drawn from the programme over three months (400,000 ledger rows; 200,000 in the month asked for), appended through PGLedger.Append and ANALYZEd; then PGStatements builds the programme's statement for 2026-11 (one line per seafarer, checked); the plan is EXPLAIN (FORMAT JSON) of the statement's query, its nodes in order",
		bound:    "the plan: PostgreSQL reads the month's partition through an index on (statement_period, seafarer_id), so the work is the month's debits, not every month's",
		commands: []string{"wuyoubench gobench -key statements", c.infos["statements.command"]}}
	if c.has("statements.PGProgrammeStatement.ns_per_op") {
		r.figure = fmt.Sprintf("%.2f s a statement", c.figures["statements.PGProgrammeStatement.ns_per_op"]/1e9)
		if plan, ok := c.infos["statements.PGProgrammeStatement.plan"]; ok {
			r.figure += "; plan: " + strings.ReplaceAll(plan, "|", "→")
			r.ratio = planReads(plan)
		}
	}
	return r
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

// previousRun is the BENCHMARKS.md of 2026-12-02 04:19 UTC, the last run
// with everything in Redis (registry, ledger buckets, statement and
// programme counters, identity claims); kept to show the change, not
// re-measured. Ratios compare across runs; raw rates do not.
var previousRun = struct {
	date, load                                        string
	debit, e2e, catchupSeconds, catchupRatio          float64
	allowance, halfP99, issuance                      float64
	steadySeafarer, identity, fleetGB, redisCPU       float64
	evalshaPerEvent, partitions, consumers, bulkEnrol float64
}{"2026-12-02 04:19 UTC", "2.41", 0.06, 0.85, 124, 1.14, 0.40, 6.21, 0.85, 87056, 29, 165.4, 138, 2.00, 0.95, 1.15, 3594}

// timeSection is "Where the time goes": the profile of the metering path
// and Redis's commandstats, from the scaling run with 8 partitions and 1 consumer.
func (c *collected) timeSection(load string) string {
	if !c.has("scaling.p8c1.rate") {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Where the time goes (metering end to end)\n\n")
	k := "scaling.p8c1."
	fmt.Fprintf(&b, "- **Redis**: %.0f µs of Redis main-thread CPU per event, %.1f µs of it in the commands the consumer sent (%s); EVALSHA ran %.2f times per event at %.1f µs a call on average (INFO commandstats, reset before the run; a script's time includes the commands it calls, which are also listed on their own); %.2f commands in %.3f round trips per event from the consumer. Every command Redis ran: %s.\n",
		c.figures[k+"redis_cpu_us_per_event"], c.figures[k+"commandstats_us_per_event"], orDash(c.infos[k+"consumer_commands"]), c.figures[k+"evalsha_calls_per_event"], c.figures[k+"evalsha_usec_per_call"],
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
	return b.String()
}

// changeSection is "Before and after": this run's figures next to those of
// previousRun, where the figure still exists. Ratios, each against its own
// same-run baseline, compare across runs; raw rates do not.
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
	fmt.Fprintf(&b, "\n## Before and after PostgreSQL as the system of record\n\n")
	fmt.Fprintf(&b, "Before: the run of %s (load average %s then, %s at the start of this run), when Redis held everything: the registry with its claim keys, the ledger in weekly buckets, statement, reconciliation and programme-usage counters written by the debit script, and the identity claims. Now PostgreSQL holds those, and Redis only the hot metering state. Figures that no longer exist (Redis bytes per ledger entry, per seafarer without calls) are left out.\n\n", previousRun.date, previousRun.load, firstField(load))
	b.WriteString("| Measurement | Before | This run |\n|---|---|---|\n")
	row("debit script ÷ one-HINCRBY script", previousRun.debit, "metering.direct.ratio", "×", 2)
	row("metering end to end ÷ direct", previousRun.e2e, "metering.e2e.ratio", "×", 2)
	if c.has("catchup.seconds") {
		if _, partial := c.infos["catchup.partial"]; !partial {
			row("catch-up of 1,000,000 events, seconds", previousRun.catchupSeconds, "catchup.seconds", " s", 0)
		}
	}
	if c.has("catchup.rate", "metering.e2e.rate") {
		line("catch-up ÷ end to end", previousRun.catchupRatio, c.figures["catchup.rate"]/c.figures["metering.e2e.rate"], "×", 2)
	}
	row("Redis main-thread CPU per event, end to end (7a's run)", previousRun.redisCPU, "scaling.p8c1.redis_cpu_us_per_event", " µs", 0)
	row("EVALSHA calls per event", previousRun.evalshaPerEvent, "scaling.p8c1.evalsha_calls_per_event", "", 2)
	row("allowance reads ÷ plain fiber handler", previousRun.allowance, "allowance.ratio", "×", 2)
	row("allowance p99 at half the maximum rate", previousRun.halfP99, "allowance.half.api.p99_ms", " ms", 2)
	row("issuance ÷ bare grants", previousRun.issuance, "issuance.ratio", "×", 2)
	row("bulk enrolment, rows/s (no baseline: raw)", previousRun.bulkEnrol, "bulk_enrol.rate", "", 0)
	row("Redis used_memory per seafarer at steady state", previousRun.steadySeafarer, "memory.redis.used_per_seafarer", " B", 0)
	row("Redis bytes per remembered identity", previousRun.identity, "memory.redis.identity", " B", 0)
	row("projection, 1.9 million seafarers (Redis used_memory)", previousRun.fleetGB, "memory.fleet.total", " GB", 1)
	row("8 ÷ 1 partitions", previousRun.partitions, "scaling.partitions.ratio", "×", 2)
	row("2 ÷ 1 consumers", previousRun.consumers, "scaling.consumers.ratio", "×", 2)
	return b.String()
}

// firstField is the first word of s (the 1-minute load average), or "—".
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "—"
}

// planReads says, from a plan's nodes ("Seq Scan rel", "Index Scan rel
// idx", …), which relations are read whole and which through an index.
func planReads(plan string) string {
	var seq, index []string
	for _, n := range strings.Split(plan, "|") {
		kind, rest, ok := strings.Cut(strings.TrimSpace(n), " Scan")
		rel := strings.Fields(rest)
		if !ok || len(rel) == 0 {
			continue
		}
		switch kind {
		case "Seq", "Parallel Seq":
			seq = append(seq, rel[0])
		case "Index", "Index Only", "Parallel Index", "Parallel Index Only":
			index = append(index, strings.Join(rel, " via "))
		case "Bitmap Heap", "Parallel Bitmap Heap":
			index = append(index, rel[0])
		}
	}
	return fmt.Sprintf("read whole: %s; through an index: %s; every other month's partition pruned", orDash(strings.Join(seq, ", ")), orDash(strings.Join(index, ", ")))
}
