package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
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

// Options tune retention.
type Options struct {
	// DedupeWindow is how long event identities are remembered, by call time.
	DedupeWindow time.Duration
	// HotStateGuard makes the store refuse to meter, add or void grants
	// while Redis lacks the hot-state mark (rebuild.go): set by wuyoud, whose
	// Redis may come back empty; tests of the store alone leave it off.
	HotStateGuard bool
	// Claims keeps event identity claims (identity.go); nil keeps them in
	// Redis. wuyoud keeps them in PostgreSQL, out of Redis's memory.
	Claims ClaimStore
	// Expiries names the grants about to expire (PGGrants), for
	// ExpiringBetween; Redis keeps no index of them.
	Expiries ExpiryIndex
}

// RedisStore keeps the hot metering state in Redis: what a debit must read
// and change atomically, and nothing the system of record (PostgreSQL) can
// answer instead. RebuildHotState writes it all again from PostgreSQL.
//
// Layout (T = "<prefix>:{s:<seafarer id>}", one hash slot per seafarer):
//
//	T:g   hash  grant id -> "granted:remaining:effective:expires:priority:issued_ms:voided:programme[:unit]"
//	T:seen zset identity -> call time (unix s); forgotten after the dedupe window
//	T:r   hash  ledger records applied here but not yet recorded in PostgreSQL (pending.go)
//	T:m:YYYY-MM hash  billable and overage amounts of that month's calls per unit (monthFields; the allowance's figures)
//	T:n   hash  "<low|exhausted>:<grant set>" -> the identity that announced it and what (debitScript)
//	T:x   hash  session id -> the carrier session's reservation and charge (sessions.go)
//	<prefix>:sx:<session id>  string  the seafarer a session is held for (sessions.go)
//
// Keys written by earlier versions (T:l:<week> ledger buckets, T:s, T:sl
// and T:c statement figures, T:u, the programme usage and period keys) are
// neither read nor written any more: the system of record answers what
// they did. The buckets and T:c expire by themselves; the rest can be
// deleted.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	now    wuyou.Clock
	opts   Options
	reads  readBatcher // allowance reads waiting for a round trip
}

// NewRedisStore returns a store under prefix.
func NewRedisStore(rdb redis.UniversalClient, prefix string, now wuyou.Clock, opts Options) *RedisStore {
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = 720 * time.Hour
	}
	return &RedisStore{rdb: rdb, prefix: prefix, now: now, opts: opts}
}

// DedupeWindow is the window identities are remembered for.
func (s *RedisStore) DedupeWindow() time.Duration { return s.opts.DedupeWindow }

type seafarerKeys struct{ grants, seen, pending, notes, sessions string }

func (s *RedisStore) keys(seafarerID string) seafarerKeys {
	t := crew.SeafarerTag(s.prefix, seafarerID)
	return seafarerKeys{t + ":g", t + ":seen", t + ":r", t + ":n", t + ":x"}
}

// monthKey holds a seafarer's billable and overage seconds of the calls
// made in one month (by call time): the allowance's figures of this month.
func (s *RedisStore) monthKey(seafarerID, period string) string {
	return crew.SeafarerTag(s.prefix, seafarerID) + ":m:" + period
}

// monthFiguresRetention is how long a month's figures outlive the month: the
// allowance reads only the current month's.
const monthFiguresRetention = 24 * time.Hour

// monthTTL is how long, from now, the figures of a month ending at end are
// kept (at least an hour). Relative to the store's clock, not Redis's, so
// tests with a clock work.
func monthTTL(end, now time.Time) int64 {
	return int64(max(end.Add(monthFiguresRetention).Sub(now), time.Hour) / time.Second)
}

// DebitEntryID is the ledger entry id of the call with this identity: the
// same event always yields the same id, so repeats downstream can be dropped.
func DebitEntryID(source, eventID string) string {
	h := sha256.Sum256([]byte(source + "\x00" + eventID))
	return "d_" + hex.EncodeToString(h[:10])
}

