package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// newLogger is wuyoud's log: JSON lines on w, from level up. Durations are
// written as Go durations ("1.5s"), not as slog's nanoseconds, whoever logs
// them (the libraries too).
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText}))
}

// durationsAsText is a slog ReplaceAttr writing a duration as a Go duration
// string.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// routeRedisLog sends go-redis' own log lines (a failed dial, a connection
// it could not close…) into log at warn, instead of the plain-text lines it
// writes on stderr by default, so the log stays one JSON object a line.
// go-redis has one logger per process: the last call wins.
func routeRedisLog(log *slog.Logger) { redis.SetLogger(redisLog{log: log}) }

// redisLog is go-redis' logging interface (Printf with a context) over slog.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	r.log.WarnContext(ctx, msg, "component", "go-redis")
}
