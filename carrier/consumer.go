package carrier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/sms"
)

// Delivery guarantee, implemented by Consumer.run and written down here:
//
//   - Kafka delivers at least once: offsets are committed only after every
//     effect of the batch is stored (debits in Redis, dead letters, late
//     events, held events, ledger entries and notifications acknowledged by
//     all in-sync replicas). A crash or rebalance before the commit
//     redelivers the batch.
//   - Each event's effect is applied once: the debit script remembers the
//     identity (CloudEvents source + id) in the same atomic step that draws
//     the grants, and refuses it again for the dedupe window
//     (WUYOU_DEDUPE_WINDOW, by call time).
//   - An event older than the dedupe window could no longer be recognised as
//     a repeat, so it is never applied automatically: it goes to the late topic.
//   - What Wuyou publishes downstream is at least once with deterministic ids
//     (a redelivered event republishes its stored ledger entry under the same id).
//
//   - No single message stops metering. What is wrong with one event — it
//     does not decode, its call time is beyond now + the clock skew, its
//     identity was claimed by another call, the debit script refuses it,
//     one of its outputs cannot be encoded or is refused by the broker — is
//     that event's alone: it is dead-lettered with the reason (a copy cut
//     to fit when too large) and the rest of the batch goes on. Only an
//     outage (Redis, Kafka) fails a stage, and a failed stage is retried
//     whole, without committing, until it succeeds or the consumer stops.
//
// Order inside a batch: decode → resolve MSISDN at call time → rate → settle
// (quota: claim identities, debit, index statements, programme usage) →
// publish → commit. Three batches are in hand at once,
// each at another of these stages (Run); batches pass every stage, and are
// committed, in the order fetched.

// Resolver finds the seafarers MSISDNs belong to.
type Resolver interface {
	// SeafarerIDsAt names, for each call, the seafarer who held its MSISDN
	// at the call's time ("" for none). One call per batch.
	SeafarerIDsAt(ctx context.Context, calls []crew.MSISDNAt) ([]string, error)
	// SeafarerIDsByMSISDN maps each registered MSISDN to its seafarer id
	// now; unregistered ones are absent.
	SeafarerIDsByMSISDN(ctx context.Context, msisdns []string) (map[string]string, error)
}

// Meter applies rated usage to balances.
type Meter interface {
	// Claim claims the event identities of a batch across all seafarers,
	// the first half of settling it. Claiming again is harmless. An error
	// means an outage: claim the batch again.
	Claim(ctx context.Context, us []quota.Usage) (*quota.ClaimedBatch, error)
	// SettleClaimed applies a claimed batch and everything that follows
	// from it in quota, idempotently: settling a batch again repeats
	// nothing and completes what an earlier attempt cut short. Results are
	// in the order of the usages claimed; one that quota refused alone says
	// so (Conflicting, Err). An error means an outage: settle the batch
	// again.
	SettleClaimed(ctx context.Context, b *quota.ClaimedBatch) ([]*quota.DebitResult, error)
	// Recorded says the entries are stored in the system of record and
	// published: quota forgets what it kept to repeat them (a repeat of
	// their events then has nothing left to finish).
	Recorded(ctx context.Context, entries []quota.SeafarerEntry) error
}

// LedgerWriter stores ledger entries in the system of record (PostgreSQL);
// storing an entry again stores nothing.
type LedgerWriter interface {
	Append(ctx context.Context, entries []quota.SeafarerEntry) error
}

// HeldEvents keeps the events of calls made from an MSISDN nobody held at
// the time, until the number is enrolled or the events are too old.
type HeldEvents interface {
	// Hold keeps one event made at callTime, read as m. Holding it again
	// keeps one copy.
	Hold(ctx context.Context, msisdn, identity string, callTime time.Time, m kafka.Message) error
	// Held returns the events kept for msisdn, by identity, as read.
	Held(ctx context.Context, msisdn string) (map[string]kafka.Message, error)
	// Release forgets events once they are applied or sent elsewhere.
	Release(ctx context.Context, msisdn string, identities ...string) error
	// Due lists up to n MSISDNs holding an event made before cutoff.
	Due(ctx context.Context, cutoff time.Time, n int64) ([]string, error)
}

