package token

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

const (
	testIssuer   = "https://auth.wuyou.test"
	testAudience = "wuyou"
)

var testNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// testKeys holds one key per accepted algorithm, all published in one JWKS.
type testKeys struct {
	ed, ec, rs *SigningKey
	jwks       []byte
}

// makeTestKeys runs once per test binary: RSA generation is slow under -race.
var makeTestKeys = sync.OnceValues(func() (*testKeys, error) {
	kids := map[string]string{AlgEdDSA: "ed-1", AlgES256: "ec-1", AlgRS256: "rs-1"}
	byAlg := make(map[string]*SigningKey, len(kids))
	for alg, kid := range kids {
		k, err := GenerateSigningKey(alg)
		if err != nil {
			return nil, err
		}
		k.KID = kid
		byAlg[alg] = k
	}
	f := &testKeys{ed: byAlg[AlgEdDSA], ec: byAlg[AlgES256], rs: byAlg[AlgRS256]}
	var err error
	f.jwks, err = JWKS(f.ed, f.ec, f.rs)
	return f, err
})

func MustTestKeys(tb testing.TB) *testKeys {
	tb.Helper()
	f, err := makeTestKeys()
	require.NoError(tb, err)
	return f
}

func seafarerClaims() Claims {
	return Claims{Issuer: testIssuer, Audience: testAudience, Subject: "sf-1", Role: RoleSeafarer, TTL: time.Hour}
}

func MustMint(tb testing.TB, k *SigningKey, c Claims) string {
	tb.Helper()
	token, err := k.Mint(c, testNow)
	require.NoError(tb, err)
	return token
}

func MustWriteFile(tb testing.TB, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key.pem")
	require.NoError(tb, os.WriteFile(path, data, 0o600))
	return path
}

func TestSigningKey_EachAlgorithmRoundTripsThroughPKCS8PEM(t *testing.T) {
	f := MustTestKeys(t)
	for _, key := range []*SigningKey{f.ed, f.ec, f.rs} {
		t.Run(key.Alg, func(t *testing.T) {
			pemBytes, err := key.PrivatePEM()
			require.NoError(t, err)
			block, _ := pem.Decode(pemBytes)
			require.Equal(t, "PRIVATE KEY", block.Type)

			loaded, err := LoadSigningKey(MustWriteFile(t, pemBytes), "")
			require.NoError(t, err)
			require.Equal(t, key.Alg, loaded.Alg)
			require.True(t, loaded.Private.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Private.Public()))

			thumbprint, err := key.Thumbprint()
			require.NoError(t, err)
			require.Equal(t, thumbprint, loaded.KID, "without a kid the key is named by its thumbprint")

			named, err := LoadSigningKey(MustWriteFile(t, pemBytes), "prod-2026")
			require.NoError(t, err)
			require.Equal(t, "prod-2026", named.KID)
		})
	}
}

func TestGenerateSigningKey_NamesTheKeyByItsThumbprint(t *testing.T) {
	key, err := GenerateSigningKey(AlgEdDSA)
	require.NoError(t, err)
	thumbprint, err := key.Thumbprint()
	require.NoError(t, err)
	require.Equal(t, thumbprint, key.KID)
}

func TestGenerateSigningKey_RefusesAlgorithmsWuyouDoesNotAccept(t *testing.T) {
	for _, alg := range []string{"", "none", "HS256", "ES384", "PS256", "eddsa"} {
		t.Run(alg, func(t *testing.T) {
			_, err := GenerateSigningKey(alg)
			require.Error(t, err)
		})
	}
}

// publicOnlySigner has a public key and cannot sign: enough for Thumbprint.
type publicOnlySigner struct{ public crypto.PublicKey }

func (s publicOnlySigner) Public() crypto.PublicKey { return s.public }
func (publicOnlySigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public key only")
}

func TestThumbprint_MatchesTheRFCExamples(t *testing.T) {
	b64 := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name    string
		private crypto.Signer
		want    string
	}{
		// RFC 8037 appendix A.1 (key, whose x is 11qYAYKx…) and A.3 (thumbprint).
		{"Ed25519 key of RFC 8037", ed25519.NewKeyFromSeed(b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")),
			"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		// RFC 7638 section 3.1.
		{"RSA key of RFC 7638", publicOnlySigner{&rsa.PublicKey{
			N: new(big.Int).SetBytes(b64("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")),
			E: 65537,
		}}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&SigningKey{Private: tt.private}).Thumbprint()
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLoadSigningKey_AcceptsSEC1AndPKCS1PEM(t *testing.T) {
	f := MustTestKeys(t)
	ecDER, err := x509.MarshalECPrivateKey(f.ec.Private.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	// openssl ecparam -genkey writes the curve parameters before the key.
	ecPEM := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})...)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(f.rs.Private.(*rsa.PrivateKey))})

	tests := []struct {
		name    string
		pem     []byte
		wantAlg string
	}{
		{"EC PRIVATE KEY after EC PARAMETERS is ES256", ecPEM, AlgES256},
		{"RSA PRIVATE KEY is RS256", rsaPEM, AlgRS256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := LoadSigningKey(MustWriteFile(t, tt.pem), "k1")
			require.NoError(t, err)
			require.Equal(t, tt.wantAlg, key.Alg)
			require.Equal(t, "k1", key.KID)
		})
	}
}

