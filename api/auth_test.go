package api

import (
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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

const (
	authTestIssuer   = "https://auth.wuyou.test"
	authTestAudience = "wuyou"
)

// authTestNow is the verifier's clock in every auth test: tokens do not age.
var authTestNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// authFixture holds one key per accepted algorithm, all published in one
// JWKS, and a verifier for it. Keys are made once per test binary: RSA
// generation is slow under -race.
type authFixture struct {
	ed, ec, rs *token.SigningKey
	// outsider is a valid Ed25519 key that is not in the JWKS.
	outsider *token.SigningKey
	jwks     []byte
	verifier *Verifier
}

var (
	authFixtureOnce  sync.Once
	authFixtureValue *authFixture
	authFixtureErr   error
)

func MustAuthFixture(tb testing.TB) *authFixture {
	tb.Helper()
	authFixtureOnce.Do(func() {
		f := &authFixture{}
		for _, k := range []struct {
			dst **token.SigningKey
			alg string
			kid string
		}{
			{&f.ed, token.AlgEdDSA, "ed-1"},
			{&f.ec, token.AlgES256, "ec-1"},
			{&f.rs, token.AlgRS256, "rs-1"},
			{&f.outsider, token.AlgEdDSA, "ghost"},
		} {
			key, err := token.GenerateSigningKey(k.alg)
			if err != nil {
				authFixtureErr = err
				return
			}
			key.KID = k.kid
			*k.dst = key
		}
		if f.jwks, authFixtureErr = token.JWKS(f.ed, f.ec, f.rs); authFixtureErr != nil {
			return
		}
		f.verifier, authFixtureErr = NewVerifierFromJWKS(f.jwks, authTestIssuer, authTestAudience, func() time.Time { return authTestNow })
		authFixtureValue = f
	})
	require.NoError(tb, authFixtureErr)
	return authFixtureValue
}

// MustMint mints a token through the production path.
func MustMint(tb testing.TB, k *token.SigningKey, c token.Claims) string {
	tb.Helper()
	token, err := k.Mint(c, authTestNow)
	require.NoError(tb, err)
	return token
}

func seafarerClaims() token.Claims {
	return token.Claims{Issuer: authTestIssuer, Audience: authTestAudience, Subject: "sf-1", Role: token.RoleSeafarer, TTL: time.Hour}
}

// validMapClaims are the claims of a good seafarer token, for tokens the
// tests craft by hand because Mint would refuse to make them.
func validMapClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":  authTestIssuer,
		"aud":  authTestAudience,
		"sub":  "sf-1",
		"role": token.RoleSeafarer,
		"iat":  authTestNow.Unix(),
		"exp":  authTestNow.Add(time.Hour).Unix(),
	}
}

// claimsWith returns a copy of c with key set to value, or removed when value is nil.
func claimsWith(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

// MustCraft signs claims with any method and key, setting the header's kid
// (omitted when empty): the attacker's side of the tests.
func MustCraft(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	token := jwt.NewWithClaims(method, claims)
	if kid != "" {
		token.Header["kid"] = kid
	}
	signed, err := token.SignedString(key)
	require.NoError(tb, err)
	return signed
}

// publicKeyPEM is the PKIX PEM of a public key: what an attacker who read
// the JWKS can use as an HMAC secret.
func publicKeyPEM(tb testing.TB, k *token.SigningKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Private.Public())
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// replaceSegment swaps one dot-separated segment of a token for the base64url
// encoding of raw.
func replaceSegment(token string, index int, raw []byte) string {
	parts := strings.Split(token, ".")
	parts[index] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// authTestErrorHandler maps the codes this package returns to HTTP status,
// like the api package's central error handler does.
func authTestErrorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return c.Status(fe.Code).SendString(fe.Message)
	}
	status := fiber.StatusInternalServerError
	switch wuyou.ErrorCode(err) {
	case wuyou.EUNAUTHORIZED:
		status = fiber.StatusUnauthorized
	case wuyou.EFORBIDDEN:
		status = fiber.StatusForbidden
	}
	return c.Status(status).SendString(wuyou.ErrorMessage(err))
}

