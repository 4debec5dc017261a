package quota

// Statement figures, kept as calls are metered, and the closing of periods.
//
// Layout (T = "<prefix>:{s:<seafarer id>}", P = "<prefix>:{p:<programme id>}"):
//
//	T:s:YYYY-MM  hash  the seafarer's figures in that period's statements:
//	                   calls, billable, covered, overage, amount, welfare (the
//	                   calls of the period itself); p:<programme>:calls|covered|welfare
//	                   (the share of one programme's packs); the same prefixed
//	                   "a:<period>:" for adjustments (calls of an earlier, closed
//	                   period); cur (currency); frozen ("closed" when a close
//	                   froze the figures, "moved:<period>" when figures written
//	                   after the close were moved to a later period)
//	T:sl:YYYY-MM string the lines of a closed period's statement, stored when
//	                   first produced (the ledger they come from is trimmed)
//	T:c:YYYY-MM  hash  "<msisdn>:calls|billable|covered" of the calls made in
//	                   that period (by call time), for reconciliation; expires
//	                   reconciliationRetention after the period
//	P:seafarers:YYYY-MM  set  seafarers with figures of the programme's packs
//	<prefix>:period:YYYY-MM:seafarers  set  seafarers with figures in the period
//	<prefix>:period:YYYY-MM:callers    set  seafarers who called in the period
//	<prefix>:periods  hash  period -> "closing:<unix s>" | "closed:<unix s>"
//
// The debit script (scripts.go) writes T:s and T:c in the same atomic step as
// the debit; the sets are written by IndexStatements after it, which the
// consumer calls for every debit, repeated ones included, so a crash between
// the two is repaired when the batch is redelivered. The global keys are only
// ever written with single-key commands.
//
// Closing period W (ClosePeriod) and the race with calls in flight:
//
//  1. W is marked "closing" in the periods hash. From then on the debit
//     counts a call of W in the first open period after it, as an
//     adjustment, once it has read the list again (it caches it for a second).
//  2. Every seafarer in W's set gets T:s:W frozen (HSETNX). The debit checks
//     that marker atomically and never writes a frozen hash: a call arriving
//     later is an adjustment, whatever the cache said.
//  3. A debit that wrote T:s:W believing W open and whose seafarer was not in
//     the set when the close read it is caught by IndexStatements: it adds
//     the seafarer to the set and only then reads the periods hash afresh.
//     If W is closing or closed and T:s:W is not frozen, the figures are
//     moved to the first open period as adjustments (reclassifyScript) and
//     T:s:W is marked moved. If the fresh read shows W open, the close had
//     not begun, so its read of the set will include the seafarer.
//  4. Each frozen seafarer is added to the sets of the programmes its frozen
//     figures name (a debit caught in flight may not have indexed them yet),
//     then W is marked "closed". A closed period's statements show only
//     frozen figures ("closed" markers), which nothing writes again.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
)

// reconciliationRetention is how long figures by MSISDN are kept after
// their period ends.
const reconciliationRetention = 400 * 24 * time.Hour

// periodCacheTTL bounds how stale the debit's list of closed periods may be.
// Staleness costs an extra step (the figures are moved), never correctness.
const periodCacheTTL = time.Second

const (
	frozenClosed = "closed"
	frozenMoved  = "moved:"
)

func (s *RedisStore) statementKey(seafarerID, period string) string {
	return crew.SeafarerTag(s.prefix, seafarerID) + ":s:" + period
}
func (s *RedisStore) linesKey(seafarerID, period string) string {
	return crew.SeafarerTag(s.prefix, seafarerID) + ":sl:" + period
}
func (s *RedisStore) callsKey(seafarerID, period string) string {
	return crew.SeafarerTag(s.prefix, seafarerID) + ":c:" + period
}
func (s *RedisStore) periodsKey() string { return s.prefix + ":periods" }
func (s *RedisStore) periodSeafarersKey(period string) string {
	return s.prefix + ":period:" + period + ":seafarers"
}
func (s *RedisStore) callersKey(period string) string {
	return s.prefix + ":period:" + period + ":callers"
}
func (s *RedisStore) programmeSeafarersKey(programmeID, period string) string {
	return s.programmeTag(programmeID) + ":seafarers:" + period
}

