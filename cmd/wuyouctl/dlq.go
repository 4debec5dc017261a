package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou/carrier"
)

// The dlq commands talk to Kafka directly, not to the API: the dead-letter
// topic is where wuyoud puts what it could not apply, and an operator reads
// it when wuyoud itself may be the thing that is broken.
const (
	envKafkaBrokers = "WUYOU_KAFKA_BROKERS"
	envTopicPrefix  = "WUYOU_TOPIC_PREFIX"
)

// Headers of a dead letter (carrier/consumer.go writes them) and of a replay.
const (
	headerError             = "error"
	headerErrorCode         = "error_code"
	headerOriginalTopic     = "original_topic"
	headerOriginalPartition = "original_partition"
	headerOriginalOffset    = "original_offset"
	headerTruncated         = "truncated"
	headerOriginalSize      = "original_size" // of a truncated copy's event
	headerReplayedFrom      = "wuyou_replayed_from"
)

// dlqReadTimeout bounds reading one partition up to the end offset read
// before it: a partition that stops answering is an error, never a hang.
const dlqReadTimeout = 60 * time.Second

// usageError is a mistake on the command line; wuyouctl exits 2 for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is wuyouctl's exit status for what run returned: 0 ok, 2 a
// usage mistake, 1 any other failure.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// dlqOptions are the flags every dlq subcommand shares.
type dlqOptions struct {
	brokers     string
	topicPrefix string
	code        string
}

// resolve fills the flags not given from the environment and checks them.
func (o *dlqOptions) resolve(cmd *cobra.Command, getenv func(string) string) ([]string, carrier.Topics, error) {
	if !cmd.Flags().Changed("brokers") && getenv(envKafkaBrokers) != "" {
		o.brokers = getenv(envKafkaBrokers)
	}
	if !cmd.Flags().Changed("topic-prefix") {
		o.topicPrefix = getenv(envTopicPrefix)
	}
	var brokers []string
	for b := range strings.SplitSeq(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, carrier.Topics{}, usagef("no Kafka brokers: pass --brokers host:port[,…] or set %s", envKafkaBrokers)
	}
	return brokers, carrier.NewTopics(o.topicPrefix), nil
}

