package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// runGoBench runs a Go benchmark command (`go test -bench …`) -rounds
// times and prints each benchmark's metrics as figures, the median over
// the rounds: "<key>.<name>.<unit> value unit", where name is the
// benchmark's without "Benchmark" and the -GOMAXPROCS suffix and unit has
// "/" spelled "_per_" (ns/op: <key>.Append.ns_per_op). Lines a benchmark
// logged that start with "plan:" become "info <key>.<name>.plan". Running
// the rounds as separate commands alternates the benchmarks of one
// command, so a figure and the baseline next to it share the machine's
// noise.
//
//	wuyoubench gobench -key ledger -rounds 3 -- go test -run '^$' -bench '^BenchmarkAppend(BareCopy)?$' -benchtime 100x ./quota/
func runGoBench(ctx context.Context, args []string, out *results, progress func(string, ...any)) error {
	fs := flag.NewFlagSet("gobench", flag.ContinueOnError)
	key := fs.String("key", "", "prefix of the figures printed")
	rounds := fs.Int("rounds", 1, "times to run the command; each figure is the median over them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if *key == "" || len(argv) == 0 {
		return errors.New("usage: wuyoubench gobench -key KEY [-rounds N] -- COMMAND [ARGS...]")
	}
	out.info(*key+".command", "%s", strings.Join(argv, " "))
	values := map[string][]float64{}
	units := map[string]string{}
	var order []string
	for r := range max(*rounds, 1) {
		progress("%s: round %d of %d: %s", *key, r+1, *rounds, strings.Join(argv, " "))
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		parsed := parseGoBench(io.TeeReader(stdout, os.Stderr))
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		for _, b := range parsed.results {
			for unit, v := range b.metrics {
				k := *key + "." + b.name + "." + strings.ReplaceAll(unit, "/", "_per_")
				if _, ok := values[k]; !ok {
					order = append(order, k)
				}
				values[k] = append(values[k], v)
				units[k] = unit
			}
		}
		for name, plan := range parsed.plans {
			out.info(*key+"."+name+".plan", "%s", plan)
		}
	}
	if len(order) == 0 {
		return fmt.Errorf("%s printed no benchmark results", strings.Join(argv, " "))
	}
	for _, k := range order {
		out.figure(k, median(values[k]), units[k])
	}
	out.figure(*key+".rounds", float64(max(*rounds, 1)), "rounds")
	return nil
}

// goBenchResult is one result line of `go test -bench`.
type goBenchResult struct {
	name    string
	metrics map[string]float64 // by unit: "ns/op" -> 123
}

type goBenchOutput struct {
	results []goBenchResult
	plans   map[string]string
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)
var benchHeader = regexp.MustCompile(`^--- BENCH: Benchmark(\S+?)(-\d+)?$`)

// parseGoBench reads `go test -bench` output: result lines
// ("BenchmarkAppend-2   100   51234 ns/op   51.2 ns/row") and what each
// benchmark logged under its "--- BENCH:" header.
func parseGoBench(r io.Reader) goBenchOutput {
	out := goBenchOutput{plans: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	current := ""
	for sc.Scan() {
		line := sc.Text()
		if m := benchHeader.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			current = m[1]
			continue
		}
		if m := benchLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			f := strings.Fields(m[3])
			res := goBenchResult{name: m[1], metrics: map[string]float64{}}
			for i := 0; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					res.metrics[f[i+1]] = v
				}
			}
			out.results = append(out.results, res)
			continue
		}
		// A logged line: "    file_test.go:123: plan: Aggregate | Index Scan …".
		if _, rest, ok := strings.Cut(line, ": plan: "); ok && current != "" {
			out.plans[current] = strings.TrimSpace(rest)
		}
	}
	return out
}
