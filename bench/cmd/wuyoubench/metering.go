package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
	"github.com/wuyou/wuyou/quota"
)

// hincrbyScript is the baseline of the direct metering figure: the least a
// pipelined per-call script can do, so the ratio prices what the debit
// script does beyond one counter increment.
//
// KEYS[1] a usage counters hash. ARGV[1] field, ARGV[2] increment.
// Reply: the counter's new value.
var hincrbyScript = redis.NewScript(`return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])`)

// homeCountry is the service's default WUYOU_HOME_COUNTRY and the
// simulator's home: calls elsewhere draw on grants.
const homeCountry = "CN"

// meteringConfig sizes the metering measurements.
type meteringConfig struct {
	Seafarers   int
	Debits      int // direct: debits through RedisStore.DebitBatch
	Events      int // end to end: events produced and drained
	Batch       int
	PackSeconds int64
	Workers     int // setup concurrency (enrolment, grants)
	DrainLimit  time.Duration
}

func runMetering(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c meteringConfig
	fs := flag.NewFlagSet("metering", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 10_000, "seafarers, each with one grant")
	fs.IntVar(&c.Debits, "debits", 100_000, "debits driven directly through DebitBatch")
	fs.IntVar(&c.Events, "events", 100_000, "events produced to Kafka and drained by the consumer")
	fs.IntVar(&c.Batch, "batch", carrier.DefaultBatchSize, "debits per pipeline (the consumer's batch size)")
	fs.Int64Var(&c.PackSeconds, "pack-seconds", 1800, "seconds of each seafarer's grant")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent setup calls")
	fs.DurationVar(&c.DrainLimit, "drain-limit", 75*time.Second, "stop draining after this long and report the rate over the events applied by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("metering.command", "%s", command("wuyoubench", fs))
	l, db, done, err := openLabAndDatabase(ctx, env, env, "metering", out)
	if err != nil {
		return err
	}
	defer done()

	direct, err := meterDirect(ctx, l, db, l.prefix+":direct", c, out, progress)
	if err != nil {
		return fmt.Errorf("direct metering: %w", err)
	}
	endToEnd, err := meterEndToEnd(ctx, l, db, l.prefix+":e2e", c, out, progress)
	if err != nil {
		return fmt.Errorf("end-to-end metering: %w", err)
	}
	out.figure("metering.e2e.ratio", endToEnd/direct, "x")
	return nil
}

// meterDirect drives the debit script through RedisStore.DebitBatch of the
// store wired as cmd/wuyoud wires it (identity claims in PostgreSQL, one
// round trip per batch), one batch of c.Batch debits after another as the
// consumer does, between two runs of the HINCRBY baseline pipelined the
// same way. It returns the debit rate (debits/s).
func meterDirect(ctx context.Context, l *lab, db *benchDatabase, prefix string, c meteringConfig, out *results, progress func(string, ...any)) (float64, error) {
	rdb := l.rdb
	now := wuyou.SystemClock()
	p, err := newPipeline(ctx, rdb, prefix, db.pool)
	if err != nil {
		return 0, err
	}
	store := p.store
	ids := make([]string, c.Seafarers)
	bySubscriber := make(map[string]string, c.Seafarers)
	msisdns := benchMSISDNs(c.Seafarers)
	for i := range ids {
		ids[i] = fmt.Sprintf("sf-%06d", i)
		bySubscriber[msisdns[i]] = ids[i]
	}
	progress("direct: granting %d seafarers %d s each", c.Seafarers, c.PackSeconds)
	if err := grantEach(ctx, store, ids, "pg_bench", c.PackSeconds, now, c.Workers); err != nil {
		return 0, err
	}
	events, _, err := simEvents(c.Debits, msisdns, 1, now)
	if err != nil {
		return 0, err
	}
	usages := make([]quota.Usage, len(events))
	rate := rater()
	for i, ev := range events {
		ue, err := carrier.DecodeUsageEvent(ev.Value)
		if err != nil {
			return 0, fmt.Errorf("simulated event %s: %w", ev.ID, err)
		}
		usages[i] = rate(bySubscriber[ue.Subject], ue)
	}

	// Both scripts are loaded before the clock starts.
	if err := hincrbyScript.Load(ctx, rdb).Err(); err != nil {
		return 0, err
	}
	warmup := quota.Usage{SeafarerID: "warmup", Source: "urn:bench:warmup", EventID: "w1", Type: carrier.TypeVoice, CallTime: now, BillableSeconds: 60}
	if _, err := store.DebitBatch(ctx, []quota.Usage{warmup}); err != nil {
		return 0, err
	}

	baseline := func() (float64, error) {
		before := l.sample(ctx)
		if err := hincrbyAll(ctx, rdb, prefix+":baseline", usages, c.Batch); err != nil {
			return 0, err
		}
		u := l.sample(ctx).since(before)
		return float64(len(usages)) / u.Wall.Seconds(), nil
	}
	progress("direct: HINCRBY script baseline, %d calls in pipelines of %d", len(usages), c.Batch)
	base1, err := baseline()
	if err != nil {
		return 0, err
	}
	progress("direct: debit script, %d debits in pipelines of %d", len(usages), c.Batch)
	before := l.sample(ctx)
	for i := 0; i < len(usages); i += c.Batch {
		results, err := store.DebitBatch(ctx, usages[i:min(i+c.Batch, len(usages))])
		if err != nil {
			return 0, err
		}
		for _, r := range results {
			if r.Duplicate {
				return 0, fmt.Errorf("debit %s refused as a duplicate: the measurement would not be of fresh debits", r.Entry.EventID)
			}
		}
	}
	debit := l.sample(ctx).since(before)
	progress("direct: HINCRBY script baseline again")
	base2, err := baseline()
	if err != nil {
		return 0, err
	}

	debits := float64(len(usages)) / debit.Wall.Seconds()
	base := (base1 + base2) / 2
	out.figure("metering.direct.rate", debits, "debits/s")
	out.figure("metering.direct.baseline", base, "calls/s")
	out.figure("metering.direct.baseline_first", base1, "calls/s")
	out.figure("metering.direct.baseline_second", base2, "calls/s")
	out.figure("metering.direct.ratio", debits/base, "x")
	out.info("metering.direct.setup", "%d debits over %d seafarers with one %d s grant each, through RedisStore.DebitBatch of the store wired as cmd/wuyoud wires it: per batch of %d, one INSERT of the event identity claims into PostgreSQL (quota.PGClaims), then one Redis pipeline of %d EVALSHA (as the consumer sends them); baseline = mean of a HINCRBY-script run before and after, pipelined the same way", len(usages), c.Seafarers, c.PackSeconds, c.Batch, c.Batch)
	out.figure("metering.direct.round_trips_per_debit", float64(debit.RoundTrips)/float64(len(usages)), "round-trips")
	out.note("metering.direct", "%s Each debit is one Lua script (quota/scripts.go) of about 12 commands on the seafarer's own keys: it checks the identity in the dedupe window (T:seen), reads the grants and notes, writes the draws, remembers the identity, keeps the ledger record pending (T:r) until the consumer has stored it in PostgreSQL, counts this month's billable and overage seconds for the allowance (T:m) and announces low and exhausted balances once (T:n); the HINCRBY script does one write. Before the pipeline, the batch's identities are claimed across seafarers in PostgreSQL (event_claims) in one round trip. Nothing the statements, reconciliation or programme usage need is written in Redis any more: those are SQL over the ledger.", debit.bound("the bench process (DebitBatch)"))
	return debits, nil
}

// meterEndToEnd enrols seafarers with MSISDNs, grants each a pack from a
// programme, produces simulated voice events to an in-process Kafka-protocol
// broker, then starts a consumer wired as cmd/wuyoud wires it and times it
// draining them all. It returns the rate (events/s).
func meterEndToEnd(ctx context.Context, l *lab, db *benchDatabase, prefix string, c meteringConfig, out *results, progress func(string, ...any)) (float64, error) {
	now := wuyou.SystemClock()
	progress("e2e: enrolling (PostgreSQL) and granting %d seafarers %d s each", c.Seafarers, c.PackSeconds)
	started := time.Now()
	p, err := newPipeline(ctx, l.rdb, prefix, db.pool)
	if err != nil {
		return 0, err
	}
	f, err := enrolFleet(ctx, p, c.Seafarers, c.PackSeconds, c.Workers)
	if err != nil {
		return 0, err
	}
	msisdns, ids := f.msisdns, f.ids
	out.info("metering.e2e.enrol_setup", "%d seafarers enrolled one crew.PGStore.Enrol call each and granted a pack each (%d workers) in %.1f s", len(ids), c.Workers, time.Since(started).Seconds())

	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...))
	if err != nil {
		return 0, fmt.Errorf("start kfake: %w", err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	events, summary, err := simEvents(c.Events, msisdns, 2, now)
	if err != nil {
		return 0, err
	}
	progress("e2e: producing %d events to carrier.usage.v1 (4 partitions)", len(events))
	started = time.Now()
	if err := produce(ctx, brokers, topics.Usage, events); err != nil {
		return 0, err
	}
	out.info("metering.e2e.produce_setup", "%d events produced before the consumer started, in %.1f s", len(events), time.Since(started).Seconds())

	progress("e2e: consumer started; draining")
	debitsBefore, err := ledgerDebits(ctx, db.pool)
	if err != nil {
		return 0, err
	}
	d, err := drainBacklog(ctx, l, p, brokers, topics, len(events), c.DrainLimit, nil)
	if err != nil {
		return 0, err
	}
	n, drained := d.counts, d.last.since(d.first)
	if d.partial {
		out.info("metering.e2e.partial", "the drain limit of %s ran out with %d of the %d events applied, so the rate is over those (raise -drain-limit, or run on a quieter machine, to drain them all)", c.DrainLimit, int(n.applied), len(events))
	} else if err := checkBillable(ctx, p, ids, summary, debitsBefore); err != nil {
		return 0, err
	}

	rate := n.applied / drained.Wall.Seconds()
	out.figure("metering.e2e.rate", rate, "events/s")
	out.figure("metering.e2e.group_join", d.first.at.Sub(d.joined).Seconds(), "s")
	out.figure("metering.e2e.commands_per_event", float64(drained.Commands)/n.applied, "commands")
	out.figure("metering.e2e.round_trips_per_event", float64(drained.RoundTrips)/n.applied, "round-trips")
	out.info("metering.e2e.setup", "%d simulated voice events (carriersim, 100%% voice, no faults) over %d MSISDNs enrolled in PostgreSQL, produced first to kfake (in process, 4 partitions); timed from the first event consumed to the last applied (group join excluded); consumer wired as cmd/wuyoud wires it: MSISDNs resolved by crew.PGStore (one query per batch), identities claimed in PostgreSQL (quota.PGClaims), debits in Redis (Settle), the batch's ledger entries appended to PostgreSQL (quota.PGLedger) before anything is published or committed, then Recorded (HDEL of the pending records), held events in PostgreSQL (carrier.PGHeld); batches of up to %d (carrier.DefaultBatchSize); checked afterwards: the allowances' billable seconds equal what was sent and the ledger holds one debit per event", len(events), c.Seafarers, carrier.DefaultBatchSize)
	out.note("metering.e2e", "%s The consumer keeps five batches in hand, each at another stage (carrier/consumer.go): one is decoded and its MSISDNs resolved by call time (one PostgreSQL query) while the next older one's identities are claimed (one PostgreSQL INSERT), the one before is debited (two Redis pipelines at once, each seafarer's calls in one of them), the one before that is stored (ledger entries COPYed into PostgreSQL in one transaction) and the oldest is published (offsets committed after the broker's acks, and the pending records dropped in one Redis pipeline): %.3f Redis round trips per event, measured. The stages share the 2 cores with the broker, Redis and PostgreSQL.", drained.bound("the bench process (consumer, kafka-go and the kfake broker)"), float64(drained.RoundTrips)/n.applied)
	return rate, nil
}

// backlogDrain is how a consumer drained a backlog.
type backlogDrain struct {
	counts  meteringCounters // the consumer's counters when it stopped
	joined  time.Time        // when it started, before joining its group
	first   sample           // when it had consumed its first event
	last    sample           // when it had applied the last, or the limit ran out
	partial bool             // the drain limit ran out before every event was applied
}

// drainBacklog starts a consumer wired as cmd/wuyoud wires it on the total
// events already produced to brokers (all valid and fresh), waits until all
// are applied or limit has passed, and stops it. onPoll, when not nil, is
// given the counters at every poll (every 5 ms) from the first event consumed.
func drainBacklog(ctx context.Context, l *lab, p *pipeline, brokers []string, topics carrier.Topics, total int, limit time.Duration, onPoll func(n meteringCounters)) (backlogDrain, error) {
	reg := prometheus.NewRegistry()
	writer := carrier.NewWriter(brokers)
	defer writer.Close()
	consumer := p.consumer(brokers, topics, writer, reg)

	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = consumer.Run(cctx)
	}()
	d := backlogDrain{joined: time.Now()}
	deadline := time.After(limit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var n meteringCounters
drain:
	for n.settled() < float64(total) {
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-deadline:
			d.partial = true
			break drain
		case <-tick.C:
			n = readCounters(reg)
			if d.first.at.IsZero() && n.consumed > 0 {
				d.first = l.sample(ctx)
			}
			if onPoll != nil && !d.first.at.IsZero() {
				onPoll(n)
			}
		}
	}
	d.last = l.sample(ctx)
	d.counts = n
	stopConsumer()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return d, errors.New("consumer did not stop within 30 s")
	}
	if n.settled() != n.applied || n.applied == 0 {
		return d, fmt.Errorf("of %d events, %v applied (%+v): the simulated events should all be applied", total, n.applied, n)
	}
	return d, nil
}

