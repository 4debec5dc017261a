package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// collected is what the measurements printed: figures, infos and notes by key.
type collected struct {
	figures map[string]float64
	units   map[string]string
	infos   map[string]string
	notes   map[string]string
}

func readCollected(r io.Reader) (*collected, error) {
	c := &collected{figures: map[string]float64{}, units: map[string]string{}, infos: map[string]string{}, notes: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) < 2:
		case f[0] == "info":
			c.infos[f[1]] = strings.Join(f[2:], " ")
		case f[0] == "note":
			c.notes[f[1]] = strings.Join(f[2:], " ")
		case len(f) == 3:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, fmt.Errorf("figure %q: %w", sc.Text(), err)
			}
			c.figures[f[0]], c.units[f[0]] = v, f[2]
		}
	}
	return c, sc.Err()
}

// has reports whether every key was measured.
func (c *collected) has(keys ...string) bool {
	for _, k := range keys {
		if _, ok := c.figures[k]; !ok {
			return false
		}
	}
	return true
}

// rate formats a figure as a whole number with thousands separators and its unit.
func (c *collected) rate(key string) string {
	return thousands(c.figures[key]) + " " + c.units[key]
}

func (c *collected) ms(key string) string { return fmt.Sprintf("%.2f ms", c.figures[key]) }

func (c *collected) ratio(key string) string { return fmt.Sprintf("**%.2f×**", c.figures[key]) }

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// row is one line of the table and what explains it.
type row struct {
	what, figure, baseline, ratio string
	setup, bound                  string
	commands                      []string // what ran, outermost first
}

// notMeasured is the figure of a line whose step (metering, allowance,
// issuance, bulk_enrol) did not run or failed.
func (c *collected) notMeasured(step string) string {
	if why, ok := c.infos[step+".skipped"]; ok {
		return "not measured: " + why
	}
	return "not measured"
}

