package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/carrier"
)

const dlqTestPrefix = "ops."

// dlqBroker is an in-process Kafka-protocol broker with the contract's
// topics under dlqTestPrefix: the dead-letter topic has two partitions, the
// usage topic three.
type dlqBroker struct {
	brokers []string
	topics  carrier.Topics
}

func MustDLQBroker(tb testing.TB) *dlqBroker {
	tb.Helper()
	topics := carrier.NewTopics(dlqTestPrefix)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topics.DeadLetter), kfake.SeedTopics(3, topics.Usage))
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return &dlqBroker{brokers: c.ListenAddrs(), topics: topics}
}

// deadLetterMessage is a dead letter as wuyoud writes it, to partition p.
func deadLetterMessage(p int, key, value, code, errText string, origPartition, origOffset string, extra ...kafka.Header) kafka.Message {
	h := []kafka.Header{
		{Key: "error", Value: []byte(errText)},
		{Key: "error_code", Value: []byte(code)},
		{Key: "original_partition", Value: []byte(origPartition)},
		{Key: "original_offset", Value: []byte(origOffset)},
	}
	return kafka.Message{Partition: p, Key: []byte(key), Value: []byte(value), Headers: append(h, extra...)}
}

// MustProduceTo writes msgs to topic, each to the partition it names.
func (b *dlqBroker) MustProduceTo(tb testing.TB, topic string, msgs ...kafka.Message) {
	tb.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(b.brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range msgs { // one at a time: the offsets follow the order given
		require.NoError(tb, w.WriteMessages(ctx, m))
	}
}

// MustReadAll reads every message of topic up to its end offsets now.
func (b *dlqBroker) MustReadAll(tb testing.TB, topic string) []kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialer := &kafka.Dialer{Timeout: 10 * time.Second}
	partitions, err := topicPartitions(ctx, dialer, b.brokers, topic)
	require.NoError(tb, err)
	var out []kafka.Message
	for _, p := range partitions {
		first, end, err := partitionBounds(ctx, dialer, b.brokers, topic, p)
		require.NoError(tb, err)
		if first >= end {
			continue
		}
		_, err = readPartition(ctx, dialer, b.brokers, topic, p, first, end, func(m kafka.Message) bool {
			out = append(out, m)
			return false
		})
		require.NoError(tb, err)
	}
	return out
}

// runDLQ runs wuyouctl dlq against the broker.
func (b *dlqBroker) runDLQ(args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	args = append(args, "--brokers", strings.Join(b.brokers, ","), "--topic-prefix", dlqTestPrefix)
	err := run(context.Background(), append([]string{"dlq"}, args...), &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), err}
}

const (
	malformedEvent = `{"specversion":"1.0","id":"cdr-9","source":"urn:carrier:cmcc:roaming"`
	zoneEvent      = `{"specversion":"1.0","id":"cdr-10","source":"urn:carrier:cmcc:roaming","type":"carrier.usage.voice","time":"2026-11-28T10:15:00Z","subject":"+8613800000001","data":{"call_id":"c-1","direction":"MO","duration_seconds":125,"called_number":"+861012345678","visited_country":"XX","network":"terrestrial"}}`
)

// MustSeedDeadLetters puts four dead letters on the DLQ:
// 0:0 malformed_json, 0:1 unknown_zone, 1:0 unknown_zone truncated, 1:1 unknown_zone.
func (b *dlqBroker) MustSeedDeadLetters(tb testing.TB) {
	tb.Helper()
	b.MustProduceTo(tb, b.topics.DeadLetter,
		deadLetterMessage(0, "+8613800000001", malformedEvent, "malformed_json", "unexpected end of JSON input", "2", "40"),
		deadLetterMessage(0, "+8613800000002", zoneEvent, "unknown_zone", "visited_country XX:\nno zone", "1", "7",
			kafka.Header{Key: "original_topic", Value: []byte(b.topics.Usage)}),
		deadLetterMessage(1, "+8613800000003", zoneEvent[:50], "unknown_zone", "no zone", "0", "3",
			kafka.Header{Key: "truncated", Value: []byte("true")}, kafka.Header{Key: "original_size", Value: []byte("2000000")}),
		deadLetterMessage(1, "+8613800000004", strings.Replace(zoneEvent, "cdr-10", "cdr-11", 1), "unknown_zone", "no zone", "0", "5"),
	)
}

