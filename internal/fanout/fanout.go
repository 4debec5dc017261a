// Package fanout runs independent steps a bounded number at a time.
package fanout

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Each calls fn(ctx, 0..n-1) on at most workers goroutines and returns the
// first error; after one, the remaining calls are not made. ctx passed to
// fn is cancelled on the first error.
func Each(parent context.Context, n, workers int, fn func(ctx context.Context, j int) error) error {
	g, ctx := errgroup.WithContext(parent)
	g.SetLimit(workers)
	for j := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, j) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return parent.Err()
}