func (c *collected) rows() []row {
	var rows []row

	r := row{what: "1. Metering, direct: `RedisStore.DebitBatch` (claims in PostgreSQL, debit script in Redis)", figure: c.notMeasured("metering"), baseline: "—", ratio: "—",
		setup: c.infos["metering.direct.setup"], bound: c.notes["metering.direct"], commands: []string{c.infos["metering.command"]}}
	if c.has("metering.direct.rate", "metering.direct.baseline", "metering.direct.ratio") {
		r.figure = c.rate("metering.direct.rate")
		r.baseline = "one-HINCRBY Lua script, same pipelines: " + c.rate("metering.direct.baseline")
		r.ratio = c.ratio("metering.direct.ratio") + " (debit script ÷ HINCRBY script)"
		if c.has("metering.direct.round_trips_per_debit") {
			r.setup += fmt.Sprintf("; %.3f round trips to Redis per debit", c.figures["metering.direct.round_trips_per_debit"])
		}
	}
	rows = append(rows, r)

	r = row{what: "2. Metering, end to end: Kafka → consumer → Redis and PostgreSQL", figure: c.notMeasured("metering"), baseline: "—", ratio: "—",
		setup: c.infos["metering.e2e.setup"], bound: c.notes["metering.e2e"], commands: []string{c.infos["metering.command"]}}
	if c.has("metering.e2e.rate", "metering.direct.rate", "metering.e2e.ratio") {
		r.figure = c.rate("metering.e2e.rate")
		r.baseline = "the direct debit rate of line 1: " + c.rate("metering.direct.rate")
		r.ratio = c.ratio("metering.e2e.ratio") + " (end to end ÷ direct; target ≥ 0.7×: " + metOrMissed(c.figures["metering.e2e.ratio"] >= 0.7) + ")"
		if p, ok := c.infos["metering.e2e.partial"]; ok {
			r.figure += " (over the events drained within the time limit, not all: see below)"
			r.setup += "; " + p
		}
		if c.has("metering.e2e.commands_per_event", "metering.e2e.round_trips_per_event", "metering.e2e.group_join") {
			r.setup += fmt.Sprintf("; %.2f Redis commands in %.2f round trips per event; the consumer group join took %.1f s before the first event",
				c.figures["metering.e2e.commands_per_event"], c.figures["metering.e2e.round_trips_per_event"], c.figures["metering.e2e.group_join"])
		}
	}
	rows = append(rows, r, c.catchupRow(), c.redisCPURow(), c.scriptRow())

	r = row{what: "3. Allowance reads: `GET /v1/me/allowance`, wrk at its maximum", figure: c.notMeasured("allowance"), baseline: "—", ratio: "—",
		setup: c.infos["allowance.setup"], bound: c.notes["allowance"], commands: []string{c.infos["allowance.command"], c.infos["allowance.wrk_command"]}}
	if c.has("allowance.api.rps", "allowance.plain.rps", "allowance.ratio") {
		r.figure = fmt.Sprintf("%s; p50 %s, p99 %s", c.rate("allowance.api.rps"), c.ms("allowance.api.p50_ms"), c.ms("allowance.api.p99_ms"))
		r.baseline = fmt.Sprintf("plain fiber handler, fixed JSON, same wrk settings: %s; p50 %s, p99 %s", c.rate("allowance.plain.rps"), c.ms("allowance.plain.p50_ms"), c.ms("allowance.plain.p99_ms"))
		r.ratio = c.ratio("allowance.ratio") + " (requests/s, API ÷ plain)"
	}
	rows = append(rows, r)

	r = row{what: "3b. Allowance reads: p99 at half the maximum rate (open loop)", figure: c.notMeasured("allowance"), baseline: "—", ratio: "—",
		setup:    "bench/cmd/loadgen sends at a fixed rate (half of line 3's) on up to 32 connections and counts each latency from when the request was due, as wrk2 would (wrk2 is not packaged); the same load goes to the plain handler for the baseline",
		bound:    c.notes["allowance.half"],
		commands: []string{c.infos["allowance.command"], c.infos["allowance.loadgen_command"]}}
	if why, ok := c.infos["allowance.half_skipped"]; ok {
		r.figure = "not measured: " + why
	}
	if c.has("allowance.half.rate", "allowance.half.api.p99_ms", "allowance.half.plain.p99_ms", "allowance.half.ratio") {
		r.figure = fmt.Sprintf("p99 %s (p50 %s) at %s", c.ms("allowance.half.api.p99_ms"), c.ms("allowance.half.api.p50_ms"), c.rate("allowance.half.rate"))
		r.baseline = "plain fiber handler at the same rate: p99 " + c.ms("allowance.half.plain.p99_ms")
		r.ratio = c.ratio("allowance.half.ratio") + " (p99, API ÷ plain; lower is better)"
	}
	rows = append(rows, r)

	r = row{what: "4. Issuance to 10,000 seafarers (`quota.Issuer`)", figure: c.notMeasured("issuance"), baseline: "—", ratio: "—",
		setup: c.infos["issuance.setup"], bound: c.notes["issuance"], commands: []string{c.infos["issuance.command"]}}
	if c.has("issuance.rate", "issuance.baseline", "issuance.ratio") {
		r.figure = c.rate("issuance.rate")
		r.baseline = "bare `AddGrant` calls, 16 at once: " + c.rate("issuance.baseline")
		r.ratio = c.ratio("issuance.ratio") + " (issuance ÷ bare grants)"
		if c.has("issuance.round_trips_per_pack") {
			r.setup += fmt.Sprintf("; %.2f round trips to Redis per pack", c.figures["issuance.round_trips_per_pack"])
		}
	}
	rows = append(rows, r, c.recurringRow())

	r = row{what: "5. Bulk enrolment, 10,000 rows (`BenchmarkBulkEnrol10k`)", figure: c.notMeasured("bulk_enrol"), baseline: "—", ratio: "—",
		setup: c.infos["bulk_enrol.setup"], bound: c.notes["bulk_enrol"], commands: []string{c.infos["bulk_enrol.command"]}}
	if c.has("bulk_enrol.rate") {
		r.figure = c.rate("bulk_enrol.rate")
		if r.bound == "" {
			r.bound = fmt.Sprintf("api/bulk.go enrols 32 rows at a time, each a crew.PGStore.Enrol: one PostgreSQL transaction (company checked, seafarer and MSISDN holding inserted, uniqueness by constraints): %.2f ms a row in all.", 1000/c.figures["bulk_enrol.rate"])
		}
		if c.has("bulk_enrol.ratio") {
			r.ratio = c.ratio("bulk_enrol.ratio")
		}
	}
	rows = append(rows, r)
	rows = append(rows, c.memoryRows()...)
	rows = append(rows, c.scalingRows()...)
	rows = append(rows, c.ledgerRow(), c.statementRow())
	return append(rows, c.sessionsRows()...)
}