// Debit applies one call. See Meter.
func (s *RedisStore) Debit(ctx context.Context, u Usage) (*DebitResult, error) {
	rs, err := s.DebitBatch(ctx, []Usage{u})
	if err != nil {
		return nil, err
	}
	if rs[0].Err != nil {
		return nil, rs[0].Err
	}
	return rs[0], nil
}

// DebitBatch applies many calls: one round trip to claim their identities
// across all seafarers, one to debit. Results are in the order of us. An
// error is returned only when Redis could not be reached or refused
// service (an outage: nothing to do but retry the batch); a failure that
// belongs to one usage is that result's Err, and the others are applied.
//
// Identity (source + event id) is claimed globally before the debit (see
// claimScript): the first usage that claims it names the seafarer it is
// charged to and a fingerprint of its content. A later usage with the same
// identity and fingerprint is debited to the claimed seafarer (the
// seafarer's own dedupe then answers it as a duplicate, or applies it if a
// crash came between claim and debit); one with another fingerprint is
// Conflicting and changes nothing.
func (s *RedisStore) DebitBatch(ctx context.Context, us []Usage) ([]*DebitResult, error) {
	b, err := s.Claim(ctx, us)
	if err != nil {
		return nil, err
	}
	return s.debitClaimed(ctx, b)
}

// ClaimedBatch is a batch of usages whose event identities are claimed
// (Claim): what is left of it is the debits (SettleClaimed).
type ClaimedBatch struct {
	us     []Usage
	claims []identityClaim
}

// Claim claims the event identities of a batch of usages across all
// seafarers (in the ClaimStore when there is one, else in Redis), the first
// half of Settle: a caller that settles batches one after another can claim
// the next batch while the one before is debited, as carrier.Consumer does.
// Claiming again is harmless: a claim held for the same seafarer and
// fingerprint is the same claim. An error means the claims' store could
// not be reached: claim the batch again.
func (s *RedisStore) Claim(ctx context.Context, us []Usage) (*ClaimedBatch, error) {
	claims, err := s.claim(ctx, us)
	if err != nil {
		return nil, err
	}
	return &ClaimedBatch{us: us, claims: claims}, nil
}

// debitClaimed debits the usages of b that their claims let through, in
// one pipeline; the others are answered from their claims.
func (s *RedisStore) debitClaimed(ctx context.Context, b *ClaimedBatch) ([]*DebitResult, error) {
	us, claims := b.us, b.claims
	out := make([]*DebitResult, len(us))
	todo := make([]Usage, 0, len(us))
	at := make([]int, 0, len(us))
	for i, u := range us {
		c := claims[i]
		switch {
		case c.err != nil:
			out[i] = &DebitResult{SeafarerID: u.SeafarerID, Err: c.err}
		case c.fingerprint != u.fingerprint():
			out[i] = &DebitResult{SeafarerID: c.seafarerID, Conflicting: true}
		default:
			u.SeafarerID = c.seafarerID
			todo = append(todo, u)
			at = append(at, i)
		}
	}
	rs, err := s.debitLanes(ctx, todo)
	if err != nil {
		return nil, err
	}
	for j, r := range rs {
		out[at[j]] = r
	}
	return out, nil
}

// laneMin is the smallest batch debitLanes splits.
const laneMin = 128

// debitLanes debits us in two pipelines at once, each seafarer's usages in
// one of them in the order given, so that Redis runs one lane's scripts
// while this process writes or reads the other's (a single pipeline leaves
// Redis idle while its commands are encoded and its replies decoded).
// A seafarer's calls are still drawn in order; calls of different
// seafarers touch different keys, so their order does not matter. Results
// are in the order of us; an error of either lane fails the batch, which
// is settled again (idempotently).
func (s *RedisStore) debitLanes(ctx context.Context, us []Usage) ([]*DebitResult, error) {
	if len(us) < laneMin {
		return s.debitPipeline(ctx, us)
	}
	var lanes [2]struct {
		us  []Usage
		at  []int
		out []*DebitResult
		err error
	}
	for i, u := range us {
		l := &lanes[laneOf(u.SeafarerID)]
		l.us, l.at = append(l.us, u), append(l.at, i)
	}
	var wg sync.WaitGroup
	for i := range lanes {
		wg.Go(func() { lanes[i].out, lanes[i].err = s.debitPipeline(ctx, lanes[i].us) })
	}
	wg.Wait()
	out := make([]*DebitResult, len(us))
	for _, l := range lanes {
		if l.err != nil {
			return nil, l.err
		}
		for j, r := range l.out {
			out[l.at[j]] = r
		}
	}
	return out, nil
}

