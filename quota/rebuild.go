package quota

// Rebuilding the hot state from the system of record.
//
// Redis holds what metering changes atomically and fast; PostgreSQL holds
// every grant issued (grants) and every ledger entry (ledger_entries). When
// Redis loses some or all of its data (a restart without persistence, a
// lost shard, the last second of an everysec append-only file after a power
// cut), RebuildHotState writes every seafarer's hot state again from
// PostgreSQL:
//
//	T:g     each grant not expired before the dedupe window began: its unit
//	        and granted amount from grants, remaining = granted − what its
//	        debits and adjusts drew (an adjust's draws are signed: a
//	        negative one gives back) (0 once voided)
//	T:seen  the identity of every debit and adjust (a CDR that settled a
//	        session) whose call is inside the dedupe window, so a
//	        redelivered event is a duplicate, not a second charge
//	T:n     low/exhausted already announced for each unit's grant set active now
//	T:m:<this month>  billable and overage amounts of this month's calls,
//	                  per unit, adjusts added (what the allowance shows)
//	T:r     emptied: an entry not yet recorded is applied again when its
//	        event is delivered again
//	{id:xx} the global identity claims of the window's debits, when Redis
//	        keeps them (Options.Claims unset; wuyoud keeps them in PostgreSQL)
//
// and then marks Redis as holding the hot state (the key "<prefix>:hot").
// A store built with Options.HotStateGuard refuses to meter, add or void
// grants while that mark is missing, so a Redis that came back empty stops
// metering (offsets stay uncommitted, /readyz says so) instead of charging
// every call as overage and forgetting which events it had applied.
//
// Why the result is right: the consumer stores a batch's ledger entries in
// PostgreSQL before it commits the batch's offsets, and a grant is in the
// grants table before it is added to Redis. So every event whose offset
// was committed is in the ledger, and is rebuilt as applied (its draws
// taken, its identity seen); an event that was debited in Redis but not yet
// stored is delivered again and applied once, on the rebuilt state. Events
// in flight while the rebuild runs are kept out by the mark: it is removed
// first, and Quiesce gives batches that passed the check before that time
// to store their entries before PostgreSQL is read.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// hotKey marks Redis as holding Wuyou's hot state.
func (s *RedisStore) hotKey() string { return s.prefix + ":hot" }

// HotMark is what the hot-state mark says.
type HotMark struct {
	RebuiltAt time.Time `json:"rebuilt_at"`
	By        string    `json:"by"` // "rebuild" or "empty" (a new deployment)
	Seafarers int       `json:"seafarers"`
	// RedisID names the Redis process(es) the state was written to (the
	// run_id of each master). A Redis that restarted since has another:
	// it may have come back without the writes of its last second
	// (appendfsync everysec) or a failover may have lost some, so the
	// state is rebuilt, not trusted.
	RedisID string `json:"redis_id"`
}

// redisID is the run_id of the Redis server, or of every master of a
// cluster, sorted and joined; "" when the server does not say (a stand-in).
func (s *RedisStore) redisID(ctx context.Context) (string, error) {
	runID := func(info string) string {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
				return v
			}
		}
		return ""
	}
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var ids []string
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			info, err := m.Info(ctx, "server").Result()
			if err != nil {
				return err
			}
			mu.Lock()
			ids = append(ids, runID(info))
			mu.Unlock()
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("quota: Redis run ids: %w", err)
		}
		sort.Strings(ids)
		return strings.Join(ids, ","), nil
	}
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil && strings.Contains(err.Error(), "not supported") {
		return "", nil // an in-process stand-in (wuyoud dev's miniredis) that has no server section
	} else if err != nil {
		return "", fmt.Errorf("quota: Redis run id: %w", err)
	}
	return runID(info), nil
}

// HotStateCurrent reports whether Redis holds the hot state and is the
// same Redis it was written to: false after a loss or a restart.
func (s *RedisStore) HotStateCurrent(ctx context.Context) (bool, error) {
	m, err := s.HotState(ctx)
	if err != nil || m == nil {
		return false, err
	}
	id, err := s.redisID(ctx)
	if err != nil {
		return false, err
	}
	return m.RedisID == id, nil
}