// periodCache keeps the closing and closed periods for periodCacheTTL.
type periodCache struct {
	mu     sync.Mutex
	at     time.Time
	closed map[string]string // period -> "closing:…" | "closed:…"
}

func (c *periodCache) get(ctx context.Context, read func(context.Context) (map[string]string, error)) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil && time.Since(c.at) < periodCacheTTL {
		return c.closed, nil
	}
	m, err := read(ctx)
	if err != nil {
		return nil, err
	}
	c.closed, c.at = m, time.Now()
	return m, nil
}

func (c *periodCache) set(m map[string]string) {
	c.mu.Lock()
	c.closed, c.at = m, time.Now()
	c.mu.Unlock()
}

func (c *periodCache) forget() {
	c.mu.Lock()
	c.closed = nil
	c.mu.Unlock()
}

// readPeriods reads every closing or closed period.
func (s *RedisStore) readPeriods(ctx context.Context) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.periodsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("quota: closed periods: %w", err)
	}
	return m, nil
}

func isStale(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "ESTALE") }

// firstOpenAfter is the first period after period (a valid one) that
// closed does not list.
func firstOpenAfter(period string, closed map[string]string) string {
	p := billing.NextPeriod(period)
	for closed[p] != "" {
		p = billing.NextPeriod(p)
	}
	return p
}

// statementArgs are the debit script's statement keys and arguments for u.
// statementCall is the part of a debit's keys and arguments that decides
// which statement counts the call.
type statementCall struct {
	stmt, nextStmt, calls    string
	wholesalePrice           int64
	periodClosed, nextPeriod string
	callsExpireAt            int64
}

func (s *RedisStore) statementArgs(ctx context.Context, u Usage) (statementCall, error) {
	closed, err := s.periods.get(ctx, s.readPeriods)
	if err != nil {
		return statementCall{}, err
	}
	period := billing.PeriodOf(u.CallTime)
	next := firstOpenAfter(period, closed)
	flag := "0"
	if closed[period] != "" {
		flag = "1"
	}
	_, periodEnd := billing.PeriodBoundsOf(u.CallTime)
	expireAt := periodEnd.Add(reconciliationRetention).Unix()
	return statementCall{
		stmt: s.statementKey(u.SeafarerID, period), nextStmt: s.statementKey(u.SeafarerID, next), calls: s.callsKey(u.SeafarerID, period),
		wholesalePrice: u.WholesalePrice.Minor, periodClosed: flag, nextPeriod: next, callsExpireAt: expireAt,
	}, nil
}

// StatementDebit is one applied or repeated debit to index for statements.
type StatementDebit struct {
	SeafarerID string
	Entry      *LedgerEntry // as the debit returned it; nil is skipped
}

