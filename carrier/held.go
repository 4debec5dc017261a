package carrier

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// HeldStore keeps usage events for MSISDNs that nobody held at the call's
// time, in Redis (durable with AOF): one hash per MSISDN, identity ->
// original bytes, and one sorted set of MSISDNs by the earliest call time
// they hold, so events older than the dedupe window leave (ExpireHeld).
// Holding the same event twice keeps one copy.
type HeldStore struct {
	rdb        redis.UniversalClient
	prefix     string
	usageTopic string // what held events were read from
}

// NewHeldStore returns a store under prefix, of events read from
// topics.Usage.
func NewHeldStore(rdb redis.UniversalClient, prefix string, topics Topics) *HeldStore {
	return &HeldStore{rdb: rdb, prefix: prefix, usageTopic: topics.Usage}
}

func (h *HeldStore) key(msisdn string) string { return h.prefix + ":{m:" + msisdn + "}:held" }
func (h *HeldStore) indexKey() string         { return h.prefix + ":held:due" }

// heldPrefix starts a held event's value: where the event was read
// ("<partition>:<offset>"), a newline, then its original bytes, so a dead
// letter made of it later still names its place on the usage topic.
const heldPrefix = "\x00held:"

// Hold keeps one event made at callTime, read from m.
func (h *HeldStore) Hold(ctx context.Context, msisdn, identity string, callTime time.Time, m kafka.Message) error {
	// Two keys in different slots, written in order: an index entry
	// without events is dropped by ExpireHeld; events are indexed before
	// the batch that holds them is committed.
	v := heldPrefix + strconv.Itoa(m.Partition) + ":" + strconv.FormatInt(m.Offset, 10) + "\n" + string(m.Value)
	if err := h.rdb.HSet(ctx, h.key(msisdn), identity, v).Err(); err != nil {
		return err
	}
	return h.rdb.ZAddLT(ctx, h.indexKey(), redis.Z{Score: float64(callTime.Unix()), Member: msisdn}).Err()
}

// Held returns the events kept for msisdn, by identity, as read.
func (h *HeldStore) Held(ctx context.Context, msisdn string) (map[string]kafka.Message, error) {
	vals, err := h.rdb.HGetAll(ctx, h.key(msisdn)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]kafka.Message, len(vals))
	for identity, v := range vals {
		out[identity] = heldMessage(h.usageTopic, msisdn, v)
	}
	return out, nil
}

// Release forgets events once they are applied (or sent elsewhere).
func (h *HeldStore) Release(ctx context.Context, msisdn string, identities ...string) error {
	if len(identities) == 0 {
		return nil
	}
	return h.rdb.HDel(ctx, h.key(msisdn), identities...).Err()
}

// heldMessage is the message a held value was read from.
func heldMessage(topic, msisdn, v string) kafka.Message {
	m := kafka.Message{Topic: topic, Key: []byte(msisdn), Value: []byte(v), Partition: -1, Offset: -1}
	rest, ok := strings.CutPrefix(v, heldPrefix)
	if !ok {
		return m // held before places were kept
	}
	place, raw, ok := strings.Cut(rest, "\n")
	if !ok {
		return m
	}
	p, o, _ := strings.Cut(place, ":")
	m.Value = []byte(raw)
	m.Partition, _ = strconv.Atoi(p)
	m.Offset, _ = strconv.ParseInt(o, 10, 64)
	return m
}

// Due lists up to n MSISDNs holding an event made before cutoff.
func (h *HeldStore) Due(ctx context.Context, cutoff time.Time, n int64) ([]string, error) {
	return h.rdb.ZRangeByScore(ctx, h.indexKey(), &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(cutoff.Unix(), 10), Count: n}).Result()
}

// Reindex sets msisdn's place in the index to its earliest held call, or
// takes it out when nothing is kept.
func (h *HeldStore) Reindex(ctx context.Context, msisdn string, earliest time.Time, kept bool) error {
	if !kept {
		return h.rdb.ZRem(ctx, h.indexKey(), msisdn).Err()
	}
	return h.rdb.ZAdd(ctx, h.indexKey(), redis.Z{Score: float64(earliest.Unix()), Member: msisdn}).Err()
}