// ErrHotStateMissing is returned, wrapped in a wuyou EUNAVAILABLE error, by
// a guarded store while Redis does not hold the hot state.
var ErrHotStateMissing = errors.New("Redis does not hold the hot metering state (lost or being rebuilt); wuyoud rebuilds it at start, or run `wuyoud rebuild-hot-state`")

// HotState reads the mark; nil when Redis does not hold the hot state.
func (s *RedisStore) HotState(ctx context.Context) (*HotMark, error) {
	v, err := s.rdb.Get(ctx, s.hotKey()).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("quota: hot state mark: %w", err)
	}
	var m HotMark
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("quota: hot state mark %q: %w", v, err)
	}
	return &m, nil
}

// MarkHotState records that Redis holds the hot state, naming the Redis it
// was written to.
func (s *RedisStore) MarkHotState(ctx context.Context, m HotMark) error {
	id, err := s.redisID(ctx)
	if err != nil {
		return err
	}
	m.RedisID = id
	b, _ := json.Marshal(m)
	if err := s.rdb.Set(ctx, s.hotKey(), b, 0).Err(); err != nil {
		return fmt.Errorf("quota: mark hot state: %w", err)
	}
	return nil
}

// checkHot returns nil when the store is not guarded or the mark is there.
func (s *RedisStore) checkHot(ctx context.Context) error {
	if !s.opts.HotStateGuard {
		return nil
	}
	n, err := s.rdb.Exists(ctx, s.hotKey()).Result()
	if err != nil {
		return fmt.Errorf("quota: hot state mark: %w", err)
	}
	if n == 0 {
		return &wuyou.Error{Code: wuyou.EUNAVAILABLE, Reason: "hot_state_missing", Message: ErrHotStateMissing.Error()}
	}
	return nil
}

// RebuildOptions tune RebuildHotState.
type RebuildOptions struct {
	// Quiesce is how long to wait after removing the mark before reading
	// PostgreSQL, so that batches which passed the mark's check before it
	// was removed finish storing their ledger entries. 0 when no metering
	// can be running (wuyoud at start, before its consumer).
	Quiesce time.Duration
	// Chunk is how many seafarers are read and written at a time (500).
	Chunk int
	// Progress, when set, is called after each chunk.
	Progress func(done, total int)
}

// RebuildReport says what a rebuild wrote.
type RebuildReport struct {
	Seafarers  int
	Grants     int
	Identities int
	Took       time.Duration
}

// RebuildHotState writes every seafarer's hot state again from PostgreSQL
// (see the top of this file) and marks Redis as holding it. Keys of a
// seafarer the system of record does not know are left alone. It can run
// again at any time; each run replaces what it writes.
func RebuildHotState(ctx context.Context, pool *pgxpool.Pool, s *RedisStore, opts RebuildOptions) (*RebuildReport, error) {
	started := time.Now()
	if opts.Chunk <= 0 {
		opts.Chunk = 500
	}
	if err := s.rdb.Del(ctx, s.hotKey()).Err(); err != nil {
		return nil, fmt.Errorf("quota: rebuild: remove the hot state mark: %w", err)
	}
	if opts.Quiesce > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opts.Quiesce):
		}
	}
	now := s.now()
	// One snapshot for the whole read, so a grant and the debits drawing
	// from it are read as of the same moment.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("quota: rebuild: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	cutoff := DedupeCutoff(now, s.opts.DedupeWindow)
	ids, err := hotSeafarers(ctx, tx, cutoff)
	if err != nil {
		return nil, err
	}
	rep := &RebuildReport{Seafarers: len(ids)}
	for lo := 0; lo < len(ids); lo += opts.Chunk {
		chunk := ids[lo:min(lo+opts.Chunk, len(ids))]
		hot, err := readHot(ctx, tx, chunk, now, cutoff)
		if err != nil {
			return nil, err
		}
		if err := s.writeHot(ctx, hot, now); err != nil {
			return nil, err
		}
		// Terminated sessions, so their carrier records settle them
		// (rebuild_sessions.go).
		ts, err := readTerminatedSessions(ctx, tx, chunk, cutoff)
		if err != nil {
			return nil, err
		}
		if len(ts) > 0 {
			if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return s.writeTerminatedSessions(ctx, p, ts) }); err != nil {
				return nil, fmt.Errorf("quota: rebuild: sessions: %w", err)
			}
		}
		for _, h := range hot {
			rep.Grants += len(h.grants)
			rep.Identities += len(h.seen)
		}
		if opts.Progress != nil {
			opts.Progress(lo+len(chunk), len(ids))
		}
	}
	if err := s.MarkHotState(ctx, HotMark{RebuiltAt: now, By: "rebuild", Seafarers: len(ids)}); err != nil {
		return nil, err
	}
	rep.Took = time.Since(started)
	return rep, nil
}