// ConsumerConfig wires a Consumer.
type ConsumerConfig struct {
	Brokers      []string
	Group        string
	Topics       Topics
	HomeCountry  string
	DedupeWindow time.Duration
	// ClockSkew is how far after now a call's time may lie
	// (WUYOU_CLOCK_SKEW); later ones are dead-lettered as invalid_field.
	ClockSkew time.Duration
	Tariff    *billing.Tariff
	Resolver  Resolver
	Meter     Meter
	Held      HeldEvents
	// Ledger, when set, stores every settled event's ledger entry before
	// anything about it is published or its offset committed.
	Ledger    LedgerWriter
	Publisher *Publisher
	Writer    *kafka.Writer
	Metrics   *Metrics
	Log       *slog.Logger
	Now       wuyou.Clock
	// BatchSize bounds one batch (DefaultBatchSize when 0); BatchWait is
	// how long to wait for a batch to fill once its first message has
	// arrived.
	BatchSize int
	BatchWait time.Duration
}

// DefaultBatchSize bounds a batch unless ConsumerConfig says otherwise.
// Live traffic rarely fills one within BatchWait; a backlog does, and then
// every batch's fixed costs (a PostgreSQL transaction and its commit, a
// Redis pipeline, a produce and a commit to Kafka) are shared by more
// events: 1,000 drained a backlog about 8% faster than 500, and 2,000 no
// faster than 1,000 (bench/run.sh, catchup, BENCHMARKS.md).
const DefaultBatchSize = 1000

// Consumer meters carrier.usage.v1 as a member of a consumer group.
type Consumer struct {
	cfg    ConsumerConfig
	reader *kafka.Reader
}

// NewConsumer returns a consumer; Run starts it.
func NewConsumer(cfg ConsumerConfig) *Consumer {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = wuyou.SystemClock
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 24 * time.Hour
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:  cfg.Brokers,
		GroupID:  cfg.Group,
		Topic:    cfg.Topics.Usage,
		MinBytes: 1,
		// kafka-go gives a fetch MaxWait to answer, as the broker's wait for
		// data and as the deadline to read the answer; a broker that needs
		// longer to send a large answer (a busy machine, a batch of big
		// messages) would fail every fetch with an i/o timeout, and the
		// consumer would retry it for ever. With MinBytes 1 the broker
		// answers as soon as there is data, so a longer wait costs only idle
		// polls; 4 MiB keeps each answer quick to send.
		MaxBytes: 4 << 20,
		MaxWait:  2 * time.Second,
		// Commits are explicit (CommitMessages after the batch is stored);
		// CommitInterval 0 makes them synchronous.
		CommitInterval:    0,
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		QueueCapacity:     cfg.BatchSize * 2,
		Logger:            nil,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { cfg.Log.Debug("kafka reader: " + fmt.Sprintf(f, a...)) }),
	})
	return &Consumer{cfg: cfg, reader: r}
}

// Run consumes until ctx is done, then returns after the batch in hand is
// stored and committed (or abandoned uncommitted if the store is down).
//
// Batches go through five stages, each a batch ahead of the next: prepare
// (fetch, decode, resolve MSISDNs), claim (hold, rate, claim the event
// identities: quota's Claim, in PostgreSQL), debit (quota's SettleClaimed,
// in Redis), store (the ledger entries into PostgreSQL) and publish
// (outputs, commit). So the consumer's own work, PostgreSQL's writes and
// the broker's acknowledgements overlap Redis's debits, which bound the
// rate (BENCHMARKS.md, catchup). Every stage takes batches in the
// order fetched, a batch is published only after it is stored, and only
// publish commits, so offsets are committed in order and only for batches
// whose effects are all stored. Fetching and committing thus run in
// different goroutines; kafka.Reader is safe for concurrent use (its
// maintainers, in segmentio/kafka-go#201).
func (c *Consumer) Run(ctx context.Context) error {
	prepared := make(chan *preparedBatch) // unbuffered: one batch prepared ahead,
	claimed := make(chan *claimedBatch)   // one claimed ahead of its debits,
	debited := make(chan *debitedBatch)   // one debited ahead of storing
	stored := make(chan *debitedBatch)    // and one stored ahead of publishing
	prepCtx, stopPrep := context.WithCancel(ctx)
	prepDone, claimDone := make(chan struct{}), make(chan struct{})
	storeDone, finishDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(prepDone)
		c.prepareLoop(prepCtx, prepared)
	}()
	go func() {
		defer close(claimDone)
		defer close(claimed)
		c.claimLoop(prepCtx, prepared, claimed)
	}()
	go func() {
		defer close(storeDone)
		defer close(stored)
		c.storeLoop(ctx, debited, stored, finishDone)
	}()
	go func() {
		defer close(finishDone)
		c.finishLoop(ctx, stored)
	}()
	defer func() {
		stopPrep()
		<-prepDone
		<-claimDone
		close(debited)
		<-storeDone
		<-finishDone // the batches being stored and published are committed, even when stopping
		c.reader.Close()
	}()
	for {
		var cb *claimedBatch
		select {
		case cb = <-claimed:
		case <-ctx.Done():
			return nil
		}
		if cb == nil {
			return nil // claiming stopped
		}
		var d *debitedBatch
		if err := c.retry(ctx, func() (err error) { d, err = c.settle(context.WithoutCancel(ctx), cb); return err }); err != nil {
			return nil // stopping: uncommitted, redelivered to the next owner
		}
		select {
		case debited <- d:
		case <-storeDone:
			return nil // storing stopped: this batch is redelivered
		case <-ctx.Done():
			return nil // stopping: debited but uncommitted; redelivery repairs its effects
		}
	}
}

