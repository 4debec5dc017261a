package quota

// The ledger audit checks the rule the package exists for (quota.go): every
// balance is explained by the ledger. The system of record (PostgreSQL)
// holds every grant issued and every ledger entry; Redis holds the hot
// state metering changes. The audit compares the two, seafarer by
// seafarer: for each grant,
//
//	granted (grants) − Σ drawn (the draws of its debit and adjust entries) = remaining in Redis (0 once voided)
//
// (an adjust's draws are signed: a negative one gives seconds back), and
// the identities Redis remembers (T:seen) are exactly those of the debit
// and adjust entries inside the dedupe window, so a repeat of any recorded
// event is recognised and no remembered event lacks its entry. It reads;
// it never repairs (RebuildHotState does).
//
// What is in flight is not a difference: a debit applied in Redis whose
// entry is not recorded yet has its record pending (pending.go); its draws
// and identity are counted as recorded. A batch that moves between the two
// reads can still make a seafarer look different for a moment, so a
// seafarer found different is read again and reported only when the
// difference is still there.

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

// Kinds of audit difference.
const (
	// AuditRemaining: a grant's remaining amount is not what its ledger
	// entries leave of it.
	AuditRemaining = "remaining"
	// AuditGranted: a grant's granted amount (or its voided mark) is not
	// the system of record's.
	AuditGranted = "granted"
	// AuditGrantMissing: a grant of the system of record is not in Redis.
	AuditGrantMissing = "grant_missing_in_hot_state"
	// AuditUnknownGrant: Redis holds a grant the system of record never issued.
	AuditUnknownGrant = "unknown_grant"
	// AuditDebitMissing: Redis remembers an identity whose debit entry is
	// neither recorded nor pending: a lost write to the system of record.
	AuditDebitMissing = "missing_in_system_of_record"
	// AuditMissingInHotState: a recorded debit inside the dedupe window is
	// not remembered in Redis: Redis lost writes it had acknowledged (a
	// power loss under appendfsync everysec, a failover), and a repeat of
	// the event would be charged again.
	AuditMissingInHotState = "missing_in_hot_state"
	// AuditMalformedRecord: a grant or pending record in Redis cannot be read.
	AuditMalformedRecord = "malformed_record"
)

// AuditDifference is one way a seafarer's hot state disagrees with the
// system of record. Expected is what the system of record says, Actual
// what Redis holds.
type AuditDifference struct {
	Kind     string `json:"kind"`
	GrantID  string `json:"grant_id,omitempty"`
	Identity string `json:"identity,omitempty"` // a debit's identity (its entry id without "d_")
	Expected int64  `json:"expected"`
	Actual   int64  `json:"actual"`
	Detail   string `json:"detail"`
}

// AuditReport is the outcome of auditing one seafarer.
type AuditReport struct {
	SeafarerID  string            `json:"seafarer_id"`
	OK          bool              `json:"ok"`
	Differences []AuditDifference `json:"differences"`
	// Checked counts the grants and remembered identities that were verified.
	GrantsChecked     int `json:"grants_checked"`
	IdentitiesChecked int `json:"identities_checked"`
	// Unverifiable is kept for the report's shape: with every entry in the
	// system of record, nothing is beyond checking, so it is always empty.
	Unverifiable           []string `json:"unverifiable_grants"`
	UnverifiableIdentities int      `json:"unverifiable_identities"`
}

// Auditor audits the hot state against the system of record.
type Auditor struct {
	Pool  *pgxpool.Pool
	Store *RedisStore
}

// maxAuditPage bounds one page.
const maxAuditPage = 500

