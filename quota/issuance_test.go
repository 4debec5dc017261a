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

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

// fakeRoster is a crew registry in memory. It is read-only once built, so
// concurrent runs may share it.
type fakeRoster struct {
	status    map[string]string   // seafarer id -> status
	companies map[string][]string // company id -> crew
	vessels   map[string][]string // IMO -> crew
	lookups   atomic.Int64
	// onLookup, when set, is called after each SeafarerStatus with the
	// number of look-ups so far.
	onLookup func(n int64)
}

func newFakeRoster() *fakeRoster {
	return &fakeRoster{status: map[string]string{}, companies: map[string][]string{}, vessels: map[string][]string{}}
}

// crew adds n active seafarers named <prefix>-0000… and returns their ids.
func (r *fakeRoster) crew(prefix string, n int) []string {
	ids := make([]string, n)
	for j := range ids {
		ids[j] = fmt.Sprintf("%s-%04d", prefix, j)
		r.status[ids[j]] = "active"
	}
	return ids
}

func (r *fakeRoster) SeafarerStatus(ctx context.Context, id string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	n := r.lookups.Add(1)
	if r.onLookup != nil {
		r.onLookup(n)
	}
	s, ok := r.status[id]
	if !ok {
		return "", wuyou.Errorf(wuyou.ENOTFOUND, "seafarer %s not found", id)
	}
	return s, nil
}