func TestLoadSigningKey_RefusesKeysWuyouCannotSignWith(t *testing.T) {
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	publicDER, err := x509.MarshalPKIXPublicKey(p384.Public())
	require.NoError(t, err)

	tests := []struct {
		name string
		pem  []byte
	}{
		{"P-384 EC key", pkcs8(p384)},
		{"1024-bit RSA key", pkcs8(rsa1024)},
		{"X25519 key, which cannot sign", pkcs8(x25519)},
		{"a public key only", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER})},
		{"an encrypted key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"a corrupt PKCS#8 block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")})},
		{"no PEM at all", []byte("not a key")},
		{"an empty file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSigningKey(MustWriteFile(t, tt.pem), "k1")
			require.Error(t, err)
		})
	}
	t.Run("a missing file", func(t *testing.T) {
		_, err := LoadSigningKey(filepath.Join(t.TempDir(), "missing.pem"), "k1")
		require.Error(t, err)
	})
}

func TestJWKS_PublishesOnlyPublicKeysWithKidAlgAndUse(t *testing.T) {
	f := MustTestKeys(t)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(f.jwks, &doc))
	require.Len(t, doc.Keys, 3)
	want := map[string]string{"ed-1": AlgEdDSA, "ec-1": AlgES256, "rs-1": AlgRS256}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		require.Equal(t, want[kid], k["alg"], "kid %s", kid)
		require.Equal(t, "sig", k["use"], "kid %s", kid)
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			require.NotContains(t, k, private, "kid %s leaks %s", kid, private)
		}
	}
}

func TestJWKS_RefusesKeysItCannotPublish(t *testing.T) {
	f := MustTestKeys(t)
	noKID := *f.ed
	noKID.KID = ""
	lyingAlg := *f.ec
	lyingAlg.KID, lyingAlg.Alg = "liar", AlgRS256
	sameKID := *f.ec
	sameKID.KID = f.ed.KID

	tests := []struct {
		name string
		keys []*SigningKey
	}{
		{"a key without a kid", []*SigningKey{&noKID}},
		{"a key whose alg does not match its type", []*SigningKey{&lyingAlg}},
		{"two keys with one kid", []*SigningKey{f.ed, &sameKID}},
		{"a nil key", []*SigningKey{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JWKS(tt.keys...)
			require.Error(t, err)
		})
	}
}

func TestMint_WritesKidAlgAndTheClaimsVerifyReads(t *testing.T) {
	f := MustTestKeys(t)
	notBefore := testNow.Add(-time.Minute)
	token, err := f.ec.Mint(Claims{
		Issuer: testIssuer, Audience: testAudience, Subject: "staff-7",
		Role: RoleCompany, CompanyID: "co-42", TTL: 2 * time.Hour, NotBefore: notBefore,
	}, testNow)
	require.NoError(t, err)

	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, "ec-1", parsed.Header["kid"])
	require.Equal(t, AlgES256, parsed.Header["alg"])
	require.Equal(t, "JWT", parsed.Header["typ"])
	claims := parsed.Claims.(jwt.MapClaims)
	require.Equal(t, testIssuer, claims["iss"])
	require.Equal(t, "staff-7", claims["sub"])
	require.Equal(t, RoleCompany, claims["role"])
	require.Equal(t, "co-42", claims["company_id"])
	require.EqualValues(t, testNow.Unix(), claims["iat"])
	require.EqualValues(t, testNow.Add(2*time.Hour).Unix(), claims["exp"])
	require.EqualValues(t, notBefore.Unix(), claims["nbf"])

	// Its signature checks against the key the JWKS publishes under its kid.
	keys, err := ParseJWKS(f.jwks)
	require.NoError(t, err)
	var public PublicKey
	for _, k := range keys {
		if k.KID == "ec-1" {
			public = k
		}
	}
	require.Equal(t, AlgES256, public.Alg)
	_, err = jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return testNow })).ParseWithClaims(token, &Payload{},
		func(*jwt.Token) (any, error) { return public.Key, nil })
	require.NoError(t, err)
}

