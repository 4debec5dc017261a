package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/internal/pgtest"
)

// devRun is `wuyoud dev` running in-process on free ports.
type devRun struct {
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// mustStartDev runs `wuyoud dev` with env as its environment, on a free
// HTTP port and a free port for its Kafka-protocol broker (not 9092, which
// another dev mode on the machine may hold), and waits until it has printed
// its guide.
func mustStartDev(tb testing.TB, env map[string]string) *devRun {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devRun{out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args := []string{"--http", "127.0.0.1:0", "--kafka-port", strconv.Itoa(mustFreePort(tb))}
	go func() { d.done <- runDevEnv(ctx, args, func(k string) string { return env[k] }, d.out, io.Discard) }()
	tb.Cleanup(func() { d.stop(tb) })
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(d.out.String(), "Send a call yourself") {
		select {
		case err := <-d.done:
			d.done <- err
			tb.Fatalf("wuyoud dev ended before printing its guide: %v\n%s", err, d.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("wuyoud dev printed no guide within 2 minutes:\n%s", d.out.String())
		}
	}
	return d
}

// stop ends dev mode as SIGINT would and returns what it returned; calling
// it again returns nil.
func (d *devRun) stop(tb testing.TB) error {
	tb.Helper()
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		return err
	case <-time.After(time.Minute):
		tb.Fatalf("wuyoud dev did not stop within a minute")
		return nil
	}
}

func mustFreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is an io.Writer a test may read while another goroutine
// writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var throwawayLine = regexp.MustCompile(`PostgreSQL is a throwaway server in (\S+), removed when this stops\s+\((postgres://\S+)\)\.`)

func TestDevStartsAThrowawayPostgreSQLAndRemovesItOnStop(t *testing.T) {
	t.Parallel()
	d := mustStartDev(t, nil)
	m := throwawayLine.FindStringSubmatch(d.out.String())
	require.NotNil(t, m, "the banner names the throwaway PostgreSQL's folder and URL:\n%s", d.out.String())
	dir, url := m[1], m[2]
	require.DirExists(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	version, err := pgschema.Version(ctx, pool)
	pool.Close()
	require.NoError(t, err, "the banner's URL reaches the throwaway server")
	latest, err := pgschema.Latest()
	require.NoError(t, err)
	require.Equal(t, latest, version, "the service migrated the throwaway server at start")

	require.NoError(t, d.stop(t), "dev mode stops cleanly")
	require.Contains(t, d.out.String(), "throwaway PostgreSQL are discarded")
	_, err = os.Stat(dir)
	require.True(t, errors.Is(err, os.ErrNotExist), "the throwaway server's folder is removed on stop: %v", err)
	_, err = pgx.Connect(ctx, url+"&connect_timeout=2")
	require.Error(t, err, "nothing listens on the throwaway server's URL any more")
}

func TestDevUsesWUYOU_POSTGRES_URLInsteadOfAThrowawayServerAndLeavesItRunning(t *testing.T) {
	t.Parallel()
	url := pgtest.MustURL(t)
	d := mustStartDev(t, map[string]string{"WUYOU_POSTGRES_URL": url})
	out := d.out.String()
	require.Contains(t, out, "PostgreSQL: "+maskPostgresURL(url)+" (yours)")
	require.NotContains(t, out, "throwaway server")

	require.NoError(t, d.stop(t), "dev mode stops cleanly")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err, "the caller's PostgreSQL is left as it was")
	conn.Close(ctx)
}

func TestDevRefusesAWUYOU_POSTGRES_URLThatDoesNotParseWithoutShowingItsPassword(t *testing.T) {
	t.Parallel()
	err := runDevEnv(context.Background(), nil, func(k string) string {
		return map[string]string{"WUYOU_POSTGRES_URL": "postgres://wuyou:s3cr3t-dev@db:notaport/wuyou"}[k]
	}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "WUYOU_POSTGRES_URL")
	require.NotContains(t, err.Error(), "s3cr3t-dev")
}