func (r *fakeRoster) CompanyCrew(ctx context.Context, companyID string, fn func(string) error) error {
	ids, ok := r.companies[companyID]
	if !ok {
		return wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", companyID)
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func (r *fakeRoster) VesselCrew(ctx context.Context, imo string, fn func(string) error) error {
	for _, id := range r.vessels[imo] {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// batchFakeRoster also answers many look-ups at once (BatchRoster).
type batchFakeRoster struct{ *fakeRoster }

func (r batchFakeRoster) SeafarerStatuses(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for j, id := range ids {
		out[j] = r.status[id]
	}
	return out, nil
}

// MustIssue starts and runs an issuance to the end.
func MustIssue(tb testing.TB, is *Issuer, programmeID, key string, t IssuanceTarget) *Issuance {
	tb.Helper()
	ctx := context.Background()
	iss, _, err := is.Start(ctx, programmeID, key, t)
	if err != nil {
		tb.Fatalf("start issuance: %v", err)
	}
	if err := is.Run(ctx, iss.ID); err != nil {
		tb.Fatalf("run issuance: %v", err)
	}
	iss, err = is.Issuance(ctx, iss.ID)
	if err != nil {
		tb.Fatalf("read issuance: %v", err)
	}
	return iss
}

// grantCounts returns how many grants each seafarer holds, in one round trip.
func grantCounts(tb testing.TB, env *programmeEnv, ids []string) map[string]int64 {
	tb.Helper()
	ctx := context.Background()
	s := env.hot
	cmds := make([]*redis.IntCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, id := range ids {
			cmds[j] = p.HLen(ctx, s.keys(id).grants)
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]int64, len(ids))
	for j, id := range ids {
		out[id] = cmds[j].Val()
	}
	return out
}

func sumCounts(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// runningCount is how many issuances are not done.
func runningCount(tb testing.TB, s *programmeEnv) int {
	tb.Helper()
	ids, err := s.RunningIssuances(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return len(ids)
}

func assertConsistent(tb testing.TB, iss *Issuance) {
	tb.Helper()
	if iss.Status != IssuanceDone || iss.Issued+iss.Skipped+iss.Failed != iss.Total {
		tb.Fatalf("issuance %s: status %s, %d issued + %d skipped + %d failed of %d",
			iss.ID, iss.Status, iss.Issued, iss.Skipped, iss.Failed, iss.Total)
	}
}

func TestIssuanceTargetIsExactlyOneOfSeafarersCompanyOrVessel(t *testing.T) {
	cases := []struct {
		name   string
		target IssuanceTarget
		fields []string
	}{
		{"nothing", IssuanceTarget{}, []string{"target"}},
		{"company and vessel", IssuanceTarget{CompanyID: "co_1", VesselIMO: "9074729"}, []string{"target"}},
		{"seafarers and company", IssuanceTarget{SeafarerIDs: []string{"sf_1"}, CompanyID: "co_1"}, []string{"target"}},
		{"empty seafarer list", IssuanceTarget{SeafarerIDs: []string{}}, []string{"seafarer_ids"}},
		{"blank seafarer id", IssuanceTarget{SeafarerIDs: []string{"sf_1", " "}}, []string{"seafarer_ids[1]"}},
		{"seafarers", IssuanceTarget{SeafarerIDs: []string{"sf_1"}}, nil},
		{"company", IssuanceTarget{CompanyID: "co_1"}, nil},
		{"vessel", IssuanceTarget{VesselIMO: "9074729"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.target.Normalize()
			err := tc.target.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := fieldsOf(t, err); strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields = %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestIssuanceNeedsAnIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	is := s.issuer(newFakeRoster())
	ctx := context.Background()
	target := IssuanceTarget{SeafarerIDs: []string{"sf_1"}}
	for _, key := range []string{"", strings.Repeat("k", 201)} {
		_, _, err := is.Start(ctx, p.ID, key, target)
		if got := fieldsOf(t, err); len(got) != 1 || got[0] != "Idempotency-Key" {
			t.Fatalf("key of %d chars: fields %v", len(key), got)
		}
	}
}

func TestIssuanceOfUnknownProgrammeIsNotFound(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	is := s.issuer(newFakeRoster())
	_, _, err := is.Start(context.Background(), "pg_01JDOESNOTEXIST", "k1", IssuanceTarget{SeafarerIDs: []string{"sf_1"}})
	if wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
		t.Fatalf("got %v, want ENOTFOUND", err)
	}
	if _, err := is.Issuance(context.Background(), "is_01JDOESNOTEXIST"); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
		t.Fatalf("Issuance: got %v, want ENOTFOUND", err)
	}
}

func TestIssuanceNeverExceedsTheBudgetAcrossConcurrentIssuances(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 100, 500)
	ctx := context.Background()

	const issuances = 20
	results := make([]*Issuance, issuances)
	errs := make([]error, issuances)
	var wg sync.WaitGroup
	for n := range issuances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iss, _, err := is.Start(ctx, p.ID, fmt.Sprintf("key-%d", n), IssuanceTarget{SeafarerIDs: crew})
			if err == nil {
				err = is.Run(ctx, iss.ID)
			}
			if err == nil {
				iss, err = is.Issuance(ctx, iss.ID)
			}
			results[n], errs[n] = iss, err
		}()
	}
	wg.Wait()
	var issued, failed int64
	for n, iss := range results {
		if errs[n] != nil {
			t.Fatalf("issuance %d: %v", n, errs[n])
		}
		assertConsistent(t, iss)
		issued += iss.Issued
		failed += iss.Failed
		for _, f := range iss.Failures {
			if f.Reason != ReasonBudgetExhausted {
				t.Fatalf("failure %+v, want only budget_exhausted", f)
			}
		}
		if int64(len(iss.Failures)) != iss.Failed {
			t.Fatalf("%d failures listed for %d failed", len(iss.Failures), iss.Failed)
		}
	}
	if issued != 100 || failed != issuances*500-100 {
		t.Fatalf("issued %d, failed %d; want 100 and %d", issued, failed, issuances*500-100)
	}
	got, err := s.Programme(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PacksIssued != 100 || *got.BudgetRemainingPacks != 0 || got.SecondsGranted != 100*p.PackSeconds {
		t.Fatalf("programme %+v", got)
	}
	if n := sumCounts(grantCounts(t, s, crew)); n != 100 {
		t.Fatalf("%d grants held across the crew, want 100", n)
	}
}

func TestIssuanceGivesOnePackPerSeafarerEvenWhenListedTwice(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 2)
	iss := MustIssue(t, is, p.ID, "k1", IssuanceTarget{SeafarerIDs: []string{crew[0], crew[1], crew[0], " " + crew[1]}})
	assertConsistent(t, iss)
	if iss.Total != 2 || iss.Issued != 2 {
		t.Fatalf("issuance %+v, want 2 of 2 issued", iss)
	}
	for id, n := range grantCounts(t, s, crew) {
		if n != 1 {
			t.Fatalf("%s holds %d grants, want 1", id, n)
		}
	}
}

func TestIssuanceSkipsSeafarersNotActiveAndFailsUnknownOnes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		roster func(*fakeRoster) Roster
	}{
		{"one look-up per seafarer", func(r *fakeRoster) Roster { return r }},
		{"batch look-up", func(r *fakeRoster) Roster { return batchFakeRoster{r} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := MustProgrammeStore(t)
			p := MustProgramme(t, s, 0)
			roster := newFakeRoster()
			roster.status["sf_active"] = "active"
			roster.status["sf_off"] = "signed_off"
			roster.status["sf_suspended"] = "suspended"
			is := s.issuer(tc.roster(roster))
			iss := MustIssue(t, is, p.ID, "k1", IssuanceTarget{SeafarerIDs: []string{"sf_off", "sf_active", "sf_ghost", "sf_suspended"}})
			assertConsistent(t, iss)
			if iss.Issued != 1 || iss.Skipped != 2 || iss.Failed != 1 {
				t.Fatalf("issuance %+v, want 1 issued, 2 skipped, 1 failed", iss)
			}
			want := []IssuanceFailure{{SeafarerID: "sf_ghost", Reason: ReasonSeafarerNotFound}}
			if fmt.Sprint(iss.Failures) != fmt.Sprint(want) {
				t.Fatalf("failures %v, want %v", iss.Failures, want)
			}
			if page, err := is.Failures(context.Background(), iss.ID, 0, 10); err != nil || fmt.Sprint(page) != fmt.Sprint(want) {
				t.Fatalf("failures page %v (%v), want %v", page, err, want)
			}
			counts := grantCounts(t, s, []string{"sf_active", "sf_off", "sf_suspended", "sf_ghost"})
			if counts["sf_active"] != 1 || sumCounts(counts) != 1 {
				t.Fatalf("grants held %v, want one for sf_active only", counts)
			}
		})
	}
}

func TestIssuanceToACompanyOrVesselGivesItsActiveCrewAPack(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 5)
	roster.status[crew[4]] = "signed_off"
	roster.companies["co_1"] = crew
	roster.vessels["9074729"] = crew[:2]
	is := s.issuer(roster)

	iss := MustIssue(t, is, p.ID, "company", IssuanceTarget{CompanyID: "co_1"})
	assertConsistent(t, iss)
	if iss.Total != 5 || iss.Issued != 4 || iss.Skipped != 1 {
		t.Fatalf("company issuance %+v", iss)
	}
	iss = MustIssue(t, is, p.ID, "vessel", IssuanceTarget{VesselIMO: "9074729"})
	assertConsistent(t, iss)
	if iss.Total != 2 || iss.Issued != 2 {
		t.Fatalf("vessel issuance %+v", iss)
	}
	counts := grantCounts(t, s, crew)
	if counts[crew[0]] != 2 || counts[crew[3]] != 1 || counts[crew[4]] != 0 {
		t.Fatalf("grants held %v", counts)
	}
}

func TestIssuanceToAnUnknownCompanyIsNotFoundAndToAnEmptyVesselIsDoneWithNobody(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	is := s.issuer(newFakeRoster())
	ctx := context.Background()
	if _, _, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{CompanyID: "co_ghost"}); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
		t.Fatalf("unknown company: %v, want ENOTFOUND", err)
	}
	iss, created, err := is.Start(ctx, p.ID, "k2", IssuanceTarget{VesselIMO: "9999999"})
	if err != nil || !created {
		t.Fatalf("empty vessel: %v, created %v", err, created)
	}
	assertConsistent(t, iss)
	if iss.Total != 0 {
		t.Fatalf("empty vessel issuance %+v", iss)
	}
	if n := runningCount(t, s); n != 0 {
		t.Fatalf("%d issuances left running", n)
	}
}