// claimLoop holds, rates and claims prepared batches, in order, and hands
// them on to be debited, until ctx is done. A claimed batch that is never
// debited is harmless: its claims hold for the same events when they come
// again.
func (c *Consumer) claimLoop(ctx context.Context, prepared <-chan *preparedBatch, claimed chan<- *claimedBatch) {
	for {
		var p *preparedBatch
		select {
		case p = <-prepared:
		case <-ctx.Done():
			return
		}
		var cb *claimedBatch
		if err := c.retry(ctx, func() (err error) { cb, err = c.claim(ctx, p); return err }); err != nil {
			return // stopping: never applied, so never committed
		}
		select {
		case claimed <- cb:
		case <-ctx.Done():
			return
		}
	}
}

// storeLoop stores the ledger entries of debited batches, in order, and
// hands them on to be published, until debited is closed, a batch cannot be
// stored before stop, or publishing stopped.
func (c *Consumer) storeLoop(stop context.Context, debited <-chan *debitedBatch, stored chan<- *debitedBatch, finishDone <-chan struct{}) {
	for d := range debited {
		// The batch in hand is stored even if stop is cancelled meanwhile:
		// a graceful stop commits what it applied.
		if err := c.retry(stop, func() error { return c.record(context.WithoutCancel(stop), d.applied) }); err != nil {
			return // stopping: uncommitted, redelivered to the next owner
		}
		select {
		case stored <- d:
		case <-finishDone:
			return // publishing stopped: this batch is redelivered
		}
	}
}

// finishLoop publishes the outputs of stored batches and commits them, in
// order, until stored is closed or a batch cannot be published before stop.
func (c *Consumer) finishLoop(stop context.Context, stored <-chan *debitedBatch) {
	for d := range stored {
		if err := c.retry(stop, func() error { return c.publishBatch(context.WithoutCancel(stop), d) }); err != nil {
			return // stopping: uncommitted, redelivered to the next owner
		}
		if err := c.commit(stop, d.batch); err != nil {
			// A rebalance took the partition away: the new owner gets the
			// batch again and dedupe makes that harmless.
			c.cfg.Log.Warn("commit failed; the batch will be redelivered", "err", err)
		}
	}
}

// prepareLoop fetches and prepares batches and hands them over in order,
// until ctx is done.
func (c *Consumer) prepareLoop(ctx context.Context, out chan<- *preparedBatch) {
	for {
		batch, err := backoff.Retry(ctx, func() ([]kafka.Message, error) { return c.fetch(ctx) },
			backoff.WithBackOff(fetchBackOff()), backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, next time.Duration) {
				c.cfg.Log.Warn("fetch from carrier.usage failed; retrying", "err", err, "backoff", next.String())
			}))
		if err != nil || len(batch) == 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		for _, m := range batch {
			c.cfg.Metrics.Consumed.Inc()
			c.cfg.Metrics.observeLag(m)
		}
		var p *preparedBatch
		if err := c.retry(ctx, func() (err error) { p, err = c.prepare(ctx, batch); return err }); err != nil {
			return // stopping: never applied, so never committed
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}