// newAuthTestApp serves /me (any authenticated principal, echoed as JSON),
// /union-only and /forgot-authenticate (Require without Authenticate).
// Its read buffer is large so oversized headers reach the middleware
// instead of being refused by fasthttp with 431.
func newAuthTestApp(v *Verifier) *fiber.App {
	app := fiber.New(fiber.Config{
		ErrorHandler:          authTestErrorHandler,
		ReadBufferSize:        2 << 20,
		DisableStartupMessage: true,
	})
	echo := func(c *fiber.Ctx) error { return c.JSON(PrincipalOf(c)) }
	app.Get("/me", Authenticate(v), echo)
	app.Get("/union-only", Authenticate(v), Require(token.RoleUnion), echo)
	app.Get("/forgot-authenticate", Require(token.RoleUnion), echo)
	return app
}

func doAuthRequest(tb testing.TB, app *fiber.App, path, authorization string) (int, string) {
	tb.Helper()
	status, _, body := doAuthRequestHeaders(tb, app, path, authorization)
	return status, body
}

func doAuthRequestHeaders(tb testing.TB, app *fiber.App, path, authorization string) (int, http.Header, string) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := app.Test(req, -1)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, string(body)
}

func TestAuthenticate_RefusesEveryBadTokenWith401(t *testing.T) {
	f := MustAuthFixture(t)
	good := validMapClaims()
	validSeafarer := MustMint(t, f.ed, seafarerClaims())

	tests := []struct {
		name          string
		authorization func(t *testing.T) string
	}{
		{"alg none is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "ed-1", good)
		}},
		{"alg none without a kid is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", good)
		}},
		{"HS256 signed with the RSA public key PEM is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodHS256, publicKeyPEM(t, f.rs), "rs-1", good)
		}},
		{"HS256 signed with the raw Ed25519 public key is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodHS256, []byte(f.ed.Private.Public().(ed25519.PublicKey)), "ed-1", good)
		}},
		{"HS256 signed with the JWKS document is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodHS256, f.jwks, "ec-1", good)
		}},
		{"unknown kid is refused", func(t *testing.T) string {
			return "Bearer " + MustMint(t, f.outsider, seafarerClaims())
		}},
		{"missing kid is refused even when a key would verify", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "", good)
		}},
		{"ES256 header naming the Ed25519 key is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodES256, f.ec.Private, "ed-1", good)
		}},
		{"RS256 header naming the ES256 key is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodRS256, f.rs.Private, "ec-1", good)
		}},
		{"EdDSA header naming the RS256 key is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "rs-1", good)
		}},
		{"PS256 signed by the RS256 key is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodPS256, f.rs.Private, "rs-1", good)
		}},
		{"signature by another key of the right algorithm is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.outsider.Private, "ed-1", good)
		}},
		{"expired token is refused", func(t *testing.T) string {
			c := seafarerClaims()
			c.TTL = time.Minute
			token, err := f.ed.Mint(c, authTestNow.Add(-time.Hour))
			require.NoError(t, err)
			return "Bearer " + token
		}},
		{"expired beyond the 30s leeway is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "exp", authTestNow.Add(-31*time.Second).Unix()))
		}},
		{"token without exp is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "exp", nil))
		}},
		{"nbf in the future is refused", func(t *testing.T) string {
			c := seafarerClaims()
			c.NotBefore = authTestNow.Add(5 * time.Minute)
			return "Bearer " + MustMint(t, f.ed, c)
		}},
		{"wrong iss is refused", func(t *testing.T) string {
			c := seafarerClaims()
			c.Issuer = "https://evil.example"
			return "Bearer " + MustMint(t, f.ed, c)
		}},
		{"missing iss is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "iss", nil))
		}},
		{"wrong aud is refused", func(t *testing.T) string {
			c := seafarerClaims()
			c.Audience = "another-service"
			return "Bearer " + MustMint(t, f.ed, c)
		}},
		{"missing aud is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "aud", nil))
		}},
		{"missing role is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "role", nil))
		}},
		{"unknown role is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodES256, f.ec.Private, "ec-1", claimsWith(good, "role", "admin"))
		}},
		{"role of another type is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "role", []string{token.RoleUnion}))
		}},
		{"company role without company_id is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodRS256, f.rs.Private, "rs-1", claimsWith(good, "role", token.RoleCompany))
		}},
		{"missing sub is refused", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "sub", nil))
		}},
		{"tampered payload is refused", func(t *testing.T) string {
			payload, err := json.Marshal(claimsWith(good, "role", token.RoleUnion))
			require.NoError(t, err)
			return "Bearer " + replaceSegment(validSeafarer, 1, payload)
		}},
		{"tampered header switching alg is refused", func(t *testing.T) string {
			return "Bearer " + replaceSegment(validSeafarer, 0, []byte(`{"alg":"HS256","kid":"ed-1","typ":"JWT"}`))
		}},
		{"unknown critical header extension is refused", func(t *testing.T) string {
			token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, good)
			token.Header["kid"] = "ed-1"
			token.Header["crit"] = []string{"exp"}
			signed, err := token.SignedString(f.ed.Private)
			require.NoError(t, err)
			return "Bearer " + signed
		}},
		{"truncated signature is refused", func(t *testing.T) string {
			return "Bearer " + validSeafarer[:len(validSeafarer)-4]
		}},
		{"header of thousands of dots is refused", func(t *testing.T) string {
			return "Bearer " + strings.Repeat(".", 5000)
		}},
		{"1 MB token is refused", func(t *testing.T) string {
			return "Bearer " + validSeafarer + strings.Repeat("A", 1<<20)
		}},
		{"no Authorization header is refused", func(t *testing.T) string { return "" }},
		{"Bearer without a token is refused", func(t *testing.T) string { return "Bearer" }},
		{"Bearer with only spaces is refused", func(t *testing.T) string { return "Bearer    " }},
		{"Basic scheme is refused", func(t *testing.T) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte("union:password"))
		}},
		{"a valid token without the Bearer scheme is refused", func(t *testing.T) string { return validSeafarer }},
	}
	app := newAuthTestApp(f.verifier)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := doAuthRequestHeaders(t, app, "/me", tt.authorization(t))
			require.Equal(t, fiber.StatusUnauthorized, status, "body: %s", body)
			require.Less(t, len(body), 64, "the 401 message stays short")
			require.Equal(t, `Bearer realm="wuyou"`, header.Get("WWW-Authenticate"))
		})
	}
}