func TestIssuanceSameKeyAndBodyReturnsTheSameIssuanceAndIssuesNothingMore(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 3)
	ctx := context.Background()
	eff := programmeTestNow.Add(48 * time.Hour)
	first := MustIssue(t, is, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew, EffectiveAt: &eff})

	// The same instant written in another zone is the same body.
	effCST := eff.In(time.FixedZone("CST", 8*3600))
	again, created, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew, EffectiveAt: &effCST})
	if err != nil || created || again.ID != first.ID || again.Status != IssuanceDone || again.Issued != 3 {
		t.Fatalf("replay: %+v, created %v, err %v; want issuance %s", again, created, err, first.ID)
	}
	again, created, err = is.StartAndRun(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew, EffectiveAt: &eff}, 100)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("replay through StartAndRun: %+v, created %v, err %v", again, created, err)
	}
	if n := sumCounts(grantCounts(t, s, crew)); n != 3 {
		t.Fatalf("%d grants after replays, want 3", n)
	}
	if got, _ := s.Programme(ctx, p.ID); got.PacksIssued != 3 {
		t.Fatalf("packs issued %d after replays, want 3", got.PacksIssued)
	}
}

func TestIssuanceSameKeyWithAnotherBodyIsAConflict(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 3)
	ctx := context.Background()
	MustIssue(t, is, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	eff := programmeTestNow.Add(time.Hour)
	for name, other := range map[string]IssuanceTarget{
		"other seafarers":    {SeafarerIDs: crew[:2]},
		"other effective_at": {SeafarerIDs: crew, EffectiveAt: &eff},
		"a company":          {CompanyID: "co_1"},
	} {
		if _, _, err := is.Start(ctx, p.ID, "k1", other); wuyou.ErrorCode(err) != wuyou.ECONFLICT {
			t.Errorf("%s: %v, want ECONFLICT", name, err)
		}
	}
	// The key belongs to the programme: another programme may use it.
	p2 := MustProgramme(t, s, 0)
	if _, created, err := is.Start(ctx, p2.ID, "k1", IssuanceTarget{SeafarerIDs: crew[:1]}); err != nil || !created {
		t.Fatalf("same key on another programme: created %v, err %v", created, err)
	}
}

