package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/carrier"
)

const usageTopic = "carrier.usage.v1"

// MustKfake starts an in-process Kafka-protocol broker with the usage topic
// (8 partitions) and returns its address.
func MustKfake(tb testing.TB) string {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, usageTopic))
	if err != nil {
		tb.Fatalf("kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// readAll reads every message on every partition of topic.
func readAll(tb testing.TB, addr, topic string) map[int][]kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		tb.Fatalf("partitions: %v", err)
	}
	out := map[int][]kafka.Message{}
	for _, p := range parts {
		lc, err := kafka.DialLeader(ctx, "tcp", addr, topic, p.ID)
		if err != nil {
			tb.Fatalf("dial leader of partition %d: %v", p.ID, err)
		}
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil {
			tb.Fatalf("offsets of partition %d: %v", p.ID, err)
		}
		if last == first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{addr},
			Topic:     topic,
			Partition: p.ID,
			MinBytes:  1,
			MaxBytes:  10 << 20,
			MaxWait:   100 * time.Millisecond,
		})
		if err := r.SetOffset(first); err != nil {
			tb.Fatalf("set offset: %v", err)
		}
		for off := first; off < last; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				tb.Fatalf("read partition %d at %d of %d: %v", p.ID, off, last, err)
			}
			out[p.ID] = append(out[p.ID], m)
		}
		r.Close()
	}
	return out
}

func TestProducesEveryEventToTheBrokerKeyedByMSISDN(t *testing.T) {
	addr := MustKfake(t)
	summaryPath := filepath.Join(t.TempDir(), "summary.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--brokers", addr,
		"--count", "1000",
		"--rate", "max",
		"--msisdn-range", "+8613800000001-+8613800000100",
		"--duplicates", "0.05",
		"--late", "0.01",
		"--reorder", "0.02",
		"--malformed", "0.01",
		"--seed", "7",
		"--summary", summaryPath,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}

	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("summary on stdout is not JSON: %v\n%s", err, stdout.String())
	}
	fileCopy, err := os.ReadFile(summaryPath)
	if err != nil || !bytes.Equal(fileCopy, stdout.Bytes()) {
		t.Fatalf("--summary file differs from stdout (err %v)", err)
	}
	if rep.Totals.Sent != 1000 || rep.Stopped != "count" {
		t.Fatalf("summary: sent %d, stopped %q; want 1000, count", rep.Totals.Sent, rep.Stopped)
	}
	if rep.Totals.Duplicates == 0 || rep.Totals.Malformed == 0 {
		t.Fatalf("summary has no faults: %+v", rep.Totals)
	}

	msgs := readAll(t, addr, usageTopic)
	total, decoded := 0, 0
	partitionOf := map[string]int{}
	for p, ms := range msgs {
		for _, m := range ms {
			total++
			if prev, ok := partitionOf[string(m.Key)]; ok && prev != p {
				t.Fatalf("key %s on partitions %d and %d", m.Key, prev, p)
			}
			partitionOf[string(m.Key)] = p
			if ev, err := carrier.DecodeUsageEvent(m.Value); err == nil {
				decoded++
				if ev.Subject != string(m.Key) {
					t.Fatalf("key %s carries subject %s", m.Key, ev.Subject)
				}
			}
		}
	}
	if total != 1000 {
		t.Fatalf("read %d messages back, want 1000", total)
	}
	if want := int(rep.Totals.Sent - rep.Totals.Malformed); decoded != want {
		t.Fatalf("%d messages decode, want %d (sent minus malformed)", decoded, want)
	}
	if len(msgs) < 2 {
		t.Fatalf("all messages on %d partition(s): the hash balancer should spread 100 MSISDNs", len(msgs))
	}
}