// AuditPage audits up to limit seafarers in id order after cursor (a
// seafarer id; "" from the start): those with a grant not expired before
// the dedupe window or a debit or adjust inside it. It returns the cursor of the
// next page, "" at the end.
func (a *Auditor) AuditPage(ctx context.Context, cursor string, limit int) ([]*AuditReport, string, error) {
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	if len(cursor) > 200 {
		return nil, "", wuyou.Errorf(wuyou.EINVALID, "malformed cursor")
	}
	now := a.Store.now()
	cutoff := DedupeCutoff(now, a.Store.opts.DedupeWindow)
	rows, err := a.Pool.Query(ctx, `
SELECT seafarer_id FROM (
    SELECT seafarer_id FROM grants WHERE expires_at > $1 AND seafarer_id > $3
    UNION
    SELECT seafarer_id FROM ledger_entries WHERE kind IN ('debit', 'adjust') AND filed_at >= $2 AND seafarer_id > $3
) s ORDER BY 1 LIMIT $4`, cutoff, cutoff.Truncate(1e9), cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("quota: audit: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, "", fmt.Errorf("quota: audit: %w", err)
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	reports, err := a.audit(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	// A batch in flight between the two reads can make a seafarer look
	// different; read those again and keep what is still different.
	var again []string
	for _, r := range reports {
		if !r.OK {
			again = append(again, r.SeafarerID)
		}
	}
	if len(again) > 0 {
		second, err := a.audit(ctx, again)
		if err != nil {
			return nil, "", err
		}
		byID := map[string]*AuditReport{}
		for _, r := range second {
			byID[r.SeafarerID] = r
		}
		for i, r := range reports {
			if !r.OK {
				reports[i] = byID[r.SeafarerID]
			}
		}
	}
	return reports, next, nil
}

// Audit audits one seafarer.
func (a *Auditor) Audit(ctx context.Context, seafarerID string) (*AuditReport, error) {
	rs, err := a.audit(ctx, []string{seafarerID})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// audit compares the system of record with Redis for a list of seafarers:
// PostgreSQL first, then Redis, so a change made in between is in Redis
// (applied, its record pending or already recorded) rather than missing
// from it.
func (a *Auditor) audit(ctx context.Context, ids []string) ([]*AuditReport, error) {
	s := a.Store
	now := s.now()
	tx, err := a.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("quota: audit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	want, err := readHot(ctx, tx, ids, now, DedupeCutoff(now, s.opts.DedupeWindow))
	if err != nil {
		return nil, err
	}
	type held struct {
		grants  *redis.MapStringStringCmd
		seen    *redis.ZSliceCmd
		pending *redis.MapStringStringCmd
	}
	got := make([]held, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			k := s.keys(id)
			got[i] = held{p.HGetAll(ctx, k.grants), p.ZRangeWithScores(ctx, k.seen, 0, -1), p.HGetAll(ctx, k.pending)}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: audit: read Redis: %w", err)
	}
	out := make([]*AuditReport, len(ids))
	for i, w := range want {
		out[i] = compareHot(w, got[i].grants.Val(), got[i].seen.Val(), got[i].pending.Val())
	}
	return out, nil
}

// compareHot compares what the system of record implies for one seafarer
// with what Redis holds.
func compareHot(want *hotSeafarer, grants map[string]string, seen []redis.Z, pending map[string]string) *AuditReport {
	r := &AuditReport{SeafarerID: want.id, Differences: []AuditDifference{}, Unverifiable: []string{}}
	diff := func(d AuditDifference) { r.Differences = append(r.Differences, d) }

	recorded := make(map[string]bool, len(want.seen))
	for _, d := range want.seen {
		recorded[d.identity] = true
	}
	// Debits applied in Redis but not recorded yet count as recorded (a
	// record stays pending a moment after it is stored, until the batch is
	// published).
	inFlight := map[string]bool{}
	drawn := map[string]int64{}
	for field, v := range pending {
		if len(field) > 2 && field[1] == ':' || recorded[field] { // a grant's or void's record, or stored
			continue
		}
		inFlight[field] = true
		var bucket int64
		for _, z := range seen {
			if z.Member == field {
				bucket = ledgerBucket(unixTime(int64(z.Score)))
			}
		}
		e, err := decodeRecord(bucket, v)
		if err != nil {
			diff(AuditDifference{Kind: AuditMalformedRecord, Identity: field, Detail: err.Error()})
			continue
		}
		for _, d := range e.Draws {
			drawn[d.GrantID] += d.Seconds
		}
	}

	for _, g := range want.grants {
		r.GrantsChecked++
		v, ok := grants[g.ID]
		if !ok {
			diff(AuditDifference{Kind: AuditGrantMissing, GrantID: g.ID, Expected: g.RemainingSeconds,
				Detail: "the system of record issued this grant; Redis does not hold it"})
			continue
		}
		h, err := parseGrant(g.ID, v)
		if err != nil {
			diff(AuditDifference{Kind: AuditMalformedRecord, GrantID: g.ID, Detail: err.Error()})
			continue
		}
		if h.GrantedSeconds != g.GrantedSeconds || h.Voided != g.Voided {
			diff(AuditDifference{Kind: AuditGranted, GrantID: g.ID, Expected: g.GrantedSeconds, Actual: h.GrantedSeconds,
				Detail: fmt.Sprintf("granted or voided differs (voided: recorded %t, Redis %t)", g.Voided, h.Voided)})
		}
		if h.Unit != g.Unit {
			diff(AuditDifference{Kind: AuditGranted, GrantID: g.ID, Expected: g.GrantedSeconds, Actual: h.GrantedSeconds,
				Detail: fmt.Sprintf("unit differs: recorded %s, Redis %s", unitOrSeconds(g.Unit), unitOrSeconds(h.Unit))})
		}
		expected := g.RemainingSeconds
		if !g.Voided {
			expected = max(expected-drawn[g.ID], 0)
		}
		if h.RemainingSeconds != expected {
			diff(AuditDifference{Kind: AuditRemaining, GrantID: g.ID, Expected: expected, Actual: h.RemainingSeconds,
				Detail: "granted − drawn (recorded and in flight) differs from the remaining seconds Redis holds"})
		}
	}
	issued := map[string]bool{}
	for _, g := range want.grants {
		issued[g.ID] = true
	}
	var unknown []string
	for id, v := range grants {
		if issued[id] {
			continue
		}
		// A grant that expired before the window began is not rebuilt and
		// not compared; Redis may still hold it.
		if h, err := parseGrant(id, v); err == nil && !h.ExpiresAt.After(unixTime(want.cutoff)) {
			continue
		}
		unknown = append(unknown, id)
	}
	sort.Strings(unknown)
	for _, id := range unknown {
		diff(AuditDifference{Kind: AuditUnknownGrant, GrantID: id, Detail: "Redis holds a grant the system of record never issued"})
	}

	remembered := make(map[string]bool, len(seen))
	for _, z := range seen {
		id, _ := z.Member.(string)
		remembered[id] = true
		if int64(z.Score) < want.cutoff {
			continue // about to be forgotten; the ledger read stops at the cutoff
		}
		r.IdentitiesChecked++
		if !recorded[id] && !inFlight[id] {
			diff(AuditDifference{Kind: AuditDebitMissing, Identity: id, Actual: int64(z.Score),
				Detail: "Redis applied this event; its debit entry is neither recorded nor pending"})
		}
	}
	for _, d := range want.seen {
		if !remembered[d.identity] {
			diff(AuditDifference{Kind: AuditMissingInHotState, Identity: d.identity, Expected: d.callTime,
				Detail: "the debit is recorded; Redis does not remember its event, so a repeat would be charged again"})
		}
	}
	r.OK = len(r.Differences) == 0
	return r
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