// EnsureHotState makes sure Redis holds the hot state: nothing to do when
// the mark is there and names this Redis; a new deployment (nothing in the
// system of record) is marked; otherwise (lost, or written to a Redis that
// has restarted since) the state is rebuilt with opts. wuyoud calls it at
// start and whenever it finds the mark gone (Redis restarted empty).
// Replicas serialise on a PostgreSQL advisory lock, so one rebuilds and the
// others then find the mark. rep is nil when nothing was rebuilt.
func EnsureHotState(ctx context.Context, pool *pgxpool.Pool, s *RedisStore, opts RebuildOptions) (rep *RebuildReport, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("quota: hot state: %w", err)
	}
	defer conn.Release()
	lock := "wuyou hot state " + s.prefix
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", lock); err != nil {
		return nil, fmt.Errorf("quota: hot state lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", lock) //nolint:errcheck // released with the session anyway
	m, err := s.HotState(ctx)
	if err != nil {
		return nil, err
	}
	if m != nil {
		current, err := s.HotStateCurrent(ctx)
		if err != nil || current {
			return nil, err
		}
		// Redis restarted since the state was written: rebuild.
		return RebuildHotState(ctx, pool, s, opts)
	}
	var recorded bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM grants) OR EXISTS (SELECT 1 FROM ledger_entries)`).Scan(&recorded)
	if err != nil {
		return nil, fmt.Errorf("quota: hot state: %w", err)
	}
	if !recorded {
		return nil, s.MarkHotState(ctx, HotMark{RebuiltAt: s.now(), By: "empty"})
	}
	return RebuildHotState(ctx, pool, s, opts)
}

// hotSeafarers lists, in id order, the seafarers who have a grant not
// expired before cutoff or a debit or adjust inside the window.
func hotSeafarers(ctx context.Context, tx pgx.Tx, cutoff time.Time) ([]string, error) {
	rows, err := tx.Query(ctx, `
SELECT seafarer_id FROM grants WHERE expires_at > $1
UNION
SELECT seafarer_id FROM ledger_entries WHERE kind IN ('debit', 'adjust') AND filed_at >= $2
ORDER BY 1`, cutoff, cutoff.Truncate(time.Second))
	if err != nil {
		return nil, fmt.Errorf("quota: rebuild: list seafarers: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("quota: rebuild: list seafarers: %w", err)
	}
	return ids, nil
}

// hotSeafarer is one seafarer's hot state as the system of record has it.
type hotSeafarer struct {
	id     string
	cutoff int64 // the dedupe window's start (unix s): seen holds the debits since
	grants []*Grant
	seen   []seenDebit
	// month is this month's calls' billable and overage amounts per unit
	// (spelled out).
	month map[string][2]int64
}

// seenDebit is an identity the seafarer's T:seen remembers. fingerprint is
// its claim's; "" for an adjust's, whose claim is not written again: a
// redelivery of its record then claims the identity afresh for the same
// seafarer (its MSISDN's) and is a duplicate by T:seen, where a claim with
// a fingerprint of the adjust's amounts would call it a conflict.
type seenDebit struct {
	identity    string
	callTime    int64
	fingerprint string
}

// readHot reads the hot state of a chunk of seafarers: four queries, each
// an index range per seafarer.
func readHot(ctx context.Context, tx pgx.Tx, ids []string, now, cutoff time.Time) ([]*hotSeafarer, error) {
	byID := make(map[string]*hotSeafarer, len(ids))
	out := make([]*hotSeafarer, len(ids))
	for i, id := range ids {
		out[i] = &hotSeafarer{id: id, cutoff: cutoff.Unix()}
		byID[id] = out[i]
	}
	wrap := func(what string, err error) error { return fmt.Errorf("quota: rebuild: %s: %w", what, err) }

	rows, err := tx.Query(ctx, `