// IndexStatements records which statements the debits' figures are in (the
// period's and its programmes' sets of seafarers, and the period's callers)
// and then, reading the closed periods afresh, moves figures a debit wrote
// into a period that has meanwhile been closed to the first open period (see
// the top of this file). It is idempotent: call it for every debit,
// repeated ones included.
func (s *RedisStore) IndexStatements(ctx context.Context, debits []StatementDebit) error {
	type seafarerPeriod struct{ seafarer, period string }
	counted := map[seafarerPeriod]bool{}
	type member struct{ key, seafarer string }
	added := map[member]bool{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sadd := func(key, seafarer string) {
			if !added[member{key, seafarer}] {
				added[member{key, seafarer}] = true
				p.SAdd(ctx, key, seafarer)
			}
		}
		for _, d := range debits {
			e := d.Entry
			if e == nil || e.Kind != KindDebit || e.StatementPeriod == "" || e.CallTime == nil {
				continue
			}
			sadd(s.periodSeafarersKey(e.StatementPeriod), d.SeafarerID)
			sadd(s.callersKey(billing.PeriodOf(*e.CallTime)), d.SeafarerID)
			for _, dr := range e.Draws {
				if dr.ProgrammeID != "" && dr.Seconds > 0 {
					sadd(s.programmeSeafarersKey(dr.ProgrammeID, e.StatementPeriod), d.SeafarerID)
				}
			}
			counted[seafarerPeriod{d.SeafarerID, e.StatementPeriod}] = true
		}
		return nil
	})
	if err != nil || len(counted) == 0 {
		return wrapErr("index statements", err)
	}
	closed, err := s.readPeriods(ctx)
	if err != nil {
		return err
	}
	s.periods.set(closed)
	for sp := range counted {
		if closed[sp.period] == "" {
			continue
		}
		if err := s.settle(ctx, sp.seafarer, sp.period); err != nil {
			return err
		}
	}
	return nil
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("quota: %s: %w", what, err)
}

// settle makes sure a seafarer's figures in closed period w are either
// frozen by its close or moved to an open period, and indexed there.
func (s *RedisStore) settle(ctx context.Context, seafarerID, w string) error {
	for range 100 { // each step moves to a later period; closes are rare
		closed, err := s.readPeriods(ctx)
		if err != nil {
			return err
		}
		if closed[w] == "" {
			return nil
		}
		start, end, err := billing.PeriodBounds(w)
		if err != nil {
			return err
		}
		target := firstOpenAfter(w, closed)
		keys := append([]string{s.statementKey(seafarerID, w), s.statementKey(seafarerID, target)},
			s.ledgerKeysBetween(seafarerID, start.Add(-s.opts.DedupeWindow-24*time.Hour), end)...)
		reply, err := reclassifyScript.Run(ctx, s.rdb, keys, w, target).StringSlice()
		if isStale(err) {
			continue // target was closed meanwhile: read the list again
		} else if err != nil {
			return fmt.Errorf("quota: move figures of a closed period: %w", err)
		}
		if reply[0] == frozenClosed {
			return nil
		}
		moved := reply[1]
		fields, err := s.rdb.HKeys(ctx, s.statementKey(seafarerID, moved)).Result()
		if err != nil {
			return fmt.Errorf("quota: move figures of a closed period: %w", err)
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, s.periodSeafarersKey(moved), seafarerID)
			for _, g := range programmesIn(fields) {
				p.SAdd(ctx, s.programmeSeafarersKey(g, moved), seafarerID)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("quota: index moved figures: %w", err)
		}
		w = moved // the next read tells whether it was closed meanwhile
	}
	return wuyou.Errorf(wuyou.EINTERNAL, "figures of %s keep landing in closed periods", seafarerID)
}

