package quota

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

// The ledger audit checks the rule the package exists for (quota.go): every
// balance is explained by the ledger. For each grant,
//
//	granted (its grant entry) − Σ drawn (debit draws) − voided (its void entry) = remaining
//
// and every identity the debit remembers (T:seen) has its debit entry, so a
// repeat of that event would be answered with what the first application
// did. It reads; it never repairs.
//
// Redis keeps ledger entries only for the ledger horizon (ledger.go). An
// entry whose time is within the horizon of now is certain to be there; an
// older one may be gone. A grant that may have had an entry before that
// cutoff (issued or effective before it) cannot be checked and is reported
// as unverifiable, not as a difference; so is a remembered identity whose
// call lies before it.

// Kinds of audit difference.
const (
	// AuditRemaining: a grant's remaining amount is not what its ledger
	// entries leave of it.
	AuditRemaining = "remaining"
	// AuditGranted: a grant's granted amount is not its grant entry's.
	AuditGranted = "granted"
	// AuditGrantEntryMissing: a grant issued within the horizon has no grant entry.
	AuditGrantEntryMissing = "grant_entry_missing"
	// AuditUnknownGrant: ledger entries name a grant the seafarer does not hold.
	AuditUnknownGrant = "unknown_grant"
	// AuditDebitMissing: an identity is remembered without its debit entry.
	AuditDebitMissing = "debit_entry_missing"
	// AuditMalformedRecord: a ledger record cannot be read.
	AuditMalformedRecord = "malformed_record"
)

// AuditDifference is one way a seafarer's stored state disagrees with the
// ledger. Expected is what the ledger says, Actual what the state holds.
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
	OK          bool              `json:"ok"` // no differences (unverifiable grants do not count)
	Differences []AuditDifference `json:"differences"`
	// Checked counts the grants and remembered identities that were verified.
	GrantsChecked     int `json:"grants_checked"`
	IdentitiesChecked int `json:"identities_checked"`
	// Unverifiable lists grants whose entries may be past the ledger
	// horizon; UnverifiableIdentities counts remembered identities whose
	// call is.
	Unverifiable           []string `json:"unverifiable_grants"`
	UnverifiableIdentities int      `json:"unverifiable_identities"`
}

// auditSnapshot is one seafarer's state as read in one transaction.
type auditSnapshot struct {
	grants  map[string]string
	seen    []redis.Z
	keys    []string
	buckets []any
}

// Audit checks that the seafarer's balances are explained by the ledger
// (see above). A seafarer with no state at all is a clean report. Errors
// only when Redis cannot be read.
func (s *RedisStore) Audit(ctx context.Context, seafarerID string) (*AuditReport, error) {
	now := s.now()
	cutoff := now.Add(-s.opts.LedgerHorizon) // entries from here on are certain to be kept
	// Buckets from the oldest Redis may still hold to a little ahead of now
	// (calls may be filed slightly in the future; see Ledger).
	from, to := cutoff.Add(-ledgerWeek*time.Second), now.Add(2*ledgerWeek*time.Second)
	snap, err := s.auditRead(ctx, seafarerID, from, to)
	if err != nil {
		return nil, err
	}
	// A remembered call filed after the buckets read: read again, wider.
	if len(snap.seen) > 0 {
		latest := time.Unix(int64(snap.seen[len(snap.seen)-1].Score)+1, 0)
		if latest.After(to) {
			if snap, err = s.auditRead(ctx, seafarerID, from, latest); err != nil {
				return nil, err
			}
		}
	}
	return auditSnapshotReport(seafarerID, snap, cutoff)
}

// auditRead reads the grants, the remembered identities and the ledger
// buckets for [from, to) in one MULTI/EXEC, so that a debit running
// meanwhile is seen entirely or not at all. Every key shares the seafarer's
// hash tag.
func (s *RedisStore) auditRead(ctx context.Context, seafarerID string, from, to time.Time) (*auditSnapshot, error) {
	k := s.keys(seafarerID)
	snap := &auditSnapshot{keys: s.ledgerKeysBetween(seafarerID, from, to)}
	var grants *redis.MapStringStringCmd
	var seen *redis.ZSliceCmd
	var buckets *redis.SliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		grants = p.HGetAll(ctx, k.grants)
		seen = p.ZRangeWithScores(ctx, k.seen, 0, -1)
		buckets = p.MGet(ctx, snap.keys...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: audit %s: %w", seafarerID, err)
	}
	snap.grants, snap.seen, snap.buckets = grants.Val(), seen.Val(), buckets.Val()
	return snap, nil
}

// grantTally is what the ledger says of one grant.
type grantTally struct {
	granted, drawn, voided int64
	hasGrant               bool
}