func newDLQCmd(getenv func(string) string) *cobra.Command {
	opts := &dlqOptions{}
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay dead letters (usage events wuyoud could not apply)",
		Long: `Inspect and replay the dead-letter topic carrier.usage.dlq.v1 (under
WUYOU_TOPIC_PREFIX), read directly from Kafka.

A dead letter is the original bytes of a carrier usage event that wuyoud
could not apply (malformed JSON, an invalid field, …), keyed as the original,
with headers error, error_code, original_partition and original_offset. A
copy too large for the broker is cut to fit and marked truncated: it can be
listed but not replayed.

Exit status: 0 ok, 1 failure, 2 a mistake on the command line.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.brokers, "brokers", "", "Kafka brokers host:port[,…] (env "+envKafkaBrokers+")")
	pf.StringVar(&opts.topicPrefix, "topic-prefix", "", "prefix of every topic name (env "+envTopicPrefix+")")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.AddCommand(newDLQListCmd(opts, getenv), newDLQReplayCmd(opts, getenv))
	return cmd
}

func newDLQListCmd(opts *dlqOptions, getenv func(string) string) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--code CODE] [--limit N] [--json]",
		Short: "List dead letters, oldest first in each partition",
		Long: `List the dead letters on the dead-letter topic: one line each with its
partition:offset there, the original partition:offset on the usage topic,
error_code, key, size, whether the copy was truncated, and the error.

Reads every partition from its first offset to the end offset it had when
the command started, then stops. --code keeps only dead letters with that
error_code; --limit stops after N (0: no limit); --json prints one JSON
object per line, with the event's bytes as "value" (as text).`,
		Example: `  wuyouctl dlq list --brokers kafka-1:9092
  wuyouctl dlq list --code malformed_json --limit 20 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit %d: must be 0 (no limit) or more", limit)
			}
			brokers, topics, err := opts.resolve(cmd, getenv)
			if err != nil {
				return err
			}
			sel := dlqSelector{code: opts.code}
			letters, err := readDeadLetters(cmd.Context(), brokers, topics.DeadLetter, sel, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printDeadLettersJSON(cmd.OutOrStdout(), letters)
			}
			if err := printDeadLetters(cmd.OutOrStdout(), letters); err != nil {
				return err
			}
			if limit > 0 && len(letters) == limit {
				fmt.Fprintf(cmd.ErrOrStderr(), "stopped at --limit %d: more dead letters may follow\n", limit)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.code, "code", "", "only dead letters with this error_code")
	f.IntVar(&limit, "limit", 100, "at most this many dead letters (0: all)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per dead letter")
	return cmd
}

func newDLQReplayCmd(opts *dlqOptions, getenv func(string) string) *cobra.Command {
	var offsets []string
	var all, dryRun bool
	cmd := &cobra.Command{
		Use:   "replay (--all | --code CODE | --offset P:O ...) [--dry-run]",
		Short: "Send dead letters' original bytes to the usage topic again, after their cause is fixed",
		Long: `Send the original bytes of the selected dead letters to the usage topic
carrier.usage.v1 (under WUYOU_TOPIC_PREFIX), keyed as the original and with a
header wuyou_replayed_from = "<dlq partition>:<dlq offset>", so wuyoud reads
them again. Do it after fixing what made them fail (a tariff, a registry
entry, a wuyoud bug); an event still bad is dead-lettered again.

Select with --all, or with --code (that error_code) and/or --offset P:O
(a dead letter's partition:offset on the dead-letter topic, as "dlq list"
shows it; repeat for several). Truncated copies are skipped and reported:
their bytes are not the event's. --dry-run shows what would be sent and
sends nothing.

Replaying is idempotent in effect: the consumer applies each event identity
(CloudEvents source + id) at most once, so replaying a dead letter twice, or
one whose event was in fact applied, changes no balance. An event whose call
is older than the dedupe window (WUYOU_DEDUPE_WINDOW) is not applied but set
aside on the late topic, as any late event.`,
		Example: `  wuyouctl dlq replay --code unknown_zone --dry-run
  wuyouctl dlq replay --offset 0:17 --offset 2:4
  wuyouctl dlq replay --all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel := dlqSelector{code: opts.code}
			switch {
			case all && (opts.code != "" || len(offsets) > 0):
				return usagef("--all selects every dead letter: leave out --code and --offset")
			case !all && opts.code == "" && len(offsets) == 0:
				return usagef("say which dead letters to replay: --all, --code CODE or --offset P:O")
			}
			if len(offsets) > 0 {
				sel.offsets = map[dlqPosition]bool{}
				for _, o := range offsets {
					p, err := parseDLQPosition(o)
					if err != nil {
						return err
					}
					sel.offsets[p] = true
				}
			}
			brokers, topics, err := opts.resolve(cmd, getenv)
			if err != nil {
				return err
			}
			return replayDeadLetters(cmd.Context(), cmd.OutOrStdout(), brokers, topics, sel, dryRun)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.code, "code", "", "replay the dead letters with this error_code")
	f.StringArrayVar(&offsets, "offset", nil, "replay the dead letter at partition:offset on the dead-letter topic (repeatable)")
	f.BoolVar(&all, "all", false, "replay every dead letter")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be sent; send nothing")
	return cmd
}

// noArgs refuses positional arguments as a usage mistake.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// dlqPosition is a message's place on the dead-letter topic.
type dlqPosition struct {
	partition int
	offset    int64
}

func (p dlqPosition) String() string {
	return strconv.Itoa(p.partition) + ":" + strconv.FormatInt(p.offset, 10)
}

func parseDLQPosition(v string) (dlqPosition, error) {
	ps, offs, ok := strings.Cut(v, ":")
	p, err1 := strconv.Atoi(ps)
	o, err2 := strconv.ParseInt(offs, 10, 64)
	if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
		return dlqPosition{}, usagef("--offset %q: must be partition:offset, such as 0:17", v)
	}
	return dlqPosition{p, o}, nil
}

// dlqSelector picks dead letters: by error_code when code is set, and by
// position when offsets is not nil.
type dlqSelector struct {
	code    string
	offsets map[dlqPosition]bool
}

func (s dlqSelector) keeps(d *deadLetter) bool {
	return (s.code == "" || d.ErrorCode == s.code) && (s.offsets == nil || s.offsets[d.position()])
}

