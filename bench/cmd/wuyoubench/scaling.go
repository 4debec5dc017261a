package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/carrier"
)

// scalingConfig sizes the scaling measurement.
type scalingConfig struct {
	Seafarers, Events, Workers int
	DrainLimit                 time.Duration
	CPUProfile                 string
}

// scalingRun is one shape of the pipeline: partitions of carrier.usage.v1
// and consumers in one group, each a carrier.Consumer wired as cmd/wuyoud
// wires it, in this process.
type scalingRun struct {
	key                   string
	partitions, consumers int
	profile               bool
}

// runScaling drains the same number of events end to end with 1 and 8
// partitions and with 1 and 2 consumers in one group, against a redis-server
// of its own (so commandstats count this pipeline only), and profiles the
// consumer's CPU in the 8-partition, 1-consumer run.
func runScaling(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c scalingConfig
	fs := flag.NewFlagSet("scaling", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 5_000, "enrolled seafarers, one grant each")
	fs.IntVar(&c.Events, "events", 30_000, "events drained in each run")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent setup calls")
	fs.DurationVar(&c.DrainLimit, "drain-limit", 40*time.Second, "stop a run after this long and report the rate over the events applied by then")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the CPU profile of the 8-partition, 1-consumer run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("scaling.command", "%s", command("wuyoubench", fs))
	srv, err := startRedis(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	l, db, done, err := openLabAndDatabase(ctx, environment{RedisAddrs: []string{srv.addr}}, env, "scaling", out)
	if err != nil {
		return err
	}
	defer done()
	p, err := newPipeline(ctx, l.rdb, l.prefix, db.pool)
	if err != nil {
		return err
	}
	progress("scaling: enrolling (PostgreSQL) and granting %d seafarers", c.Seafarers)
	f, err := enrolFleet(ctx, p, c.Seafarers, 1_000_000, c.Workers)
	if err != nil {
		return err
	}
	msisdns := f.msisdns

	// A short drain first, unreported, so the first measured run does not
	// pay for loading scripts and warming connections.
	warm := c
	warm.Events = min(c.Events, 3000)
	if _, err := drainOnce(ctx, l, p, msisdns, warm, scalingRun{key: "warmup", partitions: 1, consumers: 1}, 99, &results{w: io.Discard}, progress); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	runs := []scalingRun{
		{key: "p1c1", partitions: 1, consumers: 1},
		{key: "p8c1", partitions: 8, consumers: 1, profile: c.CPUProfile != ""},
		{key: "p8c2", partitions: 8, consumers: 2},
	}
	rates := map[string]float64{}
	for i, r := range runs {
		rate, err := drainOnce(ctx, l, p, msisdns, c, r, int64(100+i), out, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", r.key, err)
		}
		rates[r.key] = rate
	}
	out.figure("scaling.partitions.ratio", rates["p8c1"]/rates["p1c1"], "x")
	out.figure("scaling.consumers.ratio", rates["p8c2"]/rates["p8c1"], "x")
	out.info("scaling.setup", "a redis-server of its own; %d seafarers enrolled with one grant each; for each shape, %d carriersim voice events produced first to a fresh kfake broker (in process) with that many partitions of carrier.usage.v1, then drained by carrier.Consumer instances wired as cmd/wuyoud wires them, sharing one consumer group, all in this process; timed from the first event consumed to the last applied", c.Seafarers, c.Events)
	return nil
}

// drainOnce produces c.Events events to a fresh broker with r.partitions
// partitions and drains them with r.consumers consumers in one group.
func drainOnce(ctx context.Context, l *lab, p *pipeline, msisdns []string, c scalingConfig, r scalingRun, seed int64, out *results, progress func(string, ...any)) (float64, error) {
	now := wuyou.SystemClock()
	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(r.partitions), topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...))
	if err != nil {
		return 0, fmt.Errorf("start kfake: %w", err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()
	events, _, err := simEvents(c.Events, msisdns, seed, now)
	if err != nil {
		return 0, err
	}
	if err := produce(ctx, brokers, topics.Usage, events); err != nil {
		return 0, err
	}
	writer := carrier.NewWriter(brokers)
	defer writer.Close()
	regs := make([]*prometheus.Registry, r.consumers)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{}, r.consumers)
	if err := l.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return 0, err
	}
	sentBefore := l.sent.names()
	progress("scaling %s: %d events, %d partitions, %d consumers", r.key, len(events), r.partitions, r.consumers)
	var profile *os.File
	if r.profile {
		if profile, err = os.Create(c.CPUProfile); err != nil {
			return 0, err
		}
		defer profile.Close()
	}
	for i := range regs {
		regs[i] = prometheus.NewRegistry()
		consumer := p.consumer(brokers, topics, writer, regs[i])
		go func() {
			defer func() { done <- struct{}{} }()
			_ = consumer.Run(cctx)
		}()
	}
	started := time.Now()
	var first sample
	limit := time.After(c.DrainLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	counts := make([]meteringCounters, r.consumers)
	var total meteringCounters
	partial := false
drain:
	// Repeats (a batch redelivered after a rebalance) are not counted: the
	// run ends when every event has reached an outcome once.
	for total.settled()-total.duplicates < float64(len(events)) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-limit:
			partial = true
			break drain
		case <-tick.C:
		}
		total = meteringCounters{}
		for i, reg := range regs {
			counts[i] = readCounters(reg)
			total.consumed += counts[i].consumed
			total.applied += counts[i].applied
			total.duplicates += counts[i].duplicates
			total.late += counts[i].late
			total.held += counts[i].held
			total.deadLettered += counts[i].deadLettered
		}
		if first.at.IsZero() && total.consumed > 0 {
			first = l.sample(ctx)
			if profile != nil {
				if err := pprof.StartCPUProfile(profile); err != nil {
					return 0, err
				}
			}
		}
	}
	if profile != nil {
		pprof.StopCPUProfile()
	}
	drained := l.sample(ctx).since(first)
	stats, _ := commandStats(ctx, l.rdb)
	sent := l.sent.names()
	for name, n := range sentBefore {
		sent[name] -= n
	}
	stop()
	for range r.consumers {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			return 0, errors.New("a consumer did not stop within 30 s")
		}
	}
	if total.applied == 0 || total.settled()-total.duplicates != total.applied {
		return 0, fmt.Errorf("of %d events, %v applied (%+v): all should be applied", len(events), total.applied, total)
	}
	out.figure("scaling."+r.key+".redelivered", total.duplicates, "events")
	rate := total.applied / drained.Wall.Seconds()
	k := "scaling." + r.key
	out.figure(k+".rate", rate, "events/s")
	out.figure(k+".group_join", first.at.Sub(started).Seconds(), "s")
	var split []string
	for _, n := range counts {
		split = append(split, strconv.Itoa(int(n.applied)))
	}
	out.info(k+".split", "events applied by each consumer: %s", strings.Join(split, " / "))
	if partial {
		out.info(k+".partial", "the drain limit of %s ran out with %d of the %d events applied", c.DrainLimit, int(total.applied), len(events))
	}
	out.figure(k+".redis_busy", float64(drained.RedisCPU)/float64(drained.Wall), "share")
	out.figure(k+".self_cores", float64(drained.SelfCPU)/float64(drained.Wall), "cores")
	out.figure(k+".machine_busy", float64(drained.MachineCPU)/float64(drained.Wall)/float64(max(1, numCPU())), "share")
	out.figure(k+".round_trips_per_event", float64(drained.RoundTrips)/total.applied, "round-trips")
	out.figure(k+".commands_per_event", float64(drained.Commands)/total.applied, "commands")
	if ev, ok := stats["evalsha"]; ok {
		out.figure(k+".evalsha_usec_per_call", ev.usecPerCall, "us")
		out.figure(k+".evalsha_calls_per_event", float64(ev.calls)/total.applied, "calls")
	}
	usec, sentCmds := consumerUsec(stats, sent)
	out.figure(k+".commandstats_us_per_event", usec/total.applied, "us")
	var per []string
	for _, name := range sortedStrings(slices.Collect(maps.Keys(sentCmds))) {
		st := sentCmds[name]
		per = append(per, fmt.Sprintf("%s %.3f a event at %.1f µs", strings.ToUpper(name), float64(st.calls)/total.applied, st.usecPerCall))
	}
	out.info(k+".consumer_commands", "%s", strings.Join(per, "; "))
	var top []string
	for name, s := range stats {
		if !strings.HasPrefix(name, "config") && name != "info" {
			top = append(top, fmt.Sprintf("%s %d calls %.1f us/call", name, s.calls, s.usecPerCall))
		}
	}
	// commandstats count the commands a script calls as well as the script,
	// so Redis's time per event is read from its main thread's CPU instead.
	out.figure(k+".redis_cpu_us_per_event", float64(drained.RedisCPU.Microseconds())/total.applied, "us")
	out.info(k+".commandstats", "%s", strings.Join(sortedStrings(top), "; "))
	out.note(k, "%s", drained.bound("the bench process (consumers, kafka-go and the kfake broker)"))
	return rate, nil
}