// laneOf is the lane of a seafarer's usages (debitLanes): 0 or 1.
func laneOf(seafarerID string) int {
	h := fnv.New32a()
	h.Write([]byte(seafarerID))
	return int(h.Sum32() & 1)
}

func (s *RedisStore) debitPipeline(ctx context.Context, us []Usage) ([]*DebitResult, error) {
	if len(us) == 0 {
		return nil, nil
	}
	out := make([]*DebitResult, len(us))
	cmds := make([]*redis.Cmd, len(us))
	// Every command carries its own error (a lost connection's too), read
	// below: the pipeline's is only the first of them.
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range us {
			c, err := s.debitCmd(ctx, p, u)
			if err != nil {
				out[i] = &DebitResult{SeafarerID: u.SeafarerID, Err: err}
				continue
			}
			cmds[i] = c
		}
		return nil
	})
	noScript := false
	for _, c := range cmds {
		noScript = noScript || c != nil && isNoScript(c.Err())
	}
	if noScript { // a restarted Redis lost its script cache: load and retry
		// ... unless the restart cost data: a guarded store meters only on
		// the Redis its hot state was written to (rebuild.go). The mark's
		// check before the batch could not see a restart that came after.
		if s.opts.HotStateGuard {
			if current, err := s.HotStateCurrent(ctx); err != nil {
				return nil, err
			} else if !current {
				return nil, &wuyou.Error{Code: wuyou.EUNAVAILABLE, Reason: "hot_state_missing", Message: ErrHotStateMissing.Error()}
			}
		}
		if err := debitScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("quota: load debit script: %w", err)
		}
		// Only the calls refused: another client (another lane, another
		// replica) may have loaded the script while this pipeline ran, and
		// the calls after that were applied; sent again, they would come
		// back as repeats of themselves.
		var again []Usage
		var at []int
		for i, c := range cmds {
			if c != nil && isNoScript(c.Err()) {
				again, at = append(again, us[i]), append(at, i)
				cmds[i] = nil
			}
		}
		rs, err := s.debitPipeline(ctx, again)
		if err != nil {
			return nil, err
		}
		for j, r := range rs {
			out[at[j]] = r
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if err := c.Err(); err != nil {
			if err := classify(err); isOutage(err) {
				return nil, err
			} else {
				out[i] = &DebitResult{SeafarerID: us[i].SeafarerID, Err: err}
			}
			continue
		}
		r, err := s.debitResult(ctx, c, us[i])
		if err != nil {
			if isOutage(err) {
				return nil, err
			}
			r = &DebitResult{SeafarerID: us[i].SeafarerID, Err: err}
		}
		out[i] = r
	}
	return out, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// outagePrefixes are the error replies with which Redis refuses service as
// a whole (loading, busy, out of memory, no master, read-only replica…):
// retrying later helps. Any other error reply to a script is about the call
// the script was given.
var outagePrefixes = []string{"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY",
	"NOREPLICAS", "OOM", "MISCONF", "NOSCRIPT", "EXECABORT", "MOVED", "ASK", "CROSSSLOT", "NOAUTH", "WRONGPASS", "NOPERM"}

// classify turns a debit's error into an outage (wrapped as is: the batch
// is retried) or a failure of that call alone (an EINTERNAL *wuyou.Error
// with Reason "apply_failed").
func classify(err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return fmt.Errorf("quota: debit: %w", err) // the connection, a timeout: an outage
	}
	msg := rerr.Error()
	for _, p := range outagePrefixes {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("quota: debit: %w", err)
		}
	}
	return &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: "the debit script refused the call: " + msg}
}

