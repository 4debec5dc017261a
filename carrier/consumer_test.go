package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
)

// holders is a Resolver over fixed holdings: MSISDN -> seafarer, held from
// a time on (zero: always).
type holders struct {
	mu   sync.Mutex
	byNo map[string]holding
}

type holding struct {
	seafarer string
	from     time.Time
}

func (h *holders) set(msisdn, seafarer string, from time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byNo[msisdn] = holding{seafarer, from}
}

func (h *holders) SeafarerIDsAt(_ context.Context, calls []crew.MSISDNAt) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(calls))
	for i, c := range calls {
		if x, ok := h.byNo[c.MSISDN]; ok && !c.At.Before(x.from) {
			out[i] = x.seafarer
		}
	}
	return out, nil
}

func (h *holders) SeafarerIDsByMSISDN(_ context.Context, ms []string) (map[string]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for _, m := range ms {
		if x, ok := h.byNo[m]; ok {
			out[m] = x.seafarer
		}
	}
	return out, nil
}

// consumerFixture is a Consumer over a real Redis (the Meter), PostgreSQL
// (held events and the ledger) and a kfake broker, with a clock the test
// moves.
type consumerFixture struct {
	consumer *Consumer
	store    *quota.RedisStore
	ledger   *quota.PGLedger
	rdb      redis.UniversalClient
	prefix   string // of every Redis key the fixture uses
	holders  *holders
	metrics  *Metrics
	broker   *kfake.Cluster
	topics   Topics
	now      func() time.Time
	setNow   func(time.Time)
}

func mustConsumerFixture(t *testing.T, brokerConfigs map[string]string) *consumerFixture {
	t.Helper()
	rdb, prefix := redistest.MustClient(t)
	pool := pgtest.MustPool(t)
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	topics := NewTopics("")
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, topics.All()...)}
	if brokerConfigs != nil {
		opts = append(opts, kfake.BrokerConfigs(brokerConfigs))
	}
	broker, err := kfake.NewCluster(opts...)
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	w := NewWriter(broker.ListenAddrs())
	t.Cleanup(func() { w.Close() })
	store := quota.NewRedisStore(rdb, prefix, clock, quota.Options{DedupeWindow: 720 * time.Hour})
	ledger := quota.NewPGLedger(pool)
	h := &holders{byNo: map[string]holding{}}
	metrics := NewMetrics(prometheus.NewRegistry())
	c := NewConsumer(ConsumerConfig{
		Brokers: broker.ListenAddrs(), Group: "test", Topics: topics, HomeCountry: "CN", DedupeWindow: 720 * time.Hour,
		Tariff: billing.DefaultTariff(), Resolver: h, Meter: store, Held: NewPGHeld(pool), Ledger: ledger,
		Publisher: NewPublisher(w, topics, clock), Metrics: metrics, Now: clock,
	})
	return &consumerFixture{consumer: c, store: store, ledger: ledger, rdb: rdb, prefix: prefix, holders: h, metrics: metrics,
		broker: broker, topics: topics, now: clock, setNow: func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }}
}

// run consumes until the test ends.
func (f *consumerFixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.consumer.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (f *consumerFixture) produce(t *testing.T, values ...[]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(f.broker.ListenAddrs()...), Topic: f.topics.Usage, BatchBytes: 4 << 20, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	for _, v := range values {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: v}))
		cancel()
	}
}

// read reads n messages of topic, or fails after 10 s.
func (f *consumerFixture) read(t *testing.T, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.broker.ListenAddrs(), Topic: topic, MaxBytes: 4 << 20, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "reading %s: %d of %d", topic, len(out), n)
		out = append(out, m)
	}
	return out
}