func auditSnapshotReport(seafarerID string, snap *auditSnapshot, cutoff time.Time) (*AuditReport, error) {
	r := &AuditReport{SeafarerID: seafarerID, Differences: []AuditDifference{}, Unverifiable: []string{}}
	tallies := map[string]*grantTally{}
	tally := func(id string) *grantTally {
		t := tallies[id]
		if t == nil {
			t = &grantTally{}
			tallies[id] = t
		}
		return t
	}
	debits := map[string]bool{} // identities with a debit entry
	for i, v := range snap.buckets {
		str, ok := v.(string)
		if !ok {
			continue
		}
		b := bucketOf(snap.keys[i])
		for rec := range strings.SplitSeq(str, "\n") {
			if rec == "" {
				continue
			}
			e, err := decodeRecord(b, rec)
			if err != nil {
				r.Differences = append(r.Differences, AuditDifference{Kind: AuditMalformedRecord, Detail: err.Error()})
				continue
			}
			switch e.Kind {
			case KindGrant:
				t := tally(e.GrantID)
				t.granted += e.Seconds
				t.hasGrant = true
			case KindVoid:
				tally(e.GrantID).voided += e.Seconds
			case KindDebit:
				debits[strings.TrimPrefix(e.ID, "d_")] = true
				for _, d := range e.Draws {
					tally(d.GrantID).drawn += d.Seconds
				}
			}
		}
	}

	ids := make([]string, 0, len(snap.grants))
	for id := range snap.grants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g, err := parseGrant(id, snap.grants[id])
		if err != nil {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditMalformedRecord, GrantID: id, Detail: err.Error()})
			continue
		}
		t := tally(id)
		delete(tallies, id) // what is left names grants the seafarer does not hold
		if g.IssuedAt.Before(cutoff) || g.EffectiveAt.Before(cutoff) {
			// Its grant entry, or draws of calls before the cutoff, may be gone.
			r.Unverifiable = append(r.Unverifiable, id)
			continue
		}
		r.GrantsChecked++
		if !t.hasGrant {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditGrantEntryMissing, GrantID: id,
				Expected: g.GrantedSeconds, Actual: 0, Detail: "the grant has no grant entry in the ledger"})
			continue
		}
		if t.granted != g.GrantedSeconds {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditGranted, GrantID: id,
				Expected: t.granted, Actual: g.GrantedSeconds, Detail: "granted seconds differ from the grant entry"})
		}
		if want := t.granted - t.drawn - t.voided; want != g.RemainingSeconds {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditRemaining, GrantID: id,
				Expected: want, Actual: g.RemainingSeconds,
				Detail: fmt.Sprintf("granted %d − drawn %d − voided %d ≠ remaining", t.granted, t.drawn, t.voided)})
		}
	}
	unknown := make([]string, 0, len(tallies))
	for id := range tallies {
		unknown = append(unknown, id)
	}
	sort.Strings(unknown)
	for _, id := range unknown {
		t := tallies[id]
		r.Differences = append(r.Differences, AuditDifference{Kind: AuditUnknownGrant, GrantID: id,
			Expected: t.granted - t.drawn - t.voided, Actual: 0, Detail: "the ledger names a grant the seafarer does not hold"})
	}

	for _, z := range snap.seen {
		identity, _ := z.Member.(string)
		if time.Unix(int64(z.Score), 0).Before(cutoff) {
			r.UnverifiableIdentities++
			continue
		}
		r.IdentitiesChecked++
		if !debits[identity] {
			r.Differences = append(r.Differences, AuditDifference{Kind: AuditDebitMissing, Identity: identity,
				Expected: 1, Actual: 0, Detail: "the event identity is remembered but has no debit entry (call time " +
					time.Unix(int64(z.Score), 0).UTC().Format(time.RFC3339) + ")"})
		}
	}
	r.OK = len(r.Differences) == 0
	return r, nil
}

// auditScanCount is how many keys one SCAN step looks at; auditScanSteps
// bounds the steps of one AuditPage, so a page over a large keyspace with
// few seafarers still answers promptly (with fewer items and a cursor).
const (
	auditScanCount = 1000
	auditScanSteps = 50
	auditWorkers   = 8
)