// isOutage reports whether err means Redis is out of reach or out of
// service, rather than that one call could not be applied.
func isOutage(err error) bool {
	if err == nil {
		return false
	}
	var we *wuyou.Error
	return !errors.As(err, &we)
}

type scripter interface {
	redis.Scripter
}

// lowPercent is the threshold of a grant whose hot copy names none (the
// default notify_at, notify.go): wuyou.quota.low is announced when a call
// takes the active grants' remaining below this share of their total.
const lowPercent = DefaultLowPercent

// debitCall is the debit script's keys and arguments, named, in the order
// the script reads them (scripts.go).
type debitCall struct {
	grants, seen, pending, month, notes, sessions string

	identity                   string
	callTime, billable, cutoff int64
	recordHead                 string
	pendingTTL                 int64
	overagePrice, increment    int64
	currencyEscaped            string
	now, wholesalePrice        int64
	period                     string
	monthTTL                   int64
	lowPercent, notesTTL       int64
	atMs                       int64
	// unit is "" for seconds (as seconds grants store it), else the unit;
	// the month fields are monthFields(unit).
	unit, monthBillable, monthOverage string
	// billableSuffix follows the amount in the record's billable field
	// (billableSuffix); sessionID and sessionMode link the call to a carrier
	// session (sessions.go), sessionsTTL keeps the sessions hash.
	billableSuffix, sessionID, sessionMode string
	sessionsTTL                            int64
}

func (d *debitCall) run(ctx context.Context, r scripter) *redis.Cmd {
	return debitScript.Run(ctx, r,
		[]string{d.grants, d.seen, d.pending, d.month, d.notes, d.sessions},
		d.identity, d.callTime, d.billable, d.cutoff, d.recordHead, d.pendingTTL,
		d.overagePrice, d.increment, d.currencyEscaped, d.now, d.wholesalePrice, d.period,
		d.monthTTL, d.lowPercent, d.notesTTL, d.atMs, d.unit, d.monthBillable, d.monthOverage,
		d.billableSuffix, d.sessionID, d.sessionMode, d.sessionsTTL)
}

func (s *RedisStore) debitCmd(ctx context.Context, r scripter, u Usage) (*redis.Cmd, error) {
	if u.SeafarerID == "" || u.Source == "" || u.EventID == "" {
		return nil, wuyou.Errorf(wuyou.EINVALID, "usage needs a seafarer, a source and an event id")
	}
	if u.BillableSeconds < 0 || u.Billable < 0 {
		return nil, wuyou.Errorf(wuyou.EINVALID, "billable amounts must not be negative")
	}
	unit := u.unit()
	if !billing.ValidUnit(unit) {
		return nil, wuyou.Errorf(wuyou.EINVALID, "unit %q is not one of seconds, bytes, sms", u.Unit)
	}
	if unit != billing.UnitSeconds && u.BillableSeconds != 0 {
		return nil, wuyou.Errorf(wuyou.EINVALID, "a usage in %s bills no seconds", unit)
	}
	if u.Free && u.billable() != 0 {
		return nil, wuyou.Errorf(wuyou.EINVALID, "a free call bills nothing")
	}
	scriptUnit := unit
	if unit == billing.UnitSeconds {
		scriptUnit = ""
	}
	monthBillable, monthOverage := monthFields(unit)
	incr := u.Increment
	if incr <= 0 {
		incr = billing.DefaultIncrement
	}
	now := s.now()
	identity := DebitEntryID(u.Source, u.EventID)[2:]
	period := billing.PeriodOf(u.CallTime)
	_, periodEnd := billing.PeriodBoundsOf(u.CallTime)
	k := s.keys(u.SeafarerID)
	d := debitCall{
		grants: k.grants, seen: k.seen, pending: k.pending, month: s.monthKey(u.SeafarerID, period), notes: k.notes,
		sessions: k.sessions,
		identity: identity, callTime: u.CallTime.Unix(), billable: u.billable(),
		cutoff:       DedupeCutoff(now, s.opts.DedupeWindow).Unix(),
		recordHead:   debitRecordHead(u, identity, now),
		pendingTTL:   s.pendingTTL(),
		overagePrice: u.OveragePrice.Minor, increment: incr, currencyEscaped: escapeField(u.OveragePrice.Currency),
		now: now.Unix(), wholesalePrice: u.WholesalePrice.Minor, period: period,
		monthTTL:   monthTTL(periodEnd, now),
		lowPercent: lowPercent, notesTTL: int64((s.opts.DedupeWindow + 24*time.Hour) / time.Second),
		atMs: now.UnixMilli(),
		unit: scriptUnit, monthBillable: monthBillable, monthOverage: monthOverage,
		billableSuffix: billableSuffix(u), sessionID: u.CallID, sessionMode: u.sessionMode(),
		sessionsTTL: s.sessionsTTL(),
	}
	return d.run(ctx, r), nil
}

