package carrier

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// The consumer's stages over fakes of what it depends on (Resolver, Meter,
// HeldEvents, Producer): no Redis, no broker. consumer_test.go runs the
// same consumer over the real ones.

// fakeMeter settles usages in memory. An event id listed in conflicting or
// failing gets that outcome; outage makes the next SettleClaimed calls fail.
type fakeMeter struct {
	mu          sync.Mutex
	settled     map[string]quota.Usage // by event id
	conflicting map[string]bool
	failing     map[string]bool
	notes       map[string][]quota.Note
	outages     int // SettleClaimed calls still to fail
	calls       int
	recorded    []string // entry ids quota was told are stored and published
	forgetFails bool
	claimed     map[*quota.ClaimedBatch][]quota.Usage
}

func (m *fakeMeter) Recorded(_ context.Context, entries []quota.SeafarerEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.forgetFails {
		return errors.New("redis: connection refused")
	}
	for _, e := range entries {
		m.recorded = append(m.recorded, e.Entry.ID)
	}
	return nil
}

// Claim hands back a batch the fake remembers the usages of.
func (m *fakeMeter) Claim(_ context.Context, us []quota.Usage) (*quota.ClaimedBatch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := new(quota.ClaimedBatch)
	if m.claimed == nil {
		m.claimed = map[*quota.ClaimedBatch][]quota.Usage{}
	}
	m.claimed[b] = us
	return b, nil
}

func (m *fakeMeter) SettleClaimed(_ context.Context, b *quota.ClaimedBatch) ([]*quota.DebitResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	us := m.claimed[b]
	m.calls++
	if m.outages > 0 {
		m.outages--
		return nil, errors.New("redis: connection refused")
	}
	out := make([]*quota.DebitResult, len(us))
	for i, u := range us {
		switch {
		case m.conflicting[u.EventID]:
			out[i] = &quota.DebitResult{SeafarerID: u.SeafarerID, Conflicting: true}
			continue
		case m.failing[u.EventID]:
			out[i] = &quota.DebitResult{SeafarerID: u.SeafarerID, Err: &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: "the debit script refused the call"}}
			continue
		}
		_, dup := m.settled[u.EventID]
		m.settled[u.EventID] = u
		t := u.CallTime
		out[i] = &quota.DebitResult{SeafarerID: u.SeafarerID, Duplicate: dup, Notes: m.notes[u.EventID], Entry: &quota.LedgerEntry{
			ID: quota.DebitEntryID(u.Source, u.EventID), Kind: quota.KindDebit, At: t, EventID: u.EventID, CallTime: &t,
			BillableSeconds: u.BillableSeconds, OverageSeconds: u.BillableSeconds, Draws: []quota.Draw{},
		}}
	}
	return out, nil
}

// fakeHeld keeps held events in memory.
type fakeHeld struct {
	mu     sync.Mutex
	events map[string]map[string]kafka.Message
}

func (h *fakeHeld) Hold(_ context.Context, msisdn, identity string, _ time.Time, m kafka.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events[msisdn] == nil {
		h.events[msisdn] = map[string]kafka.Message{}
	}
	h.events[msisdn][identity] = m
	return nil
}

func (h *fakeHeld) Held(_ context.Context, msisdn string) (map[string]kafka.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]kafka.Message{}
	for k, v := range h.events[msisdn] {
		out[k] = v
	}
	return out, nil
}

func (h *fakeHeld) Release(_ context.Context, msisdn string, identities ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range identities {
		delete(h.events[msisdn], id)
	}
	return nil
}

func (h *fakeHeld) Due(context.Context, time.Time, int64) ([]string, error) { return nil, nil }

// fakeProducer records what it accepts. refuse says why the broker refuses
// a message for what it is (nil: accepted); down fails every write as an
// unreachable broker would.
type fakeProducer struct {
	mu     sync.Mutex
	got    []kafka.Message
	refuse func(kafka.Message) error
	down   bool
}

func (p *fakeProducer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("dial tcp 127.0.0.1:9092: connect: connection refused")
	}
	errs := make(kafka.WriteErrors, len(msgs))
	failed := false
	for i, m := range msgs {
		if p.refuse != nil {
			if err := p.refuse(m); err != nil {
				errs[i], failed = err, true
				continue
			}
		}
		p.got = append(p.got, m)
	}
	if failed {
		return errs
	}
	return nil
}