// programmesIn lists the programmes named by statement hash fields.
func programmesIn(fields []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fields {
		if strings.HasPrefix(f, "a:") && len(f) > 10 {
			f = f[10:] // "a:YYYY-MM:"
		}
		if rest, ok := strings.CutPrefix(f, "p:"); ok {
			if g, _, ok := strings.Cut(rest, ":"); ok && !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	return out
}

// reclassifyScript moves a seafarer's figures out of a closed period that
// its close did not freeze (they were written by a debit that believed the
// period open) into a later open period, as adjustments naming their period,
// and rewrites the ledger entries counted in it to say so.
//
// KEYS[1] statement hash of the closed period W, KEYS[2] that of the target
// period R, KEYS[3…] the ledger buckets that can hold calls counted in W
// (calls made from a dedupe window before W to its end).
// ARGV[1] W, ARGV[2] R.
// Reply: {"closed", ""} when the close froze W's figures (nothing moves),
// else {"moved", the period now holding them} (moved now or before).
// Error "ESTALE" (nothing written) when R's figures are frozen too.
var reclassifyScript = redis.NewScript(`
local f = redis.call('HGET', KEYS[1], 'frozen')
if f == 'closed' then return {'closed', ''} end
if f then return {'moved', string.sub(f, 7)} end
if redis.call('HEXISTS', KEYS[2], 'frozen') == 1 then
  return redis.error_reply('ESTALE ' .. ARGV[2] .. ' is closed too')
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local k, v = all[i], all[i+1]
  if k == 'cur' then
    redis.call('HSET', KEYS[2], 'cur', v)
  elseif string.sub(k, 1, 2) == 'a:' then
    redis.call('HINCRBY', KEYS[2], k, v)
  else
    redis.call('HINCRBY', KEYS[2], 'a:' .. ARGV[1] .. ':' .. k, v)
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'frozen', 'moved:' .. ARGV[2])
-- A debit record's 16th and 17th fields are its statement and adjusted
-- periods (ledger.go); its 18th on are draws.
local function restate(rec)
  if string.sub(rec, 1, 2) ~= 'd ' then return rec end
  local f = {}
  for x in string.gmatch(rec .. ' ', '([^ ]*) ') do f[#f+1] = x end
  if f[16] ~= ARGV[1] then return rec end
  f[16] = ARGV[2]
  if f[17] == '' then f[17] = ARGV[1] end
  return table.concat(f, ' ')
end
for i = 3, #KEYS do
  local b = redis.call('GET', KEYS[i])
  if b and string.find(b, ' ' .. ARGV[1] .. ' ', 1, true) then
    local out = {}
    for rec in string.gmatch(b, '\n([^\n]*)') do out[#out+1] = restate(rec) end
    redis.call('SET', KEYS[i], '\n' .. table.concat(out, '\n'), 'KEEPTTL')
  end
end
return {'moved', ARGV[2]}
`)

// parsePeriodState reads a periods hash value.
func parsePeriodState(period, v string) *billing.PeriodState {
	st := &billing.PeriodState{Period: period, Status: billing.PeriodOpen}
	status, at, ok := strings.Cut(v, ":")
	if !ok {
		return st
	}
	st.Status = status
	if n, err := strconv.ParseInt(at, 10, 64); err == nil {
		t := time.Unix(n, 0).UTC()
		st.ClosedAt = &t
	}
	return st
}

// PeriodState returns whether period is open, closing or closed. EINVALID.
func (s *RedisStore) PeriodState(ctx context.Context, period string) (*billing.PeriodState, error) {
	if _, _, err := billing.PeriodBounds(period); err != nil {
		return nil, err
	}
	v, err := s.rdb.HGet(ctx, s.periodsKey(), period).Result()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("quota: period state: %w", err)
	}
	return parsePeriodState(period, v), nil
}

// ClosePeriod freezes every seafarer's figures in period (see the top of this
// file). It is safe to repeat and to run concurrently; a close that stopped
// half-way finishes when it is run again. Closing a closed period changes
// nothing. EINVALID.
func (s *RedisStore) ClosePeriod(ctx context.Context, period string) (*billing.PeriodState, error) {
	if _, _, err := billing.PeriodBounds(period); err != nil {
		return nil, err
	}
	key := s.periodsKey()
	if err := s.rdb.HSetNX(ctx, key, period, "closing:"+strconv.FormatInt(s.now().Unix(), 10)).Err(); err != nil {
		return nil, fmt.Errorf("quota: close %s: %w", period, err)
	}
	st, err := s.PeriodState(ctx, period)
	if err != nil || st.Status == billing.PeriodClosed {
		return st, err
	}
	s.periods.forget()
	var frozen int64
	seen := map[string]bool{}
	iter := s.rdb.SScan(ctx, s.periodSeafarersKey(period), 0, "", 1000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		fields := make([]*redis.StringSliceCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				p.HSetNX(ctx, s.statementKey(id, period), "frozen", frozenClosed)
				fields[i] = p.HKeys(ctx, s.statementKey(id, period))
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The figures are frozen now: index every programme they name, so
		// a programme's closed statement does not wait for (and then change
		// with) the index step of a debit the close caught in flight.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				for _, g := range programmesIn(fields[i].Val()) {
					p.SAdd(ctx, s.programmeSeafarersKey(g, period), id)
				}
			}
			return nil
		})
		frozen += int64(len(batch))
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if id := iter.Val(); !seen[id] {
			seen[id] = true
			batch = append(batch, id)
		}
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return nil, fmt.Errorf("quota: close %s: %w", period, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("quota: close %s: %w", period, err)
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("quota: close %s: %w", period, err)
	}
	closedAt := strconv.FormatInt(st.ClosedAt.Unix(), 10)
	if err := s.rdb.HSet(ctx, key, period, "closed:"+closedAt).Err(); err != nil {
		return nil, fmt.Errorf("quota: close %s: %w", period, err)
	}
	s.periods.forget()
	st.Status = billing.PeriodClosed
	st.Seafarers = &frozen
	return st, nil
}