// commitTimeout bounds an offset commit. A commit that times out is
// harmless: a later commit covers its offsets, or the batch is redelivered
// and dedupe refuses it.
const commitTimeout = 10 * time.Second

// commit commits a stored batch's offsets, even while stopping (a graceful
// stop commits what it applied), but waits at most commitTimeout: kafka-go
// hands a synchronous commit to the current generation's commit loop, and
// while the group rebalances or its coordinator is unreachable there is none
// to take it, so an unbounded commit would stall the consumer until there is.
func (c *Consumer) commit(ctx context.Context, batch []kafka.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	return c.reader.CommitMessages(ctx, batch...)
}

// fetch waits for one message, then takes whatever else arrives within
// BatchWait, up to BatchSize.
func (c *Consumer) fetch(ctx context.Context) ([]kafka.Message, error) {
	m, err := c.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{m}
	fill, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(batch) < c.cfg.BatchSize {
		m, err := c.reader.FetchMessage(fill)
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// retry runs step until it succeeds or stop is cancelled, with backoff: a
// step fails only when something could not be read or stored (Redis,
// PostgreSQL or Kafka down), and repeating it is safe because applying is
// idempotent. Nothing is committed meanwhile. It returns nil or, once stop
// is cancelled, an error.
func (c *Consumer) retry(stop context.Context, step func() error) error {
	_, err := backoff.Retry(stop, func() (struct{}, error) {
		err := step()
		c.cfg.Metrics.setHealthy(err == nil)
		return struct{}{}, err
	}, backoff.WithBackOff(storeBackOff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			c.cfg.Log.Error("batch not stored; will retry without committing", "err", err, "backoff", next.String())
		}))
	return err
}

// storeBackOff is the wait between tries to store a batch: from 100 ms,
// doubling to 10 s, each wait drawn within ±50% of its step so replicas
// that lost Redis or PostgreSQL together do not all come back in step and
// hammer it as it recovers.
func storeBackOff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     100 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         10 * time.Second,
	}
}

// fetchBackOff is the wait between fetches from a broker that failed: from
// 500 ms, growing to 5 s, with the same jitter.
func fetchBackOff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     500 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         5 * time.Second,
	}
}

// preparedBatch is a batch decoded and resolved, ready to apply.
type preparedBatch struct {
	batch  []kafka.Message
	out    []output // dead letters and late events
	events []validEvent
}

type validEvent struct {
	m        kafka.Message
	ev       *UsageEvent
	seafarer string // who held the MSISDN at the call's time; "" for none
}

// output is one message to publish, and the event it comes from (nil for
// none), which is dead-lettered in its place if the broker refuses it.
type output struct {
	msg    kafka.Message
	source *kafka.Message
}

// prepare decodes a batch, sets aside what cannot be applied and resolves
// the MSISDNs of the rest by call time. It writes nothing.
func (c *Consumer) prepare(ctx context.Context, batch []kafka.Message) (*preparedBatch, error) {
	now := c.cfg.Now()
	p := &preparedBatch{batch: batch, events: make([]validEvent, 0, len(batch))}
	calls := make([]crew.MSISDNAt, 0, len(batch))
	for i := range batch {
		m := &batch[i]
		ev, err := DecodeUsageEvent(m.Value)
		if err == nil {
			err = CheckCallTime(ev.Time, now, c.cfg.ClockSkew)
		}
		if err != nil {
			p.out = append(p.out, output{msg: c.deadLetter(*m, err)})
			continue
		}
		if quota.Late(ev.Time, now, c.cfg.DedupeWindow) {
			p.out = append(p.out, output{msg: c.lateMessage(*m, "call time older than the dedupe window; never applied automatically"), source: m})
			continue
		}
		p.events = append(p.events, validEvent{m: *m, ev: ev})
		calls = append(calls, crew.MSISDNAt{MSISDN: ev.Subject, At: ev.Time})
	}
	if len(calls) == 0 {
		return p, nil
	}
	owners, err := c.cfg.Resolver.SeafarerIDsAt(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("resolve MSISDNs: %w", err)
	}
	for i := range p.events {
		p.events[i].seafarer = owners[i]
	}
	return p, nil
}

