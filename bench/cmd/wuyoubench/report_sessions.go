package main

import (
	"fmt"
	"strings"
)

// sessionsRows are line 10 (session pairs against allowance reads) and 10b
// (the p99 of an open at half the maximum against a plain handler), from
// `wuyoubench sessions`. Issue 16's targets: pairs ≥ 0.5× reads, p99 ≤ 2×.
func (c *collected) sessionsRows() []row {
	cmd := c.infos["sessions.command"]
	r := row{what: "10. Carrier sessions: open + terminate pairs (`POST /v1/carrier/sessions`, `…:terminate`), many clients", figure: c.notMeasured("sessions"), baseline: "—", ratio: "—",
		setup: c.infos["sessions.setup"], bound: c.notes["sessions.pairs"], commands: []string{cmd, c.infos["sessions.pairs_command"]}}
	if c.has("sessions.pairs.rate", "sessions.reads.rps", "sessions.pairs.ratio") {
		r.figure = c.rate("sessions.pairs.rate")
		if c.has("sessions.pairs.p50_ms", "sessions.pairs.p99_ms") {
			r.figure += fmt.Sprintf("; a pair p50 %s, p99 %s", c.ms("sessions.pairs.p50_ms"), c.ms("sessions.pairs.p99_ms"))
		}
		if c.has("sessions.pairs.cpu_us", "sessions.reads.cpu_us") {
			r.figure += fmt.Sprintf("; %s µs of server CPU a pair", thousands(c.figures["sessions.pairs.cpu_us"]))
		}
		r.baseline = "allowance reads (`GET /v1/me/allowance`), the same client and connections, alternating with the pairs: " + c.rate("sessions.reads.rps")
		if c.has("sessions.reads.cpu_us") {
			r.baseline += fmt.Sprintf("; %s µs of server CPU a read", thousands(c.figures["sessions.reads.cpu_us"]))
		}
		v := c.figures["sessions.pairs.ratio"]
		r.ratio = c.ratio("sessions.pairs.ratio") + " (pairs/s ÷ reads/s; target ≥ 0.5×: " + metOrMissed(v >= 0.5)
		if v < 0.5 {
			r.ratio += fmt.Sprintf(", by %.0f×", 0.5/v)
		}
		r.ratio += ")"
	}
	if prof := c.profileLines("sessions.profile"); prof != "" {
		r.bound += " CPU profile of the server process over the last pairs round, with callees: " + prof + "."
	}
	h := row{what: "10b. Carrier sessions: p99 of an open at half the maximum open rate (open loop)", figure: c.notMeasured("sessions"), baseline: "—", ratio: "—",
		setup: c.infos["sessions.half_setup"], bound: c.notes["sessions.half"], commands: []string{cmd, c.infos["sessions.half_command"]}}
	if c.has("sessions.half.rate", "sessions.half.api.p99_ms", "sessions.half.plain.p99_ms", "sessions.half.ratio", "sessions.opens.max_rps") {
		h.figure = fmt.Sprintf("p99 %s (p50 %s) at %s; the maximum, closed loop: %s", c.ms("sessions.half.api.p99_ms"), c.ms("sessions.half.api.p50_ms"), c.rate("sessions.half.rate"), c.rate("sessions.opens.max_rps"))
		h.baseline = "plain fiber handler on the same path (fixed 201 JSON) at the same rate: p99 " + c.ms("sessions.half.plain.p99_ms")
		v := c.figures["sessions.half.ratio"]
		h.ratio = c.ratio("sessions.half.ratio") + " (p99, API ÷ plain; target ≤ 2×: " + metOrMissed(v <= 2)
		if v > 2 {
			h.ratio += fmt.Sprintf(", by %.1f×", v/2)
		}
		h.ratio += ")"
	}
	return []row{r, h}
}

// profileLines joins the info lines prefix01, prefix02, … in order.
func (c *collected) profileLines(prefix string) string {
	var parts []string
	for i := 1; i < 100; i++ {
		v, ok := c.infos[fmt.Sprintf("%s%02d", prefix, i)]
		if !ok {
			break
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, "; ")
}

// partialSection renders the lines a narrowed run measured (run.sh with
// BENCH_ONLY=steps), with the run's machine, in a section of their own
// between markers naming the steps.
func (c *collected) partialSection(m machine, steps string) string {
	var rows []row
	for _, r := range c.rows() {
		if !strings.HasPrefix(r.figure, "not measured") {
			rows = append(rows, r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- BEGIN run.sh BENCH_ONLY=%s -->\n", steps)
	fmt.Fprintf(&b, "## Lines measured alone (`BENCH_ONLY=%s`)\n\n", steps)
	b.WriteString("Written by `bench/run.sh` narrowed to these steps, apart from the full run above (its other lines were not run again); a full run replaces this section with its own lines. Compare each ratio, not the raw figures, with the full run's.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", m.Date)
	fmt.Fprintf(&b, "- Machine: %s cores (`nproc`), %s\n", m.Nproc, m.CPU)
	fmt.Fprintf(&b, "- Load average when the run started (1, 5, 15 min): %s — the machine is shared, so other work competes for its cores\n", orDash(m.Load))
	fmt.Fprintf(&b, "- Go: %s\n", m.Go)
	fmt.Fprintf(&b, "- Redis: %s\n", orDash(c.infos["redis_version"]))
	fmt.Fprintf(&b, "- PostgreSQL: %s\n", orDash(c.infos["postgres_version"]))
	fmt.Fprintf(&b, "- Command: `%s`\n\n", m.Command)
	b.WriteString("| Measurement | Figure | Baseline, same run | Ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.what, r.figure, r.baseline, r.ratio)
	}
	b.WriteString("\n### What bounds each line\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- **%s** — %s\n", r.what, orDash(r.bound))
	}
	b.WriteString("\n### How each line is measured\n\n")
	for _, r := range rows {
		var ran []string
		for _, cmd := range r.commands {
			if cmd != "" {
				ran = append(ran, "`"+cmd+"`")
			}
		}
		fmt.Fprintf(&b, "- **%s** — %s. Ran: %s.\n", r.what, orDash(r.setup), orDash(strings.Join(ran, ", which runs ")))
	}
	fmt.Fprintf(&b, "<!-- END run.sh BENCH_ONLY=%s -->\n", steps)
	return b.String()
}

// replaceSection puts section in doc in place of the one of the same steps,
// or at its end.
func replaceSection(doc, steps, section string) string {
	begin := fmt.Sprintf("<!-- BEGIN run.sh BENCH_ONLY=%s -->", steps)
	end := fmt.Sprintf("<!-- END run.sh BENCH_ONLY=%s -->\n", steps)
	if i := strings.Index(doc, begin); i >= 0 {
		if j := strings.Index(doc[i:], end); j >= 0 {
			return doc[:i] + section + doc[i+j+len(end):]
		}
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + section
}
