package quota

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
)

// waitReleased waits until the issuer no longer runs id in the background.
func waitReleased(tb testing.TB, is *Issuer, id string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		is.mu.Lock()
		active := is.active[id]
		is.mu.Unlock()
		if !active {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("issuance %s still runs in the background", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestABackgroundRunThatFailsIsRunAgainAfterAWait: a run that fails for a
// reason that may pass (a store out of reach) is run again, after a wait
// drawn around backgroundBackoff, and finishes the issuance.
func TestABackgroundRunThatFailsIsRunAgainAfterAWait(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 1500)
	is := s.issuer(roster)
	var runs atomic.Int64
	var failedAt, retriedAt atomic.Int64 // unix nanoseconds
	is.afterDecide = func(_ string, batchStart int64) error {
		if batchStart != 0 {
			return nil
		}
		if runs.Add(1) == 1 {
			failedAt.Store(time.Now().UnixNano())
			return errors.New("dial tcp: connection refused")
		}
		retriedAt.Store(time.Now().UnixNano())
		return nil
	}
	iss, _, err := is.StartAndRun(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100)
	if err != nil {
		t.Fatal(err)
	}
	done := waitDone(t, is, iss.ID)
	assertConsistent(t, done)
	if runs.Load() != 2 {
		t.Fatalf("%d runs, want the failed one and one more", runs.Load())
	}
	if waited := time.Duration(retriedAt.Load() - failedAt.Load()); waited < backgroundBackoff/2 {
		t.Fatalf("ran again after %s, want a wait of at least %s", waited, backgroundBackoff/2)
	}
	if err := is.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertEachHoldsOneGrantFrom(t, s, iss.ID, crew, func(string) bool { return true })
}

// TestABackgroundRunARuleRefusesIsNotRunAgain: a failure that another run
// would meet again (a rule, a missing record) ends the background runs at
// once; the issuance stays running for the next start.
func TestABackgroundRunARuleRefusesIsNotRunAgain(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 1500)
	is := s.issuer(roster)
	var runs atomic.Int64
	is.afterDecide = func(string, int64) error {
		runs.Add(1)
		return wuyou.Errorf(wuyou.EUNPROCESSABLE, "refused")
	}
	iss, _, err := is.StartAndRun(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100)
	if err != nil {
		t.Fatal(err)
	}
	waitReleased(t, is, iss.ID)
	if runs.Load() != 1 {
		t.Fatalf("%d runs, want 1", runs.Load())
	}
	if got, _ := is.Issuance(context.Background(), iss.ID); got.Status != IssuanceRunning {
		t.Fatalf("issuance %+v, want it left running", got)
	}
	if err := is.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseEndsTheWaitBeforeABackgroundRunIsRunAgain: Close does not wait
// out the backoff of a failed run.
func TestCloseEndsTheWaitBeforeABackgroundRunIsRunAgain(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	roster := newFakeRoster()
	crew := roster.crew("sf", 1500)
	is := s.issuer(roster)
	failed := make(chan struct{})
	var runs atomic.Int64
	is.afterDecide = func(string, int64) error {
		if runs.Add(1) == 1 {
			close(failed)
		}
		return errors.New("dial tcp: connection refused")
	}
	if _, _, err := is.StartAndRun(context.Background(), p.ID, "k1", IssuanceTarget{SeafarerIDs: crew}, 100); err != nil {
		t.Fatal(err)
	}
	<-failed
	start := time.Now()
	if err := is.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > backgroundBackoff/4 {
		t.Fatalf("Close took %s", took)
	}
	if runs.Load() != 1 {
		t.Fatalf("%d runs, want 1", runs.Load())
	}
}
