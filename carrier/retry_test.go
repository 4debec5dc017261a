package carrier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/stretchr/testify/require"
)

// TestStoreRetriesWaitLongerEachTimeWithJitterUpToTenSeconds: the waits of
// a batch that cannot be stored double from 100 ms to 10 s, each drawn
// within ±50% of its step, so two replicas that failed together retry at
// different moments.
func TestStoreRetriesWaitLongerEachTimeWithJitterUpToTenSeconds(t *testing.T) {
	requireJitteredSchedule(t, storeBackOff, 100*time.Millisecond, 10*time.Second)
}

func TestFetchRetriesWaitLongerEachTimeWithJitterUpToFiveSeconds(t *testing.T) {
	requireJitteredSchedule(t, fetchBackOff, 500*time.Millisecond, 5*time.Second)
}

func requireJitteredSchedule(t *testing.T, schedule func() *backoff.ExponentialBackOff, first, max time.Duration) {
	t.Helper()
	a, b := schedule(), schedule()
	a.Reset()
	b.Reset()
	same := 0
	step := first
	for i := range 12 {
		wa, wb := a.NextBackOff(), b.NextBackOff()
		for _, w := range []time.Duration{wa, wb} {
			require.GreaterOrEqual(t, w, step/2, "wait %d", i)
			require.LessOrEqual(t, w, step+step/2, "wait %d", i)
		}
		if wa == wb {
			same++
		}
		step = min(step*2, max)
	}
	require.Less(t, same, 3, "two replicas' waits are drawn independently")
}

// TestRetryRepeatsAFailingStepUntilItSucceedsAndSaysSoInTheMetrics: the
// consumer is unhealthy while a step fails and healthy once it succeeds.
func TestRetryRepeatsAFailingStepUntilItSucceedsAndSaysSoInTheMetrics(t *testing.T) {
	f := newUnitFixture(t)
	calls := 0
	err := f.c.retry(context.Background(), func() error {
		calls++
		if calls > 1 {
			require.False(t, f.c.cfg.Metrics.Healthy(), "unhealthy after a failure")
		}
		if calls < 3 {
			return errors.New("redis: connection refused")
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, calls)
	require.True(t, f.c.cfg.Metrics.Healthy())
}

// TestRetryStopsWhenTheConsumerStops: a stop ends the waits at once, with
// an error, and the step is not tried again.
func TestRetryStopsWhenTheConsumerStops(t *testing.T) {
	f := newUnitFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- f.c.retry(ctx, func() error {
			calls++
			return errors.New("postgres: connection refused")
		})
	}()
	time.Sleep(250 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("retry went on after the stop")
	}
	require.False(t, f.c.cfg.Metrics.Healthy())
	require.Less(t, calls, 10, "waits grow: a few tries in 250 ms")
}