func headersOf(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func voiceEvent(id, msisdn string, at time.Time, seconds int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"urn:carrier:test","type":"carrier.usage.voice","time":%q,"subject":%q,`+
		`"data":{"call_id":"c","direction":"MO","duration_seconds":%d,"called_number":"+861012345678","visited_country":"SG","network":"maritime"}}`,
		id, at.UTC().Format(time.RFC3339), msisdn, seconds)
}

// A broker whose message limit is below Wuyou's own cut refuses a dead
// letter's copy: the copy is cut again until it fits (here to 16 KiB), the
// headers say it was cut and how large the original was, and the valid
// event after it is applied.
func TestADeadLetterTheBrokerRefusesIsCutUntilItFitsAndTheBatchGoesOn(t *testing.T) {
	f := mustConsumerFixture(t, map[string]string{"message.max.bytes": "200000"})
	f.holders.set("+8613800000001", "sf_1", time.Time{})
	f.run(t)
	// too_large, and just under the broker's limit, so its copy with the
	// dead-letter headers is just over it.
	huge := []byte(`{"id":"` + strings.Repeat("x", 199_840) + `"}`)
	f.produce(t, huge, voiceEvent("after", "+8613800000001", f.now().Add(-time.Minute), 60))

	dl := f.read(t, f.topics.DeadLetter, 1)[0]
	h := headersOf(dl)
	require.Equal(t, "too_large", h["error_code"])
	require.Equal(t, "true", h["truncated"])
	require.Equal(t, fmt.Sprint(len(huge)), h["original_size"])
	require.Equal(t, f.topics.Usage, h["original_topic"])
	require.Equal(t, "0", h["original_offset"])
	require.Len(t, dl.Value, minDeadLetterBytes)
	require.Equal(t, huge[:minDeadLetterBytes], dl.Value, "the copy is the original's first bytes")

	led := f.read(t, f.topics.Ledger, 1)[0]
	var e struct {
		Data struct {
			EventID string `json:"event_id"`
		}
	}
	require.NoError(t, json.Unmarshal(led.Value, &e))
	require.Equal(t, "after", e.Data.EventID)
}

// Wuyou cuts a dead letter up front when its copy would not fit a broker
// with the default limit: a message just under 1 MiB is dead-lettered as
// its first MaxDeadLetterBytes.
func TestADeadLetterOfAMessageNearTheBrokerLimitIsCutUpFront(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	f.holders.set("+8613800000001", "sf_1", time.Time{})
	f.run(t)
	near := []byte(strings.Repeat("{", 1_040_000))
	f.produce(t, near, voiceEvent("after", "+8613800000001", f.now().Add(-time.Minute), 60))
	dl := f.read(t, f.topics.DeadLetter, 1)[0]
	h := headersOf(dl)
	require.Equal(t, "too_large", h["error_code"])
	require.Equal(t, "true", h["truncated"])
	require.Len(t, dl.Value, MaxDeadLetterBytes)
	f.read(t, f.topics.Ledger, 1)
}

// Events held for a number nobody enrols leave after the dedupe window: to
// the late topic, counted, and no longer held; younger ones stay.
func TestHeldEventsOlderThanTheDedupeWindowGoToTheLateTopicAndAreCounted(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	f.run(t)
	start := f.now()
	f.produce(t, voiceEvent("old", "+8613900000001", start.Add(-700*time.Hour), 60),
		voiceEvent("young", "+8613900000001", start.Add(-time.Hour), 60))
	require.Eventually(t, func() bool { return testutil.ToFloat64(f.metrics.Held) == 2 }, 10*time.Second, 20*time.Millisecond)

	n, err := f.consumer.ExpireHeld(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "nothing is older than the window yet")

	f.setNow(start.Add(30 * time.Hour)) // "old" is now 730 h old
	n, err = f.consumer.ExpireHeld(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.HeldExpired))
	late := f.read(t, f.topics.Late, 1)[0]
	require.Contains(t, string(late.Value), `"id":"old"`)
	require.Equal(t, "late", headersOf(late)["error_code"])
	held, err := f.consumer.cfg.Held.Held(context.Background(), "+8613900000001")
	require.NoError(t, err)
	require.Len(t, held, 1, "the young event is still held")

	// Enrolled now, the young one is applied; nothing is left to expire.
	f.holders.set("+8613900000001", "sf_9", time.Time{})
	require.NoError(t, f.consumer.ApplyHeld(context.Background(), "+8613900000001", "sf_9"))
	a, err := f.store.Allowance(context.Background(), "sf_9")
	require.NoError(t, err)
	require.Equal(t, int64(60), a.OverageSeconds)
	n, err = f.consumer.ExpireHeld(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
}

// Held calls made while nobody held the number (before its current
// holder's period, after an earlier holder's) are not given to the new
// holder at enrolment: they stay held until they expire.
func TestHeldCallsFromAGapBetweenHoldersStayHeldAtEnrolment(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	f.run(t)
	now := f.now()
	f.produce(t, voiceEvent("gap", "+8613900000002", now.Add(-2*time.Hour), 60))
	require.Eventually(t, func() bool { return testutil.ToFloat64(f.metrics.Held) == 1 }, 10*time.Second, 20*time.Millisecond)
	f.holders.set("+8613900000002", "sf_new", now.Add(-time.Hour)) // holds it from an hour ago
	require.NoError(t, f.consumer.ApplyHeld(context.Background(), "+8613900000002", "sf_new"))
	held, err := f.consumer.cfg.Held.Held(context.Background(), "+8613900000002")
	require.NoError(t, err)
	require.Len(t, held, 1)
	a, err := f.store.Allowance(context.Background(), "sf_new")
	require.NoError(t, err)
	require.Zero(t, a.OverageSeconds)
}

// Held events are the only copy of a call once its offset is committed, so
// with PostgreSQL holding them a Redis that loses everything loses none:
// the number enrolled afterwards gets its call.
func TestHeldEventsInPostgreSQLSurviveARedisLoss(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	f.holders.set("+8613800000001", "sf_1", time.Time{})
	f.run(t)
	f.produce(t, voiceEvent("applied", "+8613800000001", f.now().Add(-time.Hour), 60),
		voiceEvent("held", "+8613900000003", f.now().Add(-time.Hour), 60))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.metrics.Held) == 1 && testutil.ToFloat64(f.metrics.Applied) == 1
	}, 10*time.Second, 20*time.Millisecond)

	ctx := context.Background()
	keys, err := redistest.Keys(ctx, f.rdb, f.prefix+"*")
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys { // one by one: on a cluster the keys lie in several slots
		require.NoError(t, f.rdb.Del(ctx, k).Err())
	}

	f.holders.set("+8613900000003", "sf_3", time.Time{})
	require.NoError(t, f.consumer.ApplyHeld(ctx, "+8613900000003", "sf_3"))
	a, err := f.store.Allowance(ctx, "sf_3")
	require.NoError(t, err)
	require.Equal(t, int64(60), a.OverageSeconds)
	held, err := f.consumer.cfg.Held.Held(ctx, "+8613900000003")
	require.NoError(t, err)
	require.Empty(t, held, "applied, so released")
	entries, _, err := f.ledger.Ledger(ctx, "sf_3", quota.LedgerFilter{})
	require.NoError(t, err)
	require.Len(t, entries, 1, "the held call's debit is in the ledger")
	require.Equal(t, "held", entries[0].EventID)
	require.Equal(t, int64(60), entries[0].OverageSeconds)
}

// Small batches through every stage at once (prepare, claim, debit,
// store, publish: the next batch is claimed while the one before is
// debited): one seafarer's calls are still drawn in the order the carrier
// sent them, an identity sent again in a later batch is applied once, and
// every call is in the ledger and its feed once, with the offsets of all
// of them committed.
func TestPipelinedBatchesDrawInStreamOrderAndApplyARepeatOnce(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	f.consumer.cfg.BatchSize = 2
	const msisdn, sf = "+8613800000001", "sf_1"
	f.holders.set(msisdn, sf, time.Time{})
	ctx := context.Background()
	now := f.now()
	_, _, err := f.store.AddGrant(ctx, quota.GrantInput{ID: "gr_1", SeafarerID: sf, ProgrammeID: "pr_1", Seconds: 330, Priority: 1,
		EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour)})
	require.NoError(t, err)
	f.run(t)

	// Twelve calls of 60 s, a minute apart; three of them sent twice, the
	// repeat a batch or more later. The grant covers the first five and
	// half of the sixth, which is the second of its batch: drawn in any
	// other order, another call would have that half.
	var values [][]byte
	call := func(i int) []byte {
		return voiceEvent(fmt.Sprintf("call-%02d", i), msisdn, now.Add(-time.Hour+time.Duration(i)*time.Minute), 60)
	}
	for i := range 12 {
		values = append(values, call(i))
		if i == 3 || i == 6 || i == 9 {
			values = append(values, call(i-2))
		}
	}
	// In one write, so that the consumer finds them all at once and has a
	// batch at each stage.
	w := &kafka.Writer{Addr: kafka.TCP(f.broker.ListenAddrs()...), Topic: f.topics.Usage, RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte(msisdn), Value: v}
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.metrics.Applied)+testutil.ToFloat64(f.metrics.Duplicates) >= float64(len(values))
	}, 20*time.Second, 20*time.Millisecond)

	entries, _, err := f.ledger.Ledger(ctx, sf, quota.LedgerFilter{Limit: 100})
	require.NoError(t, err)
	covered := map[string]int64{}
	for _, e := range entries {
		if e.Kind == quota.KindDebit {
			_, dup := covered[e.EventID]
			require.False(t, dup, "%s is in the ledger twice", e.EventID)
			covered[e.EventID] = e.CoveredSeconds
		}
	}
	require.Len(t, covered, 12)
	for i := range 12 {
		want := int64(60)
		switch {
		case i == 5:
			want = 30 // what was left
		case i > 5:
			want = 0 // drawn after the grant ran out: overage
		}
		require.Equal(t, want, covered[fmt.Sprintf("call-%02d", i)], "call-%02d, in the order sent", i)
	}
	a, err := f.store.Allowance(ctx, sf)
	require.NoError(t, err)
	require.Equal(t, int64(0), a.RemainingSeconds)
	require.Equal(t, int64(12*60-330), a.OverageSeconds)

	// The feed may carry an entry twice (a repeat before its first batch
	// was published publishes it again, with the same id); every call is
	// on it.
	feed := map[string]bool{}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.broker.ListenAddrs(), Topic: f.topics.Ledger, MaxBytes: 4 << 20, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(feed) < 12 {
		m, err := r.ReadMessage(readCtx)
		require.NoError(t, err, "the ledger feed has %d of the 12 calls", len(feed))
		var e struct {
			Data struct {
				EventID string `json:"event_id"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &e))
		feed[e.Data.EventID] = true
	}

	client := &kafka.Client{Addr: kafka.TCP(f.broker.ListenAddrs()...)}
	require.Eventually(t, func() bool {
		res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "test", Topics: map[string][]int{f.topics.Usage: {0}}})
		if err != nil || len(res.Topics[f.topics.Usage]) != 1 {
			return false
		}
		return res.Topics[f.topics.Usage][0].CommittedOffset == int64(len(values))
	}, 10*time.Second, 50*time.Millisecond, "every batch's offsets are committed")
}
