package carrier

// Held events: calls from an MSISDN nobody held at the call's time, kept
// (HeldEvents, PGHeld in PostgreSQL) until the number is enrolled
// (ApplyHeld) or the dedupe window has passed (ExpireHeld).

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

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
				continue // made while nobody held the number: stays held
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
	if err := c.publish(ctx, append(out, c.effects(applied, c.langs(ctx, applied))...)); err != nil {
		return fmt.Errorf("publish held events' effects: %w", err)
	}
	c.forget(ctx, applied)
	c.countSettled(applied)
	return c.cfg.Held.Release(ctx, msisdn, released...)
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
		out  []output
		gone []string
	)
	for identity, m := range events {
		ev, err := DecodeUsageEvent(m.Value)
		switch {
		case err != nil:
			out = append(out, output{msg: c.deadLetter(m, err)})
		case ev.Time.Before(cutoff):
			out = append(out, output{msg: c.lateMessage(m, "held for an unregistered MSISDN for the whole dedupe window; never applied automatically"), source: &m})
		default:
			continue // still inside the window: stays held
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
	return len(gone), nil
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