// ApplyHeld applies the events held for msisdn, each to the seafarer who
// held the number at its call time (by the number's history: the first
// holder for calls before anyone held it), by their own call time (usually
// as overage: grants active then may be few). It is called when an MSISDN
// is enrolled, with the seafarer it now belongs to, and is safe to repeat:
// debits are deduplicated, and an event is released only after its effects
// are published. Calls made while nobody held the number (between two
// holders) stay held until they expire. Events made more than the dedupe
// window before now go to the late topic instead: an enrolment receives
// only the calls its dedupe window can still protect.
func (c *Consumer) ApplyHeld(ctx context.Context, msisdn, seafarerID string) error {
	events, err := c.cfg.Held.Held(ctx, msisdn)
	if err != nil || len(events) == 0 {
		return err
	}
	now := c.cfg.Now()
	var (
		out        []output
		usages     []quota.Usage
		from       []kafka.Message
		released   []string
		pending    []string
		pendingEvs []*UsageEvent
		pendingMs  []kafka.Message
		earliest   time.Time
		kept       bool
	)
	for identity, m := range events {
		ev, err := DecodeUsageEvent(m.Value)
		if err != nil { // cannot happen for what Hold kept, but never lose it silently
			out = append(out, output{msg: c.deadLetter(m, err)})
			released = append(released, identity)
			continue
		}
		if quota.Late(ev.Time, now, c.cfg.DedupeWindow) {
			out = append(out, output{msg: c.lateMessage(m, "held for an unregistered MSISDN beyond the dedupe window; never applied automatically"), source: &m})
			released = append(released, identity)
			continue
		}
		pending, pendingEvs, pendingMs = append(pending, identity), append(pendingEvs, ev), append(pendingMs, m)
	}
	if len(pending) > 0 {
		calls := make([]crew.MSISDNAt, len(pendingEvs))
		for i, ev := range pendingEvs {
			calls[i] = crew.MSISDNAt{MSISDN: msisdn, At: ev.Time}
		}
		owners, err := c.cfg.Resolver.SeafarerIDsAt(ctx, calls)
		if err != nil {
			return fmt.Errorf("resolve held events: %w", err)
		}
		for i, ev := range pendingEvs {
			if owners[i] == "" {
				if !kept || ev.Time.Before(earliest) {
					earliest = ev.Time
				}
				kept = true
				continue
			}
			released = append(released, pending[i])
			u, err := c.rate(owners[i], ev)
			if err != nil {
				out = append(out, output{msg: c.deadLetter(pendingMs[i], err)})
				continue
			}
			usages = append(usages, u)
			from = append(from, pendingMs[i])
		}
	}
	applied, err := c.apply(ctx, usages, from)
	if err != nil {
		return err
	}
	if err := c.record(ctx, applied); err != nil {
		return err
	}
	if err := c.publish(ctx, append(out, c.effects(applied)...)); err != nil {
		return fmt.Errorf("publish held events' effects: %w", err)
	}
	c.forget(ctx, applied)
	c.countSettled(applied)
	if err := c.cfg.Held.Release(ctx, msisdn, released...); err != nil {
		return err
	}
	return c.cfg.Held.Reindex(ctx, msisdn, earliest, kept)
}

// ExpireHeld sends the held events made more than the dedupe window ago to
// the late topic, counting them, and forgets them: a number nobody enrols
// does not keep its calls for ever. It returns how many left. Running it on
// several replicas at once may publish an event twice, never lose one.
func (c *Consumer) ExpireHeld(ctx context.Context) (int, error) {
	cutoff := quota.DedupeCutoff(c.cfg.Now(), c.cfg.DedupeWindow)
	total := 0
	for {
		msisdns, err := c.cfg.Held.Due(ctx, cutoff, 100)
		if err != nil || len(msisdns) == 0 {
			return total, err
		}
		for _, msisdn := range msisdns {
			n, err := c.expireHeldOf(ctx, msisdn, cutoff)
			if err != nil {
				return total, err
			}
			total += n
		}
	}
}

func (c *Consumer) expireHeldOf(ctx context.Context, msisdn string, cutoff time.Time) (int, error) {
	events, err := c.cfg.Held.Held(ctx, msisdn)
	if err != nil {
		return 0, err
	}
	var (
		out      []output
		gone     []string
		earliest time.Time
		kept     bool
	)
	for identity, m := range events {
		ev, err := DecodeUsageEvent(m.Value)
		switch {
		case err != nil:
			out = append(out, output{msg: c.deadLetter(m, err)})
		case ev.Time.Before(cutoff):
			out = append(out, output{msg: c.lateMessage(m, "held for an unregistered MSISDN for the whole dedupe window; never applied automatically"), source: &m})
		default:
			if !kept || ev.Time.Before(earliest) {
				earliest = ev.Time
			}
			kept = true
			continue
		}
		gone = append(gone, identity)
	}
	if err := c.publish(ctx, out); err != nil {
		return 0, err
	}
	if err := c.cfg.Held.Release(ctx, msisdn, gone...); err != nil {
		return 0, err
	}
	c.cfg.Metrics.HeldExpired.Add(float64(len(gone)))
	return len(gone), c.cfg.Held.Reindex(ctx, msisdn, earliest, kept)
}

// RunHeldExpiry calls ExpireHeld every interval until ctx is done.
func (c *Consumer) RunHeldExpiry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := c.ExpireHeld(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Log.Warn("held events not expired yet; will retry", "err", err)
		} else if n > 0 {
			c.cfg.Log.Info("held events older than the dedupe window sent to the late topic", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