// meteringCounters are the consumer's counters, read from its registry.
type meteringCounters struct {
	consumed, applied, duplicates, late, held, deadLettered float64
}

// settled counts events that reached an outcome.
func (n meteringCounters) settled() float64 {
	return n.applied + n.duplicates + n.late + n.held + n.deadLettered
}

func readCounters(reg *prometheus.Registry) meteringCounters {
	families, _ := reg.Gather()
	sum := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			sum[f.GetName()] += m.GetCounter().GetValue()
		}
	}
	return meteringCounters{
		consumed:     sum["wuyou_metering_events_consumed_total"],
		applied:      sum["wuyou_metering_events_applied_total"],
		duplicates:   sum["wuyou_metering_events_duplicate_total"],
		late:         sum["wuyou_metering_events_late_total"],
		held:         sum["wuyou_metering_events_held_total"],
		deadLettered: sum["wuyou_metering_events_dead_lettered_total"],
	}
}

// checkBillable compares the billable seconds the allowances show with what
// the simulator says it sent, and the debits the ledger in PostgreSQL
// gained (from debitsBefore) with the events sent, so a drain that
// "finished" without storing what it should is an error, not a figure.
func checkBillable(ctx context.Context, p *pipeline, ids []string, summary *sim.Summary, debitsBefore int64) error {
	stored, err := ledgerDebits(ctx, p.pool)
	if err != nil {
		return err
	}
	if got, sent := stored-debitsBefore, summary.Totals.Distinct-summary.Totals.Late; got != sent {
		return fmt.Errorf("the ledger in PostgreSQL gained %d debits, the simulator sent %d events to apply", got, sent)
	}
	store := p.store
	if billing.PeriodOf(summary.FirstTime) != billing.PeriodOf(wuyou.SystemClock()) {
		return nil // the calls straddle a month: allowances show this month only
	}
	used := make([]int64, len(ids))
	err = fanout.Each(ctx, len(ids), 16, func(ctx context.Context, i int) error {
		a, err := store.Allowance(ctx, ids[i])
		if err != nil {
			return err
		}
		used[i] = a.UsedSeconds
		return nil
	})
	if err != nil {
		return err
	}
	var total int64
	for _, u := range used {
		total += u
	}
	if total != summary.Totals.BillableSeconds {
		return fmt.Errorf("allowances show %d billable seconds used, the simulator sent %d", total, summary.Totals.BillableSeconds)
	}
	return nil
}

