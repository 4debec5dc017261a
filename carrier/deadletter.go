package carrier

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
)

// Dead letters keep the original bytes of an event that cannot be applied,
// with why in headers: error, error_code, and where it came from
// (original_topic, original_partition, original_offset). A copy that would
// be too large for the broker is cut to fit: its value is the original's
// first bytes, and headers say so (truncated, original_size); the original
// stays readable at its offset for as long as the usage topic keeps it.
//
// Cutting happens in two places: up front, where a copy is larger than
// MaxDeadLetterBytes (so a message just under the broker's limit, whose copy
// plus headers would be over it, never reaches the broker), and after the
// broker refused a copy anyway (a broker whose limit is lower than ours):
// then it is cut to minDeadLetterBytes, and at last to headers alone.

// MaxDeadLetterBytes bounds the value of a dead letter; the headers add at
// most about 2 KiB. Kafka's default message.max.bytes is 1 MiB.
const MaxDeadLetterBytes = 512 << 10

// minDeadLetterBytes is what a copy is cut to when the broker refused it.
const minDeadLetterBytes = 16 << 10

// maxErrorHeader bounds the error header: a decoder's message may quote
// the input.
const maxErrorHeader = 1024

// deadLetter is the dead letter of m, which failed with err.
func (c *Consumer) deadLetter(m kafka.Message, err error) kafka.Message {
	code := "invalid"
	var we *wuyou.Error
	if errors.As(err, &we) && we.Reason != "" {
		code = we.Reason
	}
	msg := wuyou.ErrorMessage(err)
	if we != nil && len(we.Fields) > 1 { // every field, not "(and N more)"
		parts := make([]string, len(we.Fields))
		for i, f := range we.Fields {
			parts[i] = f.Field + ": " + f.Message
		}
		msg = strings.Join(parts, "; ")
	}
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	topic := m.Topic
	if topic == "" {
		topic = c.cfg.Topics.Usage
	}
	dl := kafka.Message{Topic: c.cfg.Topics.DeadLetter, Key: m.Key, Value: m.Value, Headers: []kafka.Header{
		{Key: "error", Value: []byte(msg)},
		{Key: "error_code", Value: []byte(code)},
		{Key: "original_topic", Value: []byte(topic)},
		{Key: "original_partition", Value: []byte(strconv.Itoa(m.Partition))},
		{Key: "original_offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
	}}
	return cutDeadLetter(dl, MaxDeadLetterBytes)
}

// maxKeyBytes bounds the key of a copy Wuyou publishes of a carrier's
// message (dead and late letters): the carrier sets it to an MSISDN.
const maxKeyBytes = 256

// cutKey is key cut to maxKeyBytes.
func cutKey(key []byte) []byte {
	if len(key) > maxKeyBytes {
		return key[:maxKeyBytes]
	}
	return key
}

// cutDeadLetter cuts a dead letter's value to at most limit bytes (and its
// key to maxKeyBytes), saying so in headers.
func cutDeadLetter(m kafka.Message, limit int) kafka.Message {
	m.Key = cutKey(m.Key)
	if len(m.Value) <= limit {
		return m
	}
	for _, h := range m.Headers {
		if h.Key == "truncated" { // cut before: original_size is already there
			m.Value = m.Value[:limit]
			return m
		}
	}
	m.Headers = append(m.Headers[:len(m.Headers):len(m.Headers)],
		kafka.Header{Key: "truncated", Value: []byte("true")},
		kafka.Header{Key: "original_size", Value: []byte(strconv.Itoa(len(m.Value)))})
	m.Value = m.Value[:limit]
	return m
}

// publish writes a batch's outputs and waits for all of them to be
// acknowledged. A message the broker refuses for what it is (too large,
// invalid: an error that is not temporary), written alone, is replaced:
// a dead letter by a shorter copy, any other output by the dead letter of
// the event it comes from. An error is returned only while the broker
// cannot be reached or keeps failing temporarily.
func (c *Consumer) publish(ctx context.Context, outs []output) error {
	for range 4 { // each round replaces refused messages by smaller ones
		if len(outs) == 0 {
			return nil
		}
		msgs := make([]kafka.Message, 0, len(outs))
		kept := outs[:0:0]
		for _, o := range outs {
			if o.msg.Topic == "" {
				continue // dropped by replacement
			}
			msgs = append(msgs, o.msg)
			kept = append(kept, o)
		}
		outs = kept
		if len(outs) == 0 {
			return nil
		}
		err := c.cfg.Publisher.Write(ctx, msgs...)
		if err == nil {
			c.countPublished(msgs...)
			return nil
		}
		failed, ok := refused(err, len(msgs))
		if !ok {
			return err
		}
		if _, tooLarge := errors.AsType[kafka.MessageTooLargeError](err); !tooLarge {
			// The others of this write were written.
			isFailed := make(map[int]bool, len(failed))
			for _, i := range failed {
				isFailed[i] = true
			}
			for i, m := range msgs {
				if !isFailed[i] {
					c.countPublished(m)
				}
			}
		}
		// Some were refused for what they are; the batch may have failed
		// as a whole for them. Write the failed ones one by one to find
		// which.
		var next []output
		for _, i := range failed {
			o := outs[i]
			err := c.cfg.Publisher.Write(ctx, o.msg)
			if err == nil {
				c.countPublished(o.msg)
				continue
			}
			if _, ok := refused(err, 1); !ok {
				return err
			}
			c.cfg.Log.Error("the broker refused an output; replacing it", "topic", o.msg.Topic, "bytes", len(o.msg.Value), "err", err)
			next = append(next, c.replacement(o, err))
		}
		outs = next
	}
	return fmt.Errorf("carrier: outputs refused by the broker even cut to headers")
}

// countPublished counts the dead and late letters among msgs, which the
// broker has acknowledged: counted when published, so a stage retried
// after an outage counts nothing twice.
func (c *Consumer) countPublished(msgs ...kafka.Message) {
	for _, m := range msgs {
		switch m.Topic {
		case c.cfg.Topics.DeadLetter:
			for _, h := range m.Headers {
				if h.Key == "error_code" {
					c.cfg.Metrics.DeadLettered.WithLabelValues(string(h.Value)).Inc()
				}
			}
		case c.cfg.Topics.Late:
			c.cfg.Metrics.Late.Inc()
		}
	}
}

// replacement is what is published instead of a refused output.
func (c *Consumer) replacement(o output, err error) output {
	if o.msg.Topic == c.cfg.Topics.DeadLetter {
		limit := minDeadLetterBytes
		if len(o.msg.Value) <= limit {
			limit = 0
		}
		return output{msg: cutDeadLetter(o.msg, limit)}
	}
	if o.source == nil {
		// Nothing to dead-letter it as: every output that carries an
		// event's bytes has a source, and the others (ledger entries and
		// notifications of events applied earlier) are a few hundred bytes.
		c.cfg.Log.Error("an output without a source was refused by the broker and is dropped", "topic", o.msg.Topic)
		return output{}
	}
	return output{msg: c.deadLetter(*o.source, &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "output_failed",
		Message: fmt.Sprintf("the broker refused this event's %s message: %v", o.msg.Topic, err)})}
}

// refused reports whether err says the broker refused some of n messages
// for what they are, and which (indexes); false when any failure is
// temporary or the cause is not the messages (the broker is unreachable).
func refused(err error, n int) ([]int, bool) {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		// The writer checks sizes before sending anything; which message
		// it was is found by writing them one at a time.
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, true
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		var failed []int
		for i, e := range werrs {
			if e == nil {
				continue
			}
			if !permanent(e) {
				return nil, false
			}
			failed = append(failed, i)
		}
		return failed, len(failed) > 0
	}
	if permanent(err) {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, true
	}
	return nil, false
}

// permanent reports whether the broker refused a message for what it is.
func permanent(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize,
			kafka.InvalidRecord, kafka.RecordListTooLarge, kafka.InvalidTimestamp:
			return true
		}
		return false
	}
	var tooLarge kafka.MessageTooLargeError
	return errors.As(err, &tooLarge)
}