// debitResult reads a debit script's reply; u is the usage it applied.
func (s *RedisStore) debitResult(ctx context.Context, c *redis.Cmd, u Usage) (*DebitResult, error) {
	vals, err := c.Slice()
	if err != nil {
		return nil, classify(err)
	}
	if len(vals) < 6 {
		return nil, &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: fmt.Sprintf("debit script replied %d values", len(vals))}
	}
	code, _ := vals[0].(int64)
	r := &DebitResult{SeafarerID: u.SeafarerID, Duplicate: code != 0, RemainingNow: vals[2].(int64), GrantedNow: vals[3].(int64)}
	if code == 2 { // a terminate of a session the carrier's record charged
		return r, nil
	}
	notes, _ := vals[5].([]any)
	for _, n := range notes {
		str, _ := n.(string)
		note, err := parseNote(str)
		if err != nil {
			return nil, err
		}
		note.Unit = storedUnit(u.unit())
		r.Notes = append(r.Notes, note)
	}
	// The notes hash answers a repeat in its own order: put them in one.
	sort.SliceStable(r.Notes, func(i, j int) bool { return noteOrder(r.Notes[i]) < noteOrder(r.Notes[j]) })
	rec, _ := vals[1].(string)
	first := u.CallTime // the call time of the application whose record rec is
	if score, _ := vals[4].(string); r.Duplicate && score != "" {
		t, _ := strconv.ParseInt(score, 10, 64)
		first = time.Unix(t, 0)
	}
	if rec != "" {
		e, err := decodeRecord(ledgerBucket(first), rec)
		if err != nil {
			return nil, &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: err.Error()}
		}
		e.Source, e.CallID = u.Source, u.CallID
		programmes := make(map[string]string, (len(vals)-6)/2)
		for i := 6; i+1 < len(vals); i += 2 {
			id, _ := vals[i].(string)
			programmes[id], _ = vals[i+1].(string)
		}
		nameProgrammes(e, programmes)
		// Each draw's share of the welfare cost, at the increment the
		// script priced the call with (statements per programme sum them).
		incr := u.Increment
		if incr <= 0 {
			incr = billing.DefaultIncrement
		}
		SplitWelfare(e, incr, u.WholesalePrice)
		r.Entry = e
	}
	return r, nil
}

// parseNote reads one note of the debit script's reply:
// "kind set remaining granted at_ms date[ threshold]" (a low note names its
// threshold, notify.go). A note announced before dates has no date, one
// announced before thresholds no threshold (a low one was the default's);
// a date is all digits, a threshold never is.
func parseNote(s string) (Note, error) {
	malformed := &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: fmt.Sprintf("malformed note %q", s)}
	f := strings.Fields(s)
	if len(f) < 5 || len(f) > 7 {
		return Note{}, malformed
	}
	rem, err1 := strconv.ParseInt(f[2], 10, 64)
	granted, err2 := strconv.ParseInt(f[3], 10, 64)
	ms, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Note{}, malformed
	}
	n := Note{Kind: f[0], GrantSet: f[1], RemainingSeconds: rem, GrantedSeconds: granted, At: time.UnixMilli(ms).UTC()}
	rest := f[5:]
	if len(rest) > 0 {
		if date, err := strconv.ParseInt(rest[0], 10, 64); err == nil {
			if date > 0 {
				if n.Kind == NoteExhausted {
					n.NextAt = time.Unix(date, 0).UTC()
				} else {
					n.ExpiresAt = time.Unix(date, 0).UTC()
				}
			}
			rest = rest[1:]
		}
	}
	if len(rest) > 1 {
		return Note{}, malformed
	}
	if n.Kind == NoteLow {
		t := Threshold{Percent: DefaultLowPercent}
		if len(rest) == 1 {
			var err error
			if t, err = parseThreshold(rest[0]); err != nil {
				return Note{}, malformed
			}
		}
		n.Threshold = &t
	}
	return n, nil
}

