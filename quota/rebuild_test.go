package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/redistest"
)

// rebuildLab is a metering store whose grants and ledger entries are also
// written to PostgreSQL, as wuyoud writes them: grants to the grants table
// before Redis, debits to the ledger after Redis.
type rebuildLab struct {
	s      *RedisStore
	clock  *meterClock
	rdb    redis.UniversalClient
	pool   *pgxpool.Pool
	ledger *PGLedger
}

func newRebuildLab(t *testing.T, opts Options) *rebuildLab {
	s, clock, rdb := MustMeterStore(t, opts)
	return labOn(t, s, clock, rdb)
}

// labOn is a rebuildLab over store s, with a database of its own holding
// the programmes its grants name.
func labOn(t *testing.T, s *RedisStore, clock *meterClock, rdb redis.UniversalClient) *rebuildLab {
	ledger, pool := MustPGLedger(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO programmes (id, name, pack_seconds, valid_days, priority, budget_packs, starts_at, ends_at, created_at)
VALUES ('pr_a', 'A', 600, 30, 1, 0, $1, $2, $1), ('pr_b', 'B', 600, 30, 2, 0, $1, $2, $1)`, meterNow.Add(-400*meterDay), meterNow.Add(400*meterDay))
	require.NoError(t, err)
	return &rebuildLab{s: s, clock: clock, rdb: rdb, pool: pool, ledger: ledger}
}

// newRestartLab is a guarded rebuildLab on a redis-server of its own, to
// restart.
func newRestartLab(t *testing.T) (*rebuildLab, *redistest.Server) {
	srv := redistest.MustServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clock := &meterClock{t: meterNow}
	return labOn(t, NewRedisStore(rdb, "rs", clock.Now, Options{HotStateGuard: true}), clock, rdb), srv
}

// grant issues a grant: the grants table first, then Redis.
func (l *rebuildLab) grant(t *testing.T, in GrantInput) {
	ctx := context.Background()
	in.IssuedAt = l.clock.Now().Truncate(time.Millisecond)
	_, err := l.pool.Exec(ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, in.ID, in.SeafarerID, in.ProgrammeID, in.Seconds, in.Priority,
		in.EffectiveAt.Truncate(time.Second), in.ExpiresAt.Truncate(time.Second), in.IssuedAt)
	require.NoError(t, err)
	added, e, err := l.s.AddGrant(ctx, in)
	require.NoError(t, err)
	require.True(t, added)
	l.record(t, []SeafarerEntry{{SeafarerID: in.SeafarerID, Entry: e}})
}

// record stores entries in the system of record and forgets their pending
// records, as the consumer and the issuer do.
func (l *rebuildLab) record(t *testing.T, entries []SeafarerEntry) {
	ctx := context.Background()
	require.NoError(t, l.ledger.Append(ctx, entries))
	require.NoError(t, l.s.Recorded(ctx, entries))
}

// void voids a grant in Redis and records it in PostgreSQL.
func (l *rebuildLab) void(t *testing.T, seafarerID, grantID string) {
	ctx := context.Background()
	e, err := l.s.VoidGrant(ctx, seafarerID, grantID)
	require.NoError(t, err)
	_, err = l.pool.Exec(ctx, `UPDATE grants SET voided_at = $2 WHERE id = $1`, grantID, l.clock.Now())
	require.NoError(t, err)
	l.record(t, []SeafarerEntry{{SeafarerID: seafarerID, Entry: e}})
}

// settle meters a batch and stores its entries, as the consumer does.
func (l *rebuildLab) settle(t *testing.T, us []Usage) []*DebitResult {
	ctx := context.Background()
	rs, err := l.s.Settle(ctx, us)
	require.NoError(t, err)
	var entries []SeafarerEntry
	for _, r := range rs {
		require.NoError(t, r.Err)
		if r.Entry != nil && !r.Duplicate {
			entries = append(entries, SeafarerEntry{SeafarerID: r.SeafarerID, Entry: r.Entry})
		}
	}
	l.record(t, entries)
	return rs
}

// hotView is what a seafarer's balance looks like from outside.
type hotView struct {
	Remaining, Used, Overage int64
	Grants                   []string // id remaining status
	Seen                     []string
}

func (l *rebuildLab) view(t *testing.T, seafarerID string) hotView {
	ctx := context.Background()
	a, err := l.s.Allowance(ctx, seafarerID)
	require.NoError(t, err)
	v := hotView{Remaining: a.RemainingSeconds, Used: a.UsedSeconds, Overage: a.OverageSeconds}
	for _, g := range a.Grants {
		v.Grants = append(v.Grants, fmt.Sprintf("%s %d/%d %s prio %d issued %d", g.ID, g.RemainingSeconds, g.GrantedSeconds, g.Status, g.Priority, g.IssuedAt.UnixMilli()))
	}
	seen, err := l.rdb.ZRangeWithScores(ctx, l.s.keys(seafarerID).seen, 0, -1).Result()
	require.NoError(t, err)
	for _, z := range seen {
		v.Seen = append(v.Seen, fmt.Sprintf("%v@%d", z.Member, int64(z.Score)))
	}
	sort.Strings(v.Seen)
	return v
}

// lose deletes every key of the store: Redis came back empty.
func (l *rebuildLab) lose(t *testing.T) {
	ctx := context.Background()
	keys, err := redistest.Keys(ctx, l.rdb, l.s.prefix+":*")
	require.NoError(t, err)
	for _, k := range keys {
		require.NoError(t, l.rdb.Del(ctx, k).Err())
	}
}

// After Redis loses everything, the rebuild restores every seafarer's
// grants and remaining seconds, this month's figures and which events were
// applied: each event metered before the loss is a duplicate afterwards
// (never charged twice), one reusing an identity with other content is
// refused as before, and new calls draw from the right grants.
func TestRebuildHotStateRestoresBalancesAndIdentities(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		for _, claims := range []string{"redis", "postgres"} {
			t.Run(fmt.Sprintf("seed=%d,claims=%s", seed, claims), func(t *testing.T) {
				rebuildRestores(t, seed, claims == "postgres")
			})
		}
	}
}

func rebuildRestores(t *testing.T, seed int64, pgClaims bool) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{HotStateGuard: true})
	if pgClaims {
		l.s.opts.Claims = NewPGClaims(l.pool)
	}
	rng := rand.New(rand.NewSource(seed))
	require.NoError(t, l.s.MarkHotState(ctx, HotMark{By: "test"}))
	now := l.clock.Now()

	sfs := []string{"sf-r1", "sf-r2", "sf-r3", "sf-r4"}
	for i, sf := range sfs {
		for j := 0; j < 1+rng.Intn(3); j++ {
			prog := []string{"pr_a", "pr_b"}[rng.Intn(2)]
			eff := now.Add(-time.Duration(rng.Intn(20)) * meterDay)
			l.grant(t, GrantInput{ID: fmt.Sprintf("g-%d-%d", i, j), SeafarerID: sf, ProgrammeID: prog,
				Seconds: int64(60 * (1 + rng.Intn(15))), EffectiveAt: eff, ExpiresAt: eff.Add(time.Duration(10+rng.Intn(40)) * meterDay),
				Priority: 1 + rng.Intn(2)})
		}
	}
	l.void(t, "sf-r2", "g-1-0")

	var applied []Usage
	for b := 0; b < 6; b++ {
		var batch []Usage
		for k := 0; k < 1+rng.Intn(12); k++ {
			sf := sfs[rng.Intn(len(sfs))]
			u := voiceCall(sf, fmt.Sprintf("cdr-%d-%d", b, k), now.Add(-time.Duration(rng.Intn(25*24))*time.Hour), int64(60*(1+rng.Intn(8))))
			batch = append(batch, u)
		}
		if len(applied) > 0 && rng.Intn(2) == 0 {
			batch = append(batch, applied[rng.Intn(len(applied))]) // a redelivery
		}
		l.settle(t, batch)
		applied = append(applied, batch...)
	}

	before := map[string]hotView{}
	for _, sf := range sfs {
		before[sf] = l.view(t, sf)
	}

	l.lose(t)
	// A guarded store refuses to meter on the empty Redis: charging calls
	// as overage and forgetting which events were applied would be wrong
	// twice over.
	_, err := l.s.Settle(ctx, applied[:1])
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err), "settle on a Redis without the hot state: %v", err)
	_, _, err = l.s.AddGrant(ctx, GrantInput{ID: "g-late", SeafarerID: "sf-r1", ProgrammeID: "pr_a", Seconds: 60,
		EffectiveAt: now, ExpiresAt: now.Add(meterDay), Priority: 1})
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err))

	rep, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{Chunk: 3})
	require.NoError(t, err)
	require.Equal(t, len(sfs), rep.Seafarers)
	m, err := l.s.HotState(ctx)
	require.NoError(t, err)
	require.NotNil(t, m)
	for _, sf := range sfs {
		require.Equal(t, before[sf], l.view(t, sf), "seafarer %s after the rebuild", sf)
	}

	// Every event applied before the loss is a duplicate now, for the
	// seafarer it was charged to, and changes nothing.
	rs := l.settle(t, applied)
	for i, r := range rs {
		require.True(t, r.Duplicate, "event %s applied again after the rebuild", applied[i].EventID)
		require.False(t, r.Conflicting)
	}
	for _, sf := range sfs {
		require.Equal(t, before[sf], l.view(t, sf), "seafarer %s after redelivering everything", sf)
	}
	// The same identity with other content, for another seafarer, is refused.
	other := applied[0]
	other.SeafarerID, other.BillableSeconds = "sf-r4", other.BillableSeconds+60
	if other.SeafarerID == applied[0].SeafarerID {
		other.SeafarerID = "sf-r3"
	}
	rs = l.settle(t, []Usage{other})
	require.True(t, rs[0].Conflicting, "a reused identity with other content after the rebuild")

	// New calls draw as they would have before the loss.
	fresh := voiceCall("sf-r1", "cdr-after", now.Add(-time.Hour), 120)
	r := l.settle(t, []Usage{fresh})[0]
	require.False(t, r.Duplicate)
	require.Equal(t, before["sf-r1"].Remaining-r.Entry.CoveredSeconds, l.view(t, "sf-r1").Remaining)
}

// A partial loss (one seafarer's grants gone, another's identities) is
// repaired the same way, and a rebuild run twice writes the same state.
func TestRebuildHotStateRepairsAPartialLossAndIsRepeatable(t *testing.T) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{})
	now := l.clock.Now()
	for _, sf := range []string{"sf-p1", "sf-p2"} {
		l.grant(t, GrantInput{ID: "g-" + sf, SeafarerID: sf, ProgrammeID: "pr_a", Seconds: 600,
			EffectiveAt: now.Add(-meterDay), ExpiresAt: now.Add(30 * meterDay), Priority: 1})
		l.settle(t, []Usage{voiceCall(sf, "cdr-"+sf, now.Add(-time.Hour), 540)})
	}
	before := map[string]hotView{"sf-p1": l.view(t, "sf-p1"), "sf-p2": l.view(t, "sf-p2")}
	require.Equal(t, int64(60), before["sf-p1"].Remaining)

	require.NoError(t, l.rdb.Del(ctx, l.s.keys("sf-p1").grants).Err())
	require.NoError(t, l.rdb.Del(ctx, l.s.keys("sf-p2").seen).Err())
	for i := 0; i < 2; i++ {
		_, err := RebuildHotState(ctx, l.pool, l.s, RebuildOptions{})
		require.NoError(t, err)
		for sf, v := range before {
			require.Equal(t, v, l.view(t, sf), "%s after rebuild %d", sf, i+1)
		}
	}
	// The low-balance notice was announced for sf-p1's grant set before the
	// loss; after the rebuild the next call does not announce it again.
	r := l.settle(t, []Usage{voiceCall("sf-p1", "cdr-next", now.Add(-time.Minute), 60)})[0]
	var kinds []string
	for _, n := range r.Notes {
		kinds = append(kinds, n.Kind)
	}
	require.Equal(t, []string{"exhausted"}, kinds, "low is not announced twice for one grant set; exhausted is announced once")
}

// EnsureHotState marks an empty deployment without reading anything, and
// rebuilds when the system of record holds data and Redis lost its mark.
func TestEnsureHotStateMarksAnEmptyDeploymentAndRebuildsALostOne(t *testing.T) {
	ctx := context.Background()
	l := newRebuildLab(t, Options{HotStateGuard: true})
	rep, err := EnsureHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Nil(t, rep, "nothing to rebuild in a new deployment")
	m, err := l.s.HotState(ctx)
	require.NoError(t, err)
	require.Equal(t, "empty", m.By)

	now := l.clock.Now()
	l.grant(t, GrantInput{ID: "g-e1", SeafarerID: "sf-e1", ProgrammeID: "pr_a", Seconds: 300,
		EffectiveAt: now.Add(-meterDay), ExpiresAt: now.Add(meterDay), Priority: 1})
	before := l.view(t, "sf-e1")
	rep, err = EnsureHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Nil(t, rep, "the mark is there: nothing to do")

	l.lose(t)
	rep, err = EnsureHotState(ctx, l.pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.NotNil(t, rep)
	require.Equal(t, 1, rep.Seafarers)
	require.Equal(t, before, l.view(t, "sf-e1"))
}

// A Redis that restarted is not trusted even when its data came back (an
// append-only file may lack its last second): the mark names the Redis
// process it was written to, and a restart makes EnsureHotState rebuild.
func TestARestartedRedisIsRebuiltNotTrusted(t *testing.T) {
	ctx := context.Background()
	l, srv := newRestartLab(t)
	pool := l.pool

	rep, err := EnsureHotState(ctx, pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Nil(t, rep)
	l.grant(t, GrantInput{ID: "g-rs", SeafarerID: "sf-rs", ProgrammeID: "pr_a", Seconds: 600,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(meterDay), Priority: 1})
	l.settle(t, []Usage{voiceCall("sf-rs", "cdr-rs", meterNow.Add(-time.Hour), 120)})
	before := l.view(t, "sf-rs")
	current, err := l.s.HotStateCurrent(ctx)
	require.NoError(t, err)
	require.True(t, current)

	// The restart keeps the mark (as if the append-only file had it) but
	// not the debit: the state is stale, and it is caught.
	m, err := l.s.HotState(ctx)
	require.NoError(t, err)
	srv.MustRestart(t)
	b, _ := json.Marshal(m)
	require.NoError(t, l.rdb.Set(ctx, l.s.hotKey(), b, 0).Err())
	current, err = l.s.HotStateCurrent(ctx)
	require.NoError(t, err)
	require.False(t, current, "a restarted Redis is not the one the state was written to")

	rep, err = EnsureHotState(ctx, pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.NotNil(t, rep, "rebuilt after the restart")
	require.Equal(t, before, l.view(t, "sf-rs"))
	current, err = l.s.HotStateCurrent(ctx)
	require.NoError(t, err)
	require.True(t, current)
}

// A batch that passed the mark's check before Redis restarted finds the
// script cache empty; a guarded store then checks that the hot state was
// written to this Redis and refuses to debit when it was not, rather than
// charge the call against what the restart left.
func TestADebitAfterARestartIsRefusedUntilTheRebuild(t *testing.T) {
	ctx := context.Background()
	l, srv := newRestartLab(t)
	pool := l.pool
	_, err := EnsureHotState(ctx, pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	l.grant(t, GrantInput{ID: "g-ns", SeafarerID: "sf-ns", ProgrammeID: "pr_a", Seconds: 600,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: meterNow.Add(meterDay), Priority: 1})
	l.settle(t, []Usage{voiceCall("sf-ns", "cdr-ns-1", meterNow.Add(-time.Hour), 120)})
	before := l.view(t, "sf-ns")

	// The restart brings the mark back (an append-only file) and nothing
	// else; the batch goes straight to the debit, as one that had passed the
	// check before the restart would.
	m, err := l.s.HotState(ctx)
	require.NoError(t, err)
	srv.MustRestart(t)
	b, _ := json.Marshal(m)
	require.NoError(t, l.rdb.Set(ctx, l.s.hotKey(), b, 0).Err())
	_, err = l.s.DebitBatch(ctx, []Usage{voiceCall("sf-ns", "cdr-ns-2", meterNow.Add(-time.Minute), 60)})
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err), "a debit on a restarted Redis: %v", err)
	n, err := l.rdb.Exists(ctx, l.s.keys("sf-ns").seen).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing written")

	_, err = EnsureHotState(ctx, pool, l.s, RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, before, l.view(t, "sf-ns"))
	r := l.settle(t, []Usage{voiceCall("sf-ns", "cdr-ns-2", meterNow.Add(-time.Minute), 60)})[0]
	require.False(t, r.Duplicate)
	require.Equal(t, int64(60), r.Entry.CoveredSeconds, "drawn from the rebuilt grant")
}
