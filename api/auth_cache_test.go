package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

// TestVerifiedTokenIsRememberedOnlyUntilItsExpiry: a token verified once is
// accepted again from the cache, and refused once its own expiry passes,
// even though the signature check is not repeated.
func TestVerifiedTokenIsRememberedOnlyUntilItsExpiry(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	key, err := token.GenerateSigningKey("EdDSA")
	require.NoError(t, err)
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	v, err := NewVerifierFromJWKS(jwks, "iss", "wuyou", func() time.Time { return now })
	require.NoError(t, err)
	tok, err := key.Mint(token.Claims{Issuer: "iss", Audience: "wuyou", Subject: "sf_1", Role: token.RoleSeafarer, TTL: time.Minute}, now)
	require.NoError(t, err)

	p, err := v.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, Principal{Role: token.RoleSeafarer, Subject: "sf_1"}, p)
	require.Len(t, v.verified, 1)
	p, err = v.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "sf_1", p.Subject)

	now = now.Add(time.Minute + 31*time.Second) // past expiry and the 30 s clock leeway
	_, err = v.Verify(tok)
	require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err), "an expired token is refused even when remembered")
}

// TestTamperedTokenIsNotServedFromTheCache: the cache is keyed by the whole
// token, so changing any byte of a remembered token means a full check.
func TestTamperedTokenIsNotServedFromTheCache(t *testing.T) {
	key, err := token.GenerateSigningKey("ES256")
	require.NoError(t, err)
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	v, err := NewVerifierFromJWKS(jwks, "iss", "wuyou", nil)
	require.NoError(t, err)
	tok, err := key.Mint(token.Claims{Issuer: "iss", Audience: "wuyou", Subject: "sf_1", Role: token.RoleSeafarer, TTL: time.Minute}, time.Now())
	require.NoError(t, err)
	_, err = v.Verify(tok)
	require.NoError(t, err)
	tampered := tok[:len(tok)-2] + "AA"
	if tampered == tok {
		tampered = tok[:len(tok)-2] + "BB"
	}
	_, err = v.Verify(tampered)
	require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err))
}