SELECT g.id, g.seafarer_id, g.programme_id, g.seconds, g.priority, g.effective_at, g.expires_at, g.issued_at,
    g.voided_at IS NOT NULL, g.unit, p.notify_at
FROM grants g LEFT JOIN programmes p ON p.id = g.programme_id
WHERE g.seafarer_id = ANY($1) AND g.expires_at > $2`, ids, cutoff)
	if err != nil {
		return nil, wrap("grants", err)
	}
	grants := map[string]*Grant{}
	var earliest time.Time // the earliest effective time of the chunk's grants
	for rows.Next() {
		var g Grant
		var sid string
		if err := rows.Scan(&g.ID, &sid, &g.ProgrammeID, &g.GrantedSeconds, &g.Priority, &g.EffectiveAt, &g.ExpiresAt, &g.IssuedAt, &g.Voided, &g.Unit, &g.NotifyAt); err != nil {
			rows.Close()
			return nil, wrap("grants", err)
		}
		g.Unit = storedUnit(g.Unit)
		g.RemainingSeconds = g.GrantedSeconds
		h := byID[sid]
		h.grants = append(h.grants, &g)
		grants[sid+"\x00"+g.ID] = &g
		if earliest.IsZero() || g.EffectiveAt.Before(earliest) {
			earliest = g.EffectiveAt
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("grants", err)
	}

	// Draws: a grant is drawn from only by calls made while it is active,
	// and a debit is filed under its call time, so the debits filed since
	// the earliest grant took effect hold every draw: an index range of
	// each seafarer in each month partition since then. An adjust of a
	// call is filed when it is applied, after the call, so it is in the
	// same range; its draws are signed (a negative one gives back).
	rows, err = tx.Query(ctx, `
SELECT e.seafarer_id, d->>'grant_id', sum((d->>'seconds')::bigint)
FROM ledger_entries e CROSS JOIN LATERAL jsonb_array_elements(e.draws) d
WHERE e.seafarer_id = ANY($1) AND e.kind IN ('debit', 'adjust') AND e.filed_at >= $2
GROUP BY 1, 2`, ids, earliest.Truncate(time.Second))
	if err != nil {
		return nil, wrap("draws", err)
	}
	for rows.Next() {
		var sid, gid string
		var secs int64
		if err := rows.Scan(&sid, &gid, &secs); err != nil {
			rows.Close()
			return nil, wrap("draws", err)
		}
		if g := grants[sid+"\x00"+gid]; g != nil {
			g.RemainingSeconds -= secs
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("draws", err)
	}
	for _, g := range grants {
		if g.Voided || g.RemainingSeconds < 0 {
			g.RemainingSeconds = 0
		}
	}

	// Identities inside the window, with what decides whether a repeat is
	// the same event (the fingerprint the claim keeps): a debit's ("d_"
	// + identity) and an adjust's ("a_" + the identity of the CDR that
	// settled a session). An adjust is filed after its call, so every one
	// whose call is inside the window is filed inside it.
	rows, err = tx.Query(ctx, `