// lateMessage is m for the late topic (a valid event, so at most 64 KiB;
// its key, which the carrier sets to the MSISDN, cut to 256 bytes).
func (c *Consumer) lateMessage(m kafka.Message, why string) kafka.Message {
	return kafka.Message{Topic: c.cfg.Topics.Late, Key: cutKey(m.Key), Value: m.Value, Headers: []kafka.Header{
		{Key: "error", Value: []byte(why)},
		{Key: "error_code", Value: []byte("late")},
	}}
}

// debitedBatch is a batch whose debits are stored.
type debitedBatch struct {
	*preparedBatch
	applied  []appliedEvent
	rejected []output // dead letters of events that could not be rated
	held     []string // MSISDNs whose events were held
}

// appliedEvent is one event handed to the meter and what became of it.
type appliedEvent struct {
	m      kafka.Message
	usage  quota.Usage
	result *quota.DebitResult
}

// debit holds the events of unregistered MSISDNs and applies the rest in one
// pipeline: claim, then settle. It returns an error only when something
// could not be stored; it changes nothing of p, so a retry starts afresh.
func (c *Consumer) debit(ctx context.Context, p *preparedBatch) (*debitedBatch, error) {
	cb, err := c.claim(ctx, p)
	if err != nil {
		return nil, err
	}
	return c.settle(ctx, cb)
}

// claimedBatch is a batch whose events are held or rated, and the
// identities of the rated ones claimed (quota.Claim): ready to settle.
type claimedBatch struct {
	*preparedBatch
	usages   []quota.Usage
	from     []kafka.Message // the message of each usage
	claimed  *quota.ClaimedBatch
	rejected []output // dead letters of events that could not be rated
	held     []string // MSISDNs whose events were held
}

// claim holds the events of unregistered MSISDNs, rates the rest and claims
// their identities: the first half of debit, a stage of its own in Run so
// that the next batch is claimed (in PostgreSQL) while Redis debits this
// one. It changes nothing of p, so a retry starts afresh.
func (c *Consumer) claim(ctx context.Context, p *preparedBatch) (*claimedBatch, error) {
	cb := &claimedBatch{preparedBatch: p}
	for _, v := range p.events {
		if v.seafarer == "" {
			if err := c.cfg.Held.Hold(ctx, v.ev.Subject, v.ev.Identity(), v.ev.Time, v.m); err != nil {
				return nil, fmt.Errorf("hold event for an unregistered MSISDN: %w", err)
			}
			cb.held = append(cb.held, v.ev.Subject)
			continue
		}
		u, err := c.rate(v.seafarer, v.ev)
		if err != nil {
			cb.rejected = append(cb.rejected, output{msg: c.deadLetter(v.m, err)})
			continue
		}
		cb.usages = append(cb.usages, u)
		cb.from = append(cb.from, v.m)
	}
	if len(cb.usages) == 0 {
		return cb, nil
	}
	claimed, err := c.cfg.Meter.Claim(ctx, cb.usages)
	if err != nil {
		return nil, err
	}
	cb.claimed = claimed
	return cb, nil
}

// settle applies a claimed batch's debits: the second half of debit. It
// changes nothing of cb, so a retry starts afresh.
func (c *Consumer) settle(ctx context.Context, cb *claimedBatch) (*debitedBatch, error) {
	d := &debitedBatch{preparedBatch: cb.preparedBatch, rejected: cb.rejected, held: cb.held}
	if len(cb.usages) == 0 {
		return d, nil
	}
	results, err := c.cfg.Meter.SettleClaimed(ctx, cb.claimed)
	if err != nil {
		return nil, err
	}
	d.applied = appliedEvents(cb.usages, cb.from, results)
	return d, nil
}

// apply claims and settles usages (read as the messages in from) at once;
// what the meter refused alone is in the results, for effects to
// dead-letter.
func (c *Consumer) apply(ctx context.Context, usages []quota.Usage, from []kafka.Message) ([]appliedEvent, error) {
	if len(usages) == 0 {
		return nil, nil
	}
	claimed, err := c.cfg.Meter.Claim(ctx, usages)
	if err != nil {
		return nil, err
	}
	results, err := c.cfg.Meter.SettleClaimed(ctx, claimed)
	if err != nil {
		return nil, err
	}
	return appliedEvents(usages, from, results), nil
}

