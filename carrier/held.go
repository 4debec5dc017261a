package carrier

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// HeldStore keeps usage events for MSISDNs that are not registered yet, in
// Redis (durable with AOF), one hash per MSISDN: identity -> original bytes.
// Holding the same event twice keeps one copy.
type HeldStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewHeldStore returns a store under prefix.
func NewHeldStore(rdb redis.UniversalClient, prefix string) *HeldStore {
	return &HeldStore{rdb: rdb, prefix: prefix}
}

func (h *HeldStore) key(msisdn string) string { return h.prefix + ":{m:" + msisdn + "}:held" }

// Hold keeps one event.
func (h *HeldStore) Hold(ctx context.Context, msisdn, identity string, raw []byte) error {
	return h.rdb.HSet(ctx, h.key(msisdn), identity, raw).Err()
}

// Held returns the events kept for msisdn, by identity.
func (h *HeldStore) Held(ctx context.Context, msisdn string) (map[string]string, error) {
	return h.rdb.HGetAll(ctx, h.key(msisdn)).Result()
}

// Release forgets events once they are applied (or sent elsewhere).
func (h *HeldStore) Release(ctx context.Context, msisdn string, identities ...string) error {
	if len(identities) == 0 {
		return nil
	}
	return h.rdb.HDel(ctx, h.key(msisdn), identities...).Err()
}

// ApplyHeld applies the events held for msisdn to seafarerID, by their own
// call time (usually as overage: grants active then may be few). It is called
// when an MSISDN is enrolled and is safe to repeat: debits are deduplicated,
// and an event is released only after its effects are published.
func (c *Consumer) ApplyHeld(ctx context.Context, msisdn, seafarerID string) error {
	events, err := c.cfg.Held.Held(ctx, msisdn)
	if err != nil || len(events) == 0 {
		return err
	}
	now := c.cfg.Now()
	var (
		out        []kafka.Message
		usages     []quota.Usage
		identities []string
	)
	for identity, raw := range events {
		identities = append(identities, identity)
		ev, err := DecodeUsageEvent([]byte(raw))
		if err != nil { // cannot happen for what Hold kept, but never lose it silently
			out = append(out, c.deadLetter(kafka.Message{Key: []byte(msisdn), Value: []byte(raw)}, err))
			continue
		}
		if ev.Time.Before(now.Add(-c.cfg.DedupeWindow)) {
			out = append(out, kafka.Message{Topic: c.cfg.Topics.Late, Key: []byte(msisdn), Value: []byte(raw), Headers: []kafka.Header{
				{Key: "error", Value: []byte("held until enrolment beyond the dedupe window; never applied automatically")},
				{Key: "error_code", Value: []byte("late")},
			}})
			continue
		}
		usages = append(usages, c.Usage(seafarerID, ev))
	}
	if len(usages) > 0 {
		results, err := c.cfg.Meter.DebitBatch(ctx, usages)
		if err != nil {
			return err
		}
		msgs, err := c.effects(ctx, usages, results)
		if err != nil {
			return err
		}
		out = append(out, msgs...)
	}
	if err := c.cfg.Publisher.Write(ctx, out...); err != nil {
		return fmt.Errorf("publish held events' effects: %w", err)
	}
	return c.cfg.Held.Release(ctx, msisdn, identities...)
}

// errNotRegistered reports whether err means the MSISDN has no seafarer.
func errNotRegistered(err error) bool { return wuyou.ErrorCode(err) == wuyou.ENOTFOUND }