// AuditPage audits up to limit seafarers holding quota state (grants or
// remembered identities), in the order Redis's SCAN meets them, from cursor
// ("" = the start), and returns their reports and the cursor of the next
// page ("" at the end). A page may hold fewer than limit reports with more
// to follow. A seafarer is listed once per pass, though SCAN may in rare
// cases (keys moved while scanning) list one twice. EINVALID for a
// malformed cursor.
func (s *RedisStore) AuditPage(ctx context.Context, cursor string, limit int) ([]*AuditReport, string, error) {
	ids, next, err := s.SeafarersWithQuota(ctx, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]*AuditReport, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, auditWorkers)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = s.Audit(ctx, id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// auditCursor is a position in the scan of every node: the node (index in
// the sorted list of masters), its SCAN cursor, and how many seafarers the
// step from that cursor already gave.
type auditCursor struct {
	node int
	scan uint64
	skip int
}

func (c auditCursor) String() string {
	return strconv.Itoa(c.node) + "." + strconv.FormatUint(c.scan, 10) + "." + strconv.Itoa(c.skip)
}

func parseAuditCursor(v string) (auditCursor, error) {
	if v == "" {
		return auditCursor{}, nil
	}
	f := strings.Split(v, ".")
	bad := wuyou.Invalid([]wuyou.FieldError{{Field: "cursor", Message: "malformed"}})
	if len(f) != 3 {
		return auditCursor{}, bad
	}
	node, err1 := strconv.Atoi(f[0])
	scan, err2 := strconv.ParseUint(f[1], 10, 64)
	skip, err3 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil || node < 0 || skip < 0 {
		return auditCursor{}, bad
	}
	return auditCursor{node: node, scan: scan, skip: skip}, nil
}

// SeafarersWithQuota lists up to limit ids of seafarers that hold grants or
// remembered identities, by scanning the keyspace (every master of a
// cluster, in address order) from cursor; next is "" at the end. EINVALID
// for a malformed cursor.
func (s *RedisStore) SeafarersWithQuota(ctx context.Context, cursor string, limit int) (ids []string, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	c, err := parseAuditCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	nodes, err := s.scanNodes(ctx)
	if err != nil {
		return nil, "", err
	}
	if c.node >= len(nodes) {
		return nil, "", wuyou.Invalid([]wuyou.FieldError{{Field: "cursor", Message: "names a node this deployment does not have"}})
	}
	pattern := crew.SeafarerKeysGlob(s.prefix, ":[gs]*")
	for steps := 0; steps < auditScanSteps; steps++ {
		keys, after, err := nodes[c.node](ctx, c.scan, pattern)
		if err != nil {
			return nil, "", fmt.Errorf("quota: scan seafarers: %w", err)
		}
		found, err := s.quotaHolders(ctx, keys)
		if err != nil {
			return nil, "", err
		}
		found = found[min(c.skip, len(found)):]
		if room := limit - len(ids); len(found) > room {
			ids = append(ids, found[:room]...)
			c.skip += room
			return ids, c.String(), nil
		}
		ids = append(ids, found...)
		c.scan, c.skip = after, 0
		if after == 0 {
			if c.node++; c.node == len(nodes) {
				return ids, "", nil
			}
		}
		if len(ids) == limit {
			return ids, c.String(), nil
		}
	}
	return ids, c.String(), nil
}

// quotaHolders picks, from scanned keys, the seafarers they show to hold
// quota state, once each: a seafarer's grants hash names it; its seen set
// names it only when it has no grants hash (which the scan also meets).
func (s *RedisStore) quotaHolders(ctx context.Context, keys []string) ([]string, error) {
	var ids, seenOnly []string
	for _, key := range keys {
		id, rest, ok := crew.SeafarerOfKey(s.prefix, key)
		switch {
		case ok && rest == ":g":
			ids = append(ids, id)
		case ok && rest == ":seen":
			seenOnly = append(seenOnly, id)
		}
	}
	if len(seenOnly) == 0 {
		return ids, nil
	}
	cmds := make([]*redis.IntCmd, len(seenOnly))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range seenOnly {
			cmds[i] = p.Exists(ctx, s.keys(id).grants)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: scan seafarers: %w", err)
	}
	for i, id := range seenOnly {
		if cmds[i].Val() == 0 {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// scanStep runs one SCAN step on one node.
type scanStep func(ctx context.Context, cursor uint64, pattern string) ([]string, uint64, error)

// scanNodes are the nodes to scan: the one server, or every master of a
// cluster in address order (so a cursor names the same node next time).
func (s *RedisStore) scanNodes(ctx context.Context) ([]scanStep, error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return []scanStep{func(ctx context.Context, cursor uint64, pattern string) ([]string, uint64, error) {
			return s.rdb.Scan(ctx, cursor, pattern, auditScanCount).Result()
		}}, nil
	}
	var mu sync.Mutex
	masters := map[string]*redis.Client{}
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		masters[c.Options().Addr] = c
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: scan seafarers: masters: %w", err)
	}
	addrs := make([]string, 0, len(masters))
	for a := range masters {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	out := make([]scanStep, len(addrs))
	for i, a := range addrs {
		c := masters[a]
		out[i] = func(ctx context.Context, cursor uint64, pattern string) ([]string, uint64, error) {
			return c.Scan(ctx, cursor, pattern, auditScanCount).Result()
		}
	}
	return out, nil
}
