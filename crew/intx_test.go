package crew

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestATransactionThatLostARaceRunsAgainAFewTimesAndNoOtherDoes: a run
// that lost a race is repeated (after a short random wait) up to
// maxTxAttempts runs; any other error is returned at once, and a cancelled
// context stops the repeats.
func TestATransactionThatLostARaceRunsAgainAFewTimesAndNoOtherDoes(t *testing.T) {
	s, _ := MustPGStore(t)
	for _, tc := range []struct {
		name     string
		fail     error
		cancel   bool
		wantRuns int
	}{
		{name: "lost every race", fail: errRetry, wantRuns: maxTxAttempts},
		{name: "a rule broken", fail: errors.New("bad input"), wantRuns: 1},
		{name: "lost a race while stopping", fail: errRetry, cancel: true, wantRuns: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runs := 0
			err := s.inTx(ctx, func(pgx.Tx) error {
				runs++
				if tc.cancel {
					cancel()
				}
				return tc.fail
			})
			require.Error(t, err)
			require.Equal(t, tc.wantRuns, runs)
			if !tc.cancel {
				require.ErrorIs(t, err, tc.fail, "the last run's error")
			}
		})
	}
}