func (p *fakeProducer) on(topic string) []kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []kafka.Message
	for _, m := range p.got {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

type unitFixture struct {
	c        *Consumer
	meter    *fakeMeter
	held     *fakeHeld
	producer *fakeProducer
	topics   Topics
	now      time.Time
}

func newUnitFixture(t *testing.T) *unitFixture {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	topics := NewTopics("")
	f := &unitFixture{
		meter:    &fakeMeter{settled: map[string]quota.Usage{}, conflicting: map[string]bool{}, failing: map[string]bool{}, notes: map[string][]quota.Note{}},
		held:     &fakeHeld{events: map[string]map[string]kafka.Message{}},
		producer: &fakeProducer{},
		topics:   topics,
		now:      now,
	}
	h := &holders{byNo: map[string]holding{}}
	h.set("+8613800000001", "sf_1", time.Time{})
	h.set("+8613800000002", "sf_2", time.Time{})
	f.c = NewConsumer(ConsumerConfig{
		Brokers: []string{"127.0.0.1:1"}, Group: "unit", Topics: topics, HomeCountry: "CN", DedupeWindow: 720 * time.Hour,
		Tariff: billing.DefaultTariff(), Resolver: h, Meter: f.meter, Held: f.held,
		Publisher: NewPublisher(f.producer, topics, func() time.Time { return now }),
		Metrics:   NewMetrics(prometheus.NewRegistry()), Now: func() time.Time { return now },
	})
	t.Cleanup(func() { f.c.reader.Close() })
	return f
}

// batch makes messages as read from partition 0, offsets from 0.
func batch(values ...[]byte) []kafka.Message {
	out := make([]kafka.Message, len(values))
	for i, v := range values {
		out[i] = kafka.Message{Topic: "carrier.usage.v1", Partition: 0, Offset: int64(i), Key: []byte("k"), Value: v}
	}
	return out
}

// runStages runs one batch through prepare, debit and finish.
func (f *unitFixture) runStages(t *testing.T, msgs []kafka.Message) error {
	t.Helper()
	ctx := context.Background()
	p, err := f.c.prepare(ctx, msgs)
	require.NoError(t, err)
	d, err := f.c.debit(ctx, p)
	if err != nil {
		return err
	}
	return f.c.finish(ctx, d)
}

func codesOf(msgs []kafka.Message) map[string]string {
	out := map[string]string{} // original offset -> error_code
	for _, m := range msgs {
		h := headersOf(m)
		out[h["original_offset"]] = h["error_code"]
	}
	return out
}

func TestEachBadEventOfABatchIsDeadLetteredAloneAndTheRestIsApplied(t *testing.T) {
	f := newUnitFixture(t)
	f.meter.conflicting["conflicts"] = true
	f.meter.failing["refused"] = true
	err := f.runStages(t, batch(
		voiceEvent("good-1", "+8613800000001", f.now.Add(-time.Hour), 60),    // 0
		[]byte(`{"id":"x"}{"id":"y"}`),                                       // 1 two documents
		voiceEvent("future", "+8613800000001", f.now.Add(25*time.Hour), 60),  // 2 beyond the clock skew
		voiceEvent("late", "+8613800000001", f.now.Add(-721*time.Hour), 60),  // 3 older than the window
		voiceEvent("stranger", "+8613900000009", f.now.Add(-time.Hour), 60),  // 4 nobody holds the number
		voiceEvent("conflicts", "+8613800000002", f.now.Add(-time.Hour), 60), // 5 identity taken with other content
		voiceEvent("refused", "+8613800000002", f.now.Add(-time.Hour), 60),   // 6 the script refuses it
		voiceEvent("good-2", "+8613800000002", f.now.Add(-time.Hour), 60),    // 7
	))
	require.NoError(t, err, "nothing wrong with one event fails the batch")
	require.Equal(t, map[string]string{"1": "malformed_json", "2": "invalid_field", "5": "conflicting_duplicate", "6": "apply_failed"},
		codesOf(f.producer.on(f.topics.DeadLetter)))
	require.Len(t, f.producer.on(f.topics.Late), 1)
	require.Len(t, f.held.events["+8613900000009"], 1)
	var ledger []string
	for _, m := range f.producer.on(f.topics.Ledger) {
		var ev struct {
			Data struct {
				EventID string `json:"event_id"`
			}
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		ledger = append(ledger, ev.Data.EventID)
	}
	require.ElementsMatch(t, []string{"good-1", "good-2"}, ledger)
}

// An outage fails the stage; the stage is retried whole and the dead
// letters it had made are not repeated.
func TestAnOutageFailsTheDebitStageAndItsRetryRepeatsNothing(t *testing.T) {
	f := newUnitFixture(t)
	f.c.cfg.Tariff = nil // every rating fails: rating_failed dead letters before the meter is called
	f.meter.outages = 1
	ctx := context.Background()
	p, err := f.c.prepare(ctx, batch(voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60)))
	require.NoError(t, err)
	_, err = f.c.debit(ctx, p)
	require.NoError(t, err, "nothing reached the meter: no outage to see")
	f.c.cfg.Tariff = billing.DefaultTariff()
	_, err = f.c.debit(ctx, p)
	require.Error(t, err, "the meter is out of reach")
	d, err := f.c.debit(ctx, p)
	require.NoError(t, err)
	require.NoError(t, f.c.finish(ctx, d))
	require.Empty(t, f.producer.on(f.topics.DeadLetter), "the retry started afresh")
	require.Len(t, f.producer.on(f.topics.Ledger), 1)
}

func TestARatingThatPanicsDeadLettersThatEventAsRatingFailed(t *testing.T) {
	f := newUnitFixture(t)
	f.c.cfg.Tariff = nil
	require.NoError(t, f.runStages(t, batch(voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60))))
	require.Equal(t, map[string]string{"0": "rating_failed"}, codesOf(f.producer.on(f.topics.DeadLetter)))
	require.Zero(t, f.meter.calls)
}