SELECT seafarer_id, id, call_time, coalesce(msisdn, ''), coalesce(type, ''), duration_seconds, billable_seconds,
       coalesce(called_number, ''), coalesce(visited_country, ''), unit, volume_bytes, coalesce(event_source, ''), coalesce(event_id, '')
FROM ledger_entries
WHERE seafarer_id = ANY($1) AND kind IN ('debit', 'adjust') AND filed_at >= $2`, ids, cutoff.Truncate(time.Second))
	if err != nil {
		return nil, wrap("identities", err)
	}
	for rows.Next() {
		var sid, id string
		var u Usage
		if err := rows.Scan(&sid, &id, &u.CallTime, &u.MSISDN, &u.Type, &u.DurationSeconds, &u.BillableSeconds, &u.CalledNumber, &u.VisitedCountry, &u.Unit, &u.VolumeBytes, &u.Source, &u.EventID); err != nil {
			rows.Close()
			return nil, wrap("identities", err)
		}
		if u.Unit = storedUnit(u.Unit); u.Unit != "" { // the amount is in the unit
			u.Billable, u.BillableSeconds = u.BillableSeconds, 0
		}
		identity, debit := strings.CutPrefix(id, "d_")
		adjust := false
		if !debit {
			identity, adjust = strings.CutPrefix(id, "a_")
		}
		if !debit && !adjust || u.CallTime.Before(cutoff) {
			continue
		}
		// An adjust's amounts are the difference from its session's
		// charge, not what the carrier's record said, so its fingerprint
		// cannot be made again: its claim is left out (seenDebit).
		fingerprint := ""
		switch {
		case debit && u.Source == SessionSource:
			fingerprint = sessionFingerprint(u.EventID) // whatever it reported (TerminateSession)
		case debit:
			fingerprint = u.fingerprint()
		}
		h := byID[sid]
		h.seen = append(h.seen, seenDebit{identity: identity, callTime: u.CallTime.Unix(), fingerprint: fingerprint})
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("identities", err)
	}

	// This month's figures, as the allowance shows them: the calls made
	// this month (a closed month's late calls count elsewhere), moved by
	// their adjusts. A debit is filed under its call's second; an adjust
	// when it was applied, after its call, so it is found from the month's
	// start by its call time.
	from, to := billing.PeriodBoundsOf(now)
	rows, err = tx.Query(ctx, `
SELECT seafarer_id, unit, sum(billable_seconds), sum(overage_seconds)
FROM ledger_entries
WHERE seafarer_id = ANY($1) AND filed_at >= $2 AND adjusts_period IS NULL
    AND (kind = 'debit' AND filed_at < $3 OR kind = 'adjust' AND call_time >= $2 AND call_time < $3)