// lastWanted is the highest offset of partition that s can keep, or -1 when
// it keeps none there; ok is false when offsets do not narrow it.
func (s dlqSelector) lastWanted(partition int) (last int64, ok bool) {
	if s.offsets == nil {
		return 0, false
	}
	last = -1
	for p := range s.offsets {
		if p.partition == partition {
			last = max(last, p.offset)
		}
	}
	return last, true
}

// deadLetter is one message of the dead-letter topic.
type deadLetter struct {
	Partition         int       `json:"partition"`
	Offset            int64     `json:"offset"`
	Time              time.Time `json:"time"`
	OriginalTopic     string    `json:"original_topic,omitempty"`
	OriginalPartition *int      `json:"original_partition"`
	OriginalOffset    *int64    `json:"original_offset"`
	ErrorCode         string    `json:"error_code"`
	Error             string    `json:"error"`
	Key               string    `json:"key"`
	Size              int       `json:"size"`
	Truncated         bool      `json:"truncated"`
	OriginalSize      *int      `json:"original_size,omitempty"` // a truncated copy's event's size
	Value             string    `json:"value"`

	key, value []byte
}

func (d *deadLetter) position() dlqPosition { return dlqPosition{d.Partition, d.Offset} }

func newDeadLetter(m kafka.Message) *deadLetter {
	d := &deadLetter{Partition: m.Partition, Offset: m.Offset, Time: m.Time.UTC(), Key: string(m.Key),
		Size: len(m.Value), Value: string(m.Value), key: m.Key, value: m.Value}
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case headerError:
			d.Error = v
		case headerErrorCode:
			d.ErrorCode = v
		case headerOriginalTopic:
			d.OriginalTopic = v
		case headerOriginalPartition:
			if n, err := strconv.Atoi(v); err == nil {
				d.OriginalPartition = &n
			}
		case headerOriginalOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.OriginalOffset = &n
			}
		case headerTruncated:
			d.Truncated = v == "true"
		case headerOriginalSize:
			if n, err := strconv.Atoi(v); err == nil {
				d.OriginalSize = &n
			}
		}
	}
	return d
}

// original is where the event was on the usage topic, as far as the
// headers say.
func (d *deadLetter) original() string {
	at := "-"
	if d.OriginalPartition != nil && d.OriginalOffset != nil {
		at = strconv.Itoa(*d.OriginalPartition) + ":" + strconv.FormatInt(*d.OriginalOffset, 10)
	}
	if d.OriginalTopic != "" {
		return d.OriginalTopic + "/" + at
	}
	return at
}

// readDeadLetters reads the dead letters sel keeps, partition by partition
// and oldest first, up to each partition's end offset as read before
// reading it, and stops after limit of them (0: no limit).
func readDeadLetters(ctx context.Context, brokers []string, topic string, sel dlqSelector, limit int) ([]*deadLetter, error) {
	dialer := &kafka.Dialer{Timeout: 10 * time.Second}
	partitions, err := topicPartitions(ctx, dialer, brokers, topic)
	if err != nil {
		return nil, err
	}
	var out []*deadLetter
	for _, p := range partitions {
		last, narrowed := sel.lastWanted(p)
		if narrowed && last < 0 {
			continue
		}
		first, end, err := partitionBounds(ctx, dialer, brokers, topic, p)
		if err != nil {
			return nil, err
		}
		if narrowed {
			end = min(end, last+1)
		}
		if first >= end {
			continue
		}
		done, err := readPartition(ctx, dialer, brokers, topic, p, first, end, func(m kafka.Message) bool {
			if d := newDeadLetter(m); sel.keeps(d) {
				out = append(out, d)
			}
			return limit > 0 && len(out) >= limit
		})
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// topicPartitions lists a topic's partitions, asking each broker in turn
// until one answers.
func topicPartitions(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string) ([]int, error) {
	var errs []error
	for _, b := range brokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps, err := conn.ReadPartitions(topic)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		out := make([]int, 0, len(ps))
		for _, p := range ps {
			if p.Topic == topic {
				out = append(out, p.ID)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("topic %s: no such topic", topic)
		}
		sort.Ints(out)
		return out, nil
	}
	return nil, fmt.Errorf("cannot reach Kafka at %s: %w", strings.Join(brokers, ","), errors.Join(errs...))
}

// partitionBounds is a partition's first offset and its end offset (the
// offset the next message will get).
func partitionBounds(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, partition int) (first, end int64, err error) {
	var errs []error
	for _, b := range brokers {
		conn, err := dialer.DialLeader(ctx, "tcp", b, topic, partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, end, err = conn.ReadOffsets()
		conn.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("%s/%d: offsets: %w", topic, partition, err)
		}
		return first, end, nil
	}
	return 0, 0, fmt.Errorf("%s/%d: no leader reachable: %w", topic, partition, errors.Join(errs...))
}

// readPartition hands fn every message of partition in [first, end) until
// fn returns true (then done is true).
func readPartition(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, partition int, first, end int64, fn func(kafka.Message) bool) (done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, dlqReadTimeout)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, Dialer: dialer,
		MinBytes: 1, MaxBytes: 64 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return false, fmt.Errorf("%s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return false, fmt.Errorf("%s/%d: reading up to offset %d: %w", topic, partition, end, err)
		}
		if m.Offset >= end {
			return false, nil
		}
		if fn(m) {
			return true, nil
		}
		if m.Offset >= end-1 {
			return false, nil
		}
	}
}