// An output the broker refuses for what it is replaces itself by the dead
// letter of its event; the other outputs of the batch are published.
func TestAnOutputTheBrokerRefusesIsReplacedByItsEventsDeadLetter(t *testing.T) {
	f := newUnitFixture(t)
	f.producer.refuse = func(m kafka.Message) error {
		if m.Topic == f.topics.Ledger && strings.Contains(string(m.Value), `"event_id":"bad-output"`) {
			return kafka.MessageSizeTooLarge
		}
		return nil
	}
	require.NoError(t, f.runStages(t, batch(
		voiceEvent("fine", "+8613800000001", f.now.Add(-time.Hour), 60),
		voiceEvent("bad-output", "+8613800000002", f.now.Add(-time.Hour), 60),
	)))
	require.Equal(t, map[string]string{"1": "output_failed"}, codesOf(f.producer.on(f.topics.DeadLetter)))
	require.Len(t, f.producer.on(f.topics.Ledger), 1)
}

// A broker that cannot be reached fails the stage (the batch is retried,
// nothing committed); nothing is dead-lettered for it.
func TestAnUnreachableBrokerFailsTheFinishStage(t *testing.T) {
	f := newUnitFixture(t)
	f.producer.down = true
	require.Error(t, f.runStages(t, batch(voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60))))
	f.producer.down = false
	require.Empty(t, f.producer.on(f.topics.DeadLetter))
}

// Notifications are the meter's notes: a redelivery that repeats the notes
// repeats the same message, byte for byte.
func TestNotificationsAreTheMetersNotesAndARepeatIsTheSameMessage(t *testing.T) {
	f := newUnitFixture(t)
	f.meter.notes["low"] = []quota.Note{{Kind: quota.NoteLow, GrantSet: "0123456789abcdef0123", RemainingSeconds: 60, GrantedSeconds: 600, At: f.now.Add(-time.Minute)}}
	ev := voiceEvent("low", "+8613800000001", f.now.Add(-time.Hour), 60)
	require.NoError(t, f.runStages(t, batch(ev)))
	require.NoError(t, f.runStages(t, batch(ev)))
	n := f.producer.on(f.topics.Notifications)
	require.Len(t, n, 2)
	require.Equal(t, n[0].Value, n[1].Value)
	var got struct {
		ID, Type, Subject string
		Time              time.Time
		Data              map[string]any
	}
	require.NoError(t, json.Unmarshal(n[0].Value, &got))
	require.Equal(t, "low-sf_1-0123456789abcdef", got.ID)
	require.Equal(t, NotifyQuotaLow, got.Type)
	require.Equal(t, "+8613800000001", got.Subject)
	require.Equal(t, f.now.Add(-time.Minute), got.Time)
	require.EqualValues(t, 60, got.Data["remaining_seconds"])
}

// fakeLedger stores entries by id; an entry whose event id is in refuse
// breaks a rule of the ledger (EINVALID, and nothing of its batch is
// stored, as PostgreSQL's transaction does); down fails every append.
type fakeLedger struct {
	mu      sync.Mutex
	entries map[string]quota.SeafarerEntry
	refuse  map[string]bool
	down    bool
}