func TestMint_LeavesNbfOutUnlessGiven(t *testing.T) {
	f := MustTestKeys(t)
	parsed, _, err := jwt.NewParser().ParseUnverified(MustMint(t, f.ed, seafarerClaims()), jwt.MapClaims{})
	require.NoError(t, err)
	require.NotContains(t, parsed.Claims.(jwt.MapClaims), "nbf")
}

func TestMint_RefusesClaimsThatVerifyWouldRefuse(t *testing.T) {
	f := MustTestKeys(t)
	tests := []struct {
		name   string
		change func(c *Claims)
		field  string
	}{
		{"missing iss", func(c *Claims) { c.Issuer = "" }, "iss"},
		{"missing aud", func(c *Claims) { c.Audience = "" }, "aud"},
		{"missing sub", func(c *Claims) { c.Subject = "" }, "sub"},
		{"missing role", func(c *Claims) { c.Role = "" }, "role"},
		{"unknown role", func(c *Claims) { c.Role = "admin" }, "role"},
		{"company role without company_id", func(c *Claims) { c.Role = RoleCompany }, "company_id"},
		{"company_id on a seafarer", func(c *Claims) { c.CompanyID = "co-1" }, "company_id"},
		{"zero ttl", func(c *Claims) { c.TTL = 0 }, "ttl"},
		{"negative ttl", func(c *Claims) { c.TTL = -time.Hour }, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := seafarerClaims()
			tt.change(&c)
			_, err := f.ed.Mint(c, testNow)
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "err: %v", err)
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, tt.field, we.Fields[0].Field)
		})
	}
}

func TestMint_RefusesAKeyWhoseAlgDoesNotMatchItsType(t *testing.T) {
	f := MustTestKeys(t)
	for _, tt := range []struct {
		name string
		key  SigningKey
	}{
		{"Ed25519 key labelled RS256", SigningKey{KID: "x", Alg: AlgRS256, Private: f.ed.Private}},
		{"RSA key labelled ES256", SigningKey{KID: "x", Alg: AlgES256, Private: f.rs.Private}},
		{"HS256", SigningKey{KID: "x", Alg: "HS256", Private: f.ed.Private}},
		{"no kid", SigningKey{Alg: AlgEdDSA, Private: f.ed.Private}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.key.Mint(seafarerClaims(), testNow)
			require.Error(t, err)
		})
	}
}

func TestParseJWKS_ReadsBackEveryKeyJWKSWrites(t *testing.T) {
	f := MustTestKeys(t)
	keys, err := ParseJWKS(f.jwks)
	require.NoError(t, err)
	got := map[string]string{}
	for _, k := range keys {
		got[k.KID] = k.Alg
	}
	require.Equal(t, map[string]string{"ed-1": AlgEdDSA, "ec-1": AlgES256, "rs-1": AlgRS256}, got)
}

func TestParseJWKS_SkipsKeysWuyouDoesNotAcceptAndRefusesASetWithoutAny(t *testing.T) {
	f := MustTestKeys(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	short, err := JWKS(f.ed)
	require.NoError(t, err)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(short, &doc))
	ed := doc.Keys[0]
	with := func(key string, value any) map[string]any {
		out := map[string]any{}
		for k, v := range ed {
			out[k] = v
		}
		if value == nil {
			delete(out, key)
		} else {
			out[key] = value
		}
		return out
	}
	weakRSA := map[string]any{"kty": "RSA", "kid": "weak", "alg": AlgRS256,
		"n": base64.RawURLEncoding.EncodeToString(rsa1024.N.Bytes()), "e": "AQAB"}

	tests := []struct {
		name string
		key  map[string]any
	}{
		{"no kid", with("kid", nil)},
		{"use enc", with("use", "enc")},
		{"alg that is not the key's", with("alg", AlgES256)},
		{"RSA under 2048 bits", weakRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := json.Marshal(map[string]any{"keys": []any{tt.key}})
			require.NoError(t, err)
			_, err = ParseJWKS(set)
			require.ErrorContains(t, err, "no usable signing key")

			set, err = json.Marshal(map[string]any{"keys": []any{tt.key, ed}})
			require.NoError(t, err)
			keys, err := ParseJWKS(set)
			require.NoError(t, err)
			require.Len(t, keys, 1)
			require.Equal(t, "ed-1", keys[0].KID)
		})
	}
	t.Run("two usable keys with one kid", func(t *testing.T) {
		set, err := json.Marshal(map[string]any{"keys": []any{ed, ed}})
		require.NoError(t, err)
		_, err = ParseJWKS(set)
		require.ErrorContains(t, err, "two keys with kid")
	})
}