// memberBatch and memberWorkers: how many members of a set are read per
// round trip, and how many round trips are in flight at once (reading a
// large statement is bounded by round trips and decoding, not by Redis).
const (
	memberBatch   = 1000
	memberWorkers = 4
)

// eachMember calls fn with batches of up to memberBatch distinct members of
// a set, from memberWorkers goroutines at once, and returns fn's first error.
func (s *RedisStore) eachMember(ctx context.Context, key string, fn func([]string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []string)
	errs := make(chan error, memberWorkers)
	var wg sync.WaitGroup
	for range memberWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := fn(b); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	send := func(b []string) bool {
		select {
		case batches <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	seen := map[string]bool{}
	batch := make([]string, 0, memberBatch)
	iter := s.rdb.SScan(ctx, key, 0, "", 5*memberBatch).Iterator()
	for iter.Next(ctx) {
		if id := iter.Val(); !seen[id] {
			seen[id] = true
			batch = append(batch, id)
		}
		if len(batch) == memberBatch {
			if !send(batch) {
				break
			}
			batch = make([]string, 0, memberBatch)
		}
	}
	if len(batch) > 0 && iter.Err() == nil {
		send(batch)
	}
	close(batches)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("quota: read %s: %w", key, err)
	}
	return nil
}

// statementHashes reads the statement hashes of seafarerIDs in period.
func (s *RedisStore) statementHashes(ctx context.Context, period string, seafarerIDs []string) ([]map[string]string, error) {
	keys := make([]string, len(seafarerIDs))
	for i, id := range seafarerIDs {
		keys[i] = s.statementKey(id, period)
	}
	hs, err := s.hashes(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("quota: statement figures: %w", err)
	}
	return hs, nil
}

// hashes reads many hashes in one pipelined round trip (a missing one is
// empty).
func (s *RedisStore) hashes(ctx context.Context, keys []string) ([]map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// ProgrammeUsage implements billing.StatementStore.
func (s *RedisStore) ProgrammeUsage(ctx context.Context, period, programmeID string, fn func(billing.SeafarerUsage) error) error {
	st, err := s.PeriodState(ctx, period)
	if err != nil {
		return err
	}
	closed := st.Status == billing.PeriodClosed
	var mu sync.Mutex // fn is called from one goroutine at a time
	return s.eachMember(ctx, s.programmeSeafarersKey(programmeID, period), func(ids []string) error {
		hs, err := s.statementHashes(ctx, period, ids)
		if err != nil {
			return err
		}
		us := make([]billing.SeafarerUsage, len(hs))
		for i, h := range hs {
			if us[i], err = seafarerUsage(ids[i], h, programmeID, closed); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range us {
			if err := fn(u); err != nil {
				return err
			}
		}
		return nil
	})
}

// SeafarersUsage implements billing.StatementStore.
func (s *RedisStore) SeafarersUsage(ctx context.Context, period string, seafarerIDs []string) ([]billing.SeafarerUsage, error) {
	st, err := s.PeriodState(ctx, period)
	if err != nil {
		return nil, err
	}
	hs, err := s.statementHashes(ctx, period, seafarerIDs)
	if err != nil {
		return nil, err
	}
	out := make([]billing.SeafarerUsage, len(hs))
	for i, h := range hs {
		if out[i], err = seafarerUsage(seafarerIDs[i], h, "", st.Status == billing.PeriodClosed); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// seafarerUsage reads one statement hash: the whole of it, or the share of
// one programme's packs (whose billable seconds are the seconds they
// covered: the programme pays for no overage). Of a closed period only
// figures its close froze count.
func seafarerUsage(seafarerID string, h map[string]string, programmeID string, closedPeriod bool) (billing.SeafarerUsage, error) {
	u := billing.SeafarerUsage{SeafarerID: seafarerID}
	frozen := h["frozen"]
	if strings.HasPrefix(frozen, frozenMoved) || closedPeriod && frozen != frozenClosed {
		return u, nil
	}
	cur := h["cur"]
	adjustments := map[string]*billing.Figures{}
	for field, v := range h {
		target := &u.Period
		name := field
		if rest, ok := strings.CutPrefix(field, "a:"); ok {
			period, n, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			if adjustments[period] == nil {
				adjustments[period] = &billing.Figures{}
			}
			target, name = adjustments[period], n
		}
		if programmeID != "" {
			n, ok := strings.CutPrefix(name, "p:"+programmeID+":")
			if !ok {
				continue
			}
			name = "share:" + n
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if name == "cur" || name == "frozen" {
				continue
			}
			return u, fmt.Errorf("quota: statement figures of %s: malformed %s %q", seafarerID, field, v)
		}
		switch name {
		case "calls", "share:calls":
			target.Calls = n
		case "billable":
			target.BillableSeconds = n
		case "covered":
			target.CoveredSeconds = n
		case "share:covered":
			target.CoveredSeconds, target.BillableSeconds = n, n
		case "overage":
			target.OverageSeconds = n
		case "amount":
			target.OverageAmount = billing.Money{Minor: n, Currency: cur}
		case "welfare", "share:welfare":
			target.WelfareCost = billing.Money{Minor: n, Currency: cur}
		}
	}
	for period, f := range adjustments {
		u.Adjustments = append(u.Adjustments, billing.Adjustment{Period: period, Figures: withCurrency(*f, cur)})
	}
	sort.Slice(u.Adjustments, func(i, j int) bool { return u.Adjustments[i].Period < u.Adjustments[j].Period })
	u.Period = withCurrency(u.Period, cur)
	return u, nil
}

func withCurrency(f billing.Figures, cur string) billing.Figures {
	f.OverageAmount.Currency, f.WelfareCost.Currency = cur, cur
	return f
}

// SeafarerCalls implements billing.StatementStore: the debits whose
// statement period is period, from the ledger. The lines of a closed period
// are stored the first time they are produced and read back from then on,
// since the ledger itself is trimmed after the ledger horizon.
func (s *RedisStore) SeafarerCalls(ctx context.Context, period, seafarerID string) ([]billing.CallLine, error) {
	st, err := s.PeriodState(ctx, period)
	if err != nil {
		return nil, err
	}
	closed := st.Status == billing.PeriodClosed
	linesKey := s.linesKey(seafarerID, period)
	if closed {
		frozen, err := s.rdb.HGet(ctx, s.statementKey(seafarerID, period), "frozen").Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("quota: statement lines: %w", err)
		}
		if frozen != frozenClosed {
			return []billing.CallLine{}, nil
		}
		if lines, ok, err := s.storedLines(ctx, linesKey); ok || err != nil {
			return lines, err
		}
	}
	lines, err := s.callLines(ctx, period, seafarerID)
	if err != nil || !closed {
		return lines, err
	}
	js, err := json.Marshal(lines)
	if err != nil {
		return nil, err
	}
	if err := s.rdb.SetNX(ctx, linesKey, js, 0).Err(); err != nil {
		return nil, fmt.Errorf("quota: store statement lines: %w", err)
	}
	lines, _, err = s.storedLines(ctx, linesKey) // another reader may have stored them first
	return lines, err
}

func (s *RedisStore) storedLines(ctx context.Context, key string) ([]billing.CallLine, bool, error) {
	js, err := s.rdb.Get(ctx, key).Bytes()
	if err == redis.Nil {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("quota: statement lines: %w", err)
	}
	var lines []billing.CallLine
	if err := json.Unmarshal(js, &lines); err != nil {
		return nil, false, fmt.Errorf("quota: stored statement lines: %w", err)
	}
	return lines, true, nil
}

// callLines reads the ledger entries that can be counted in period (calls
// made from a dedupe window before it to its end) and keeps those that are.
func (s *RedisStore) callLines(ctx context.Context, period, seafarerID string) ([]billing.CallLine, error) {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	entries, err := s.ledgerBetween(ctx, seafarerID, start.Add(-s.opts.DedupeWindow-24*time.Hour), end)
	if err != nil {
		return nil, fmt.Errorf("quota: statement lines: %w", err)
	}
	lines := []billing.CallLine{}
	for _, e := range entries {
		if e.Kind != KindDebit || e.StatementPeriod != period || e.CallTime == nil {
			continue
		}
		l := billing.CallLine{
			EntryID: e.ID, EventID: e.EventID, CallTime: e.CallTime.UTC(), MSISDN: e.MSISDN,
			VisitedCountry: e.VisitedCountry, AdjustsPeriod: e.AdjustsPeriod,
			Figures: billing.Figures{Calls: 1, BillableSeconds: e.BillableSeconds, CoveredSeconds: e.CoveredSeconds,
				OverageSeconds: e.OverageSeconds, OverageAmount: e.OverageAmount},
		}
		if e.WelfareCost != nil {
			l.WelfareCost = *e.WelfareCost
		}
		lines = append(lines, l)
	}
	sort.Slice(lines, func(i, j int) bool {
		if !lines[i].CallTime.Equal(lines[j].CallTime) {
			return lines[i].CallTime.Before(lines[j].CallTime)
		}
		return lines[i].EntryID < lines[j].EntryID
	})
	return lines, nil
}

// UsageByMSISDN implements billing.StatementStore.
func (s *RedisStore) UsageByMSISDN(ctx context.Context, period string, fn func(billing.SettlementRow) error) error {
	if _, _, err := billing.PeriodBounds(period); err != nil {
		return err
	}
	var mu sync.Mutex // fn is called from one goroutine at a time
	return s.eachMember(ctx, s.callersKey(period), func(ids []string) error {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = s.callsKey(id, period)
		}
		hs, err := s.hashes(ctx, keys)
		if err != nil {
			return fmt.Errorf("quota: figures by MSISDN: %w", err)
		}
		for _, h := range hs {
			rows := map[string]*billing.SettlementRow{}
			for field, v := range h {
				i := strings.LastIndexByte(field, ':')
				if i < 0 {
					continue
				}
				msisdn, name := field[:i], field[i+1:]
				n, _ := strconv.ParseInt(v, 10, 64)
				r := rows[msisdn]
				if r == nil {
					r = &billing.SettlementRow{MSISDN: msisdn}
					rows[msisdn] = r
				}
				switch name {
				case "calls":
					r.Calls = n
				case "billable":
					r.BillableSeconds = n
				case "covered":
					r.CoveredSeconds = n
				}
			}
			mu.Lock()
			for _, r := range rows {
				if err := fn(*r); err != nil {
					mu.Unlock()
					return err
				}
			}
			mu.Unlock()
		}
		return nil
	})
}