func (l *fakeLedger) Append(_ context.Context, es []quota.SeafarerEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return errors.New("postgres: connection refused")
	}
	for _, e := range es {
		if l.refuse[e.Entry.EventID] {
			return &wuyou.Error{Code: wuyou.EINVALID, Reason: "ledger_debit_billable_is_covered_plus_overage", Message: "billable must be covered + overage"}
		}
	}
	for _, e := range es {
		l.entries[e.Entry.ID] = e
	}
	return nil
}

// Every settled event's entry is stored before anything is published; an
// entry the ledger refuses is its event's failure alone, and the ledger
// being down fails the stage before anything is published.
func TestLedgerEntriesAreStoredBeforePublishingAndARefusedOneIsItsEventsAlone(t *testing.T) {
	f := newUnitFixture(t)
	l := &fakeLedger{entries: map[string]quota.SeafarerEntry{}, refuse: map[string]bool{"broken": true}}
	f.c.cfg.Ledger = l

	l.down = true
	msgs := batch(
		voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60),
		voiceEvent("broken", "+8613800000002", f.now.Add(-time.Hour), 60),
		voiceEvent("b", "+8613800000002", f.now.Add(-time.Hour), 60),
	)
	require.Error(t, f.runStages(t, msgs), "the ledger is out of reach: the stage fails")
	require.Empty(t, f.producer.got, "nothing published before its entry is stored")

	l.down = false
	require.NoError(t, f.runStages(t, msgs), "the redelivered batch is stored")
	require.Len(t, l.entries, 2)
	require.Contains(t, l.entries, quota.DebitEntryID("urn:carrier:test", "a"))
	require.Contains(t, l.entries, quota.DebitEntryID("urn:carrier:test", "b"))
	require.Equal(t, map[string]string{"1": "output_failed"}, codesOf(f.producer.on(f.topics.DeadLetter)))
	require.Len(t, f.producer.on(f.topics.Ledger), 2)
	require.ElementsMatch(t, []string{quota.DebitEntryID("urn:carrier:test", "a"), quota.DebitEntryID("urn:carrier:test", "b")}, f.meter.recorded,
		"quota forgets the records of what is stored and published, and only of that")
}

// Quota is told a batch's entries are recorded only once they are stored
// and published; when telling it fails, the batch still completes (quota
// keeps the records longer, and a repeat publishes them again).
func TestQuotaForgetsRecordsOnlyAfterTheBatchIsPublished(t *testing.T) {
	f := newUnitFixture(t)
	f.producer.down = true
	msgs := batch(voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60))
	require.Error(t, f.runStages(t, msgs))
	require.Empty(t, f.meter.recorded, "nothing forgotten before it is published")

	f.producer.down = false
	f.meter.forgetFails = true
	require.NoError(t, f.runStages(t, msgs), "a failure to forget does not fail the batch")
	require.Len(t, f.producer.on(f.topics.Ledger), 1)
	f.meter.forgetFails = false
	require.NoError(t, f.runStages(t, msgs))
	require.Equal(t, []string{quota.DebitEntryID("urn:carrier:test", "a")}, f.meter.recorded)
}

// The metering counters count what was stored and published, once: a
// finish stage retried after the broker was out of reach counts nothing
// twice.
func TestCountersCountAStageRetriedAfterAnOutageOnce(t *testing.T) {
	f := newUnitFixture(t)
	ctx := context.Background()
	p, err := f.c.prepare(ctx, batch(
		voiceEvent("a", "+8613800000001", f.now.Add(-time.Hour), 60),
		[]byte(`not json`),
		voiceEvent("old", "+8613800000001", f.now.Add(-721*time.Hour), 60),
		voiceEvent("stranger", "+8613900000009", f.now.Add(-time.Hour), 60),
	))
	require.NoError(t, err)
	d, err := f.c.debit(ctx, p)
	require.NoError(t, err)
	f.producer.down = true
	require.Error(t, f.c.finish(ctx, d))
	require.Error(t, f.c.finish(ctx, d))
	f.producer.down = false
	require.NoError(t, f.c.finish(ctx, d))
	m := f.c.cfg.Metrics
	require.Equal(t, 1.0, testutil.ToFloat64(m.Applied))
	require.Equal(t, 1.0, testutil.ToFloat64(m.DeadLettered.WithLabelValues("malformed_json")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Late))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Held))
}