func (c *collected) table() string {
	var b strings.Builder
	b.WriteString("| Measurement | Figure | Baseline, same run | Ratio |\n|---|---|---|---|\n")
	for _, r := range c.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.what, r.figure, r.baseline, r.ratio)
	}
	return b.String()
}

// machine is where and how the figures were measured.
type machine struct {
	Date, Nproc, CPU, Load, Go, Command string
}

func (c *collected) document(m machine) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `bench/run.sh` from the run below; do not edit by hand, run it again (`make bench`).\n")
	b.WriteString("Figures from one machine are noisy: compare the **ratios** (each against a baseline measured in the same run), not the raw figures, across machines and runs.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", m.Date)
	fmt.Fprintf(&b, "- Machine: %s cores (`nproc`), %s\n", m.Nproc, m.CPU)
	fmt.Fprintf(&b, "- Load average when the run started (1, 5, 15 min): %s — the machine is shared, so other work competes for its cores\n", orDash(m.Load))
	fmt.Fprintf(&b, "- Go: %s\n", m.Go)
	fmt.Fprintf(&b, "- Redis: %s\n", orDash(c.infos["redis_version"]))
	fmt.Fprintf(&b, "- PostgreSQL: %s (a fresh database per measurement, created on the server of `WUYOU_TEST_POSTGRES_URL` and dropped at its end)\n", orDash(c.infos["postgres_version"]))
	fmt.Fprintf(&b, "- Command: `%s`\n\n", m.Command)
	b.WriteString(c.table())
	b.WriteString("\n## What bounds each line\n\n")
	for _, r := range c.rows() {
		fmt.Fprintf(&b, "- **%s** — %s\n", r.what, orDash(r.bound))
	}
	b.WriteString(c.timeSection(m.Load))
	b.WriteString(c.changeSection(m.Load))
	b.WriteString("\n## How each line is measured\n\n")
	for _, r := range c.rows() {
		var ran []string
		for _, cmd := range r.commands {
			if cmd != "" {
				ran = append(ran, "`"+cmd+"`")
			}
		}
		fmt.Fprintf(&b, "- **%s** — %s. Ran: %s.\n", r.what, orDash(r.setup), orDash(strings.Join(ran, ", which runs ")))
	}
	b.WriteString("\n`wuyoubench` and `loadgen` are `bench/cmd/wuyoubench` and `bench/cmd/loadgen`, built by `bench/run.sh`; `bench/README.md` says how to run one alone. PORT is a free port picked at run time; `allowance.lua` and `tokens` are files `wuyoubench allowance` writes for the run.\n")
	return b.String()
}

func metOrMissed(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func runReport(args []string, stdout io.Writer) error {
	var m machine
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("results", "", "file of the lines the measurements printed")
	doc := fs.String("out", "", "write the Markdown document here (empty: only print the table)")
	fs.StringVar(&m.Date, "date", "", "when the run started")
	fs.StringVar(&m.Nproc, "nproc", "", "nproc of the machine")
	fs.StringVar(&m.CPU, "cpu", "", "CPU model")
	fs.StringVar(&m.Load, "load", "", "load average when the run started")
	fs.StringVar(&m.Go, "go", "", "go version")
	fs.StringVar(&m.Command, "command", "", "the command that ran the benchmarks")
	only := fs.String("only", "", "the steps of a run narrowed to them (run.sh's BENCH_ONLY): the lines they measured go into a section of -out of their own, replaced by the next such run of the same steps, the rest of -out kept")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := readCollected(f)
	if err != nil {
		return err
	}
	if *only != "" {
		section := c.partialSection(m, *only)
		fmt.Fprint(stdout, section)
		if *doc == "" {
			return nil
		}
		old, err := os.ReadFile(*doc)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		return os.WriteFile(*doc, []byte(replaceSection(string(old), *only, section)), 0o644)
	}
	fmt.Fprint(stdout, c.table())
	if *doc == "" {
		return nil
	}
	return os.WriteFile(*doc, []byte(c.document(m)), 0o644)
}
