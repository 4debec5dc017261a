package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// pgCount runs a count query.
func pgCount(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestTwoReplicasIssuingOneProgrammeAtOnceNeverExceedTheBudget: two
// processes (each its own pool, store and issuer over one database and one
// Redis) run issuances of one programme concurrently; the budget is taken
// in turns, so exactly the budget is issued, in PostgreSQL and in Redis.
func TestTwoReplicasIssuingOneProgrammeAtOnceNeverExceedTheBudget(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.MustURL(t)
	rdb, prefix := redistest.MustClient(t)
	now := func() time.Time { return programmeTestNow }
	hot := NewRedisStore(rdb, prefix, now, Options{})
	roster := newFakeRoster()
	crew := roster.crew("sf", 2*issuanceBatch+100) // three batches each
	ctx := context.Background()

	const replicas, issuancesEach, budget = 2, 3, 1234
	var issuers []*Issuer
	var pools []*pgxpool.Pool
	for range replicas {
		pool, err := pgxpool.New(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		pools = append(pools, pool)
		issuers = append(issuers, NewIssuer(NewPGProgrammes(pool, now, nil), hot, roster, now))
	}
	in := validProgrammeInput()
	in.BudgetPacks = budget
	p, err := NewPGProgrammes(pools[0], now, nil).CreateProgramme(ctx, in)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	results := make(chan *Issuance, replicas*issuancesEach)
	for r, is := range issuers {
		for n := range issuancesEach {
			wg.Add(1)
			go func() {
				defer wg.Done()
				iss, _, err := is.Start(ctx, p.ID, fmt.Sprintf("replica-%d-%d", r, n), IssuanceTarget{SeafarerIDs: crew})
				if err == nil {
					err = is.Run(ctx, iss.ID)
				}
				if err == nil {
					iss, err = is.Issuance(ctx, iss.ID)
				}
				if err != nil {
					t.Error(err)
					return
				}
				results <- iss
			}()
		}
	}
	wg.Wait()
	close(results)
	var issued, failed int64
	for iss := range results {
		assertConsistent(t, iss)
		issued += iss.Issued
		failed += iss.Failed
	}
	total := int64(replicas * issuancesEach * len(crew))
	if issued != budget || failed != total-budget {
		t.Fatalf("issued %d and failed %d, want %d and %d", issued, failed, budget, total-budget)
	}
	got, err := issuers[1].store.Programme(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PacksIssued != budget || *got.BudgetRemainingPacks != 0 {
		t.Fatalf("programme %+v", got)
	}
	if n := pgCount(t, pools[0], `SELECT count(*) FROM grants WHERE programme_id = $1`, p.ID); n != budget {
		t.Fatalf("%d grant rows, want %d", n, budget)
	}
	if n := pgCount(t, pools[0], `SELECT count(*) FROM issuance_targets WHERE outcome = 'budget_exhausted'`); n != total-budget {
		t.Fatalf("%d budget_exhausted outcomes, want %d", n, total-budget)
	}
	env := &programmeEnv{hot: hot}
	if n := sumCounts(grantCounts(t, env, crew)); n != budget {
		t.Fatalf("%d grants in Redis, want %d", n, budget)
	}
}

// failingHot is a hot state that adds grants to the real one until told to
// fail: the process dies between committing a batch and the hot step.
type failingHot struct {
	HotGrants
	fail atomic.Bool
}

func (h *failingHot) AddGrant(ctx context.Context, in GrantInput) (bool, *LedgerEntry, error) {
	if h.fail.Load() {
		return false, nil, errors.New("redis: connection reset")
	}
	return h.HotGrants.AddGrant(ctx, in)
}

// TestGrantsCommittedButNeverPutInRedisArePutThereByResume: a batch whose
// transaction committed but whose grants never reached Redis (the hot step
// failed) is repaired by the next start's Resume: every committed grant ends
// up in Redis once, nothing is issued twice and the budget is not taken
// again.
func TestGrantsCommittedButNeverPutInRedisArePutThereByResume(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 2*issuanceBatch+50)
	roster := newFakeRoster()
	crew := roster.crew("sf", 3*issuanceBatch)
	hot := &failingHot{HotGrants: s.hot}
	crashed := NewIssuer(s.PGProgrammes, hot, roster, s.now)
	crashed.afterDecide = func(_ string, batchStart int64) error {
		if batchStart == issuanceBatch { // the second batch is committed; Redis goes away
			hot.fail.Store(true)
		}
		return nil
	}
	ctx := context.Background()
	iss, _, err := crashed.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.Run(ctx, iss.ID); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("run: %v, want the hot step's failure", err)
	}
	if n := pgCount(t, s.pool, `SELECT count(*) FROM grants`); n != 2*issuanceBatch {
		t.Fatalf("%d grants committed, want %d", n, 2*issuanceBatch)
	}
	if n := sumCounts(grantCounts(t, s, crew)); n != issuanceBatch {
		t.Fatalf("%d grants in Redis after the crash, want %d", n, issuanceBatch)
	}

	next := s.issuer(roster)
	if err := next.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := next.Issuance(ctx, iss.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, done)
	if done.Issued != 2*issuanceBatch+50 || done.Failed != issuanceBatch-50 {
		t.Fatalf("done %+v", done)
	}
	if got, _ := s.Programme(ctx, p.ID); got.PacksIssued != 2*issuanceBatch+50 {
		t.Fatalf("packs issued %d", got.PacksIssued)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(id string) bool { return id < crew[2*issuanceBatch+50] })
	if n := runningCount(t, s); n != 0 {
		t.Fatalf("%d issuances left running", n)
	}
}

// TestAGrantVoidedBeforeItsHotStepNeverReachesRedis: the hot step puts in
// Redis what PostgreSQL holds, so a grant voided in the system of record
// between the commit and a repair is not brought back to life.
func TestAGrantVoidedBeforeItsHotStepNeverReachesRedis(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 3)
	is := s.issuer(roster)
	crash := errors.New("crash")
	is.afterDecide = func(string, int64) error { return crash }
	ctx := context.Background()
	iss, _, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Run(ctx, iss.ID); !errors.Is(err, crash) {
		t.Fatalf("run: %v", err)
	}
	voided := IssuanceGrantID(iss.ID, crew[1])
	if err := s.grants.VoidGrant(ctx, crew[1], voided, programmeTestNow); err != nil {
		t.Fatal(err)
	}
	is.afterDecide = nil
	if err := is.Run(ctx, iss.ID); err != nil {
		t.Fatal(err)
	}
	counts := grantCounts(t, s, crew)
	if counts[crew[0]] != 1 || counts[crew[1]] != 0 || counts[crew[2]] != 1 {
		t.Fatalf("grants in Redis %v, want none for %s", counts, crew[1])
	}
}