func TestIssuanceStartedConcurrentlyWithOneKeyIsRecordedOnce(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 50)
	ctx := context.Background()
	ids := make([]string, 10)
	var created atomic.Int64
	var wg sync.WaitGroup
	for n := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iss, c, err := is.Start(ctx, p.ID, "same-key", IssuanceTarget{SeafarerIDs: crew})
			if err != nil {
				t.Error(err)
				return
			}
			if c {
				created.Add(1)
			}
			ids[n] = iss.ID
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d Starts created an issuance, want 1", created.Load())
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("ids %v, want all equal", ids)
		}
	}
	if n := runningCount(t, s); n != 1 {
		t.Fatalf("%d issuances running, want 1", n)
	}
}

func TestIssuanceWithUnlimitedBudgetNeverFails(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 1200)
	for n := range 3 {
		iss := MustIssue(t, is, p.ID, fmt.Sprintf("k%d", n), IssuanceTarget{SeafarerIDs: crew})
		assertConsistent(t, iss)
		if iss.Issued != 1200 || iss.Failed != 0 {
			t.Fatalf("issuance %d: %+v", n, iss)
		}
	}
	got, _ := s.Programme(context.Background(), p.ID)
	if got.PacksIssued != 3600 || got.BudgetRemainingPacks != nil || got.SecondsGranted != 3600*p.PackSeconds {
		t.Fatalf("programme %+v", got)
	}
}

func TestIssuedPackIsAGrantOnTheProgrammesTermsWithALedgerEntry(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 2)
	pub := &ledgerPublisher{ledger: s.ledger}
	is.Publisher = pub
	ctx := context.Background()
	eff := programmeTestNow.Add(36 * time.Hour)
	for _, tc := range []struct {
		key       string
		effective *time.Time
		want      time.Time
	}{
		{"now", nil, programmeTestNow},
		{"later", &eff, eff},
	} {
		iss := MustIssue(t, is, p.ID, tc.key, IssuanceTarget{SeafarerIDs: crew[:1], EffectiveAt: tc.effective})
		grants, err := s.hot.Grants(ctx, crew[0])
		if err != nil {
			t.Fatal(err)
		}
		var g *Grant
		for _, x := range grants {
			if x.ID == IssuanceGrantID(iss.ID, crew[0]) {
				g = x
			}
		}
		if g == nil {
			t.Fatalf("%s: no grant %s among %v", tc.key, IssuanceGrantID(iss.ID, crew[0]), grants)
		}
		if g.ProgrammeID != p.ID || g.GrantedSeconds != p.PackSeconds || g.RemainingSeconds != p.PackSeconds ||
			g.Priority != p.Priority || !g.EffectiveAt.Equal(tc.want) || !g.ExpiresAt.Equal(tc.want.AddDate(0, 0, p.ValidDays)) {
			t.Fatalf("%s: grant %+v", tc.key, g)
		}
		// The entry the publisher received is the grant's, and it is what
		// the ledger in PostgreSQL then holds.
		var published *LedgerEntry
		for _, ig := range pub.grants() {
			if ig.Grant.ID == g.ID {
				published = ig.Entry
			}
		}
		if published == nil || published.ID != "g_"+g.ID || published.Kind != KindGrant || published.GrantID != g.ID ||
			published.ProgrammeID != p.ID || published.Seconds != p.PackSeconds || !published.At.Equal(programmeTestNow) {
			t.Fatalf("%s: published entry %+v for grant %s", tc.key, published, g.ID)
		}
		entries, _, err := s.ledger.Ledger(ctx, crew[0], LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			if e.ID == published.ID && e.Kind == KindGrant && e.GrantID == g.ID && e.ProgrammeID == p.ID && e.Seconds == p.PackSeconds {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no grant entry for %s in ledger %+v", tc.key, g.ID, entries)
		}
	}
}