func TestAnInterruptedRunReportsWhatWasSent(t *testing.T) {
	addr := MustKfake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(700*time.Millisecond, cancel) // as SIGINT would
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{
		"--brokers", addr, "--rate", "200/s",
		"--msisdn-range", "+8613800000001-+8613800000005",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "interrupted" {
		t.Fatalf("stopped %q, want interrupted", rep.Stopped)
	}
	// About 140 events in 0.7s at 200/s, plus the limiter's first burst.
	if rep.Totals.Sent < 50 || rep.Totals.Sent > 250 {
		t.Fatalf("sent %d events in 0.7s at 200/s", rep.Totals.Sent)
	}
	if got := len(readAll(t, addr, usageTopic)); got == 0 {
		t.Fatal("nothing on the topic")
	}
}

func TestStartGivesSimulatedCallTimesAdvancingByStep(t *testing.T) {
	addr := MustKfake(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--brokers", addr, "--count", "20", "--rate", "max",
		"--msisdn-range", "+8613800000001-+8613800000001",
		"--start", "2026-11-28T10:00:00Z", "--step", "1m",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var times []time.Time
	for _, ms := range readAll(t, addr, usageTopic) {
		for _, m := range ms {
			ev, err := carrier.DecodeUsageEvent(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			times = append(times, ev.Time)
		}
	}
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	if len(times) != 20 {
		t.Fatalf("%d events, want 20", len(times))
	}
	for i, tm := range times { // one MSISDN: one partition, in order
		if want := start.Add(time.Duration(i) * time.Minute); !tm.Equal(want) {
			t.Fatalf("event %d at %v, want %v", i, tm, want)
		}
	}
}

func TestBadFlagsAreRefusedWithAReason(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no subscribers":    {[]string{"--count", "1"}, "--seafarers FILE or --msisdn-range"},
		"both sources":      {[]string{"--seafarers", "x", "--msisdn-range", "+8613800000001-+8613800000002"}, "not both"},
		"bad rate":          {[]string{"--rate", "fast", "--msisdn-range", "+8613800000001-+8613800000002"}, "--rate"},
		"bad range":         {[]string{"--msisdn-range", "13800000001-13800000002"}, "--msisdn-range"},
		"too many faults":   {[]string{"--duplicates", "0.7", "--malformed", "0.7", "--msisdn-range", "+8613800000001-+8613800000002"}, "more than 1"},
		"missing seafarers": {[]string{"--seafarers", "/nonexistent/crew.csv"}, "--seafarers"},
		"bad start":         {[]string{"--start", "tomorrow", "--msisdn-range", "+8613800000001-+8613800000002"}, "--start"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, &stdout, &stderr)
			if err != errUsage {
				t.Fatalf("run returned %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stderr does not mention %q:\n%s", c.want, stderr.String())
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"200/s": 200, "200": 200, "0": 0, "max": 0, "MAX": 0, "120/m": 2, "3600/h": 1, "0.5/s": 0.5,
	} {
		got, err := parseRate(in)
		if err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1/s", "10/d"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) accepted", in)
		}
	}
}

func TestSeafarersFileMayBeACrewCSV(t *testing.T) {
	dir := t.TempDir()
	crew := filepath.Join(dir, "crew.csv")
	os.WriteFile(crew, []byte("seafarer_book_no,name,msisdn\nB1,Li Wei,+8613800000001\nB2,Wang Fang,+8613800000002\n"), 0o644)
	o, err := parseOptions([]string{"--seafarers", crew}, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.sim.MSISDNs, ","); got != "+8613800000001,+8613800000002" {
		t.Fatalf("MSISDNs %s", got)
	}
}

func TestDurationEndsTheRun(t *testing.T) {
	addr := MustKfake(t)
	var stdout, stderr bytes.Buffer
	begin := time.Now()
	err := run(context.Background(), []string{
		"--brokers", addr, "--rate", "100/s", "--duration", "500ms",
		"--msisdn-range", "+8613800000001-+8613800000003",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "duration" || time.Since(begin) > 5*time.Second {
		t.Fatalf("stopped %q after %v, want duration after about 500ms", rep.Stopped, time.Since(begin))
	}
	if rep.Totals.Sent < 20 || rep.Totals.Sent > 100 {
		t.Fatalf("sent %d events in 0.5s at 100/s", rep.Totals.Sent)
	}
}

func TestAnUnreachableBrokerFailsTheRun(t *testing.T) {
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, []string{
		"--brokers", "127.0.0.1:1", "--count", "10", "--rate", "max", "--broker-wait", "1s",
		"--msisdn-range", "+8613800000001-+8613800000003",
	}, &stdout, &stderr)
	if err == nil {
		t.Fatal("run succeeded without a broker")
	}
	if !strings.Contains(stderr.String(), "retrying") {
		t.Errorf("no retry while the broker was unreachable:\n%s", stderr.String())
	}
	var rep report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil || rep.Stopped != "error" || rep.Totals.Sent != 0 {
		t.Fatalf("summary after a failed run: stopped %q, sent %d (%v)", rep.Stopped, rep.Totals.Sent, jerr)
	}
}

func TestAMissingTopicFailsTheRunNamingIt(t *testing.T) {
	addr := MustKfake(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--brokers", addr, "--topic-prefix", "staging.", "--count", "5", "--broker-wait", "500ms",
		"--msisdn-range", "+8613800000001-+8613800000002",
	}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "staging.carrier.usage.v1") {
		t.Fatalf("run against a broker without the topic: %v", err)
	}
}