// appliedEvents pairs each usage with its message and its result, charged
// to the seafarer the result names.
func appliedEvents(usages []quota.Usage, from []kafka.Message, results []*quota.DebitResult) []appliedEvent {
	out := make([]appliedEvent, len(usages))
	for i, r := range results {
		out[i] = appliedEvent{m: from[i], usage: usages[i], result: r}
		if r.SeafarerID != "" {
			out[i].usage.SeafarerID = r.SeafarerID
		}
	}
	return out
}

// finish stores a debited batch's effects and publishes its outputs (dead
// letters and late events from prepare included). Every step is idempotent,
// so a retry repeats it whole. It returns an error only when something could
// not be stored.
func (c *Consumer) finish(ctx context.Context, d *debitedBatch) error {
	if err := c.record(ctx, d.applied); err != nil {
		return err
	}
	return c.publishBatch(ctx, d)
}

// publishBatch publishes a stored batch's outputs, forgets its pending
// records and applies the events it held whose MSISDN is now enrolled: the
// second half of finish, a stage of its own in Run.
func (c *Consumer) publishBatch(ctx context.Context, d *debitedBatch) error {
	out := append(append([]output(nil), d.out...), d.rejected...)
	out = append(out, c.effects(d.applied, c.langs(ctx, d.applied))...)
	if err := c.publish(ctx, out); err != nil {
		return fmt.Errorf("publish batch outputs: %w", err)
	}
	c.forget(ctx, d.applied)
	c.cfg.Metrics.Held.Add(float64(len(d.held)))
	c.countSettled(d.applied)
	// An MSISDN enrolled while its event was being held (or after its batch
	// was prepared) would otherwise wait for the next enrolment: look again
	// now that the event is stored.
	if len(d.held) == 0 {
		return nil
	}
	owners, err := c.cfg.Resolver.SeafarerIDsByMSISDN(ctx, d.held)
	if err != nil {
		return nil // held durably; applied at enrolment or with the next event
	}
	for msisdn, id := range owners {
		if err := c.ApplyHeld(ctx, msisdn, id); err != nil {
			return err
		}
	}
	return nil
}

// Usage rates an event for a seafarer.
func (c *Consumer) Usage(seafarerID string, ev *UsageEvent) quota.Usage {
	r := c.cfg.Tariff.Rate(billing.Call{
		Type: ev.Type, Time: ev.Time, DurationSeconds: ev.Data.DurationSeconds, VolumeBytes: ev.Data.VolumeBytes,
		VisitedCountry: ev.Data.VisitedCountry, Direction: ev.Data.Direction, Network: ev.Data.Network,
		CalledNumber: ev.Data.CalledNumber,
	}, c.cfg.HomeCountry)
	return quota.Usage{
		SeafarerID: seafarerID, MSISDN: ev.Subject, Source: ev.Source, EventID: ev.ID, Type: ev.Type,
		CallTime: ev.Time, DurationSeconds: ev.Data.DurationSeconds, BillableSeconds: r.BillableSeconds,
		Unit: r.Unit, Billable: r.Billable, VolumeBytes: ev.Data.VolumeBytes,
		CalledNumber: ev.Data.CalledNumber, VisitedCountry: ev.Data.VisitedCountry, Free: r.Free,
		OveragePrice: r.OveragePrice, Increment: r.Increment, WholesalePrice: r.WholesalePrice,
		Fingerprint: fingerprint(ev), CallID: ev.Data.CallID,
	}
}

// rate is Usage for one event of a batch: a rating that fails (a panic in
// a tariff) is that event's failure, reason rating_failed.
func (c *Consumer) rate(seafarerID string, ev *UsageEvent) (u quota.Usage, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.Log.Error("rating failed", "source", ev.Source, "id", ev.ID, "panic", p)
			err = &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "rating_failed", Message: fmt.Sprintf("rating failed: %v", p)}
		}
	}()
	return c.Usage(seafarerID, ev), nil
}

