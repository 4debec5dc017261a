// Package redistest connects tests to a real Redis. Each caller gets its own
// key prefix, so tests never see each other's data and can run in parallel.
//
// The server is WUYOU_TEST_REDIS_ADDRS (comma-separated; several addresses
// mean Redis Cluster), else 127.0.0.1:6379. `make test` starts one when none
// answers. A test that needs Redis fails, never skips, when none is reachable:
// a skipped integration test would pass without checking anything.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addrs returns the Redis addresses tests use.
func Addrs() []string {
	if v := os.Getenv("WUYOU_TEST_REDIS_ADDRS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:6379"}
}

// MustClient returns a client for the test Redis and a fresh key prefix
// unique to this test. Keys under the prefix are deleted when the test ends.
func MustClient(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	addrs := Addrs()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         addrs,
		IsClusterMode: len(addrs) > 1,
		ReadTimeout:   5 * time.Second,
		WriteTimeout:  5 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("redistest: no Redis at %v (set WUYOU_TEST_REDIS_ADDRS or run `make test`, which starts one): %v", addrs, err)
	}
	prefix := "wuyoutest:" + randomHex(6)
	tb.Cleanup(func() {
		cleanup(rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Keys returns the keys matching pattern, scanning every master when
// clustered: SCAN through a cluster client asks one node only.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err := c.ForEachMaster(ctx, scan)
		return keys, err
	case *redis.Client:
		err := scan(ctx, c)
		return keys, err
	default:
		return nil, fmt.Errorf("redistest: cannot scan over %T", rdb)
	}
}

// cleanup deletes the test's keys, on every master when clustered.
func cleanup(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Unlink(ctx, iter.Val())
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}
