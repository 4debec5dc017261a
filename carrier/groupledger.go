package carrier

import (
	"context"
	"sync"
	"time"

	"github.com/wuyou/wuyou/quota"
)

// GroupLedger stores the entries of Append calls made at about the same
// time in one Append of the ledger beneath (one transaction, one commit),
// so concurrent session terminates share a commit. Each call returns once
// its entries are stored. As with the allowance reads (quota's
// readBatcher), a call never waits for a timer: alone, it goes at once;
// while a group is being stored, the calls that arrive go together next.
//
// A group that fails is stored again one call at a time, so an entry the
// ledger refuses fails its own call only.
type GroupLedger struct {
	Ledger LedgerWriter

	mu       sync.Mutex
	pending  []*groupAppend
	flushing bool
}

type groupAppend struct {
	entries []quota.SeafarerEntry
	done    chan error
}

// groupTimeout bounds one group's store: it serves many callers, so it
// cannot take any one caller's deadline.
const groupTimeout = 30 * time.Second

// Append stores entries with whatever else is appended meanwhile.
func (g *GroupLedger) Append(ctx context.Context, entries []quota.SeafarerEntry) error {
	a := &groupAppend{entries: entries, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, a)
	start := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if start {
		go g.flush()
	}
	select {
	case err := <-a.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush stores pending groups until none is left.
func (g *GroupLedger) flush() {
	for {
		g.mu.Lock()
		group := g.pending
		g.pending = nil
		if len(group) == 0 {
			g.flushing = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		var all []quota.SeafarerEntry
		for _, a := range group {
			all = append(all, a.entries...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		err := g.Ledger.Append(ctx, all)
		if err != nil && len(group) > 1 {
			for _, a := range group {
				a.done <- g.Ledger.Append(ctx, a.entries)
			}
		} else {
			for _, a := range group {
				a.done <- err
			}
		}
		cancel()
	}
}
