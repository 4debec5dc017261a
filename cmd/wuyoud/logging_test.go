package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log destination safe for go-redis' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MustJSONLines parses every line of log as one JSON object: a plain-text
// line fails the test.
func MustJSONLines(tb testing.TB, log string) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(tb, json.Unmarshal([]byte(l), &m), "a log line that is not JSON: %q", l)
		lines = append(lines, m)
	}
	return lines
}

func TestLogWritesDurationsAsGoDurationsNotNanoseconds(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo)
	log.Info("retrying", "backoff", 1500*time.Millisecond, slog.Group("step", "took", 2*time.Minute))
	lines := MustJSONLines(t, buf.String())
	require.Len(t, lines, 1)
	require.Equal(t, "1.5s", lines[0]["backoff"])
	require.Equal(t, map[string]any{"took": "2m0s"}, lines[0]["step"])
}

// TestGoRedisLinesGoIntoTheJSONLog: what go-redis logs by itself (here: it
// could not dial) is a JSON line of wuyoud's log at warn, not plain text on
// stderr.
func TestGoRedisLinesGoIntoTheJSONLog(t *testing.T) {
	var out syncBuffer
	routeRedisLog(newLogger(&out, slog.LevelInfo))
	t.Cleanup(func() { routeRedisLog(slog.Default()) })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())
	rdb := redis.NewClient(&redis.Options{Addr: dead, DialTimeout: 200 * time.Millisecond, DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	require.Error(t, rdb.Ping(context.Background()).Err())

	var found map[string]any
	require.Eventually(t, func() bool {
		for _, line := range MustJSONLines(t, out.String()) {
			if line["component"] == "go-redis" {
				found = line
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no go-redis line in %s", out.String())
	require.Equal(t, "WARN", found["level"])
	require.Contains(t, found["msg"], "failed to dial")
	require.NotContains(t, found["msg"], "redis: ", "the prefix is the component's")
}