// TestTheHotGrantIsIssuedWhenTheSystemOfRecordSaysWhenTheHotStepRuns: the
// hot step may run later than the decision (on resume, on another
// replica); the grant in Redis still carries its row's issue time, the
// drawing order's last tie-break, so Redis and PostgreSQL order alike.
func TestTheHotGrantIsIssuedWhenTheSystemOfRecordSaysWhenTheHotStepRuns(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 1)
	// The replica running the hot step reads its clock 90 minutes later.
	hot := NewRedisStore(s.hot.rdb, s.hot.prefix, func() time.Time { return programmeTestNow.Add(90 * time.Minute) }, Options{})
	iss := MustIssue(t, NewIssuer(s.PGProgrammes, hot, roster, s.now), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	ctx := context.Background()
	row, err := s.grants.Grant(ctx, crew[0], IssuanceGrantID(iss.ID, crew[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !row.IssuedAt.Equal(programmeTestNow) {
		t.Fatalf("grant row issued at %s, want the decision's %s", row.IssuedAt, programmeTestNow)
	}
	grants, err := s.hot.Grants(ctx, crew[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 || !grants[0].IssuedAt.Equal(row.IssuedAt) {
		t.Fatalf("hot grants %+v, want one issued at %s", grants, row.IssuedAt)
	}
}

func TestIssuanceEffectiveWhenPacksWouldHaveExpiredOrOverTenYearsAheadIsInvalid(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	is := s.issuer(newFakeRoster())
	for _, eff := range []time.Time{programmeTestNow.AddDate(0, 0, -p.ValidDays), programmeTestNow.AddDate(0, 0, 3661)} {
		_, _, err := is.Start(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: []string{"sf_1"}, EffectiveAt: &eff})
		if got := fieldsOf(t, err); len(got) != 1 || got[0] != "effective_at" {
			t.Fatalf("effective %s: fields %v", eff, got)
		}
	}
}

// assertEachHoldsOneGrantFrom checks that every active seafarer of crew holds
// exactly the one grant of the issuance and nothing else.
func assertEachHoldsOneGrantFrom(tb testing.TB, env *programmeEnv, issuanceID string, crew []string, active func(string) bool) {
	tb.Helper()
	ctx := context.Background()
	counts := grantCounts(tb, env, crew)
	s := env.hot
	cmds := make([]*redis.BoolCmd, len(crew))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, id := range crew {
			cmds[j] = p.HExists(ctx, s.keys(id).grants, IssuanceGrantID(issuanceID, id))
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	for j, id := range crew {
		want := int64(0)
		if active(id) {
			want = 1
		}
		if counts[id] != want || cmds[j].Val() != (want == 1) {
			tb.Fatalf("%s holds %d grants (issuance's: %v), want %d", id, counts[id], cmds[j].Val(), want)
		}
	}
}

func TestIssuanceInterruptedPartwayResumesWithoutDoubleIssuing(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 5000)
	inactive := func(id string) bool { return strings.HasSuffix(id, "7") }
	for _, id := range crew {
		if inactive(id) {
			roster.status[id] = "suspended"
		}
	}
	is := s.issuer(roster)
	ctx := context.Background()
	iss, _, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	if err != nil {
		t.Fatal(err)
	}

	// The first run is cut off in the middle of its third batch.
	runCtx, cancel := context.WithCancel(ctx)
	roster.onLookup = func(n int64) {
		if n == 2*issuanceBatch+issuanceBatch/2 {
			cancel()
		}
	}
	if err := is.Run(runCtx, iss.ID); err == nil {
		t.Fatal("interrupted run returned no error")
	}
	roster.onLookup = nil
	partial, err := is.Issuance(ctx, iss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if partial.Status != IssuanceRunning || partial.Issued+partial.Skipped >= 5000 || partial.Issued == 0 {
		t.Fatalf("after the interruption %+v, want running and partly issued", partial)
	}

	// Two runs resume it at once, then a third finds it done.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := is.Run(ctx, iss.ID); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := is.Run(ctx, iss.ID); err != nil {
		t.Fatal(err)
	}
	done, err := is.Issuance(ctx, iss.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, done)
	if done.Total != 5000 || done.Issued != 4500 || done.Skipped != 500 || done.Failed != 0 {
		t.Fatalf("done %+v, want 4500 issued and 500 skipped", done)
	}
	if got, _ := s.Programme(ctx, p.ID); got.PacksIssued != 4500 {
		t.Fatalf("programme packs issued %d, want 4500", got.PacksIssued)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(id string) bool { return !inactive(id) })
	if n := runningCount(t, s); n != 0 {
		t.Fatalf("%d issuances left running", n)
	}
}

func TestIssuanceCrashedBetweenReservingAndGrantingAddsTheGrantOnResume(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 1500, 2000)
	ctx := context.Background()
	iss, _, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	is.afterDecide = func(_ string, batchStart int64) error {
		if batchStart == issuanceBatch {
			return crash
		}
		return nil
	}
	if err := is.Run(ctx, iss.ID); !errors.Is(err, crash) {
		t.Fatalf("run: %v, want the crash", err)
	}
	// The second batch is reserved but not granted.
	if got, _ := s.Programme(ctx, p.ID); got.PacksIssued != 2*issuanceBatch {
		t.Fatalf("packs reserved %d, want %d", got.PacksIssued, 2*issuanceBatch)
	}
	if n := sumCounts(grantCounts(t, s, crew)); n != issuanceBatch {
		t.Fatalf("%d grants before resuming, want %d", n, issuanceBatch)
	}

	is.afterDecide = nil
	if err := is.Run(ctx, iss.ID); err != nil {
		t.Fatal(err)
	}
	done, _ := is.Issuance(ctx, iss.ID)
	assertConsistent(t, done)
	if done.Issued != 1500 || done.Failed != 500 {
		t.Fatalf("done %+v, want 1500 issued and 500 budget_exhausted", done)
	}
	if got, _ := s.Programme(ctx, p.ID); got.PacksIssued != 1500 {
		t.Fatalf("packs issued %d, want 1500", got.PacksIssued)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(id string) bool { return id < crew[1500] })
}

// recordingPublisher remembers the grants published to it and fails the
// calls listed in failOn (1-based).
type recordingPublisher struct {
	mu     sync.Mutex
	calls  int
	failOn map[int]bool
	seen   map[string]int // entry id -> times published
}

func (p *recordingPublisher) PublishGrants(_ context.Context, grants []IssuedGrant) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failOn[p.calls] {
		return errors.New("kafka unavailable")
	}
	for _, g := range grants {
		if g.Entry == nil || g.Entry.ID != "g_"+g.Grant.ID || g.Entry.Kind != KindGrant || g.Entry.GrantID != g.Grant.ID {
			return fmt.Errorf("published %+v", g)
		}
		p.seen[g.Entry.ID]++
	}
	return nil
}

// ledgerPublisher stores the grants' entries in the ledger, as wuyoud's
// publisher does before it announces them, and remembers what it was given.
type ledgerPublisher struct {
	ledger    *PGLedger
	mu        sync.Mutex
	published []IssuedGrant
}

func (p *ledgerPublisher) PublishGrants(ctx context.Context, grants []IssuedGrant) error {
	entries := make([]SeafarerEntry, len(grants))
	for j, g := range grants {
		entries[j] = SeafarerEntry{SeafarerID: g.Grant.SeafarerID, Entry: g.Entry}
	}
	if err := p.ledger.Append(ctx, entries); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, grants...)
	return nil
}

func (p *ledgerPublisher) grants() []IssuedGrant {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]IssuedGrant(nil), p.published...)
}

