package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// liveServer is the API serving on a real TCP port over a deployment
// (deployment_test.go), with every Redis command and PostgreSQL query its
// stores send counted.
type liveServer struct {
	*deployment
	server *Server
	base   string
	// commands counts what the server sends to Redis and PostgreSQL
	// (MustLiveServer only).
	commands *commandCounter
}

// commandCounter is a go-redis hook and a pgx tracer that counts the
// commands a Redis client sends, pipelined ones included, and the queries
// a PostgreSQL pool sends.
type commandCounter struct{ n atomic.Int64 }

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *commandCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	h.n.Add(1)
	return ctx
}

func (h *commandCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// MustLiveServer starts the API on 127.0.0.1 over a deployment of its own,
// with the write rate limit shared through Redis as in wuyoud. configure,
// when not nil, changes the configuration before the server is built. The
// server stops when the test ends.
func MustLiveServer(tb testing.TB, v *Verifier, configure func(*Config)) *liveServer {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	commands := &commandCounter{}
	rdb.AddHook(commands)
	cfg := pgtest.MustPool(tb).Config()
	cfg.ConnConfig.Tracer = commands
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close) // runs before the database is dropped
	ls := mustLiveServerOn(tb, newDeployment(pool, rdb, prefix), v, configure)
	ls.commands = commands
	return ls
}

// mustLiveServerOn is MustLiveServer over a given deployment, for several
// servers that are replicas of one service.
func mustLiveServerOn(tb testing.TB, d *deployment, v *Verifier, configure func(*Config)) *liveServer {
	tb.Helper()
	ls := mustServerOn(tb, d, v, configure)
	addr, err := ls.server.Listen("127.0.0.1:0")
	require.NoError(tb, err)
	ls.base = "http://" + addr.String()
	return ls
}

// mustServerOn builds the server over the deployment without listening,
// for app.Test. It is shut down when the test ends.
func mustServerOn(tb testing.TB, d *deployment, v *Verifier, configure func(*Config)) *liveServer {
	tb.Helper()
	ls := &liveServer{deployment: d}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := d.config(d.newIssuer(tb, log), v, log)
	cfg.RateLimitStorage = NewRedisRateLimitStore(d.rdb, d.prefix)
	if configure != nil {
		configure(&cfg)
	}
	ls.server = New(cfg)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ls.server.Shutdown(ctx)
	})
	return ls
}

// liveResponse is what a live request got back.
type liveResponse struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// problemBody is an RFC 9457 problem document as a client reads it.
type problemBody struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail"`
	Errors []wuyou.FieldError `json:"errors"`
}

// requireProblem checks that r is a problem+json document of the given
// status with a detail, and returns it.
func requireProblem(tb testing.TB, r liveResponse, status int) problemBody {
	tb.Helper()
	require.Equal(tb, status, r.status, "body: %.300s", r.body)
	require.Equal(tb, "application/problem+json", r.header.Get("Content-Type"))
	var p problemBody
	require.NoError(tb, json.Unmarshal(r.body, &p), "body: %.300s", r.body)
	require.Equal(tb, status, p.Status)
	require.NotEmpty(tb, p.Title)
	require.NotEmpty(tb, p.Detail)
	return p
}

// liveClient sends requests over fresh connections, so a connection the
// server closed after a refusal never affects the next case.
var liveClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
}

// do sends one request; authorization is the whole header value (empty
// sends none) and header adds name/value pairs.
func (ls *liveServer) do(tb testing.TB, method, path, authorization string, body io.Reader, header ...string) liveResponse {
	tb.Helper()
	req, err := http.NewRequest(method, ls.base+path, body)
	require.NoError(tb, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if req.Header.Get("Content-Type") == "" && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	started := time.Now()
	res, err := liveClient.Do(req)
	require.NoError(tb, err, "%s %s", method, path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	return liveResponse{status: res.StatusCode, header: res.Header, body: b, elapsed: time.Since(started)}
}

// jsonOf is v encoded as JSON.
func jsonOf(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return b
}

// bearer is an Authorization header value.
func bearer(token string) string { return "Bearer " + token }
