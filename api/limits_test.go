package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/token"
)

// chunked hides a body's length, so the client sends it chunked.
func chunked(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

// companyBody is a valid create-company body padded to at least size bytes
// with whitespace, which JSON ignores.
func companyBody(size int) []byte {
	b := []byte(`{"name":"Padded Shipping","registration_no":"PAD-1"}`)
	if pad := size - len(b); pad > 0 {
		b = append(bytes.Repeat([]byte(" "), pad), b...)
	}
	return b
}

func TestRequestHead_OverTheReadBufferIs401ProblemEvenForMegabytes(t *testing.T) {
	f := MustAuthFixture(t)
	ls := MustLiveServer(t, f.verifier, nil)
	union := rateLimitToken(t, token.RoleUnion, "officer-head", "")
	for _, size := range []int{readBufferSize, 1 << 20, 4 << 20} {
		// Several times: a server that closed without reading the rest
		// would reset some of these connections under the client.
		for range 3 {
			res := ls.do(t, http.MethodPost, "/v1/companies", union, bytes.NewReader(companyBody(0)),
				"X-Padding", strings.Repeat("p", size))
			p := requireProblem(t, res, http.StatusUnauthorized)
			require.Contains(t, p.Detail, "headers are too large")
			require.Equal(t, `Bearer realm="wuyou"`, res.header.Get("WWW-Authenticate"))
		}
	}
}

func TestRequestHead_WithTheLongestAcceptedTokenReachesTheHandler(t *testing.T) {
	f := MustAuthFixture(t)
	ls := MustLiveServer(t, f.verifier, nil)
	union := rateLimitToken(t, token.RoleUnion, "officer-long", "")
	// A token of MaxTokenBytes is refused by Verify, not by the server's
	// buffer; other headers fit beside it.
	res := ls.do(t, http.MethodGet, "/v1/me/allowance", bearer(strings.Repeat("a", MaxTokenBytes)), nil,
		"X-Padding", strings.Repeat("p", 4<<10))
	p := requireProblem(t, res, http.StatusUnauthorized)
	require.Equal(t, "invalid token", p.Detail, "Authenticate, not the read buffer, refused it")

	res = ls.do(t, http.MethodPost, "/v1/companies", union, bytes.NewReader(companyBody(0)), "X-Padding", strings.Repeat("p", 6<<10))
	require.Equal(t, http.StatusCreated, res.status, "body: %s", res.body)
}

func TestRequestBody_OverTheLimitIs413Problem(t *testing.T) {
	const limit = 64 << 10
	f := MustAuthFixture(t)
	ls := MustLiveServer(t, f.verifier, func(c *Config) { c.BodyLimit = limit })
	union := rateLimitToken(t, token.RoleUnion, "officer-body", "")

	tests := []struct {
		name string
		path string
		body func() io.Reader
	}{
		{"declared length just over the limit", "/v1/companies", func() io.Reader { return bytes.NewReader(companyBody(limit + 1)) }},
		{"declared length of 8 MiB", "/v1/companies", func() io.Reader { return bytes.NewReader(companyBody(8 << 20)) }},
		{"chunked body over the limit", "/v1/companies", func() io.Reader { return chunked(companyBody(limit + 1)) }},
		{"chunked body of 8 MiB", "/v1/programmes", func() io.Reader { return chunked(companyBody(8 << 20)) }},
		{"declared length over the limit on the bulk route", "/v1/companies/co-1/seafarers:bulk", func() io.Reader {
			return bytes.NewReader(companyBody(limit + 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				res := ls.do(t, http.MethodPost, tt.path, union, tt.body())
				requireProblem(t, res, http.StatusRequestEntityTooLarge)
			}
		})
	}

	t.Run("a chunked body within the limit is read", func(t *testing.T) {
		res := ls.do(t, http.MethodPost, "/v1/companies", union, chunked(companyBody(limit)))
		require.Equal(t, http.StatusCreated, res.status, "body: %s", res.body)
	})
	t.Run("a chunked body is not read for a request without a token", func(t *testing.T) {
		before := ls.commands.n.Load()
		requireProblem(t, ls.do(t, http.MethodPost, "/v1/companies", "", chunked(companyBody(8<<20))), http.StatusUnauthorized)
		require.Zero(t, ls.commands.n.Load()-before)
	})
}

func TestRequestBody_CompressedIs415Problem(t *testing.T) {
	f := MustAuthFixture(t)
	ls := MustLiveServer(t, f.verifier, nil)
	union := rateLimitToken(t, token.RoleUnion, "officer-gzip", "")
	// A gzip bomb: 8 MiB of spaces inflate from a few KiB. fiber would
	// inflate it without a bound.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(companyBody(8 << 20))
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	res := ls.do(t, http.MethodPost, "/v1/companies", union, bytes.NewReader(buf.Bytes()), "Content-Encoding", "gzip")
	p := requireProblem(t, res, http.StatusUnsupportedMediaType)
	require.Contains(t, p.Detail, "must not be compressed")

	res = ls.do(t, http.MethodPost, "/v1/companies", union, bytes.NewReader(companyBody(0)), "Content-Encoding", "identity")
	require.Equal(t, http.StatusCreated, res.status, "identity is no encoding: %s", res.body)
}
