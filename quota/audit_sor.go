package quota

import (
	"context"
	"time"
)

// AuditMissingInSystemOfRecord: an entry Redis holds is not in the system
// of record (PostgreSQL). An entry of a batch still in flight shows here for
// a moment; one that stays is a lost write.
const AuditMissingInSystemOfRecord = "missing_in_system_of_record"

// AuditMissingInHotState: an entry the system of record holds, made within
// the ledger horizon, is not in Redis: Redis lost writes it had
// acknowledged (a power loss under appendfsync everysec, a failover), and
// its balances no longer include that change.
const AuditMissingInHotState = "missing_in_hot_state"

// LedgerLister reads a seafarer's ledger a page at a time (PGLedger is one).
type LedgerLister interface {
	Ledger(ctx context.Context, seafarerID string, f LedgerFilter) ([]*LedgerEntry, string, error)
}

// AuditSystemOfRecord adds to r a difference for every entry of the
// seafarer that Redis holds and sor does not (the ledger in PostgreSQL must
// hold everything the Redis copy does), and for every entry sor holds from
// within the ledger horizon that Redis does not (Redis lost it).
func (s *RedisStore) AuditSystemOfRecord(ctx context.Context, r *AuditReport, sor LedgerLister) error {
	now := s.now()
	from, to := now.Add(-s.opts.LedgerHorizon-8*24*time.Hour), now.Add(8*24*time.Hour)
	held, err := s.ledgerBetween(ctx, r.SeafarerID, from, to)
	if err != nil {
		return err
	}
	inRedis := make(map[string]bool, len(held))
	for _, e := range held {
		inRedis[e.ID] = true
	}
	kept := now.Add(-s.opts.LedgerHorizon) // entries from here on are certain to be in Redis
	stored := make(map[string]bool, len(held))
	f := LedgerFilter{From: from, To: to, Limit: 500}
	for {
		page, next, err := sor.Ledger(ctx, r.SeafarerID, f)
		if err != nil {
			return err
		}
		for _, e := range page {
			stored[e.ID] = true
			if !inRedis[e.ID] && !ledgerTime(e).Before(kept) {
				r.Differences = append(r.Differences, AuditDifference{Kind: AuditMissingInHotState, GrantID: e.GrantID,
					Identity: e.ID, Expected: 1, Actual: 0, Detail: "entry " + e.ID + " (" + e.Kind + ") is in PostgreSQL, not in Redis: Redis lost it"})
				r.OK = false
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	for _, e := range held {
		if !stored[e.ID] {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditMissingInSystemOfRecord, GrantID: e.GrantID,
				Identity: e.ID, Expected: 1, Actual: 0, Detail: "entry " + e.ID + " (" + e.Kind + ") is in Redis, not in PostgreSQL"})
			r.OK = false
		}
	}
	return nil
}