func TestDLQList_ShowsEveryDeadLetterWithItsOriginAndStopsAtTheEnd(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)
	res := b.runDLQ("list")
	require.NoError(t, res.err, res.stderr)
	lines := dlqListLines(t, res.stdout)
	require.Len(t, lines, 6, res.stdout)
	require.Regexp(t, `^DLQ\s+ORIGINAL\s+ERROR_CODE\s+KEY\s+SIZE\s+TRUNCATED\s+ERROR$`, lines[0])
	require.Regexp(t, `^0:0\s+2:40\s+malformed_json\s+\+8613800000001\s+69 B\s+no\s+unexpected end of JSON input$`, lines[1])
	require.Regexp(t, `^0:1\s+ops\.carrier\.usage\.v1/1:7\s+unknown_zone\s+\+8613800000002\s+\d+ B\s+no\s+visited_country XX: no zone$`, lines[2])
	require.Regexp(t, `^1:0\s+0:3\s+unknown_zone\s+\+8613800000003\s+50 B of 1\.9 MiB\s+yes\s+no zone$`, lines[3])
	require.Regexp(t, `^1:1\s+0:5\s+unknown_zone\s+\+8613800000004\s+\d+ B\s+no\s+no zone$`, lines[4])
	require.Equal(t, "4 dead letters, 1 truncated", lines[5])
}

func dlqListLines(t *testing.T, out string) []string {
	t.Helper()
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

func TestDLQList_FiltersByErrorCodeAndLimitsAsJSON(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)

	res := b.runDLQ("list", "--code", "unknown_zone", "--json")
	require.NoError(t, res.err, res.stderr)
	var got []deadLetter
	for _, line := range dlqListLines(t, res.stdout) {
		var d deadLetter
		require.NoError(t, json.Unmarshal([]byte(line), &d), line)
		got = append(got, d)
	}
	require.Len(t, got, 3)
	var at []string
	for _, d := range got {
		require.Equal(t, "unknown_zone", d.ErrorCode)
		at = append(at, d.position().String())
	}
	require.Equal(t, []string{"0:1", "1:0", "1:1"}, at)
	require.Equal(t, b.topics.Usage, got[0].OriginalTopic)
	require.Equal(t, 1, *got[0].OriginalPartition)
	require.Equal(t, int64(7), *got[0].OriginalOffset)
	require.Equal(t, zoneEvent, got[0].Value)
	require.Equal(t, len(zoneEvent), got[0].Size)
	require.True(t, got[1].Truncated)
	require.Equal(t, 2000000, *got[1].OriginalSize)
	require.False(t, got[2].Truncated)

	res = b.runDLQ("list", "--limit", "1")
	require.NoError(t, res.err, res.stderr)
	require.Len(t, dlqListLines(t, res.stdout), 3, res.stdout) // header, one letter, summary
	require.Contains(t, res.stderr, "--limit 1")

	res = b.runDLQ("list", "--code", "nothing_like_it")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, "no dead letters\n", res.stdout)
}

func TestDLQList_OfAnEmptyTopicEndsAtOnce(t *testing.T) {
	b := MustDLQBroker(t)
	start := time.Now()
	res := b.runDLQ("list")
	require.NoError(t, res.err, res.stderr)
	require.Equal(t, "no dead letters\n", res.stdout)
	require.Less(t, time.Since(start), 10*time.Second)
}

// replayedFrom is the wuyou_replayed_from header of m, "" when absent.
func replayedFrom(m kafka.Message) string {
	for _, h := range m.Headers {
		if h.Key == "wuyou_replayed_from" {
			return string(h.Value)
		}
	}
	return ""
}

func TestDLQReplay_SendsTheOriginalBytesKeyedAsTheOriginalAndNamesTheDeadLetter(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)

	res := b.runDLQ("replay", "--offset", "0:0", "--offset", "1:1")
	require.NoError(t, res.err, res.stderr)
	require.Contains(t, res.stdout, "replayed 2 dead letters to ops.carrier.usage.v1")

	sent := b.MustReadAll(t, b.topics.Usage)
	require.Len(t, sent, 2)
	sort.Slice(sent, func(i, j int) bool { return replayedFrom(sent[i]) < replayedFrom(sent[j]) })
	require.Equal(t, "0:0", replayedFrom(sent[0]))
	require.Equal(t, "+8613800000001", string(sent[0].Key))
	require.Equal(t, malformedEvent, string(sent[0].Value))
	require.Equal(t, "1:1", replayedFrom(sent[1]))
	require.Equal(t, "+8613800000004", string(sent[1].Key))
	require.Equal(t, strings.Replace(zoneEvent, "cdr-10", "cdr-11", 1), string(sent[1].Value))
	for _, m := range sent {
		require.Len(t, m.Headers, 1, "only wuyou_replayed_from: the error headers stay on the DLQ")
	}
}