// GrantInput is one pack to add to one seafarer.
type GrantInput struct {
	ID          string // deterministic per (issuance, seafarer) so a retry adds nothing
	SeafarerID  string
	ProgrammeID string
	// Seconds is the grant's amount in Unit ("" is seconds).
	Seconds     int64
	Unit        string
	EffectiveAt time.Time
	ExpiresAt   time.Time
	Priority    int
	// IssuedAt is when the grant was issued, as the system of record has
	// it (the last tie-break of the drawing order, so the same everywhere);
	// zero means now.
	IssuedAt time.Time
	// NotifyAt are the programme's thresholds (nil: the default; notify.go).
	NotifyAt []Threshold
}

// AddGrant adds a grant once; added is false when it already existed.
func (s *RedisStore) AddGrant(ctx context.Context, in GrantInput) (added bool, entry *LedgerEntry, err error) {
	// Times are kept in whole seconds: compare them as stored.
	if in.Seconds <= 0 || in.ExpiresAt.Unix() <= in.EffectiveAt.Unix() || in.Priority < 0 {
		return false, nil, wuyou.Errorf(wuyou.EINVALID, "grant needs positive seconds, a priority >= 0 and an expiry after its effective time")
	}
	if in.ID == "" || !plainID(in.ID) || !plainID(in.ProgrammeID) {
		return false, nil, wuyou.Errorf(wuyou.EINVALID, "grant and programme ids must be printable ASCII without spaces, quotes, backslashes or colons")
	}
	if !billing.ValidUnit(unitOrSeconds(in.Unit)) {
		return false, nil, wuyou.Errorf(wuyou.EINVALID, "unit %q is not one of seconds, bytes, sms", in.Unit)
	}
	if err := s.checkHot(ctx); err != nil {
		return false, nil, err
	}
	now := s.now()
	if !in.IssuedAt.IsZero() {
		now = in.IssuedAt
	}
	enc := encodeGrant(&Grant{GrantedSeconds: in.Seconds, RemainingSeconds: in.Seconds, EffectiveAt: in.EffectiveAt,
		ExpiresAt: in.ExpiresAt, Priority: in.Priority, IssuedAt: now, ProgrammeID: in.ProgrammeID, Unit: storedUnit(in.Unit), NotifyAt: in.NotifyAt})
	now = now.Truncate(time.Millisecond) // as the ledger keeps it
	entry = &LedgerEntry{ID: "g_" + in.ID, Kind: KindGrant, Unit: storedUnit(in.Unit), At: now, GrantID: in.ID, ProgrammeID: in.ProgrammeID, Seconds: in.Seconds, Draws: []Draw{}}
	k := s.keys(in.SeafarerID)
	added, err = s.rdb.HSetNX(ctx, k.grants, in.ID, enc).Result()
	if err != nil {
		return false, nil, fmt.Errorf("quota: add grant: %w", err)
	}
	if !added {
		// Added before: its entry is the one written then, so every copy of
		// it (the ledger topic, PostgreSQL) is the same entry.
		v, err := s.rdb.HGet(ctx, k.grants, in.ID).Result()
		if err != nil {
			return false, nil, fmt.Errorf("quota: add grant: read the stored grant: %w", err)
		}
		g, err := parseGrant(in.ID, v)
		if err != nil {
			return false, nil, err
		}
		entry.At, entry.ProgrammeID, entry.Seconds, entry.Unit = g.IssuedAt, g.ProgrammeID, g.GrantedSeconds, g.Unit
	}
	return added, entry, nil
}

