package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunStopsWhenTheJWKSURLCannotBeReadAndSaysWhich: a JWKS URL that does
// not answer at start stops wuyoud (CONTRACT §7.6, docs/operations.md):
// without keys it would refuse every token while looking ready.
func TestRunStopsWhenTheJWKSURLCannotBeReadAndSaysWhich(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + l.Addr().String() + "/.well-known/jwks.json"
	require.NoError(t, l.Close())

	var out, errOut bytes.Buffer
	t.Cleanup(func() { routeRedisLog(slog.Default()) }) // run routed go-redis' log to errOut
	err = run(context.Background(), nil, envOf(map[string]string{
		"WUYOU_REDIS_ADDRS": "127.0.0.1:1", "WUYOU_KAFKA_BROKERS": "127.0.0.1:1",
		"WUYOU_POSTGRES_URL": "postgres://wuyou@127.0.0.1:1/wuyou", "WUYOU_JWT_ISSUER": "https://id.example",
		"WUYOU_JWT_JWKS": dead,
	}), &out, &errOut)
	require.Error(t, err)
	require.Contains(t, err.Error(), "WUYOU_JWT_JWKS")
	require.Contains(t, err.Error(), dead)
}

// TestConfigLogShowsAJWKSPathOrURLButNotInlineJSON: the start line names
// where the keys come from; inline JSON is only mentioned.
func TestConfigLogShowsAJWKSPathOrURLButNotInlineJSON(t *testing.T) {
	for source, want := range map[string]string{
		"/etc/wuyou/jwks.json":                     `"jwt_jwks":"/etc/wuyou/jwks.json"`,
		"https://id.example/.well-known/jwks.json": `"jwt_jwks":"https://id.example/.well-known/jwks.json"`,
		`{"keys":[{"kty":"OKP"}]}`:                 `"jwt_jwks":"(inline JWKS)"`,
	} {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", Config{JWKSPath: source})
		require.Contains(t, buf.String(), want)
	}
}