func printDeadLetters(w io.Writer, letters []*deadLetter) error {
	if len(letters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DLQ\tORIGINAL\tERROR_CODE\tKEY\tSIZE\tTRUNCATED\tERROR")
	truncated := 0
	for _, d := range letters {
		t, size := "no", byteCount(int64(d.Size))
		if d.Truncated {
			t = "yes"
			truncated++
			if d.OriginalSize != nil {
				size += " of " + byteCount(int64(*d.OriginalSize))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.position(), d.original(), orDash(d.ErrorCode),
			orDash(d.Key), size, t, orDash(oneLine(d.Error)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letters, %d truncated\n", len(letters), truncated)
	return err
}

func printDeadLettersJSON(w io.Writer, letters []*deadLetter) error {
	enc := json.NewEncoder(w)
	for _, d := range letters {
		if err := enc.Encode(d); err != nil {
			return err
		}
	}
	return nil
}

// replayDeadLetters sends the dead letters sel keeps back to the usage
// topic; see the replay command's help.
func replayDeadLetters(ctx context.Context, w io.Writer, brokers []string, topics carrier.Topics, sel dlqSelector, dryRun bool) error {
	letters, err := readDeadLetters(ctx, brokers, topics.DeadLetter, sel, 0)
	if err != nil {
		return err
	}
	// Every position named must be there: a typo sends nothing.
	found := map[dlqPosition]bool{}
	for _, d := range letters {
		found[d.position()] = true
	}
	var missing []string
	for p := range sel.offsets {
		if !found[p] {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("no dead letter at %s on %s (or not with --code %q): nothing replayed",
			strings.Join(missing, ", "), topics.DeadLetter, sel.code)
	}

	verb := "replayed"
	if dryRun {
		verb = "would replay"
	}
	var msgs []kafka.Message
	var skipped []string
	for _, d := range letters {
		if d.Truncated {
			skipped = append(skipped, d.position().String())
			fmt.Fprintf(w, "skipped %s: a truncated copy (%s), not the event's bytes; it cannot be replayed\n", d.position(), byteCount(int64(d.Size)))
			continue
		}
		msgs = append(msgs, kafka.Message{Topic: topics.Usage, Key: d.key, Value: d.value,
			Headers: []kafka.Header{{Key: headerReplayedFrom, Value: []byte(d.position().String())}}})
	}
	if !dryRun && len(msgs) > 0 {
		kw := carrier.NewWriter(brokers)
		err := kw.WriteMessages(ctx, msgs...)
		if cerr := kw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("replaying %d dead letters to %s: %w (some may have been sent; replaying again is safe)", len(msgs), topics.Usage, err)
		}
	}
	for i, m := range msgs {
		fmt.Fprintf(w, "%s %s to %s (key %s, %s)\n", verb, m.Headers[0].Value, topics.Usage, orDash(string(m.Key)), byteCount(int64(len(msgs[i].Value))))
	}
	summary := fmt.Sprintf("%s %d dead letters to %s", verb, len(msgs), topics.Usage)
	if len(skipped) > 0 {
		summary += fmt.Sprintf("; skipped %d truncated (%s)", len(skipped), strings.Join(skipped, ", "))
	}
	_, err = fmt.Fprintln(w, summary)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps an error message on its table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
