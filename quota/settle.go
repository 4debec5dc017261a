package quota

import (
	"context"
	"time"
)

// Settle applies a batch of rated calls: the debits (DebitBatch), once the
// store has checked that Redis holds the hot state (a guarded store). The
// figures that follow from the debits (statements, reconciliation,
// programme usage) are SQL over the ledger the caller records, so there is
// nothing else to do here.
//
// Results are in the order of us, as DebitBatch gives them. An error means
// an outage (Redis out of reach, refusing service or without its hot
// state): settle the batch again.
func (s *RedisStore) Settle(ctx context.Context, us []Usage) ([]*DebitResult, error) {
	if len(us) == 0 {
		return nil, nil
	}
	if err := s.checkHot(ctx); err != nil {
		return nil, err
	}
	return s.DebitBatch(ctx, us)
}

// SettleClaimed is Settle's second half, for a batch whose identities Claim
// has claimed: the debits, once the store has checked that Redis holds the
// hot state. Settling a batch again (after an outage, or with its
// identities claimed again) repeats nothing.
func (s *RedisStore) SettleClaimed(ctx context.Context, b *ClaimedBatch) ([]*DebitResult, error) {
	if b == nil || len(b.us) == 0 {
		return nil, nil
	}
	if err := s.checkHot(ctx); err != nil {
		return nil, err
	}
	return s.debitClaimed(ctx, b)
}

// DedupeCutoff is the earliest call time whose identity is still
// remembered at now: a call made before it is late (see Late).
func DedupeCutoff(now time.Time, window time.Duration) time.Time { return now.Add(-window) }

// Late reports whether a call made at callTime is too old to be applied at
// now: its identity may already be forgotten (the dedupe window, counted by
// call time), so a repeat of it could no longer be recognised. Late calls
// are never applied automatically.
func Late(callTime, now time.Time, window time.Duration) bool {
	return callTime.Before(DedupeCutoff(now, window))
}
