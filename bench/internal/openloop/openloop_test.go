package openloop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Every request due within the duration is fired once, each latency counts
// from when it was due (so a slow answer shows), and the percentiles are
// those of the latencies.
func TestRunFiresEachDueRequestOnceAndCountsFromItsDueTime(t *testing.T) {
	var fired [40]atomic.Int32
	latencies, sending := Run(context.Background(), 200, 200*time.Millisecond, func(i int, _ time.Time) {
		fired[i].Add(1)
		if i == 7 {
			time.Sleep(30 * time.Millisecond)
		}
	})
	if len(latencies) != 40 {
		t.Fatalf("%d requests sent, want 40 (200/s for 200 ms)", len(latencies))
	}
	for i := range fired {
		if n := fired[i].Load(); n != 1 {
			t.Errorf("request %d fired %d times", i, n)
		}
	}
	if latencies[7] < 30*time.Millisecond {
		t.Errorf("the slow request's latency %s is under its 30 ms answer", latencies[7])
	}
	if sending < 190*time.Millisecond {
		t.Errorf("sending took %s: the requests were not paced", sending)
	}
	m := Percentiles("x_", latencies)
	if m["x_max_us"] < 30_000 || m["x_p50_us"] > m["x_p99_us"] {
		t.Errorf("percentiles %v", m)
	}
}

// A cancelled context stops the sending; what was sent is returned.
func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	latencies, _ := Run(ctx, 100, 10*time.Second, func(int, time.Time) {})
	if len(latencies) == 0 || len(latencies) > 10 {
		t.Fatalf("%d sent in 50 ms at 100/s", len(latencies))
	}
}
