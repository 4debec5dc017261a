package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

// jwksServer is an identity provider's JWKS endpoint whose keys and health
// a test changes while a verifier reads it.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int64
}

func MustJWKSServer(tb testing.TB, keys ...*token.SigningKey) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.Serve(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// Serve publishes exactly keys from now on: a rotation.
func (s *jwksServer) Serve(tb testing.TB, keys ...*token.SigningKey) {
	tb.Helper()
	body, err := token.JWKS(keys...)
	require.NoError(tb, err)
	s.ServeRaw(body)
}

func (s *jwksServer) ServeRaw(body []byte) {
	s.mu.Lock()
	s.body, s.status = body, http.StatusOK
	s.mu.Unlock()
}

// Fail makes every fetch answer status.
func (s *jwksServer) Fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func MustSigningKey(tb testing.TB, alg, kid string) *token.SigningKey {
	tb.Helper()
	k, err := token.GenerateSigningKey(alg)
	require.NoError(tb, err)
	k.KID = kid
	return k
}

// MustRemoteVerifier opens the server's JWKS with opts and a verifier over it.
func MustRemoteVerifier(tb testing.TB, url string, opts token.RemoteOptions) *Verifier {
	tb.Helper()
	remote, err := token.OpenRemoteJWKS(context.Background(), url, opts)
	require.NoError(tb, err)
	tb.Cleanup(remote.Close)
	v, err := NewVerifierFromRemoteJWKS(remote, authTestIssuer, authTestAudience, func() time.Time { return authTestNow })
	require.NoError(tb, err)
	return v
}

func requireRefused(tb testing.TB, v *Verifier, tok, why string) {
	tb.Helper()
	_, err := v.Verify(tok)
	require.Equal(tb, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err), why)
}

func requireAccepted(tb testing.TB, v *Verifier, tok, why string) {
	tb.Helper()
	p, err := v.Verify(tok)
	require.NoError(tb, err, why)
	require.Equal(tb, "sf-1", p.Subject, why)
}

// TestRemoteJWKS_RotatedKeysAreTakenWithoutARestart: the provider replaces
// its key by one with a new kid. A token of the new key makes the verifier
// fetch the set again and is accepted; a token of the removed key, though
// verified (and remembered) before, is refused from then on.
func TestRemoteJWKS_RotatedKeysAreTakenWithoutARestart(t *testing.T) {
	oldKey := MustSigningKey(t, token.AlgEdDSA, "2026-11")
	newKey := MustSigningKey(t, token.AlgES256, "2026-12")
	srv := MustJWKSServer(t, oldKey)
	v := MustRemoteVerifier(t, srv.URL, token.RemoteOptions{Refresh: time.Hour, UnknownKIDEvery: time.Millisecond})

	oldToken := MustMint(t, oldKey, seafarerClaims())
	newToken := MustMint(t, newKey, seafarerClaims())
	requireAccepted(t, v, oldToken, "the key published at start verifies")
	requireAccepted(t, v, oldToken, "and again, from the cache")
	requireRefused(t, v, newToken, "a key not yet published does not verify")

	srv.Serve(t, newKey)
	time.Sleep(5 * time.Millisecond) // past UnknownKIDEvery
	requireAccepted(t, v, newToken, "an unknown kid fetches the set again: the new key verifies")
	requireRefused(t, v, oldToken, "the removed key no longer verifies, though its token was remembered")
}

// TestRemoteJWKS_RemovedKeyStopsVerifyingAtThePeriodicRefresh: without any
// unknown kid to prompt a fetch, the set is fetched again every Refresh.
func TestRemoteJWKS_RemovedKeyStopsVerifyingAtThePeriodicRefresh(t *testing.T) {
	keep := MustSigningKey(t, token.AlgEdDSA, "keep")
	drop := MustSigningKey(t, token.AlgEdDSA, "drop")
	srv := MustJWKSServer(t, keep, drop)
	v := MustRemoteVerifier(t, srv.URL, token.RemoteOptions{Refresh: 20 * time.Millisecond, UnknownKIDEvery: time.Hour})
	dropped := MustMint(t, drop, seafarerClaims())
	requireAccepted(t, v, dropped, "published at start")

	srv.Serve(t, keep)
	require.Eventually(t, func() bool {
		_, err := v.Verify(dropped)
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the removed key is refused after a periodic refresh")
	requireAccepted(t, v, MustMint(t, keep, seafarerClaims()), "the key kept still verifies")
}

// TestRemoteJWKS_AlgorithmStaysTheKeys: a remote set pins each key's
// algorithm as a file does: a token cannot choose HMAC with the public key
// as secret, none, another asymmetric algorithm than its key's, or an HMAC
// key the provider (wrongly) published.
func TestRemoteJWKS_AlgorithmStaysTheKeys(t *testing.T) {
	ed := MustSigningKey(t, token.AlgEdDSA, "ed")
	rs := MustSigningKey(t, token.AlgRS256, "rs")
	set, err := token.JWKS(ed, rs)
	require.NoError(t, err)
	// The provider also publishes a symmetric key; Wuyou must never use it.
	secret := []byte("0123456789abcdef0123456789abcdef")
	var withOct jwkset.JWKSMarshal
	require.NoError(t, json.Unmarshal(set, &withOct))
	oct, err := jwkset.NewJWKFromKey(secret, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "hmac", ALG: jwkset.AlgHS256}, Marshal: jwkset.JWKMarshalOptions{Private: true}})
	require.NoError(t, err)
	withOct.Keys = append(withOct.Keys, oct.Marshal())
	body, err := json.Marshal(withOct)
	require.NoError(t, err)

	srv := MustJWKSServer(t)
	srv.ServeRaw(body)
	v := MustRemoteVerifier(t, srv.URL, token.RemoteOptions{Refresh: time.Hour, UnknownKIDEvery: time.Millisecond})
	requireAccepted(t, v, MustMint(t, ed, seafarerClaims()), "the EdDSA key verifies EdDSA")

	claims := validMapClaims()
	for name, tok := range map[string]string{
		"HS256 with the RSA public key as secret": MustCraft(t, jwt.SigningMethodHS256, publicKeyPEM(t, rs), "rs", claims),
		"HS256 with the published HMAC key":       MustCraft(t, jwt.SigningMethodHS256, secret, "hmac", claims),
		"none":                                    MustCraft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "ed", claims),
		"PS256 under the RS256 key's kid":         MustCraft(t, jwt.SigningMethodPS256, rs.Private, "rs", claims),
		"EdDSA signed by the RSA kid's name":      MustCraft(t, jwt.SigningMethodEdDSA, ed.Private, "rs", claims),
	} {
		t.Run(name, func(t *testing.T) { requireRefused(t, v, tok, name) })
	}
}