func TestIssuancePublishesEveryGrantAtLeastOnceEvenWhenPublishingFails(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 3*issuanceBatch)
	roster.status[crew[0]] = "signed_off"
	is := s.issuer(roster)
	pub := &recordingPublisher{failOn: map[int]bool{2: true}, seen: map[string]int{}}
	is.Publisher = pub
	ctx := context.Background()
	iss, _, err := is.Start(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Run(ctx, iss.ID); err == nil {
		t.Fatal("run with a failing publisher returned no error")
	}
	if err := is.Run(ctx, iss.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range crew[1:] {
		if pub.seen["g_"+IssuanceGrantID(iss.ID, id)] == 0 {
			t.Fatalf("grant of %s never published", id)
		}
	}
	if len(pub.seen) != len(crew)-1 {
		t.Fatalf("%d grants published, want %d", len(pub.seen), len(crew)-1)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(id string) bool { return id != crew[0] })
}

func TestStartAndRunFinishesSmallIssuancesBeforeReturning(t *testing.T) {
	t.Parallel()
	_, p, crew, is := newIssuanceLab(t, 0, 100)
	iss, created, err := is.StartAndRun(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100)
	if err != nil || !created {
		t.Fatalf("created %v, err %v", created, err)
	}
	assertConsistent(t, iss)
	if iss.Issued != 100 {
		t.Fatalf("issuance %+v", iss)
	}
}

// waitDone polls until the issuance is done.
func waitDone(tb testing.TB, is *Issuer, id string) *Issuance {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		iss, err := is.Issuance(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		if iss.Status == IssuanceDone {
			return iss
		}
		if time.Now().After(deadline) {
			tb.Fatalf("issuance %s still %+v", id, iss)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartAndRunRunsLargeIssuancesInTheBackground(t *testing.T) {
	t.Parallel()
	s, p, crew, is := newIssuanceLab(t, 0, 1500)
	iss, created, err := is.StartAndRun(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100)
	if err != nil || !created || iss.Status != IssuanceRunning || iss.Total != 1500 {
		t.Fatalf("%+v, created %v, err %v", iss, created, err)
	}
	done := waitDone(t, is, iss.ID)
	assertConsistent(t, done)
	if err := is.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(string) bool { return true })
}

func TestCloseStopsBackgroundRunsAtABatchAndResumeFinishesThem(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 3000)
	latecomer := roster.crew("late", 1)
	is := s.issuer(roster)
	ctx := context.Background()

	closing := make(chan struct{})
	var once sync.Once
	roster.onLookup = func(n int64) {
		if n == issuanceBatch+1 { // the second batch is under way
			once.Do(func() { close(closing) })
		}
	}
	iss, _, err := is.StartAndRun(ctx, p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100)
	if err != nil {
		t.Fatal(err)
	}
	<-closing
	if err := is.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stopped, _ := is.Issuance(ctx, iss.ID)
	if stopped.Status != IssuanceRunning || stopped.Issued != 2*issuanceBatch {
		t.Fatalf("after Close %+v, want running with two batches issued", stopped)
	}
	// After Close nothing new runs here.
	if again, _, err := is.StartAndRun(ctx, p.ID, "k2", IssuanceTarget{SeafarerIDs: latecomer}, 100); err != nil || again.Status != IssuanceRunning {
		t.Fatalf("start after close: %+v, %v", again, err)
	}

	// The next process resumes both.
	roster.onLookup = nil
	next := s.issuer(roster)
	if err := next.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	done, _ := next.Issuance(ctx, iss.ID)
	assertConsistent(t, done)
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(string) bool { return true })
	if n := sumCounts(grantCounts(t, s, latecomer)); n != 1 {
		t.Fatalf("the issuance started during shutdown granted %d packs, want 1", n)
	}
	if n := runningCount(t, s); n != 0 {
		t.Fatalf("%d issuances left running", n)
	}
}

func BenchmarkIssuanceOf10000Seafarers(b *testing.B) {
	s := MustProgrammeStore(b)
	p := MustProgramme(b, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 10_000)
	is := s.issuer(roster)
	b.ResetTimer()
	for n := range b.N {
		MustIssue(b, is, p.ID, fmt.Sprintf("k%d", n), IssuanceTarget{SeafarerIDs: crew})
	}
}

// newIssuanceLab is a programme store with a programme of budget packs (0:
// unlimited), a roster of n active seafarers ("sf…") and an issuer over them.
func newIssuanceLab(t *testing.T, budget int64, n int) (*programmeEnv, *Programme, []string, *Issuer) {
	t.Helper()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, budget)
	roster := newFakeRoster()
	crew := roster.crew("sf", n)
	return s, p, crew, s.issuer(roster)
}
