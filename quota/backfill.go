package quota

import (
	"context"
	"fmt"
	"time"
)

// LedgerAppender stores ledger entries; storing one again stores nothing
// (PGLedger is one).
type LedgerAppender interface {
	Append(ctx context.Context, entries []SeafarerEntry) error
}

// backfillBatch bounds one Append.
const backfillBatch = 1000

// CopyLedger copies every ledger entry Redis still holds (the ledger
// horizon) to the system of record, seafarer by seafarer, in batches. It is
// what a deployment upgrading from a Redis-only ledger runs once (`wuyoud
// backfill-ledger`), and it is safe to repeat and to run while metering
// goes on: entries already stored are stored once. progress, when not nil,
// is told after each batch how many seafarers and entries are done.
func (s *RedisStore) CopyLedger(ctx context.Context, to LedgerAppender, progress func(seafarers, entries int)) (seafarers, entries int, err error) {
	now := s.now()
	from, until := now.Add(-s.opts.LedgerHorizon-8*24*time.Hour), now.Add(8*24*time.Hour)
	var batch []SeafarerEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := to.Append(ctx, batch); err != nil {
			return fmt.Errorf("quota: copy the ledger: %w", err)
		}
		entries += len(batch)
		batch = batch[:0]
		if progress != nil {
			progress(seafarers, entries)
		}
		return nil
	}
	cursor := ""
	for {
		ids, next, err := s.SeafarersWithQuota(ctx, cursor, 500)
		if err != nil {
			return seafarers, entries, err
		}
		for _, id := range ids {
			es, err := s.ledgerBetween(ctx, id, from, until)
			if err != nil {
				return seafarers, entries, err
			}
			for _, e := range es {
				batch = append(batch, SeafarerEntry{SeafarerID: id, Entry: e})
				if len(batch) == backfillBatch {
					if err := flush(); err != nil {
						return seafarers, entries, err
					}
				}
			}
			seafarers++
		}
		if next == "" {
			return seafarers, entries, flush()
		}
		cursor = next
	}
}