func TestAuthenticate_AcceptsValidTokensAndStoresThePrincipal(t *testing.T) {
	f := MustAuthFixture(t)
	good := validMapClaims()
	tests := []struct {
		name          string
		authorization func(t *testing.T) string
		want          Principal
	}{
		{"EdDSA token is accepted", func(t *testing.T) string {
			return "Bearer " + MustMint(t, f.ed, seafarerClaims())
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"ES256 token is accepted", func(t *testing.T) string {
			return "Bearer " + MustMint(t, f.ec, seafarerClaims())
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"RS256 token is accepted", func(t *testing.T) string {
			return "Bearer " + MustMint(t, f.rs, seafarerClaims())
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"company token carries its company_id", func(t *testing.T) string {
			c := seafarerClaims()
			c.Role, c.Subject, c.CompanyID = token.RoleCompany, "staff-7", "co-42"
			return "Bearer " + MustMint(t, f.ed, c)
		}, Principal{Role: token.RoleCompany, Subject: "staff-7", CompanyID: "co-42"}},
		{"union token is accepted", func(t *testing.T) string {
			c := seafarerClaims()
			c.Role, c.Subject = token.RoleUnion, "officer-1"
			return "Bearer " + MustMint(t, f.ec, c)
		}, Principal{Role: token.RoleUnion, Subject: "officer-1"}},
		{"carrier token is accepted", func(t *testing.T) string {
			c := seafarerClaims()
			c.Role, c.Subject = token.RoleCarrier, "cmcc"
			return "Bearer " + MustMint(t, f.rs, c)
		}, Principal{Role: token.RoleCarrier, Subject: "cmcc"}},
		{"company_id on a seafarer token is dropped", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "company_id", "co-42"))
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"aud as a list containing wuyou is accepted", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "aud", []string{"other", authTestAudience}))
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"expired less than the 30s leeway ago is accepted", func(t *testing.T) string {
			return "Bearer " + MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "exp", authTestNow.Add(-20*time.Second).Unix()))
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"nbf within the 30s leeway is accepted", func(t *testing.T) string {
			c := seafarerClaims()
			c.NotBefore = authTestNow.Add(20 * time.Second)
			return "Bearer " + MustMint(t, f.ed, c)
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
		{"bearer scheme is case-insensitive", func(t *testing.T) string {
			return "bearer " + MustMint(t, f.ed, seafarerClaims())
		}, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}},
	}
	app := newAuthTestApp(f.verifier)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := doAuthRequest(t, app, "/me", tt.authorization(t))
			require.Equal(t, fiber.StatusOK, status, "body: %s", body)
			var got Principal
			require.NoError(t, json.Unmarshal([]byte(body), &got))
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRequire_AllowsOnlyTheListedRoles(t *testing.T) {
	f := MustAuthFixture(t)
	tokenFor := func(role, companyID string) string {
		c := seafarerClaims()
		c.Role, c.CompanyID = role, companyID
		return "Bearer " + MustMint(t, f.ed, c)
	}
	tests := []struct {
		name          string
		path          string
		authorization string
		want          int
	}{
		{"seafarer on a union-only route is forbidden", "/union-only", tokenFor(token.RoleSeafarer, ""), fiber.StatusForbidden},
		{"company on a union-only route is forbidden", "/union-only", tokenFor(token.RoleCompany, "co-1"), fiber.StatusForbidden},
		{"carrier on a union-only route is forbidden", "/union-only", tokenFor(token.RoleCarrier, ""), fiber.StatusForbidden},
		{"union on a union-only route is allowed", "/union-only", tokenFor(token.RoleUnion, ""), fiber.StatusOK},
		{"no token on a union-only route is unauthorized, not forbidden", "/union-only", "", fiber.StatusUnauthorized},
		{"Require without Authenticate is unauthorized", "/forgot-authenticate", tokenFor(token.RoleUnion, ""), fiber.StatusUnauthorized},
	}
	app := newAuthTestApp(f.verifier)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := doAuthRequest(t, app, tt.path, tt.authorization)
			require.Equal(t, tt.want, status, "body: %s", body)
		})
	}
}