func TestIssuanceRefusesIdsAndKeysPostgreSQLCannotStore(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	is := s.issuer(newFakeRoster())
	ctx := context.Background()
	for _, tc := range []struct {
		name, key string
		target    IssuanceTarget
		field     string
	}{
		{"key with a NUL", "k\x00", IssuanceTarget{SeafarerIDs: []string{"sf_1"}}, "Idempotency-Key"},
		{"key that is not UTF-8", "k\xff", IssuanceTarget{SeafarerIDs: []string{"sf_1"}}, "Idempotency-Key"},
		{"seafarer id with a NUL", "k", IssuanceTarget{SeafarerIDs: []string{"sf_1", "sf\x002"}}, "seafarer_ids[1]"},
		{"seafarer id that is not UTF-8", "k", IssuanceTarget{SeafarerIDs: []string{"sf\xc3"}}, "seafarer_ids[0]"},
		{"company id with a NUL", "k", IssuanceTarget{CompanyID: "co\x00"}, "company_id"},
		{"vessel with a control character", "k", IssuanceTarget{VesselIMO: "90\x1b74729"}, "vessel_imo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := is.Start(ctx, p.ID, tc.key, tc.target)
			if got := fieldsOf(t, err); len(got) != 1 || got[0] != tc.field {
				t.Fatalf("fields %v, want [%s]", got, tc.field)
			}
		})
	}
	for _, id := range []string{"is_\x00", "is_\xff", ""} {
		if _, err := is.Issuance(ctx, id); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("Issuance(%q): %v, want ENOTFOUND", id, err)
		}
		if _, err := is.Failures(ctx, id, 0, 10); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("Failures(%q): %v, want ENOTFOUND", id, err)
		}
		if err := is.Run(ctx, id); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("Run(%q): %v, want ENOTFOUND", id, err)
		}
	}
	if _, _, err := is.Start(ctx, "pg_\x00", "k", IssuanceTarget{SeafarerIDs: []string{"sf_1"}}); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
		t.Errorf("programme id with a NUL: %v, want ENOTFOUND", err)
	}
}

func TestIssuanceFailuresPageThroughEveryFailureInTargetOrder(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 2)
	roster := newFakeRoster()
	crew := roster.crew("sf", 6)
	ids := append([]string{"sf_ghost"}, crew...)
	is := s.issuer(roster)
	iss := MustIssue(t, is, p.ID, "k1", IssuanceTarget{SeafarerIDs: ids})
	want := []IssuanceFailure{{"sf_ghost", ReasonSeafarerNotFound}}
	for _, id := range crew[2:] {
		want = append(want, IssuanceFailure{id, ReasonBudgetExhausted})
	}
	if fmt.Sprint(iss.Failures) != fmt.Sprint(want) {
		t.Fatalf("failures %v, want %v", iss.Failures, want)
	}
	ctx := context.Background()
	var paged []IssuanceFailure
	for off := 0; ; off += 2 {
		page, err := is.Failures(ctx, iss.ID, off, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
	}
	if fmt.Sprint(paged) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", paged, want)
	}
}