func TestDLQReplay_ByCodeSkipsTruncatedCopiesAndReportsThem(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)

	res := b.runDLQ("replay", "--code", "unknown_zone")
	require.NoError(t, res.err, res.stderr)
	require.Contains(t, res.stdout, "skipped 1:0: a truncated copy")
	require.Contains(t, res.stdout, "replayed 2 dead letters to ops.carrier.usage.v1; skipped 1 truncated (1:0)")

	var from []string
	for _, m := range b.MustReadAll(t, b.topics.Usage) {
		from = append(from, replayedFrom(m))
	}
	sort.Strings(from)
	require.Equal(t, []string{"0:1", "1:1"}, from)
}

func TestDLQReplay_AllSendsEveryWholeCopy(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)
	res := b.runDLQ("replay", "--all")
	require.NoError(t, res.err, res.stderr)
	require.Len(t, b.MustReadAll(t, b.topics.Usage), 3)
}

func TestDLQReplay_DryRunSendsNothing(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)
	res := b.runDLQ("replay", "--all", "--dry-run")
	require.NoError(t, res.err, res.stderr)
	require.Contains(t, res.stdout, "would replay 0:0 to ops.carrier.usage.v1 (key +8613800000001, 69 B)")
	require.Contains(t, res.stdout, "would replay 3 dead letters to ops.carrier.usage.v1; skipped 1 truncated (1:0)")
	require.Empty(t, b.MustReadAll(t, b.topics.Usage))
}

func TestDLQReplay_AnOffsetNotOnTheTopicFailsAndSendsNothing(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)
	res := b.runDLQ("replay", "--offset", "0:0", "--offset", "1:9")
	require.ErrorContains(t, res.err, "no dead letter at 1:9")
	require.Equal(t, 1, exitCode(res.err))
	require.Empty(t, b.MustReadAll(t, b.topics.Usage))
}

func TestDLQ_UnreachableBrokersFailWithExitStatus1(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"dlq", "list", "--brokers", "127.0.0.1:1"}, &stdout, &stderr)
	require.ErrorContains(t, err, "cannot reach Kafka")
	require.Equal(t, 1, exitCode(err))
}

func TestDLQ_UsageMistakesExitWithStatus2(t *testing.T) {
	b := MustDLQBroker(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"replay without a selector", []string{"replay"}, "--all, --code CODE or --offset"},
		{"replay --all with --code", []string{"replay", "--all", "--code", "x"}, "leave out"},
		{"a malformed offset", []string{"replay", "--offset", "zero"}, "partition:offset"},
		{"a negative offset", []string{"replay", "--offset", "0:-1"}, "partition:offset"},
		{"an unknown flag", []string{"list", "--colour"}, "unknown flag"},
		{"an argument", []string{"list", "extra"}, "takes no arguments"},
		{"a negative limit", []string{"list", "--limit", "-1"}, "--limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := b.runDLQ(tc.args...)
			require.ErrorContains(t, res.err, tc.want)
			require.Equal(t, 2, exitCode(res.err))
		})
	}
	t.Run("no brokers", func(t *testing.T) {
		t.Setenv(envKafkaBrokers, "")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"dlq", "list"}, &stdout, &stderr)
		require.ErrorContains(t, err, envKafkaBrokers)
		require.Equal(t, 2, exitCode(err))
	})
	require.Empty(t, b.MustReadAll(t, b.topics.Usage))
}

func TestDLQ_BrokersAndPrefixComeFromTheEnvironment(t *testing.T) {
	b := MustDLQBroker(t)
	b.MustSeedDeadLetters(t)
	t.Setenv(envKafkaBrokers, strings.Join(b.brokers, ","))
	t.Setenv(envTopicPrefix, dlqTestPrefix)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"dlq", "list", "--code", "malformed_json"}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "1 dead letters, 0 truncated")
}