GROUP BY 1, 2`, ids, from, to)
	if err != nil {
		return nil, wrap("this month", err)
	}
	for rows.Next() {
		var sid, unit string
		var billable, overage int64
		if err := rows.Scan(&sid, &unit, &billable, &overage); err != nil {
			rows.Close()
			return nil, wrap("this month", err)
		}
		h := byID[sid]
		if h.month == nil {
			h.month = map[string][2]int64{}
		}
		h.month[unit] = [2]int64{billable, overage}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("this month", err)
	}
	return out, nil
}

// encodeGrant is a grant as the grants hash keeps it (see scripts.go).
func encodeGrant(g *Grant) string {
	void := "0"
	if g.Voided {
		void = "1"
	}
	enc := fmt.Sprintf("%d:%d:%d:%d:%d:%d:%s:%s", g.GrantedSeconds, g.RemainingSeconds, g.EffectiveAt.Unix(),
		g.ExpiresAt.Unix(), g.Priority, g.IssuedAt.UnixMilli(), void, g.ProgrammeID)
	// A seconds grant is written as v1 wrote it, without the ninth field.
	u := unitOrSeconds(g.Unit)
	if u != billing.UnitSeconds {
		enc += ":" + u
	}
	// Thresholds other than the default are a tenth field (notify.go);
	// a seconds grant then has an empty ninth.
	if t := encodeThresholds(g.NotifyAt); t != "" {
		if u == billing.UnitSeconds {
			enc += ":"
		}
		enc += ":" + t
	}
	return enc
}

// grantSet names the set of grants of unit ("" for seconds) active at now
// as the debit script does: the SHA-1 of their sorted ids, space-separated;
// with their remaining and granted sums.
func grantSet(gs []*Grant, unit string, now time.Time) (set string, remaining, granted int64) {
	var ids []string
	for _, g := range gs {
		if g.ActiveAt(now) && g.Unit == unit {
			ids = append(ids, g.ID)
			remaining += g.RemainingSeconds
			granted += g.GrantedSeconds
		}
	}
	sort.Strings(ids)
	h := sha1.Sum([]byte(strings.Join(ids, " ")))
	return hex.EncodeToString(h[:]), remaining, granted
}

// writeHot replaces the hot state of a chunk of seafarers in one pipeline:
// each seafarer's keys deleted, then written, in that order (they share a
// hash slot, so one node runs them in the order sent), then the global
// identity claims and the expiry index, which are idempotent. Not in one
// MULTI: Redis Cluster refuses a transaction over several slots, and
// metering is paused while a rebuild runs (an allowance read meanwhile may
// see a seafarer half written).
func (s *RedisStore) writeHot(ctx context.Context, hot []*hotSeafarer, now time.Time) error {
	period := billing.PeriodOf(now)
	notesTTL := s.opts.DedupeWindow + 24*time.Hour
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range hot {
			k := s.keys(h.id)
			month := s.monthKey(h.id, period)
			p.Del(ctx, k.grants, k.seen, k.pending, k.notes, month)
			if len(h.grants) > 0 {
				fields := make([]any, 0, 2*len(h.grants))
				for _, g := range h.grants {
					fields = append(fields, g.ID, encodeGrant(g))
				}
				p.HSet(ctx, k.grants, fields...)
			}
			if len(h.seen) > 0 {
				zs := make([]redis.Z, len(h.seen))
				for i, d := range h.seen {
					zs[i] = redis.Z{Score: float64(d.callTime), Member: d.identity}
				}
				p.ZAdd(ctx, k.seen, zs...)
			}
			var figures []any
			for unit, f := range h.month {
				if f[0] > 0 || f[1] > 0 {
					b, o := monthFields(unit)
					figures = append(figures, b, f[0], o, f[1])
				}
			}
			if len(figures) > 0 {
				_, end := billing.PeriodBoundsOf(now)
				p.HSet(ctx, month, figures...)
				p.Expire(ctx, month, time.Duration(monthTTL(end, now))*time.Second)
			}
			// What the grant set of each unit active now has already
			// announced, so the next call does not announce it again.
			for _, unit := range billing.Units {
				set, rem, granted := grantSet(h.grants, storedUnit(unit), now)
				if granted == 0 {
					continue
				}
				v := fmt.Sprintf("rebuild %d %d %d", rem, granted, now.UnixMilli())
				for _, t := range setThresholds(h.grants, storedUnit(unit), now) {
					if rem < t.level(granted) {
						p.HSet(ctx, k.notes, "low:"+t.Key()+":"+set, v)
					}
				}
				if rem == 0 {
					p.HSet(ctx, k.notes, "exhausted:"+set, v)
				}
				p.Expire(ctx, k.notes, notesTTL)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: rebuild: write seafarers: %w", err)
	}
	if s.opts.Claims != nil {
		return nil // kept in the system of record, not lost with Redis
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range hot {
			for _, d := range h.seen {
				if d.fingerprint == "" {
					continue // an adjust's (seenDebit)
				}
				claims, byTime := s.claimKeys(d.identity)
				p.HSet(ctx, claims, d.identity, h.id+" "+d.fingerprint)
				p.ZAdd(ctx, byTime, redis.Z{Score: float64(d.callTime), Member: d.identity})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: rebuild: write claims: %w", err)
	}
	return nil
}
