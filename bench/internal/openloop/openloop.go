// Package openloop paces load as wrk2 does, for the benchmarks' latency
// figures at a given rate: request i is due at start + i/rate and fired on a
// goroutine of its own when due, and its latency is counted from when it
// was due, not from when it was sent, so a server that falls behind shows
// its queue in the figures instead of slowing the load down (coordinated
// omission).
package openloop

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Run fires rate requests a second for d until ctx ends: fire(i, due) sends
// request i and returns when it is answered. It returns each sent request's
// latency (from due to fire's return), in order, and how long sending took.
func Run(ctx context.Context, rate float64, d time.Duration, fire func(i int, due time.Time)) (latencies []time.Duration, sending time.Duration) {
	n := int(rate * d.Seconds())
	latencies = make([]time.Duration, n)
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for ; sent < n; sent++ {
		due := start.Add(time.Duration(sent) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fire(i, due)
			latencies[i] = time.Since(due)
		}(sent)
	}
	sending = time.Since(start)
	wg.Wait()
	return latencies[:sent], sending
}

// Percentiles are p50, p90 and p99 and the maximum of ds (sorted in place),
// in microseconds, under names prefixed by prefix ("p50_us", …); none for
// an empty ds.
func Percentiles(prefix string, ds []time.Duration) map[string]float64 {
	m := map[string]float64{}
	if len(ds) == 0 {
		return m
	}
	slices.Sort(ds)
	pct := func(p float64) float64 { return float64(ds[int(p/100*float64(len(ds)-1))].Microseconds()) }
	m[prefix+"p50_us"], m[prefix+"p90_us"], m[prefix+"p99_us"] = pct(50), pct(90), pct(99)
	m[prefix+"max_us"] = float64(ds[len(ds)-1].Microseconds())
	return m
}

// ReadLines reads the non-blank lines of a file (tokens, MSISDNs), trimmed.
func ReadLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}