// benchMSISDNs are n distinct subscriber numbers.
func benchMSISDNs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+86139%08d", i)
	}
	return out
}

// simEvents generates n valid voice calls with carriersim over msisdns, call
// times spread over the 40 minutes before now.
func simEvents(n int, msisdns []string, seed int64, now time.Time) ([]sim.Event, *sim.Summary, error) {
	events := make([]sim.Event, 0, n)
	summary, err := simStream(n, msisdns, seed, now, func(ev sim.Event) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return events, summary, nil
}

// simStream generates the events simEvents does and hands them to fn one at
// a time, so that a caller need not hold them all; it stops at fn's first
// error.
func simStream(n int, msisdns []string, seed int64, now time.Time, fn func(sim.Event) error) (*sim.Summary, error) {
	cfg := sim.DefaultConfig()
	cfg.Seed = seed
	cfg.Source = fmt.Sprintf("urn:carrier:bench-%d", seed)
	cfg.Home = homeCountry
	cfg.MSISDNs = msisdns
	cfg.VoiceShare = 1
	cfg.Start = now.Add(-40 * time.Minute)
	cfg.Step = 40 * time.Minute / time.Duration(max(n, 1))
	g, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	summary := sim.NewSummary(cfg)
	for i := range n {
		ev := g.Next(cfg.Start.Add(time.Duration(i) * cfg.Step))
		if err := fn(ev); err != nil {
			return nil, err
		}
		summary.Record(ev)
	}
	return summary, nil
}

// rater returns carrier.Consumer.Usage of a consumer that belongs to no
// group, so that the direct measurement debits exactly what the service
// would. Outside a group, a kafka-go reader dials nothing until it fetches,
// and this one never fetches: its broker address is never used.
func rater() func(seafarerID string, ev *carrier.UsageEvent) quota.Usage {
	c := carrier.NewConsumer(carrier.ConsumerConfig{
		Brokers: []string{"127.0.0.1:1"}, Topics: carrier.NewTopics(""), HomeCountry: homeCountry,
		Tariff: billing.DefaultTariff(), DedupeWindow: 720 * time.Hour,
	})
	return c.Usage
}

// hincrbyAll runs the baseline script once per usage, in sequential
// pipelines of batch, on a hash per seafarer under prefix.
func hincrbyAll(ctx context.Context, rdb redis.UniversalClient, prefix string, usages []quota.Usage, batch int) error {
	cmds := make([]*redis.Cmd, batch)
	for i := 0; i < len(usages); i += batch {
		chunk := usages[i:min(i+batch, len(usages))]
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, u := range chunk {
				key := crew.SeafarerTag(prefix, u.SeafarerID) + ":u"
				cmds[j] = hincrbyScript.EvalSha(ctx, p, []string{key}, billing.PeriodOf(u.CallTime)+":billable", u.BillableSeconds)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("baseline pipeline: %w", err)
		}
		for _, c := range cmds[:len(chunk)] {
			if _, err := c.Int64(); err != nil {
				return err
			}
		}
	}
	return nil
}

// enrolledFleet is what the end-to-end measurements drain events against:
// seafarers enrolled in PostgreSQL, one per MSISDN, each with one hot grant.
type enrolledFleet struct {
	msisdns, ids []string
}

// enrolFleet enrols n seafarers in p's registry and grants each packSeconds.
func enrolFleet(ctx context.Context, p *pipeline, n int, packSeconds int64, workers int) (*enrolledFleet, error) {
	now := wuyou.SystemClock()
	f := &enrolledFleet{msisdns: benchMSISDNs(n)}
	var err error
	if f.ids, err = enrolEach(ctx, p.registry, f.msisdns, workers); err != nil {
		return nil, err
	}
	// The metering draws from the hot grants alone; the programme they name
	// need not exist in the system of record.
	if err := grantEach(ctx, p.store, f.ids, "pg_bench_pack", packSeconds, now, workers); err != nil {
		return nil, err
	}
	return f, nil
}

// grantEach gives every seafarer one grant, active from a day ago for 30 days.
func grantEach(ctx context.Context, store *quota.RedisStore, ids []string, programmeID string, seconds int64, now time.Time, workers int) error {
	return fanout.Each(ctx, len(ids), workers, func(ctx context.Context, i int) error {
		_, _, err := store.AddGrant(ctx, quota.GrantInput{
			ID: "gr_bench_" + ids[i], SeafarerID: ids[i], ProgrammeID: programmeID, Seconds: seconds,
			EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), Priority: 1,
		})
		return err
	})
}