// scriptedStore is an IssuanceStore in memory for the issuer's unit tests:
// every target is active and issued, and each call is recorded.
type scriptedStore struct {
	IssuanceStore // calls not scripted panic
	targets       []string
	decideErr     error
	mu            sync.Mutex
	calls         []string
	finished      bool
}

func (s *scriptedStore) record(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *scriptedStore) Issuance(context.Context, string) (*Issuance, error) {
	return &Issuance{ID: "is_1", ProgrammeID: "pg_1", Status: IssuanceRunning, Total: int64(len(s.targets))}, nil
}

func (s *scriptedStore) Targets(_ context.Context, _ string, from int64, n int) ([]string, error) {
	return s.targets[from:min(int(from)+n, len(s.targets))], nil
}

func (s *scriptedStore) DecideBatch(_ context.Context, b IssuanceBatch) (*DecidedBatch, error) {
	s.record(fmt.Sprintf("decide %d", b.Start))
	if s.decideErr != nil {
		return nil, s.decideErr
	}
	dec := &DecidedBatch{}
	for j, id := range b.SeafarerIDs {
		if b.Proposals[j] != ProposeIssue {
			return nil, fmt.Errorf("proposal %s for %s", b.Proposals[j], id)
		}
		dec.Outcomes = append(dec.Outcomes, OutcomeIssued)
		dec.Grants = append(dec.Grants, GrantInput{ID: IssuanceGrantID(b.IssuanceID, id), SeafarerID: id, ProgrammeID: "pg_1", Seconds: 60})
	}
	return dec, nil
}

func (s *scriptedStore) FinishIssuance(context.Context, string, time.Time) error {
	s.record("finish")
	s.finished = true
	return nil
}

type recordingHot struct {
	mu    sync.Mutex
	added map[string]int
}

func (h *recordingHot) AddGrant(_ context.Context, in GrantInput) (bool, *LedgerEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.added[in.ID]++
	return true, &LedgerEntry{ID: "g_" + in.ID, Kind: KindGrant, GrantID: in.ID}, nil
}

type everyoneActiveRoster struct{ fakeRoster }

func (*everyoneActiveRoster) SeafarerStatuses(_ context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for j := range out {
		out[j] = "active"
	}
	return out, nil
}

// TestIssuerPutsEveryDecidedGrantInTheHotStateAndAnnouncesItBeforeFinishing
// runs the issuer over fakes: each batch is decided, its grants added to the
// hot state and published, and only then is the issuance finished.
func TestIssuerPutsEveryDecidedGrantInTheHotStateAndAnnouncesItBeforeFinishing(t *testing.T) {
	store := &scriptedStore{targets: newFakeRoster().crew("sf", issuanceBatch+3)}
	hot := &recordingHot{added: map[string]int{}}
	pub := &recordingPublisher{seen: map[string]int{}}
	is := NewIssuer(store, hot, &everyoneActiveRoster{}, func() time.Time { return programmeTestNow })
	is.Publisher = pub
	if err := is.Run(context.Background(), "is_1"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(store.calls, ","); got != fmt.Sprintf("decide 0,decide %d,finish", issuanceBatch) {
		t.Fatalf("calls %s", got)
	}
	for _, id := range store.targets {
		g := IssuanceGrantID("is_1", id)
		if hot.added[g] != 1 || pub.seen["g_"+g] != 1 {
			t.Fatalf("grant of %s added %d times, published %d times", id, hot.added[g], pub.seen["g_"+g])
		}
	}
}

// TestIssuerAddsNothingWhenTheBatchCannotBeDecided: without a committed
// decision there is nothing to put in the hot state, and the issuance is
// not finished.
func TestIssuerAddsNothingWhenTheBatchCannotBeDecided(t *testing.T) {
	store := &scriptedStore{targets: []string{"sf_1", "sf_2"}, decideErr: errors.New("postgres: connection refused")}
	hot := &recordingHot{added: map[string]int{}}
	is := NewIssuer(store, hot, &everyoneActiveRoster{}, func() time.Time { return programmeTestNow })
	if err := is.Run(context.Background(), "is_1"); !errors.Is(err, store.decideErr) {
		t.Fatalf("run: %v, want the store's error", err)
	}
	if len(hot.added) != 0 || store.finished {
		t.Fatalf("added %v, finished %v", hot.added, store.finished)
	}
}
