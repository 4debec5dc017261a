package quota

import (
	"context"
	"time"
)

// Settle applies a batch of rated calls and everything that follows from
// them in quota, in quota's own order: the debits (DebitBatch), then the
// statement indexes of every debit applied or repeated (IndexStatements),
// then the programmes' usage counters (SyncProgrammeUsage). Every step is
// idempotent, and the follow-ups are done for repeats too, so settling a
// batch again after a crash anywhere in between completes what the first
// attempt cut short and changes nothing twice.
//
// Results are in the order of us, as DebitBatch gives them. An error means
// an outage (Redis out of reach or refusing service): settle the batch again.
func (s *RedisStore) Settle(ctx context.Context, us []Usage) ([]*DebitResult, error) {
	if len(us) == 0 {
		return nil, nil
	}
	if err := s.checkHot(ctx); err != nil {
		return nil, err
	}
	results, err := s.DebitBatch(ctx, us)
	if err != nil {
		return nil, err
	}
	debits := make([]StatementDebit, 0, len(results))
	used := map[SeafarerProgramme]bool{}
	for _, r := range results {
		if r.Entry == nil {
			continue
		}
		debits = append(debits, StatementDebit{SeafarerID: r.SeafarerID, Entry: r.Entry})
		for _, d := range r.Entry.Draws {
			if d.ProgrammeID != "" {
				used[SeafarerProgramme{SeafarerID: r.SeafarerID, ProgrammeID: d.ProgrammeID}] = true
			}
		}
	}
	if err := s.IndexStatements(ctx, debits); err != nil {
		return nil, err
	}
	pairs := make([]SeafarerProgramme, 0, len(used))
	for sp := range used {
		pairs = append(pairs, sp)
	}
	if err := s.SyncProgrammeUsage(ctx, pairs); err != nil {
		return nil, err
	}
	return results, nil
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