// fingerprint names what an event says, apart from its identity: two
// deliveries of one identity with different fingerprints are different
// calls. Every field that rating or the ledger reads is in it.
func fingerprint(ev *UsageEvent) string {
	h := sha256.New()
	d := ev.Data
	for _, f := range []string{ev.Type, ev.Subject, strconv.FormatInt(ev.Time.UnixNano(), 10), d.CallID, d.Direction,
		strconv.FormatInt(d.DurationSeconds, 10), d.CalledNumber, d.VisitedCountry, d.Network} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	// Only data events have a volume; a voice event's fingerprint stays what
	// it was before volumes existed, so claims made then still match.
	if ev.Type == TypeData {
		h.Write([]byte(strconv.FormatInt(d.VolumeBytes, 10)))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// record stores the ledger entries of settled events (applied or repeated)
// before anything about them is published or committed: dedupe (Claim, SettleClaimed) →
// persist (here) → publish → commit. An entry the store refuses for what it
// is (EINVALID: a rule of the ledger broken) is its event's failure alone,
// found by storing the batch's entries one at a time, and dead-lettered as
// output_failed; anything else is an outage and fails the stage.
func (c *Consumer) record(ctx context.Context, applied []appliedEvent) error {
	if c.cfg.Ledger == nil {
		return nil
	}
	var (
		entries []quota.SeafarerEntry
		at      []int
	)
	for i, a := range applied {
		if r := a.result; r.Err == nil && !r.Conflicting && r.Entry != nil {
			entries = append(entries, quota.SeafarerEntry{SeafarerID: a.usage.SeafarerID, Entry: r.Entry})
			at = append(at, i)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	err := c.cfg.Ledger.Append(ctx, entries)
	if err == nil {
		return nil
	} else if wuyou.ErrorCode(err) != wuyou.EINVALID {
		return fmt.Errorf("record ledger entries: %w", err)
	}
	for j, e := range entries {
		err := c.cfg.Ledger.Append(ctx, []quota.SeafarerEntry{e})
		switch {
		case err == nil:
		case wuyou.ErrorCode(err) == wuyou.EINVALID:
			c.cfg.Log.Error("the ledger refused an entry", "entry", e.Entry.ID, "err", err)
			applied[at[j]].result.Err = &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "output_failed",
				Message: "the ledger refused this event's entry: " + wuyou.ErrorMessage(err)}
		default:
			return fmt.Errorf("record ledger entries: %w", err)
		}
	}
	return nil
}

// forget tells quota that the entries of a batch are stored and published.
// A failure costs memory, not correctness: quota keeps the records for the
// dedupe window, and a repeat of their events publishes them again (with
// the same ids, which consumers drop).
func (c *Consumer) forget(ctx context.Context, applied []appliedEvent) {
	var entries []quota.SeafarerEntry
	for _, a := range applied {
		if r := a.result; r.Err == nil && !r.Conflicting && r.Entry != nil {
			entries = append(entries, quota.SeafarerEntry{SeafarerID: a.usage.SeafarerID, Entry: r.Entry})
		}
	}
	if err := c.cfg.Meter.Recorded(ctx, entries); err != nil {
		c.cfg.Log.Warn("could not forget recorded entries in Redis; they expire with the dedupe window", "entries", len(entries), "err", err)
	}
}

// LangReader is what a Resolver may also do: read the langs of many
// seafarers in one query (crew.PGStore.Langs), so notifications speak each
// seafarer's language (CONTRACT §7.4). A Resolver without it, or a failed
// read, leaves notifications in the default language.
type LangReader interface {
	Langs(ctx context.Context, seafarerIDs []string) (map[string]string, error)
}

// langs reads, in one query, the langs of the seafarers a batch notifies;
// a batch without notifications (most of them) asks nothing. Absent ids
// read as the default language: a notification is never held back for
// want of its words.
func (c *Consumer) langs(ctx context.Context, applied []appliedEvent) map[string]string {
	lr, ok := c.cfg.Resolver.(LangReader)
	if !ok {
		return nil
	}
	var ids []string
	for _, a := range applied {
		if r := a.result; r != nil && r.Err == nil && !r.Conflicting && len(r.Notes) > 0 {
			ids = append(ids, a.usage.SeafarerID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	langs, err := lr.Langs(ctx, ids)
	if err != nil {
		c.cfg.Log.Warn("could not read seafarers' langs; notifications go out in the default language", "seafarers", len(ids), "err", err)
		return nil
	}
	return langs
}

// effects turns settled events into their outputs: ledger messages and
// notifications (in the seafarers' langs) of those applied or repeated,
// dead letters of those quota refused alone.
func (c *Consumer) effects(applied []appliedEvent, langs map[string]string) []output {
	var out []output
	for i := range applied {
		a := &applied[i]
		u, r := a.usage, a.result
		switch {
		case r.Err != nil:
			out = append(out, output{msg: c.deadLetter(a.m, r.Err)})
			continue
		case r.Conflicting:
			out = append(out, output{msg: c.deadLetter(a.m, &wuyou.Error{Code: wuyou.ECONFLICT, Reason: "conflicting_duplicate",
				Message: "an event with this source and id but other content was applied first"})})
			continue
		}
		if r.Entry == nil {
			continue // a repeat whose entry expired: nothing left to repeat
		}
		msgs, err := debitMessagesIn(c.cfg.Publisher, u, r, langs[u.SeafarerID])
		if err != nil {
			// Applied, but its outputs cannot be encoded: the event is
			// dead-lettered so an operator sees it; the rest goes on.
			c.cfg.Log.Error("outputs of an applied event cannot be encoded", "source", u.Source, "id", u.EventID, "err", err)
			out = append(out, output{msg: c.deadLetter(a.m, &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "output_failed", Message: err.Error()})})
			continue
		}
		for _, m := range msgs {
			out = append(out, output{msg: m, source: &a.m})
		}
	}
	return out
}

// countSettled counts the events of a stored batch as applied or repeated,
// once the batch's outputs are published (a stage retried after an outage
// counts nothing twice).
func (c *Consumer) countSettled(applied []appliedEvent) {
	for _, a := range applied {
		switch r := a.result; {
		case r.Err != nil || r.Conflicting:
			// dead-lettered: counted by publish
		case r.Duplicate:
			c.cfg.Metrics.Duplicates.Inc()
		default:
			c.cfg.Metrics.Applied.Inc()
		}
	}
}

// debitMessagesIn are a debit's ledger message (when it has an entry) and
// notifications, in lang ("" or an unknown one: the default).
func debitMessagesIn(p *Publisher, u quota.Usage, r *quota.DebitResult, lang string) ([]kafka.Message, error) {
	var out []kafka.Message
	if r.Entry != nil {
		m, err := p.LedgerMessage(u.SeafarerID, u.MSISDN, r.Entry)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, n := range r.Notes {
		m, err := notification(p, u, n, lang)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// notification announces a low or exhausted mark the debit crossed. The
// debit decided it once per grant set and remembers it with the event, so
// a redelivery publishes the same id with the same content.
// It carries data.text, one SMS in the seafarer's lang, and data.lang.
func notification(p *Publisher, u quota.Usage, n quota.Note, lang string) (kafka.Message, error) {
	typ := NotifyQuotaLow
	if n.Kind == quota.NoteExhausted {
		typ = NotifyQuotaExhausted
	}
	// The amounts are in the note's unit: remaining and granted always,
	// the *_seconds fields as v1 had them only for seconds (0 otherwise).
	unit := quota.UnitName(n.Unit)
	data := map[string]any{
		"seafarer_id": u.SeafarerID, "msisdn": u.MSISDN, "unit": unit, "remaining": n.RemainingSeconds, "granted": n.GrantedSeconds,
		"remaining_seconds": int64(0), "granted_seconds": int64(0), "event_id": u.EventID,
	}
	if unit == billing.UnitSeconds {
		data["remaining_seconds"], data["granted_seconds"] = n.RemainingSeconds, n.GrantedSeconds
	}
	if _, ok := wuyou.Lang(lang); !ok {
		lang = wuyou.DefaultLang
	}
	// The date is the one the debit kept with the note: when what is left
	// expires (low) or when more comes (exhausted), so a repeat says the
	// same.
	kind, date := sms.KindLow, n.ExpiresAt
	if n.Kind == quota.NoteExhausted {
		kind, date = sms.KindExhausted, n.NextAt
	}
	data["text"], data["lang"] = sms.Notice(lang, kind, unit, n.RemainingSeconds, date), lang
	id := n.Kind + "-" + u.SeafarerID + "-" + n.GrantSet[:min(len(n.GrantSet), 16)]
	// A low note names the programme's threshold it crossed (notify_at);
	// the default's id stays as it was, another threshold's names it, so
	// each threshold of a set has its own id.
	if t := n.Threshold; t != nil {
		data["threshold"] = *t
		if *t != (quota.Threshold{Percent: quota.DefaultLowPercent}) {
			id += "-" + t.Key()
		}
	}
	return p.NotificationMessageAt(id, typ, u.SeafarerID, u.MSISDN, n.At, data)
}

// sleep waits d or until ctx is done; it reports whether the full d passed.