// consumerUsec is the time Redis spent on the commands this process sent
// (sent, by name), from INFO commandstats (stats) reset before they were
// sent: a script's time includes the commands it calls, which commandstats
// also list on their own, so a command name the scripts call too (HDEL,
// say) is counted in the share of its calls this process sent. INFO and
// CONFIG, which only measure, are left out. It returns the microseconds
// and, by name, the calls this process sent and their time per call.
func consumerUsec(stats map[string]cmdStat, sent map[string]int64) (float64, map[string]cmdStat) {
	var total float64
	out := map[string]cmdStat{}
	for name, n := range sent {
		st, ok := stats[name]
		if !ok || n <= 0 || name == "info" || strings.HasPrefix(name, "config") {
			continue
		}
		share := min(1, float64(n)/float64(max(st.calls, 1)))
		total += share * float64(st.usec)
		out[name] = cmdStat{calls: min(n, st.calls), usec: int64(share * float64(st.usec)), usecPerCall: st.usecPerCall}
	}
	return total, out
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	calls, usec int64
	usecPerCall float64
}

// commandStats reads INFO commandstats: "cmdstat_evalsha:calls=1,usec=2,usec_per_call=2.00,...".
func commandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]cmdStat, error) {
	m, err := redisInfo(ctx, rdb, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]cmdStat{}
	for k, v := range m {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var s cmdStat
		for _, kv := range strings.Split(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			switch f {
			case "calls":
				s.calls, _ = strconv.ParseInt(val, 10, 64)
			case "usec":
				s.usec, _ = strconv.ParseInt(val, 10, 64)
			case "usec_per_call":
				s.usecPerCall, _ = strconv.ParseFloat(val, 64)
			}
		}
		out[name] = s
	}
	return out, nil
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

func numCPU() int { return runtime.NumCPU() }