func TestVerify_ReturnsEUNAUTHORIZEDWithoutTouchingOversizedTokens(t *testing.T) {
	f := MustAuthFixture(t)
	for name, token := range map[string]string{
		"empty":                "",
		"just over 8 KiB":      strings.Repeat("a", MaxTokenBytes+1),
		"1 MB of dots":         strings.Repeat(".", 1<<20),
		"four segments":        "a.b.c.d",
		"header is not JSON":   base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.sig",
		"header is not b64":    "!!!.e30.sig",
		"padded base64 header": base64.URLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"ed-1"}`)) + ".e30.sig",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := f.verifier.Verify(token)
			require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err), "err: %v", err)
			require.Zero(t, p)
		})
	}
}

func TestVerify_SaysWhenATokenHasExpired(t *testing.T) {
	f := MustAuthFixture(t)
	token := MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(validMapClaims(), "exp", authTestNow.Add(-time.Hour).Unix()))
	_, err := f.verifier.Verify(token)
	require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err))
	require.Equal(t, "token expired", wuyou.ErrorMessage(err))
}

// jwkOf is the JWK of key with the given metadata written over whatever
// jwkset inferred, so the tests can publish keys that lie about themselves.
func jwkOf(tb testing.TB, key any, kid, alg, use string) jwkset.JWKMarshal {
	tb.Helper()
	jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{})
	require.NoError(tb, err)
	m := jwk.Marshal()
	m.KID, m.ALG, m.USE = kid, jwkset.ALG(alg), jwkset.USE(use)
	return m
}

func marshalJWKS(tb testing.TB, keys ...jwkset.JWKMarshal) []byte {
	tb.Helper()
	out, err := json.Marshal(jwkset.JWKSMarshal{Keys: keys})
	require.NoError(tb, err)
	return out
}

func TestNewVerifierFromJWKS_SkipsKeysWuyouDoesNotAccept(t *testing.T) {
	f := MustAuthFixture(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	edPublic := f.ed.Private.Public()
	ecPublic := f.ec.Private.Public()
	rsPublic := f.rs.Private.Public()

	skipped := []jwkset.JWKMarshal{
		{KTY: jwkset.KtyOct, K: base64.RawURLEncoding.EncodeToString([]byte("secret")), KID: "hmac", ALG: jwkset.AlgHS256},
		jwkOf(t, p384.Public(), "p384", "ES384", "sig"),
		jwkOf(t, x25519.PublicKey(), "x25519", "", ""),
		jwkOf(t, rsPublic, "pss", "PS256", "sig"),
		jwkOf(t, edPublic, "for-encryption", "EdDSA", "enc"),
		jwkOf(t, edPublic, "", "EdDSA", "sig"),
		jwkOf(t, ecPublic, "ec-claims-eddsa", "EdDSA", "sig"),
		jwkOf(t, edPublic, "ed-claims-none", "none", "sig"),
		jwkOf(t, rsa1024.Public(), "short-rsa", "RS256", "sig"),
		{KTY: jwkset.KtyEC, CRV: jwkset.CrvP256, X: "AQ", Y: "Ag", KID: "off-curve"},
		{KTY: jwkset.KtyOKP, CRV: jwkset.CrvEd25519, X: "c2hvcnQ", KID: "short-ed"},
		{KTY: jwkset.KtyRSA, N: "!!", E: "AQAB", KID: "bad-base64"},
		{KTY: "weird", KID: "weird"},
		{},
	}
	usable := []jwkset.JWKMarshal{
		jwkOf(t, edPublic, "ed-1", "EdDSA", "sig"),
		jwkOf(t, ecPublic, "ec-no-alg", "", ""), // alg follows from the key
	}
	v, err := NewVerifierFromJWKS(marshalJWKS(t, append(skipped, usable...)...), authTestIssuer, authTestAudience, func() time.Time { return authTestNow })
	require.NoError(t, err)
	require.Len(t, v.keys, len(usable))

	_, err = v.Verify(MustMint(t, f.ed, seafarerClaims()))
	require.NoError(t, err, "a usable key still verifies")
	ecNoAlg := *f.ec
	ecNoAlg.KID = "ec-no-alg"
	_, err = v.Verify(MustMint(t, &ecNoAlg, seafarerClaims()))
	require.NoError(t, err, "a key without alg verifies its key type's algorithm")

	hmacToken := MustCraft(t, jwt.SigningMethodHS256, []byte("secret"), "hmac", validMapClaims())
	_, err = v.Verify(hmacToken)
	require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err), "an HMAC key in the JWKS is never used")
}

func TestNewVerifierFromJWKS_KeepsOnlyPublicKeys(t *testing.T) {
	f := MustAuthFixture(t)
	var keys []jwkset.JWKMarshal
	for _, k := range []*token.SigningKey{f.ed, f.ec, f.rs} {
		jwk, err := jwkset.NewJWKFromKey(k.Private, jwkset.JWKOptions{
			Marshal:  jwkset.JWKMarshalOptions{Private: true},
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.Alg)},
		})
		require.NoError(t, err)
		require.NotEmpty(t, jwk.Marshal().D)
		keys = append(keys, jwk.Marshal())
	}
	v, err := NewVerifierFromJWKS(marshalJWKS(t, keys...), authTestIssuer, authTestAudience, nil)
	require.NoError(t, err)
	require.IsType(t, ed25519.PublicKey{}, v.keys["ed-1"].public)
	require.IsType(t, &ecdsa.PublicKey{}, v.keys["ec-1"].public)
	require.IsType(t, &rsa.PublicKey{}, v.keys["rs-1"].public)
}

func TestNewVerifierFromJWKS_RefusesUnusableConfiguration(t *testing.T) {
	f := MustAuthFixture(t)
	edPublic := f.ed.Private.Public()
	tests := []struct {
		name     string
		jwks     []byte
		issuer   string
		audience string
	}{
		{"JWKS that is not JSON", []byte("not json"), authTestIssuer, authTestAudience},
		{"JWKS without keys", []byte(`{"keys":[]}`), authTestIssuer, authTestAudience},
		{"JWKS with only an HMAC key", marshalJWKS(t, jwkset.JWKMarshal{KTY: jwkset.KtyOct, K: "c2VjcmV0", KID: "h", ALG: jwkset.AlgHS256}), authTestIssuer, authTestAudience},
		{"two keys with one kid", marshalJWKS(t, jwkOf(t, edPublic, "k", "EdDSA", "sig"), jwkOf(t, f.ec.Private.Public(), "k", "ES256", "sig")), authTestIssuer, authTestAudience},
		{"empty issuer", f.jwks, "", authTestAudience},
		{"empty audience", f.jwks, authTestIssuer, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifierFromJWKS(tt.jwks, tt.issuer, tt.audience, nil)
			require.Error(t, err)
		})
	}
}

func TestNewVerifier_ReadsTheJWKSFile(t *testing.T) {
	f := MustAuthFixture(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, f.jwks, 0o644))

	v, err := NewVerifier(path, authTestIssuer, authTestAudience, func() time.Time { return authTestNow })
	require.NoError(t, err)
	p, err := v.Verify(MustMint(t, f.rs, seafarerClaims()))
	require.NoError(t, err)
	require.Equal(t, Principal{Role: token.RoleSeafarer, Subject: "sf-1"}, p)

	_, err = NewVerifier(filepath.Join(t.TempDir(), "missing.json"), authTestIssuer, authTestAudience, nil)
	require.Error(t, err)
}

func FuzzVerify(f *testing.F) {
	fx := MustAuthFixture(f)
	accepted := map[string]bool{}
	for _, k := range []*token.SigningKey{fx.ed, fx.ec, fx.rs} {
		token := MustMint(f, k, seafarerClaims())
		accepted[token] = true
		f.Add(token)
	}
	f.Add("")
	f.Add(strings.Repeat(".", 100))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(MustCraft(f, jwt.SigningMethodHS256, publicKeyPEM(f, fx.rs), "rs-1", validMapClaims()))
	f.Add(MustCraft(f, jwt.SigningMethodEdDSA, fx.ed.Private, "ed-1", claimsWith(validMapClaims(), "role", "admin")))

	f.Fuzz(func(t *testing.T, token string) {
		p, err := fx.verifier.Verify(token)
		if err != nil {
			require.Equal(t, wuyou.EUNAUTHORIZED, wuyou.ErrorCode(err), "err: %v", err)
			require.Zero(t, p)
			return
		}
		require.True(t, accepted[token], "accepted a token nobody minted: %q", token)
	})
}

func BenchmarkVerify(b *testing.B) {
	f := MustAuthFixture(b)
	for _, k := range []*token.SigningKey{f.ed, f.ec, f.rs} {
		token := MustMint(b, k, seafarerClaims())
		b.Run(k.Alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.verifier.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