// registry is what enrolEach needs of the crew store.
type registry interface {
	CreateCompany(ctx context.Context, name, registrationNo string) (*crew.Company, error)
	Enrol(ctx context.Context, companyID string, e crew.Enrolment) (*crew.Seafarer, bool, error)
}

// enrolEach enrols one seafarer per MSISDN in a new company and returns
// their ids, in the order of msisdns.
func enrolEach(ctx context.Context, registry registry, msisdns []string, workers int) ([]string, error) {
	company, err := registry.CreateCompany(ctx, "Bench Shipping", fmt.Sprintf("BENCH-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(msisdns))
	err = fanout.Each(ctx, len(msisdns), workers, func(ctx context.Context, i int) error {
		sf, _, err := registry.Enrol(ctx, company.ID, crew.Enrolment{
			BookNo: fmt.Sprintf("BK%08d", i), Name: fmt.Sprintf("Seafarer %d", i), Nationality: "CN", MSISDN: msisdns[i],
		})
		if err != nil {
			return fmt.Errorf("enrol %s: %w", msisdns[i], err)
		}
		ids[i] = sf.ID
		return nil
	})
	return ids, err
}

// produce writes events to topic as the carrier would, keyed by MSISDN.
func produce(ctx context.Context, brokers []string, topic string, events []sim.Event) error {
	w := carrier.NewWriter(brokers)
	defer w.Close()
	const chunk = 10_000
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < len(events); i += chunk {
		msgs = msgs[:0]
		for _, ev := range events[i:min(i+chunk, len(events))] {
			msgs = append(msgs, kafka.Message{Topic: topic, Key: ev.Key, Value: ev.Value})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}