// StoredVoid returns the ledger entry of a grant's void as written when it
// was voided, while it is pending (not yet recorded in the system of
// record), else nil. A caller that voids a grant already voided uses it to
// finish recording the entry.
func (s *RedisStore) StoredVoid(ctx context.Context, seafarerID, grantID string) (*LedgerEntry, error) {
	v, err := s.rdb.HGet(ctx, s.keys(seafarerID).pending, pendingVoidField(grantID)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("quota: stored void: %w", err)
	}
	return decodePending(v)
}

// plainID reports whether id can be stored as is: the debit script writes
// grant and programme ids into JSON, and a grant's record separates its
// fields with colons, both without escaping. A grant id that broke the JSON
// would fail every later debit drawing from it, after the debit was stored.
func plainID(id string) bool {
	for _, r := range id {
		if r <= ' ' || r > '~' || r == ':' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// VoidGrant sets a grant's remaining seconds to zero. ENOTFOUND; ECONFLICT
// when it is already voided.
func (s *RedisStore) VoidGrant(ctx context.Context, seafarerID, grantID string) (*LedgerEntry, error) {
	if !plainID(grantID) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	}
	if err := s.checkHot(ctx); err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Millisecond) // as the ledger keeps it
	entry := &LedgerEntry{ID: "v_" + grantID, Kind: KindVoid, At: now, GrantID: grantID}
	k := s.keys(seafarerID)
	reply, err := voidScript.Run(ctx, s.rdb, []string{k.grants, k.pending},
		grantID, pendingVoidField(grantID), pendingRecord(now, voidRecordHead(now, grantID)), s.pendingTTL()).Slice()
	var removed int64
	var unit string
	if err == nil && len(reply) == 2 {
		removed, _ = reply[0].(int64)
		unit, _ = reply[1].(string)
	}
	switch {
	case err != nil && strings.Contains(err.Error(), "ENOTFOUND"):
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	case err != nil && strings.Contains(err.Error(), "EVOIDED"):
		return nil, wuyou.Errorf(wuyou.ECONFLICT, "grant %s is already voided", grantID)
	case err != nil:
		return nil, fmt.Errorf("quota: void grant: %w", err)
	}
	entry.Seconds = removed
	entry.Unit = unit
	entry.Draws = []Draw{}
	return entry, nil
}

func parseGrant(id, v string) (*Grant, error) {
	f := strings.Split(v, ":")
	if len(f) < 8 || len(f) > 10 {
		return nil, fmt.Errorf("quota: grant %s: malformed %q", id, v)
	}
	var notifyAt []Threshold
	if len(f) == 10 && f[9] != "" {
		ts, err := parseThresholds(f[9])
		if err != nil {
			return nil, fmt.Errorf("quota: grant %s: %w", id, err)
		}
		notifyAt = ts
	}
	unit := ""
	if len(f) >= 9 && f[8] != "" {
		if unit = f[8]; unit == billing.UnitSeconds || !billing.ValidUnit(unit) {
			return nil, fmt.Errorf("quota: grant %s: unknown unit in %q", id, v)
		}
	}
	n := make([]int64, 6)
	for i := range n {
		x, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("quota: grant %s: malformed %q", id, v)
		}
		n[i] = x
	}
	return &Grant{
		ID: id, ProgrammeID: f[7], Unit: unit, GrantedSeconds: n[0], RemainingSeconds: n[1],
		EffectiveAt: time.Unix(n[2], 0).UTC(), ExpiresAt: time.Unix(n[3], 0).UTC(),
		Priority: int(n[4]), IssuedAt: time.UnixMilli(n[5]).UTC(), Voided: f[6] == "1", NotifyAt: notifyAt,
	}, nil
}

