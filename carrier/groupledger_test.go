package carrier

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// slowLedger is a fakeLedger whose every Append takes a while and is
// counted, as a commit is.
type slowLedger struct {
	fakeLedger
	calls atomic.Int64
}

func (l *slowLedger) Append(ctx context.Context, es []quota.SeafarerEntry) error {
	l.calls.Add(1)
	time.Sleep(5 * time.Millisecond)
	return l.fakeLedger.Append(ctx, es)
}

func entryOf(event string) []quota.SeafarerEntry {
	return []quota.SeafarerEntry{{SeafarerID: "sf_1", Entry: &quota.LedgerEntry{ID: "d_" + event, EventID: event}}}
}

// appendAll makes n Appends at once, event i named by name(i), and returns
// each one's error after checking that a nil one returned only once its
// entry was stored.
func appendAll(t *testing.T, g *GroupLedger, under *slowLedger, n int, name func(int) string) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			event := name(i)
			errs[i] = g.Append(context.Background(), entryOf(event))
			if errs[i] == nil {
				under.mu.Lock()
				_, stored := under.entries["d_"+event]
				under.mu.Unlock()
				if !stored {
					t.Errorf("%s returned before it was stored", event)
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// Appends made at once share the ledger's calls, and each returns only once
// its own entries are stored.
func TestGroupLedgerSharesCommits(t *testing.T) {
	under := &slowLedger{fakeLedger: fakeLedger{entries: map[string]quota.SeafarerEntry{}}}
	errs := appendAll(t, &GroupLedger{Ledger: under}, under, 64, func(i int) string { return fmt.Sprintf("e%d", i) })
	for i, err := range errs {
		require.NoError(t, err, "append %d", i)
	}
	require.Len(t, under.entries, 64)
	require.Less(t, under.calls.Load(), int64(32), "64 appends at once, %d ledger calls", under.calls.Load())
}

// An entry the ledger refuses fails its own Append alone: the others of its
// group are stored.
func TestGroupLedgerIsolatesARefusedEntry(t *testing.T) {
	under := &slowLedger{fakeLedger: fakeLedger{entries: map[string]quota.SeafarerEntry{}, refuse: map[string]bool{"bad": true}}}
	errs := appendAll(t, &GroupLedger{Ledger: under}, under, 32, func(i int) string {
		if i == 17 {
			return "bad"
		}
		return fmt.Sprintf("e%d", i)
	})
	for i, err := range errs {
		if i == 17 {
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "the refused entry's own error")
			continue
		}
		require.NoError(t, err, "append %d", i)
	}
	require.Len(t, under.entries, 31)
}

// A lone Append goes at once, and one whose context ends stops waiting.
func TestGroupLedgerAloneAndCancelled(t *testing.T) {
	under := &slowLedger{fakeLedger: fakeLedger{entries: map[string]quota.SeafarerEntry{}}}
	g := &GroupLedger{Ledger: under}
	require.NoError(t, g.Append(context.Background(), entryOf("one")))
	require.Equal(t, int64(1), under.calls.Load())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, g.Append(ctx, entryOf("two")), context.Canceled)
}
