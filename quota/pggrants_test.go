package quota

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
)

// TestEveryIssuedGrantIsARowOnTheProgrammesTerms: the system of record keeps
// what each pack gave, as the hot copy has it, and from which issuance.
func TestEveryIssuedGrantIsARowOnTheProgrammesTerms(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 2)
	eff := programmeTestNow.Add(36 * time.Hour)
	iss := MustIssue(t, s.issuer(roster), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew, EffectiveAt: &eff})
	ctx := context.Background()

	rec, err := s.grants.Grant(ctx, crew[0], IssuanceGrantID(iss.ID, crew[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := GrantRecord{
		ID: IssuanceGrantID(iss.ID, crew[0]), SeafarerID: crew[0], ProgrammeID: p.ID, IssuanceID: iss.ID,
		Seconds: p.PackSeconds, Priority: p.Priority, EffectiveAt: eff, ExpiresAt: eff.AddDate(0, 0, p.ValidDays),
		IssuedAt: programmeTestNow,
	}
	if rec.VoidedAt != nil || rec.ID != want.ID || rec.SeafarerID != want.SeafarerID || rec.ProgrammeID != want.ProgrammeID ||
		rec.IssuanceID != want.IssuanceID || rec.Seconds != want.Seconds || rec.Priority != want.Priority ||
		!rec.EffectiveAt.Equal(want.EffectiveAt) || !rec.ExpiresAt.Equal(want.ExpiresAt) || !rec.IssuedAt.Equal(want.IssuedAt) {
		t.Fatalf("grant row %+v, want %+v", rec, want)
	}
	hot, err := s.hot.Grants(ctx, crew[0])
	if err != nil || len(hot) != 1 {
		t.Fatalf("hot grants %v, %v", hot, err)
	}
	if h := hot[0]; h.ID != rec.ID || h.GrantedSeconds != rec.Seconds || !h.EffectiveAt.Equal(rec.EffectiveAt) ||
		!h.ExpiresAt.Equal(rec.ExpiresAt) || h.Priority != rec.Priority || h.ProgrammeID != rec.ProgrammeID {
		t.Fatalf("hot copy %+v differs from the row %+v", h, rec)
	}

	// A second pack sorts after the first: same priority, later expiry.
	later := eff.Add(24 * time.Hour)
	iss2 := MustIssue(t, s.issuer(roster), p.ID, "k2", IssuanceTarget{SeafarerIDs: crew[:1], EffectiveAt: &later})
	all, err := s.grants.SeafarerGrants(ctx, crew[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].IssuanceID != iss.ID || all[1].IssuanceID != iss2.ID {
		t.Fatalf("seafarer grants %+v", all)
	}
	if none, err := s.grants.SeafarerGrants(ctx, "sf_nobody"); err != nil || len(none) != 0 {
		t.Fatalf("grants of nobody: %v, %v", none, err)
	}
}

func TestAGrantIsFoundOnlyUnderItsOwnSeafarer(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 2)
	iss := MustIssue(t, s.issuer(roster), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	ctx := context.Background()
	g := IssuanceGrantID(iss.ID, crew[0])
	for _, tc := range []struct{ seafarer, grant string }{
		{crew[1], g}, {crew[0], "gr_unknown"}, {crew[0], "gr_\x00"}, {"sf\xff", g},
	} {
		if _, err := s.grants.Grant(ctx, tc.seafarer, tc.grant); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("Grant(%q, %q): %v, want ENOTFOUND", tc.seafarer, tc.grant, err)
		}
		if err := s.grants.VoidGrant(ctx, tc.seafarer, tc.grant, programmeTestNow); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("VoidGrant(%q, %q): %v, want ENOTFOUND", tc.seafarer, tc.grant, err)
		}
	}
	if rec, err := s.grants.Grant(ctx, crew[0], g); err != nil || rec.VoidedAt != nil {
		t.Fatalf("the grant after refused voids: %+v, %v", rec, err)
	}
}

// TestAGrantIsVoidedOnceEvenByConcurrentVoids: of many voids at once exactly
// one succeeds; the others are conflicts and leave the void time alone.
func TestAGrantIsVoidedOnceEvenByConcurrentVoids(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 1)
	iss := MustIssue(t, s.issuer(roster), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew})
	ctx := context.Background()
	g := IssuanceGrantID(iss.ID, crew[0])
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for n := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.grants.VoidGrant(ctx, crew[0], g, programmeTestNow.Add(time.Duration(n)*time.Minute+500*time.Millisecond))
			switch wuyou.ErrorCode(err) {
			case "":
				ok.Add(1)
			case wuyou.ECONFLICT:
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || conflicts.Load() != 9 {
		t.Fatalf("%d voids succeeded and %d conflicted, want 1 and 9", ok.Load(), conflicts.Load())
	}
	rec, err := s.grants.Grant(ctx, crew[0], g)
	if err != nil {
		t.Fatal(err)
	}
	if rec.VoidedAt == nil || rec.VoidedAt.Nanosecond() != 0 || rec.VoidedAt.Before(programmeTestNow) {
		t.Fatalf("voided at %v, want one of the void times, to the second", rec.VoidedAt)
	}
	first := *rec.VoidedAt
	if err := s.grants.VoidGrant(ctx, crew[0], g, programmeTestNow.AddDate(0, 0, 1)); wuyou.ErrorCode(err) != wuyou.ECONFLICT {
		t.Fatalf("voiding again: %v, want ECONFLICT", err)
	}
	if rec, _ := s.grants.Grant(ctx, crew[0], g); !rec.VoidedAt.Equal(first) {
		t.Fatalf("voided at moved from %v to %v", first, rec.VoidedAt)
	}
}