// sortGrants puts grants in drawing order.
func sortGrants(gs []*Grant) {
	sort.Slice(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		if !a.ExpiresAt.Equal(b.ExpiresAt) {
			return a.ExpiresAt.Before(b.ExpiresAt)
		}
		if !a.IssuedAt.Equal(b.IssuedAt) {
			return a.IssuedAt.Before(b.IssuedAt)
		}
		return a.ID < b.ID
	})
}

// Grants returns a seafarer's grants in drawing order, with status as of now.
func (s *RedisStore) Grants(ctx context.Context, seafarerID string) ([]*Grant, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys(seafarerID).grants).Result()
	if err != nil {
		return nil, fmt.Errorf("quota: grants: %w", err)
	}
	return grantsFrom(m, s.now())
}

func grantsFrom(m map[string]string, now time.Time) ([]*Grant, error) {
	gs := make([]*Grant, 0, len(m))
	for id, v := range m {
		g, err := parseGrant(id, v)
		if err != nil {
			return nil, err
		}
		g.Status = g.StatusAt(now)
		gs = append(gs, g)
	}
	sortGrants(gs)
	return gs, nil
}

// Allowance reads a seafarer's balance in one round trip. Reads made at
// the same time share round trips (see readBatcher): the allowance is the
// most frequent request, and on a busy server the round trip, not Redis's
// work for it, is most of its cost.
func (s *RedisStore) Allowance(ctx context.Context, seafarerID string) (*Allowance, error) {
	now := s.now()
	period := billing.PeriodOf(now)
	k := s.keys(seafarerID)
	r := &allowanceRead{grantsKey: k.grants, usageKey: s.monthKey(seafarerID, period), sessionsKey: k.sessions, done: make(chan struct{})}
	if err := s.reads.read(ctx, s.rdb, r); err != nil {
		return nil, err
	}
	if err := r.err; err != nil && err != redis.Nil {
		return nil, fmt.Errorf("quota: allowance: %w", err)
	}
	gs, err := grantsFrom(r.grants.Val(), now)
	if err != nil {
		return nil, err
	}
	a := &Allowance{SeafarerID: seafarerID, Grants: gs, Period: period, AsOf: now, Balances: balances(gs, now), Usage: []UnitFigure{}}
	reserved := reservedOf(r.sessions.Val(), now)
	for i := range a.Balances {
		a.Balances[i].Reserved = min(reserved[a.Balances[i].Unit], a.Balances[i].Remaining)
	}
	for _, b := range a.Balances {
		if b.Unit == billing.UnitSeconds {
			a.RemainingSeconds = b.Remaining
		}
	}
	a.RemainingMinutes = a.RemainingSeconds / 60
	// The month's figures, in allMonthFields order: seconds first.
	u := r.usage.Val()
	a.UsedSeconds = toInt64(u[0])
	a.OverageSeconds = toInt64(u[1])
	for i, unit := range billing.Units {
		if used, over := toInt64(u[2*i]), toInt64(u[2*i+1]); used != 0 || over != 0 {
			a.Usage = append(a.Usage, UnitFigure{Unit: unit, Used: used, Overage: over})
		}
	}
	return a, nil
}

// RemainingNow returns, for each seafarer, the seconds left on grants active
// now, in one pipelined round trip.
func (s *RedisStore) RemainingNow(ctx context.Context, seafarerIDs []string) (map[string]int64, error) {
	now := s.now()
	keys := make([]string, len(seafarerIDs))
	for i, id := range seafarerIDs {
		keys[i] = s.keys(id).grants
	}
	hs, err := s.hashes(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("quota: remaining: %w", err)
	}
	out := make(map[string]int64, len(seafarerIDs))
	for i, id := range seafarerIDs {
		gs, err := grantsFrom(hs[i], now)
		if err != nil {
			return nil, err
		}
		var rem int64
		for _, g := range gs {
			if g.ActiveAt(now) && unitOrSeconds(g.Unit) == billing.UnitSeconds {
				rem += g.RemainingSeconds
			}
		}
		out[id] = rem
	}
	return out, nil
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

func toInt64(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
