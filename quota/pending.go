package quota

// Pending records: the ledger record of each change Redis applied, kept in
// the seafarer's hash "T:r" until the entry is recorded in the system of
// record (Recorded). A change applied in Redis whose entry was not yet
// stored when the process died is applied again on redelivery as a
// duplicate; the pending record is what lets that duplicate carry the
// first application's entry, so it is stored and published after all. At
// steady state the hash is empty: records live only between a debit and
// the end of its batch.
//
// Fields: a debit's identity (DebitEntryID without "d_") and "v:<grant
// id>" for a void. A grant needs none: the grant itself says all its entry
// does (AddGrant rebuilds the entry on a repeat). A debit's record is
// decoded against the week bucket of its call time (known from the usage or
// the seen set); a void's is kept as "<bucket> <record>".

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func pendingVoidField(grantID string) string { return "v:" + grantID }

// pendingTTL bounds how long a record nobody recorded is kept: past the
// dedupe window, its event can no longer be redelivered as a duplicate.
func (s *RedisStore) pendingTTL() int64 {
	return int64((s.opts.DedupeWindow + 24*time.Hour) / time.Second)
}

// pendingRecord is a void's record with the bucket it is relative to.
func pendingRecord(at time.Time, rec string) string {
	return strconv.FormatInt(ledgerBucket(at), 10) + " " + rec
}

func decodePending(v string) (*LedgerEntry, error) {
	b, rec, ok := strings.Cut(v, " ")
	bucket, err := strconv.ParseInt(b, 10, 64)
	if !ok || err != nil {
		return nil, fmt.Errorf("quota: malformed pending record %q", v)
	}
	return decodeRecord(bucket, rec)
}

// pendingField is the field of an entry's pending record.
func pendingField(e *LedgerEntry) string {
	if e.Kind == KindVoid {
		return pendingVoidField(e.GrantID)
	}
	if e.Kind == KindAdjust {
		return strings.TrimPrefix(e.ID, "a_")
	}
	return strings.TrimPrefix(e.ID, "d_")
}

// Recorded forgets the pending records of entries now stored in the system
// of record (and published), in one round trip. Forgetting one that was
// already forgotten changes nothing.
func (s *RedisStore) Recorded(ctx context.Context, entries []SeafarerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	fields := map[string][]string{}
	for _, e := range entries {
		k := s.keys(e.SeafarerID).pending
		fields[k] = append(fields[k], pendingField(e.Entry))
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, fs := range fields {
			p.HDel(ctx, k, fs...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: forget recorded entries: %w", err)
	}
	return nil
}
