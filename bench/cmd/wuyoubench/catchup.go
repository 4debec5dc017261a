package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
)

// catchupConfig sizes the catch-up measurement.
type catchupConfig struct {
	Seafarers, Events, Partitions, Workers int
	PackSeconds                            int64
	DrainLimit                             time.Duration
}

// produceChunk is how many events the catch-up generates before producing
// them, so the backlog is never held in this process, only in the broker.
const produceChunk = 50_000

// runCatchup measures how long the consumer takes to drain a backlog of
// c.Events events that were all produced before it started, as after an
// outage, and whether it slows down as Redis fills: the rate and Redis's
// CPU per event over the first and the last tenth of the backlog. The
// applied billable seconds are checked against what was sent. Its baseline
// is the steady end-to-end rate of `wuyoubench metering` (line 2), which the
// report divides it by.
func runCatchup(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c catchupConfig
	fs := flag.NewFlagSet("catchup", flag.ContinueOnError)
	fs.IntVar(&c.Events, "events", 1_000_000, "events in the backlog")
	fs.IntVar(&c.Seafarers, "seafarers", 10_000, "enrolled seafarers the events are about, one grant each")
	fs.IntVar(&c.Partitions, "partitions", 4, "partitions of carrier.usage.v1")
	fs.Int64Var(&c.PackSeconds, "pack-seconds", 1800, "seconds of each seafarer's grant")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent setup calls")
	fs.DurationVar(&c.DrainLimit, "drain-limit", 6*time.Minute, "stop draining after this long and report the rate over the events applied by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("catchup.command", "%s", command("wuyoubench", fs))
	l, db, done, err := openLabAndDatabase(ctx, env, env, "catchup", out)
	if err != nil {
		return err
	}
	defer done()
	p, err := newPipeline(ctx, l.rdb, l.prefix, db.pool)
	if err != nil {
		return err
	}
	now := wuyou.SystemClock()
	progress("catchup: enrolling (PostgreSQL) and granting %d seafarers %d s each", c.Seafarers, c.PackSeconds)
	f, err := enrolFleet(ctx, p, c.Seafarers, c.PackSeconds, c.Workers)
	if err != nil {
		return err
	}
	msisdns, ids := f.msisdns, f.ids

	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(c.Partitions), topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	progress("catchup: producing %d events to carrier.usage.v1 (%d partitions)", c.Events, c.Partitions)
	started := time.Now()
	chunk := make([]sim.Event, 0, produceChunk)
	summary, err := simStream(c.Events, msisdns, 3, now, func(ev sim.Event) error {
		if chunk = append(chunk, ev); len(chunk) < produceChunk {
			return nil
		}
		if err := produce(ctx, brokers, topics.Usage, chunk); err != nil {
			return err
		}
		chunk = chunk[:0]
		return nil
	})
	if err == nil {
		err = produce(ctx, brokers, topics.Usage, chunk)
	}
	if err != nil {
		return err
	}
	produced := time.Since(started)

	memoryBefore, err := usedMemory(ctx, l)
	if err != nil {
		return err
	}
	// The first tenth of the backlog runs from the first event consumed to
	// the poll that saw a tenth applied; the last tenth, from the poll that
	// saw nine tenths applied to the last event applied.
	type mark struct {
		sample
		applied float64
	}
	var firstTenth, lastTenth mark
	tenth := float64(c.Events) / 10
	progress("catchup: consumer started; draining")
	d, err := drainBacklog(ctx, l, p, brokers, topics, c.Events, c.DrainLimit, func(n meteringCounters) {
		if firstTenth.at.IsZero() && n.applied >= tenth {
			firstTenth = mark{l.sample(ctx), n.applied}
		}
		if lastTenth.at.IsZero() && n.applied >= 9*tenth {
			lastTenth = mark{l.sample(ctx), n.applied}
		}
	})
	if err != nil {
		return err
	}
	memoryAfter, err := usedMemory(ctx, l)
	if err != nil {
		return err
	}
	n, drained := d.counts, d.last.since(d.first)
	if d.partial {
		out.info("catchup.partial", "the drain limit of %s ran out with %d of the %d events applied, so the rate is over those and the backlog was not drained (raise -drain-limit, or run on a quieter machine, to drain it all)", c.DrainLimit, int(n.applied), c.Events)
	} else if err := checkBillable(ctx, p, ids, summary, 0); err != nil {
		return err
	}

	rate := n.applied / drained.Wall.Seconds()
	out.figure("catchup.events", float64(c.Events), "events")
	out.figure("catchup.seconds", drained.Wall.Seconds(), "s")
	out.figure("catchup.applied", n.applied, "events")
	out.figure("catchup.rate", rate, "events/s")
	// A stretch's Redis CPU per event tells a Redis that slows as it fills
	// from a machine that got busier, which its rate alone cannot.
	stretch := func(key string, from, to sample, applied float64) {
		u := to.since(from)
		out.figure(key+".rate", applied/u.Wall.Seconds(), "events/s")
		out.figure(key+".machine_busy", float64(u.MachineCPU)/float64(u.Wall)/float64(numCPU()), "share")
		if u.RedisCPU >= 0 {
			out.figure(key+".redis_cpu_us_per_event", float64(u.RedisCPU.Microseconds())/applied, "us")
		}
	}
	if !firstTenth.at.IsZero() {
		stretch("catchup.first_tenth", d.first, firstTenth.sample, firstTenth.applied)
	}
	if !d.partial && !lastTenth.at.IsZero() {
		stretch("catchup.last_tenth", lastTenth.sample, d.last, n.applied-lastTenth.applied)
	}
	out.figure("catchup.group_join", d.first.at.Sub(d.joined).Seconds(), "s")
	out.figure("catchup.round_trips_per_event", float64(drained.RoundTrips)/n.applied, "round-trips")
	out.figure("catchup.redis_memory_before", float64(memoryBefore), "B")
	out.figure("catchup.redis_memory_after", float64(memoryAfter), "B")
	ledgerBytes, _ := relationBytes(ctx, db.pool, "ledger_entries")
	claimBytes, _ := relationBytes(ctx, db.pool, "event_claims")
	out.figure("catchup.pg_ledger_bytes", float64(ledgerBytes), "B")
	out.figure("catchup.pg_claims_bytes", float64(claimBytes), "B")
	out.info("catchup.setup", "%d seafarers enrolled in PostgreSQL with one %d s grant each; %d carriersim voice events over their MSISDNs (100%% voice, no faults, call times spread over the 40 minutes before the run) produced first to kfake (in process, %d partitions), %d at a time, in %.0f s; then one consumer wired as cmd/wuyoud wires it (as line 2: registry, identity claims, ledger and held events in PostgreSQL, hot state in Redis) drains them all, timed from the first event consumed to the last applied (group join excluded); checked afterwards: the billable seconds the allowances show equal what was sent, and the ledger holds one debit per event", c.Seafarers, c.PackSeconds, c.Events, c.Partitions, produceChunk, produced.Seconds())
	out.note("catchup", "%s The consumer works through the backlog as through live traffic, in batches of up to %d (line 2), with %.3f Redis round trips per event; meanwhile PostgreSQL takes on a ledger row and an identity claim per event (%.0f MB of ledger and %.0f MB of claims, indexes included, by the end), and Redis an identity in each seafarer's seen set (about %d per seafarer: the backlog's calls are made within 40 minutes, so the sets grow past their compact listpack encoding, which is why Redis CPU per event can differ between the first tenth and the last; real traffic, three calls a day, keeps about 90).", drained.bound("the bench process (consumer, kafka-go and the kfake broker)"), carrier.DefaultBatchSize, float64(drained.RoundTrips)/n.applied, float64(ledgerBytes)/1e6, float64(claimBytes)/1e6, c.Events/max(c.Seafarers, 1))
	return nil
}

// usedMemory is Redis's used_memory (INFO memory), in bytes: everything the
// Redis holds, other clients' keys included.
func usedMemory(ctx context.Context, l *lab) (int64, error) {
	m, err := redisInfo(ctx, l.rdb, "memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(m["used_memory"], 10, 64)
}