// TestRemoteJWKS_UnknownKIDsFetchAtMostOnceAnInterval: tokens with made-up
// kids cost one fetch per UnknownKIDEvery, not one each.
func TestRemoteJWKS_UnknownKIDsFetchAtMostOnceAnInterval(t *testing.T) {
	known := MustSigningKey(t, token.AlgEdDSA, "known")
	srv := MustJWKSServer(t, known)
	v := MustRemoteVerifier(t, srv.URL, token.RemoteOptions{Refresh: time.Hour, UnknownKIDEvery: time.Hour})
	require.EqualValues(t, 1, srv.fetches.Load(), "fetched once at start")

	for i := range 20 {
		stranger := MustSigningKey(t, token.AlgEdDSA, "stranger-"+string(rune('a'+i)))
		requireRefused(t, v, MustMint(t, stranger, seafarerClaims()), "a kid nobody published")
	}
	require.EqualValues(t, 2, srv.fetches.Load(), "20 unknown kids made one fetch")
	requireAccepted(t, v, MustMint(t, known, seafarerClaims()), "known keys verify without waiting")
}

// TestRemoteJWKS_AFailedRefreshKeepsTheKeysAndSaysSo: the provider down
// after start leaves the last keys in use, and the failure is logged.
func TestRemoteJWKS_AFailedRefreshKeepsTheKeysAndSaysSo(t *testing.T) {
	key := MustSigningKey(t, token.AlgEdDSA, "k1")
	srv := MustJWKSServer(t, key)
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logged}, nil))
	v := MustRemoteVerifier(t, srv.URL, token.RemoteOptions{Refresh: time.Hour, UnknownKIDEvery: time.Millisecond, Log: log})

	srv.Fail(http.StatusServiceUnavailable)
	requireRefused(t, v, MustMint(t, MustSigningKey(t, token.AlgEdDSA, "k2"), seafarerClaims()), "an unknown kid while the provider is down")
	requireAccepted(t, v, MustMint(t, key, seafarerClaims()), "the last fetched key still verifies")
	logMu.Lock()
	defer logMu.Unlock()
	require.Contains(t, logged.String(), `"level":"WARN","msg":"JWKS not refreshed; the keys of the last fetch stay in use"`)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOpenVerifier_ProviderUnusableAtStartIsAnError: wuyoud does not start
// with a JWKS URL it cannot read, or that has no key it could use: it
// would refuse every token while looking healthy.
func TestOpenVerifier_ProviderUnusableAtStartIsAnError(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/jwks.json"
	down.Close()

	failing := MustJWKSServer(t, MustSigningKey(t, token.AlgEdDSA, "k"))
	failing.Fail(http.StatusInternalServerError)
	empty := MustJWKSServer(t)
	empty.ServeRaw([]byte(`{"keys":[]}`))

	// A good set padded past token.MaxJWKSBytes: cut, it does not decode.
	good, err := token.JWKS(MustSigningKey(t, token.AlgEdDSA, "k"))
	require.NoError(t, err)
	padded := strings.TrimSuffix(strings.TrimSpace(string(good)), "}") + `,"padding":"` + strings.Repeat("x", token.MaxJWKSBytes) + `"}`
	huge := MustJWKSServer(t)
	huge.ServeRaw([]byte(padded))
	_, err = token.OpenRemoteJWKS(context.Background(), huge.URL, token.RemoteOptions{})
	require.ErrorContains(t, err, "decode")

	for name, url := range map[string]string{"down": downURL, "answering 500": failing.URL, "no usable key": empty.URL, "over 1 MiB": huge.URL} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenVerifier(context.Background(), url, authTestIssuer, authTestAudience, nil, slog.New(slog.DiscardHandler))
			require.Error(t, err)
			require.Contains(t, err.Error(), url, "the error names the URL")
		})
	}
}

// TestOpenVerifier_ReadsAURLAFileOrInlineJSON: WUYOU_JWT_JWKS names the
// set in any of three ways, all verifying alike.
func TestOpenVerifier_ReadsAURLAFileOrInlineJSON(t *testing.T) {
	key := MustSigningKey(t, token.AlgRS256, "rs")
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, jwks, 0o644))
	srv := MustJWKSServer(t, key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for name, source := range map[string]string{"url": srv.URL, "file": path, "inline": string(jwks)} {
		t.Run(name, func(t *testing.T) {
			v, err := OpenVerifier(ctx, source, authTestIssuer, authTestAudience, func() time.Time { return authTestNow }, nil)
			require.NoError(t, err)
			requireAccepted(t, v, MustMint(t, key, seafarerClaims()), name)
			requireRefused(t, v, MustMint(t, MustSigningKey(t, token.AlgRS256, "other"), seafarerClaims()), name)
		})
	}
}
